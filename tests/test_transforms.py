"""Transforms invert exactly, for one-step and multi-step forecasts (issue: level shifts)."""

import numpy as np
import pytest

from rnnforecast import transforms

rng = np.random.default_rng(0)
X = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(500)))  # positive, drifting


@pytest.mark.parametrize("kind", transforms.KINDS)
@pytest.mark.parametrize("horizon", [1, 5])
def test_forward_then_inverse_returns_the_series(kind, horizon):
    z = transforms.forward(X, kind)
    assert z.dtype == np.float64
    if kind in transforms.DIFFERENCES:
        assert np.isnan(z[0]) and np.isfinite(z[1:]).all()
    else:
        assert np.isfinite(z).all()
    starts = np.arange(1, len(X) - horizon)  # last observed row of each window
    rows = starts[:, None] + 1 + np.arange(horizon)  # (B, H) future rows
    steps = z[rows] if kind != "none" else X[rows]
    back = transforms.inverse(X[starts], steps, kind)
    np.testing.assert_allclose(back, X[rows], rtol=0, atol=1e-9 * X.max())


def test_inverse_cumulates_from_the_last_level():
    level = np.array([10.0])
    assert transforms.inverse(level, np.array([[1.0, 2.0, -1.0]]), "diff").tolist() == [[11.0, 13.0, 12.0]]
    assert transforms.inverse(level, np.array([[0.1, 0.1]]), "pct_change") == pytest.approx(np.array([[11.0, 12.1]]))
    assert transforms.inverse(level, np.log([[2.0, 1.5]]), "log_diff") == pytest.approx(np.array([[20.0, 30.0]]))


def test_log_is_each_value_on_its_own():
    """No predecessor read, no level cumulated: exp of each step, whatever the last observed level."""
    assert transforms.forward(np.array([1.0, np.e, np.e**2]), "log") == pytest.approx([0.0, 1.0, 2.0])
    assert transforms.inverse(np.array([10.0]), np.log([[2.0, 1.5]]), "log") == pytest.approx(np.array([[2.0, 1.5]]))
    assert transforms.needs_positive("log") and not transforms.differences({"y": "log", "x": "none"})
    assert transforms.history_rows(5, {"y": "log"}) == 5 and transforms.history_rows(5, {"y": "diff"}) == 6


def test_unknown_transform():
    with pytest.raises(ValueError, match="allowed"):
        transforms.forward(X, "boxcox")

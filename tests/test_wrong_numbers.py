"""Tests that fail when a number is silently wrong: each names, in its docstring, the planted bug it catches.

Every expected value is computed by hand in the comments, on fixtures chosen so the wrong rule gives another number
(values exactly on band edges, misses on both sides, persistence MAE != RMSE, horizon > season, lag > 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnforecast import intervals as iv
from rnnforecast import metrics
from rnnforecast.numpy_model import combine


def test_coverage_counts_values_on_the_band_edge_as_covered():
    """Planted bug: coverage on the open interval (``y > lower & y < upper``): 25 % here instead of 75 %."""
    y = np.array([[0.0, 3.0, 1.5, 4.0]])[..., None]  # (B=1, H=4, T=1): on the lower edge, on the upper, inside, out
    q = np.stack([np.zeros((1, 4, 1)), np.full((1, 4, 1), 1.5), np.full((1, 4, 1), 3.0)], axis=-1)  # p10 p50 p90
    out = iv.interval_metrics(y, q, [80.0], ["y"])["levels"]["80"]
    assert out["coverage"]["overall"] == pytest.approx(75.0)  # 3 of 4 on the closed band [0, 3]
    assert out["coverage"]["per_lead"] == pytest.approx([100.0, 100.0, 100.0, 0.0])


def test_interval_score_penalises_lower_and_upper_misses_by_2_over_alpha():
    """Planted bug: the lower-miss penalty at 1/alpha (only upper misses were tested)."""
    y = np.array([[-1.0, 5.0, 2.0]])[..., None]  # a miss 1 below, a miss 2 above, one inside
    q = np.stack([np.zeros((1, 3, 1)), np.ones((1, 3, 1)), np.full((1, 3, 1), 3.0)], axis=-1)  # band [0, 3]
    out = iv.interval_metrics(y, q, [80.0], ["y"])["levels"]["80"]["interval_score"]
    # width 3 each; alpha 0.2: 2/alpha = 10 -> 3 + 10*1 = 13, 3 + 10*2 = 23, 3
    assert out["per_lead"] == pytest.approx([13.0, 23.0, 3.0])
    assert out["overall"] == pytest.approx(13.0)


def test_mase_divides_by_the_mae_of_persistence():
    """Planted bug: MASE divided by persistence RMSE (the old fixture had MAE = RMSE = 1)."""
    actual = np.array([[2.0, 6.0]])[..., None]  # (B=1, H=2, T=1)
    f = {
        "model": np.array([[3.0, 5.0]])[..., None, None],  # errors 1, 1: MAE 1
        "persistence": np.array([[1.0, 3.0]])[..., None, None],  # errors 1, 3: MAE 2, RMSE sqrt(5) = 2.236
    }
    m = metrics.evaluate_forecasts(actual, f, ["y"], np.array([1.0]))["original"]["overall"]
    assert m["persistence"]["rmse"] == pytest.approx(np.sqrt(5))
    assert m["model"]["mase"] == pytest.approx(0.5)  # 1 / 2, not 1 / 2.236 = 0.447
    assert m["model"]["skill"] == pytest.approx(1 - 1 / 5)  # MSE 1 vs persistence MSE (1 + 9) / 2 = 5


def _aci_run(gamma: float = 0.0) -> iv.RunIntervals:
    cal = iv.Calibration((80.0,), np.ones((1, 2, 1)), n=4)
    return iv.RunIntervals("conformal", (80.0,), False, cal, cal, adaptive=True, gamma=gamma)


def test_adaptive_bands_wait_h_windows_and_pool_only_revealed_scores():
    """Planted bugs: adaptive conformal run with a lag of 1 at horizon > 1, and a score pool that includes scores
    not yet revealed. Both make the first windows' bands wider than what was known when they were forecast."""
    val = np.ones((4, 2, 1))  # (N=4, H=2, T=1) validation residuals, all 1
    point = np.zeros((5, 2, 1, 1))
    actual = np.full((5, 2, 1), 10.0)  # every test residual is 10
    q = iv.adaptive_bands(_aci_run(), point, actual, val, np.zeros(5, dtype=int))
    half = q[:, 0, 0, -1]  # upper bound of the 80 % band = half-width (point 0), lead 1
    # 80 %: the k = ceil((n + 1) 0.8)-th smallest score of the pool known at window t. H = 2, so window t - 2's
    # outcome is known at window t: t = 0, 1: pool of 4 ones, k = 4 -> 1; t = 2: 4 ones + one 10, k = 5 -> 10;
    # t = 3, 4: k = ceil(5.6) = 6 of 6, ceil(6.4) = 7 of 7 -> 10
    assert half.tolist() == [1.0, 1.0, 10.0, 10.0, 10.0]
    direct = iv.adaptive_conformal(val, np.abs(actual), [80.0], gamma=0.0)
    assert direct.width[:, 0, 0, 0].tolist() == [1.0, 1.0, 10.0, 10.0, 10.0]


def test_adaptive_level_moves_only_on_revealed_misses_at_horizon_2():
    """Planted bug: lag 1 at horizon 2 (the level reacts to a window whose last target is not yet observed)."""
    val = np.ones((4, 2, 1))
    actual = np.full((5, 2, 1), 10.0)  # every test window is missed
    q = iv.adaptive_bands(_aci_run(gamma=0.05), np.zeros((5, 2, 1, 1)), actual, val, np.zeros(5, dtype=int))
    ad = iv.adaptive_conformal(val, np.abs(actual), [80.0], gamma=0.05)
    # alpha_t: 0.2 at t = 0, 1 (no outcome known); windows 0 and 1 (band 1) missed: 0.2 + 0.05 (0.2 - 1) = 0.16 at
    # t = 2, 0.12 at t = 3; window 2 at alpha 0.16 needs the k = ceil(6 * 0.84) = 6th of 5 scores: an infinite band,
    # covered, so t = 4 gets 0.12 + 0.05 (0.2 - 0) = 0.13
    np.testing.assert_allclose(ad.alpha[:, 0, 0, 0], [0.2, 0.2, 0.16, 0.12, 0.13])
    assert np.isinf(ad.width[2, 0, 0, 0])
    np.testing.assert_allclose(q[:, 0, 0, -1], ad.width[:, 0, 0, 0])


def test_cqr_narrows_a_too_wide_head():
    """Planted bug: CQR scores clipped at 0, so a too-wide quantile head is never narrowed."""
    y = np.array([0.0, 0.5, -1.0, 2.0])[:, None, None]  # (N=4, H=1, T=1)
    head = np.broadcast_to(np.array([-5.0, 0.0, 5.0]), (4, 1, 1, 3))  # p10 -5, p50 0, p90 5: far too wide
    cal = iv.calibrate_cqr(head, y, [80.0])
    # scores max(-5 - y, y - 5): -5, -4.5, -4, -3; k = ceil(5 * 0.8) = 4 -> -3: the band shrinks by 3 each side
    assert cal.width[0, 0, 0] == pytest.approx(-3.0)
    np.testing.assert_allclose(iv.apply_cqr(head[:1], cal)[0, 0, 0], [-2.0, 0.0, 2.0])


def test_quantile_ensemble_takes_the_median_of_each_quantile():
    """Planted bug: a quantile ensemble combined by the mean (one wild member moves the band) instead of the
    README's median."""
    members = [
        np.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3),
        np.array([1.5, 2.5, 3.5]).reshape(1, 1, 1, 3),
        np.array([-20.0, 2.2, 40.0]).reshape(1, 1, 1, 3),  # a wild tail
    ]
    np.testing.assert_allclose(combine(members)[0, 0, 0], [1.0, 2.2, 3.5])  # medians per quantile
    points = [np.array([1.0]).reshape(1, 1, 1, 1), np.array([2.0]).reshape(1, 1, 1, 1), np.full((1, 1, 1, 1), 9.0)]
    assert combine(points)[0, 0, 0, 0] == pytest.approx(4.0)  # point forecasts: the mean (1 + 2 + 9) / 3

"""No statistic of the scaler comes from validation or test rows, nor (per series) from another series.

For every scaling kind, per series and global, with and without each transform: the saved scaler
equals a hand computation on the training rows of its own series, and stays the same when every
validation and test value changes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rnnforecast import series
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame

N = 120  # rows per series; split 0.7 / 0.15 / 0.15: train rows 0..83 of each series
N_TRAIN = 84
SCALINGS = ("standard", "minmax", "window", "none")
TRANSFORMS = ("none", "diff", "log_diff", "pct_change")


def _frame(later_factor: float = 1.0, b_factor: float = 1.0) -> pd.DataFrame:
    """Two positive series A and B (target y, feature x); val/test rows multiplied by ``later_factor``."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2021-01-01", periods=N, freq="D")
    parts = []
    for k, sid in enumerate("AB"):
        y = 10.0 + 3 * k + np.abs(rng.normal(1, 0.5, N)).cumsum() / 10  # positive: log_diff and pct_change apply
        x = 5.0 + 7 * k + rng.uniform(0, 2, N)
        y[N_TRAIN:] *= later_factor
        x[N_TRAIN:] *= later_factor
        if sid == "B":
            y, x = y * b_factor, x * b_factor
        parts.append(pd.DataFrame({"time": t, "sid": sid, "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


def _hand_transform(v: np.ndarray, kind: str) -> np.ndarray:
    if kind == "diff":
        return v[1:] - v[:-1]
    if kind == "log_diff":
        return np.log(v[1:]) - np.log(v[:-1])
    if kind == "pct_change":
        return v[1:] / v[:-1] - 1.0
    return v


def _hand_stats(df: pd.DataFrame, groups: list[str], scaling: str, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) of shape (G, 2) for columns [x, y], from training rows only, computed here by hand."""
    shift, scale = [], []
    for group in groups:
        rows = df if group == "*" else df[df["sid"] == group]
        cols = []
        for col in ("x", "y"):
            per_series = [_hand_transform(g[col].to_numpy()[:N_TRAIN], transform) for _, g in rows.groupby("sid")]
            cols.append(np.concatenate(per_series))
        if scaling in ("standard", "window"):
            shift.append([c.mean() for c in cols])
            scale.append([c.std() for c in cols])
        elif scaling == "minmax":
            shift.append([c.min() for c in cols])
            scale.append([c.max() - c.min() for c in cols])
        else:
            shift.append([0.0, 0.0])
            scale.append([1.0, 1.0])
    return np.array(shift), np.array(scale)


def _scaler(tmp_path, df: pd.DataFrame, scaling: str, per_series: bool, transform: str, name: str) -> dict:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    raw = {
        "data": {
            "path": str(path),
            "time_column": "time",
            "target": "y",
            "features": ["x"],
            "series_id": "sid",
            "scaling": scaling,
            "scale_per_series": per_series,
            "split": {"train": 0.7, "val": 0.15, "test": 0.15},
            **({"transform": {"x": transform, "y": transform}} if transform != "none" else {}),
        },
        "window": {"input_length": 3, "horizon": 2},
    }
    cfg = from_dict(raw)
    data = series.build(load_frame(cfg.data, path), cfg)
    out = tmp_path / f"{name}.json"
    data.scaler.save(out)  # what train writes to the run as scaler.json
    return json.loads(out.read_text())


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("per_series", [True, False], ids=["per_series", "global"])
@pytest.mark.parametrize("scaling", SCALINGS)
def test_scaler_is_fitted_on_training_rows_of_its_own_series(tmp_path, scaling, per_series, transform):
    base = _frame()
    saved = _scaler(tmp_path, base, scaling, per_series, transform, "base")
    groups = ["A", "B"] if per_series else ["*"]
    assert saved["kind"] == scaling and saved["columns"] == ["x", "y"] and saved["groups"] == groups
    shift, scale = _hand_stats(base, groups, scaling, transform)
    np.testing.assert_allclose(saved["shift"], shift, rtol=1e-9, atol=1e-12)
    if scaling != "none":  # the hand scale must be a real one, or the check below proves nothing
        assert (scale > 1e-6).all()
    np.testing.assert_allclose(saved["scale"], scale, rtol=1e-9, atol=1e-12)

    # Every validation and test value changes (x 40): the saved statistics must not move.
    later = _scaler(tmp_path, _frame(later_factor=40.0), scaling, per_series, transform, "later")
    assert later == saved

    if per_series:  # series A's scaler must not see series B at all
        other = _scaler(tmp_path, _frame(b_factor=3.0), scaling, per_series, transform, "other")
        assert other["shift"][0] == saved["shift"][0] and other["scale"][0] == saved["scale"][0]
        if scaling != "none" and transform == "none":  # B's own statistics do move (multiplicative transforms hide it)
            assert other["scale"][1] != saved["scale"][1]

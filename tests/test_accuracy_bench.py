"""The accuracy benchmark's window and metric code on a tiny synthetic series (no network, no data packages)."""

from __future__ import annotations

import numpy as np

from bench.accuracy import report, tasks
from rnnforecast import folds, metrics


def test_split_bounds_match_the_seventy_fifteen_fifteen_rounding():
    assert tasks.split_bounds(20) == {"train": (0, 14), "val": (14, 17), "test": (17, 20)}
    assert tasks.split_bounds(8760) == {"train": (0, 6132), "val": (6132, 7446), "test": (7446, 8760)}


def test_persistence_mae_by_hand_on_a_tiny_series():
    # 20 rows: test split is rows 17..19 and owns their targets; with L=1, H=1 the windows start at 16, 17, 18:
    # window 16 sees y[16]=256 (a row before the split) and forecasts y[17]=289; then 289 -> 324, 324 -> 361.
    y = np.arange(20, dtype=float) ** 2
    lo, hi = tasks.split_bounds(len(y))["test"]
    s = tasks.starts(lo, hi, 1, 1)
    assert s.tolist() == [16, 17, 18]
    assert tasks.starts(lo, hi, 1, 1, lookback=False).tolist() == [17, 18]  # a training window stays inside
    actual = tasks.test_targets(y, s, 1, 1)
    assert actual[:, 0].tolist() == [289.0, 324.0, 361.0]
    got = tasks.mae(tasks.persistence(y, s, 1, 1), actual)
    assert got == ((289 - 256) + (324 - 289) + (361 - 324)) / 3 == 35.0


def test_multi_step_windows_and_seasonal_naive_by_hand():
    y = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0, 5.0, 9.0] * 4)  # 40 rows, season 2
    lo, hi = tasks.split_bounds(len(y))["test"]  # (34, 40)
    s = tasks.starts(lo, hi, 2, 2, lookback=False)
    assert s.tolist() == [34, 35, 36]
    x, target = tasks.windows(y[:, None], s, 2, 2, 0)
    assert x.shape == (3, 2, 1) and x[0, :, 0].tolist() == [y[34], y[35]]
    assert (
        target.tolist() == tasks.test_targets(y, s, 2, 2).tolist() == [[y[36], y[37]], [y[37], y[38]], [y[38], y[39]]]
    )
    # Season 2: step 1 repeats the row before the last observed one, step 2 the last observed one.
    sn = tasks.seasonal_naive(y, s, 2, 2, 2)
    assert sn.tolist() == [[y[34], y[35]], [y[35], y[36]], [y[36], y[37]]]
    p = tasks.persistence(y, s, 2, 2)
    want = np.mean(
        [abs(y[35] - y[36]), abs(y[35] - y[37]), abs(y[36] - y[37]), abs(y[36] - y[38])]
        + [abs(y[37] - y[38]), abs(y[37] - y[39])]
    )
    assert tasks.mae(p, target) == want


def test_same_windows_and_baselines_as_rnnforecast():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300).cumsum()
    L, H, m = 12, 5, 7
    lo, hi = tasks.split_bounds(len(y))["test"]
    s = tasks.starts(lo, hi, L, H)
    assert s.tolist() == folds.target_window_starts((lo, hi), L, H, 1, 0).tolist()  # rnnforecast's test windows
    theirs = metrics.baseline_forecasts(y[:, None], s, L, H, m, np.zeros(len(s), dtype=np.int64))
    assert np.array_equal(theirs["persistence"][..., 0, 0], tasks.persistence(y, s, L, H))
    assert np.array_equal(theirs["seasonal_naive"][..., 0, 0], tasks.seasonal_naive(y, s, L, H, m))


def test_table_ratio_and_mase():
    rows = [
        {"series": "a", "model": "persistence", "seed": None, "mae": 2.0, "train_seconds": 0.0},
        {"series": "a", "model": "hand_lstm", "seed": 0, "mae": 1.0, "train_seconds": 3.0},
        {"series": "a", "model": "hand_lstm", "seed": 1, "mae": 3.0, "train_seconds": 5.0},
        {"series": "a", "model": "rnnforecast-gru", "seed": 0, "mae": 1.5, "train_seconds": 4.0, "best_epoch": 2}
        | {"epochs_run": 7},
    ]
    _, _, stats = report.summarise(rows)
    assert stats[("a", "hand_lstm")]["mae"] == 2.0 and stats[("a", "hand_lstm")]["mase"] == 1.0
    assert stats[("a", "rnnforecast-gru")]["ratio"] == 0.75 and stats[("a", "rnnforecast-gru")]["mase"] == 0.75
    text = report.render({"rows": rows})
    assert "| a | rnnforecast-gru | 1.5 | 0.750 | 0.750 | 4.0 | 2/7 |" in text

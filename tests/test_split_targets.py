"""A split owns targets, not inputs: validation and test windows read their inputs from the rows before them,
training windows never see a validation or test value, and a border moved by one row moves exactly its windows.

20 daily rows, input_length 3, horizon 2; val_start is row 10 and test_start row 15 (date splits)::

    rows:  0 ........ 9 | 10 ...... 14 | 15 ...... 19
           train          val            test
    train starts 0..5   (targets s+3, s+4 inside 0..9)
    val   starts 7..10  (targets inside 10..14; start 7 reads inputs 7, 8, 9 from the training rows)
    test  starts 12..15 (targets inside 15..19)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnforecast import series, windows
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame
from rnnforecast.errors import DataError

N, L, H = 20, 3, 2
TIMES = pd.date_range("2021-01-01", periods=N, freq="D")


def _build(tmp_path, y: np.ndarray, val_row: int = 10, test_row: int = 15, transform: str = "none", name: str = "d"):
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"time": TIMES, "y": y}).to_csv(path, index=False)
    data = {
        "path": str(path),
        "time_column": "time",
        "target": "y",
        "split": {"val_start": str(TIMES[val_row].date()), "test_start": str(TIMES[test_row].date())},
        **({"transform": {"y": transform}} if transform != "none" else {}),
    }
    cfg = from_dict({"data": data, "window": {"input_length": L, "horizon": H}})
    return series.build(load_frame(cfg.data, path), cfg)


def _y() -> np.ndarray:
    return 10.0 + np.sin(np.arange(N)) + np.arange(N) / 5  # positive, varying


def _starts(data) -> dict[str, list[int]]:
    return {k: data.starts(k, stride=1).tolist() for k in ("train", "val", "test")}


def test_hand_computed_starts(tmp_path):
    assert _starts(_build(tmp_path, _y())) == {
        "train": [0, 1, 2, 3, 4, 5],
        "val": [7, 8, 9, 10],
        "test": [12, 13, 14, 15],
    }


@pytest.mark.parametrize(
    ("val_row", "test_row", "want"),
    [
        # val border one row later: training gains start 6 (targets 9, 10), val loses start 7 (target row 10)
        (11, 15, {"train": [0, 1, 2, 3, 4, 5, 6], "val": [8, 9, 10], "test": [12, 13, 14, 15]}),
        # val border one row earlier: training loses start 5, val gains start 6
        (9, 15, {"train": [0, 1, 2, 3, 4], "val": [6, 7, 8, 9, 10], "test": [12, 13, 14, 15]}),
        # test border one row later: val gains start 11 (targets 14, 15), test loses start 12; training unchanged
        (10, 16, {"train": [0, 1, 2, 3, 4, 5], "val": [7, 8, 9, 10, 11], "test": [13, 14, 15]}),
    ],
)
def test_a_border_moved_by_one_row_moves_exactly_its_windows(tmp_path, val_row, test_row, want):
    assert _starts(_build(tmp_path, _y(), val_row, test_row)) == want


def test_a_differenced_series_starts_training_one_row_later(tmp_path):
    # diff leaves row 0 undefined: training rows are 1..9, and no window reads row 0, not even a val window's inputs
    got = _starts(_build(tmp_path, _y(), transform="diff"))
    assert got == {"train": [1, 2, 3, 4, 5], "val": [7, 8, 9, 10], "test": [12, 13, 14, 15]}


@pytest.mark.parametrize("transform", ["none", "diff"])
@pytest.mark.parametrize("row", [10, 12, 14, 17])  # first, middle, last val row; a test row
def test_a_planted_value_after_training_changes_no_training_window_and_no_scaler(tmp_path, transform, row):
    base = _build(tmp_path, _y(), transform=transform, name="base")
    y = _y()
    y[row] = 1e6
    planted = _build(tmp_path, y, transform=transform, name="planted")
    assert planted.scaler.to_json() == base.scaler.to_json()
    tr = base.starts("train")
    for a, b in zip(base.batch(tr), planted.batch(tr)):
        np.testing.assert_array_equal(a, b)
    # the plant is real: some validation or test window sees it (as a target or as an input)
    later = np.concatenate([base.starts("val"), base.starts("test")])
    assert any(not np.array_equal(a, b) for a, b in zip(base.batch(later), planted.batch(later)))
    assert (np.asarray(planted.actual(later)) == 1e6).any() or (
        planted.raw[windows.input_rows(later, planted.input_length)][..., planted.target_idx] == 1e6
    ).any()


def test_no_training_target_reaches_the_val_border(tmp_path):
    data = _build(tmp_path, _y())
    rows = data.starts("train")[:, None] + L + np.arange(H)
    assert rows.max() == 9  # the last training row, never row 10


def test_val_and_test_need_only_horizon_rows(tmp_path):
    # test split of exactly horizon=2 rows: one window; the training split still needs input_length + horizon
    data = _build(tmp_path, _y(), 10, 18)
    assert data.starts("test").tolist() == [15]
    with pytest.raises(DataError, match="test split has 1 rows, fewer than horizon = 2"):
        _build(tmp_path, _y(), 10, 19)
    with pytest.raises(DataError, match="train split has 4 rows, fewer than input_length"):
        _build(tmp_path, _y(), 4, 15)

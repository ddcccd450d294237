import numpy as np
import pytest

from rnnforecast import windows


def test_starts_match_the_docstring_drawing():
    starts = windows.window_starts([(0, 10)], input_length=3, horizon=2, stride=2)
    assert starts.tolist() == [0, 2, 4]
    assert windows.count_windows(10, 3, 2, 2) == 3


def test_windows_never_cross_a_bound():
    bounds = [(0, 7), (7, 12), (20, 26)]
    starts = windows.window_starts(bounds, input_length=3, horizon=2)
    assert starts.tolist() == [0, 1, 2, 7, 20, 21]
    for s in starts:
        lo, hi = next(b for b in bounds if b[0] <= s < b[1])
        assert s + 3 + 2 <= hi


def test_gather_exact_values_and_columns():
    values = np.arange(30, dtype=np.float32).reshape(10, 3)  # row r = [3r, 3r+1, 3r+2]
    x, y = windows.gather(values, np.array([0, 4]), input_length=3, horizon=2, input_columns=[0, 2], target_columns=[1])
    assert x.shape == (2, 3, 2) and y.shape == (2, 2, 1)
    assert x[0].tolist() == [[0, 2], [3, 5], [6, 8]]
    assert x[1, :, 0].tolist() == [12, 15, 18]
    assert y[:, :, 0].tolist() == [[10, 13], [22, 25]]


def test_gather_copies_only_the_batch():
    values = np.zeros((100_000, 4), dtype=np.float32)
    x, y = windows.gather(values, np.arange(5), 10, 1, [0, 1, 2, 3], [0])
    assert x.nbytes == 5 * 10 * 4 * 4
    assert not np.shares_memory(x, values)


def test_empty_and_invalid():
    assert windows.window_starts([(0, 4)], 3, 2).size == 0
    with pytest.raises(ValueError, match="Received: input_length=0"):
        windows.window_starts([(0, 4)], 0, 1)


def test_helper_rows():
    assert windows.last_input_rows(np.array([0, 5]), 3).tolist() == [2, 7]
    assert windows.target_rows(np.array([0]), 3, 2).tolist() == [[3, 4]]

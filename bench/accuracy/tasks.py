"""Splits, windows, naive forecasts and MAE of the accuracy benchmark: plain numpy, no Keras, no data packages.

The split and window arithmetic repeats rnnforecast's on purpose (series.split_rows and
windows.window_starts): the benchmark must not trust the code it measures, and run.py checks
that both give the same persistence MAE on the same test windows.

With ``n`` rows, train is rows ``[0, a)``, val ``[a, b)``, test ``[b, n)`` where
``a = round(0.7 n)`` and ``b = a + round(0.15 n)``. A window starting at row ``s`` reads
rows ``s .. s+L-1`` and forecasts rows ``s+L .. s+L+H-1``. A split owns targets: a training window
lies inside ``[0, a)``; a test window's targets lie inside ``[b, n)`` and its inputs may be the rows
before ``b``, so test starts run ``b-L, .., n-L-H`` (stride 1); the same for validation.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def split_bounds(n: int, train: float = 0.7, val: float = 0.15) -> dict[str, tuple[int, int]]:
    """Half-open row ranges of the chronological splits (same rounding as rnnforecast)."""
    a = int(round(n * train))
    b = a + int(round(n * val))
    return {"train": (0, a), "val": (a, b), "test": (b, n)}


def starts(lo: int, hi: int, input_length: int, horizon: int, lookback: bool = True) -> np.ndarray:
    """Stride-1 starts of the windows whose targets lie inside rows ``[lo, hi)``; their inputs may come from the
    rows before ``lo`` (``lookback``, validation and test) or not (training: the whole window inside)."""
    first = max(0, lo - input_length) if lookback else lo
    return np.arange(first, hi - input_length - horizon + 1, dtype=np.int64)


def windows(
    values: np.ndarray, s: np.ndarray, input_length: int, horizon: int, target: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(B, L, F)`` and targets ``(B, H)`` of the windows starting at ``s``; ``values`` is ``(N, F)``."""
    x = values[s[:, None] + np.arange(input_length)]
    y = values[s[:, None] + input_length + np.arange(horizon), target]
    return x, y


def persistence(y_raw: np.ndarray, s: np.ndarray, input_length: int, horizon: int) -> np.ndarray:
    """``(B, H)``: every step repeats the last observed value of the window."""
    return np.repeat(y_raw[s + input_length - 1][:, None], horizon, axis=1)


def seasonal_naive(y_raw: np.ndarray, s: np.ndarray, input_length: int, horizon: int, season: int) -> np.ndarray:
    """``(B, H)``: step ``h`` repeats the value ``season * ceil(h / season)`` steps before it (never before row 0)."""
    last = s + input_length - 1
    h = np.arange(1, horizon + 1)
    rows = np.maximum(last[:, None] + h - season * np.ceil(h / season).astype(np.int64), 0)
    return y_raw[rows]


def mae(pred: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(actual, float))))


def test_targets(y_raw: np.ndarray, s: np.ndarray, input_length: int, horizon: int) -> np.ndarray:
    """``(B, H)`` observed values the test windows forecast."""
    return y_raw[s[:, None] + input_length + np.arange(horizon)]

"""Windowing as pure numpy index arithmetic: no window is ever copied for a whole split.

A window that starts at row ``s`` reads inputs from rows ``s .. s+input_length-1`` and
targets from rows ``s+input_length .. s+input_length+horizon-1``. With ``input_length=3``,
``horizon=2``, ``stride=2`` over one split of rows 0..9::

    row:        0  1  2  3  4  5  6  7  8  9
    window 0:   x  x  x  y  y                    start 0: inputs [0, 3), targets [3, 5)
    window 1:         x  x  x  y  y              start 2: inputs [2, 5), targets [5, 7)
    window 2:               x  x  x  y  y        start 4: inputs [4, 7), targets [7, 9)

Window 3 would need row 10, outside the split, so there are 3 windows. Inputs and targets
of a window from :func:`window_starts` lie inside one of ``bounds`` (validation and test
windows read inputs before their split: ``SeriesData.starts``).

In the Keras/TensorFlow time-series tutorial's vocabulary, ``input_length`` is
``input_width``, ``horizon`` is ``label_width`` and the tutorial's ``shift`` equals
``horizon`` here (targets start right after the inputs). ``stride`` is
``timeseries_dataset_from_array``'s ``sequence_stride``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def window_starts(bounds: Sequence[tuple[int, int]], input_length: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Start rows of every window that fits inside one of ``bounds`` (half-open row ranges).

    Args:
        bounds: ``[(lo, hi), ...]`` row ranges, one per series, of one split.
        input_length: steps of history per window (>= 1).
        horizon: steps forecast per window (>= 1).
        stride: steps between consecutive window starts (>= 1).

    Returns:
        int64 array of start rows, in order of ``bounds`` then time.
    """
    if input_length < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"input_length, horizon and stride must be >= 1. Received: "
            f"input_length={input_length}, horizon={horizon}, stride={stride}"
        )
    span = input_length + horizon
    parts = [np.arange(lo, hi - span + 1, stride, dtype=np.int64) for lo, hi in bounds if hi - lo >= span]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def count_windows(n_rows: int, input_length: int, horizon: int, stride: int = 1) -> int:
    """Number of windows in a run of ``n_rows`` consecutive rows."""
    free = n_rows - input_length - horizon
    return 0 if free < 0 else free // stride + 1


def gather(
    values: np.ndarray,
    starts: np.ndarray,
    input_length: int,
    horizon: int,
    input_columns: Sequence[int] | slice = slice(None),
    target_columns: Sequence[int] | slice = slice(None),
) -> tuple[np.ndarray, np.ndarray]:
    """Windows for ``starts`` only (one batch), by fancy indexing into ``values``.

    Args:
        values: ``(n_rows, n_columns)`` array, the one scaled series.
        starts: ``(B,)`` start rows from :func:`window_starts`.

    Returns:
        ``x`` of shape ``(B, input_length, n_inputs)`` and ``y`` of shape
        ``(B, horizon, n_targets)``: fresh arrays the size of one batch.
    """
    y_rows = target_rows(starts, input_length, horizon)  # (B, H)
    return gather_inputs(values, starts, input_length, input_columns), _take(values, y_rows, target_columns)


def gather_inputs(
    values: np.ndarray, starts: np.ndarray, input_length: int, columns: Sequence[int] | slice = slice(None)
) -> np.ndarray:
    """Inputs ``(B, input_length, n_columns)`` of the windows at ``starts``; their targets may lie past the data."""
    return _take(values, input_rows(starts, input_length), columns)


def _take(values: np.ndarray, rows: np.ndarray, columns: Sequence[int] | slice) -> np.ndarray:
    # Only the batch is copied, never the series. When every column is wanted in order (inputs
    # default to all numeric columns), np.take copies whole rows: about 15x faster than a fancy
    # index over rows and columns (13 vs 230 us for 32 windows of 168 x 16, docs/benchmarks.md).
    if isinstance(columns, slice):
        if columns == slice(None):
            return np.take(values, rows, axis=0)
        return values[rows][..., columns]
    columns = np.asarray(columns, dtype=np.int64)
    if len(columns) == values.shape[1] and np.array_equal(columns, np.arange(values.shape[1])):
        return np.take(values, rows, axis=0)
    return values[rows[..., None], columns]


def last_input_rows(starts: np.ndarray, input_length: int) -> np.ndarray:
    """Row of the last observed step of each window (the persistence anchor)."""
    return np.asarray(starts, dtype=np.int64) + input_length - 1


def target_rows(starts: np.ndarray, input_length: int, horizon: int) -> np.ndarray:
    """``(B, horizon)`` rows whose values each window forecasts."""
    return np.asarray(starts, dtype=np.int64)[:, None] + input_length + np.arange(horizon)


def input_rows(starts: np.ndarray, input_length: int) -> np.ndarray:
    """``(B, input_length)`` rows each window reads as its history."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(input_length)


def seasonal_rows(
    starts: np.ndarray, input_length: int, horizon: int, season: int, series_lo: np.ndarray
) -> np.ndarray:
    """``(B, horizon)`` rows a seasonal-naive forecast copies: each target row moved back by whole seasons.

    Step ``h`` (1-based) of the window whose last input row is ``t`` copies row ``t + h - m*ceil(h/m)``
    for season ``m``: the same phase in the last season observed. ``series_lo`` ``(B,)`` is the first
    row of each window's series; the lookback never goes before it.
    """
    h = np.arange(1, horizon + 1)
    back = season * np.ceil(h / season).astype(np.int64)  # (H,)
    rows = target_rows(starts, input_length, horizon) - back  # (B, H)
    return np.maximum(rows, np.asarray(series_lo, dtype=np.int64)[:, None])


def steps_before_forecast(input_length: int) -> np.ndarray:
    """Each input step counted back from the forecast: row ``s`` of a window is ``-input_length``, the last ``-1``."""
    return np.arange(-input_length, 0)


def forecast_start(hi: int, input_length: int) -> int:
    """Start row of the window whose history ends at the last row ``hi - 1`` (the window a forecast uses)."""
    return hi - input_length


def history_rows(lo: int, hi: int, n_steps: int) -> np.ndarray:
    """The last ``n_steps`` rows of the run ``lo .. hi-1`` (fewer when it is shorter): the context shown in plots."""
    return np.arange(max(lo, hi - n_steps), hi, dtype=np.int64)


def target_times(last_time, horizon: int, frequency) -> pd.DatetimeIndex:
    """Timestamps of the ``horizon`` steps after ``last_time`` on the ``frequency`` calendar: the first is the
    next calendar point after it (a Saturday's next business day is Monday, a 15 January's next month end the
    31st), even when ``last_time`` itself is off the calendar."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    return pd.date_range(pd.Timestamp(last_time) + offset, periods=horizon, freq=offset)


def target_times_iso(last_times: np.ndarray, horizon: int, frequency) -> list[str]:
    """``iso_times(target_times_of(last_times, horizon, frequency))`` for naive datetime64 ``last_times`` (a
    frame's time values), on numpy alone when the step has one length (no DatetimeIndex: the server's fast path)."""
    last = np.asarray(last_times)
    if last.dtype == np.dtype("datetime64[ns]") and len(last):
        ticks = _fixed_ticks(last.view(np.int64), horizon, pd.tseries.frequencies.to_offset(frequency))
        if ticks is not None:
            return iso_times(ticks.ravel().view("datetime64[ns]"))
    return iso_times(target_times_of(pd.DatetimeIndex(last), horizon, frequency))


def _fixed_ticks(nanos: np.ndarray, horizon: int, offset) -> np.ndarray | None:
    """``(S, horizon)`` int64 nanoseconds of the steps after each of ``nanos`` (naive times, at least one) when
    every step of ``offset`` has one length and none passes 2262; else None (the offset steps each series)."""
    if not isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)):
        return None
    step = pd.Timedelta(offset).value if isinstance(offset, pd.offsets.Tick) else offset.n * 86_400 * 10**9
    if nanos.max() > pd.Timestamp.max.value - step * horizon:  # date_range says what overflows
        return None
    return nanos[:, None] + step * np.arange(1, horizon + 1)


def iso_times(times) -> list[str]:
    """``[t.isoformat() for t in times]`` of datetime64 values or a naive DatetimeIndex, without a Timestamp each
    when every time is a whole second (numpy's ISO text: the same characters)."""
    if getattr(times, "tz", None) is None:
        ns = np.asarray(times, dtype="datetime64[ns]")
        if (ns.view(np.int64) % 10**9 == 0).all():  # NaT is no whole second
            return np.datetime_as_string(ns, unit="s").tolist()
    return [pd.Timestamp(t).isoformat() for t in times]


def target_times_of(last_times: pd.DatetimeIndex, horizon: int, frequency) -> pd.DatetimeIndex:
    """:func:`target_times` of each of ``last_times``, flat ``(S * horizon,)``: series-major. A step of one
    length (h, min, D on naive times) is added as nanoseconds, once for all series; other calendars (months,
    business days) step each series by the offset."""
    offset = pd.tseries.frequencies.to_offset(frequency)
    last = pd.DatetimeIndex(last_times)
    unit = last.unit  # date_range keeps its start's resolution
    fixed = isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)) and last.tz is None and len(last)
    ticks = _fixed_ticks(last.as_unit("ns").asi8, horizon, offset) if fixed else None
    if ticks is not None:
        return pd.DatetimeIndex(ticks.ravel().view("datetime64[ns]")).as_unit(unit)
    if not len(last):
        return pd.DatetimeIndex([], dtype=f"datetime64[{unit}]")
    parts = [target_times(t, horizon, offset).as_unit("ns").asi8 for t in last]
    return pd.DatetimeIndex(np.concatenate(parts).view("datetime64[ns]")).as_unit(unit)

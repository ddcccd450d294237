"""Every window's forecast as one long table: the rows a user scores with their own tools.

One row per window, lead and target::

    [fold,] [series,] target, origin_time, target_time, lead, actual, filled, forecast, [p2.5, p10, p50, p90, p97.5]

``filled`` is True where the actual value was invented by gap filling (interpolated): such rows are not scored.

``origin_time`` is the time of the window's last input row (the moment the forecast is made);
lead ``h`` forecasts the row ``h`` steps later, at ``target_time``. Quantile columns are named by
``intervals.quantile_name`` (the target is the row's ``target``; wide tables such as forecast.csv
use ``intervals.quantile_column``: ``temp_max_p10``). ``evaluate --output`` and ``backtest`` write it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import windows
from .intervals import quantile_name


def predictions_table(
    data,
    starts: np.ndarray,
    actual: np.ndarray,
    point: np.ndarray,
    quantiles: np.ndarray | None = None,
    qs: np.ndarray | None = None,
    fold: int | None = None,
) -> pd.DataFrame:
    """The long table of ``starts``' forecasts.

    Args:
        data: the ``series.SeriesData`` the windows index into.
        starts: ``(B,)`` window starts; actual: ``(B, H, T)``; point: ``(B, H, T)`` or ``(B, H, T, 1)``,
            original units.
        quantiles: ``(B, H, T, Q)`` forecast quantiles at levels ``qs`` ``(Q,)``, or None.
        fold: a backtest fold number, written as the first column when given.
    """
    starts = np.asarray(starts, dtype=np.int64)
    b, h, n_t = actual.shape
    point = point[..., 0] if point.ndim == 4 else point
    rows = windows.target_rows(starts, data.input_length, h)  # (B, H)
    times = data.frame.df[data.frame.time_column].to_numpy()
    origin = times[windows.last_input_rows(starts, data.input_length)]  # (B,)
    # Order: window, target, lead -> (B, T, H) flattened.
    shape = (b, n_t, h)
    cols: dict[str, np.ndarray] = {}
    if fold is not None:
        cols["fold"] = np.full(b * n_t * h, fold)
    if len(data.segments) > 1:
        cols["series"] = np.broadcast_to(data.series_of(starts)[:, None, None], shape).ravel()
    cols["target"] = np.broadcast_to(np.asarray(data.targets, dtype=object)[None, :, None], shape).ravel()
    cols["origin_time"] = np.broadcast_to(origin[:, None, None], shape).ravel()
    cols["target_time"] = np.broadcast_to(times[rows][:, None, :], shape).ravel()
    cols["lead"] = np.broadcast_to(np.arange(1, h + 1)[None, None, :], shape).ravel()
    cols["actual"] = actual.transpose(0, 2, 1).ravel()
    cols["filled"] = data.filled(starts)[:, :h].transpose(0, 2, 1).ravel()  # actual invented by gap filling: not scored
    cols["forecast"] = point.transpose(0, 2, 1).ravel()
    if quantiles is not None:
        for k, q in enumerate(qs):
            cols[quantile_name(q)] = quantiles[..., k].transpose(0, 2, 1).ravel()
    return pd.DataFrame(cols)

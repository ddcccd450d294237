"""Series too short for the model: set apart with a warning, forecast by the better naive baseline.

In a long file, a series whose splits cannot hold one window each (a training split shorter than
``input_length + horizon``, a validation or test split shorter than ``horizon``, as ``series.build`` checks)
does not stop the file: :func:`set_apart` takes its rows out of the frame the model trains on (into
``Frame.short``) and says so. The run forecasts it with persistence or seasonal naive, whichever scored the
lower MAE on the test split of the other series (:func:`best_baseline`); forecast.csv and ``predict`` mark
those rows (``forecast_by``), metrics.json lists them (``short_series``). When every series is too short the
file is refused with one error.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from . import windows
from .config import Config
from .data import SERIES, Frame
from .errors import DataError

CANDIDATES = ("persistence", "seasonal_naive")


def _too_short(g: pd.DataFrame, frame: Frame, cfg: Config) -> bool:
    from .series import split_rows

    b = split_rows(len(g), 0, cfg, g[frame.time_column], str(frame.path))
    skip = 1 if cfg.data.differenced else 0  # row 0 has no predecessor
    L, H = cfg.window.input_length, cfg.window.horizon
    return b["train"][1] - b["train"][0] - skip < L + H or any(b[k][1] - b[k][0] < H for k in ("val", "test"))


def set_apart(frame: Frame, cfg: Config) -> Frame:
    """``frame`` without the series too short for one window per split (their rows in ``Frame.short``).

    A file of one series is returned as it is (``series.build`` explains what is short); a file of several in
    which every series is too short raises one DataError.
    """
    if not cfg.data.series_id or frame.df[SERIES].nunique() < 2:
        return frame
    short = [sid for sid, g in frame.df.groupby(SERIES, sort=False) if _too_short(g, frame, cfg)]
    if not short:
        return frame
    if len(short) == frame.df[SERIES].nunique():
        raise _all_short(frame, cfg)
    return _without(frame, short, _warning(frame, cfg, short))


def set_apart_named(frame: Frame, names: list[str]) -> Frame:
    """``frame`` without the series ``names`` (a run's short series, when it forecasts)."""
    short = [s for s in frame.df[SERIES].unique() if s in set(names)]
    return _without(frame, short, None) if short else frame


def _without(frame: Frame, short: list[str], warning: str | None) -> Frame:
    mask = frame.df[SERIES].isin(short)
    if mask.all():
        return frame  # nothing left to forecast with a model; the caller's checks speak
    keep = ~mask.to_numpy()
    return dataclasses.replace(
        frame,
        df=frame.df[~mask].reset_index(drop=True),
        filled=None if frame.filled is None else frame.filled[keep],  # row for row with df (scored actuals)
        series=[s for s in frame.series if s not in short],
        short=frame.df[mask].reset_index(drop=True),
        warnings=frame.warnings + ([warning] if warning else []),
    )


def _all_short(frame: Frame, cfg: Config) -> DataError:
    L, H = cfg.window.input_length, cfg.window.horizon
    n = frame.df[SERIES].nunique()
    longest = int(frame.df.groupby(SERIES).size().max())
    return DataError(
        f"every one of the {n} series is too short for one window per split (the longest has {longest} rows; "
        f"the training split needs input_length + horizon = {L + H} rows, validation and test {H} each)",
        where=f"{frame.path}: data.split",
        fix="use longer series, a shorter window.input_length or window.horizon, or other split fractions",
    )


def _warning(frame: Frame, cfg: Config, short: list[str]) -> str:
    L, H = cfg.window.input_length, cfg.window.horizon
    n = frame.df[SERIES].nunique()
    shown = ", ".join(map(repr, short[:20])) + (f" and {len(short) - 20} more" if len(short) > 20 else "")
    return (
        f"warning: {len(short)} of {n} series are too short for one window per split (training split < "
        f"input_length + horizon = {L + H} rows, or validation/test < {H}); the model does not train on them and "
        f"they are forecast by the better naive baseline: {shown}. Fix: longer series or a shorter window"
    )


def best_baseline(test_metrics: dict) -> str:
    """Persistence or seasonal naive: the lower overall MAE on the test split of the series the model had."""
    overall = test_metrics["original"]["overall"]
    return min(CANDIDATES, key=lambda k: (overall[k]["mae"], CANDIDATES.index(k)))


def record(frame: Frame, baseline: str | None) -> dict | None:
    """metrics.json's ``short_series``: how many, which, their rows and the baseline that forecasts them."""
    if frame.short is None or baseline is None:
        return None
    sizes = frame.short.groupby(SERIES, sort=False).size()
    return {
        "count": len(sizes),
        "series": [str(s) for s in sizes.index],
        "rows": {str(k): int(v) for k, v in sizes.items()},
        "forecast_by": baseline,
    }


def forecast_rows(frame: Frame, baseline: str, horizon: int, season: int, frequency: str) -> pd.DataFrame:
    """The baseline's forecast of every short series: the rows forecast.csv has for a series, marked."""
    rows = []
    for sid, g in frame.short.groupby(SERIES, sort=False):
        y = g[frame.targets].to_numpy(dtype=np.float64)  # (n, T)
        n = len(y)
        if baseline == "seasonal_naive":  # step h repeats the last observed value of its phase
            idx = windows.seasonal_rows(np.array([n - 1]), 1, horizon, season, np.array([0]))[0]
        else:
            idx = np.full(horizon, n - 1)
        times = windows.target_times(g[frame.time_column].iloc[-1], horizon, frequency)
        for h in range(horizon):
            rows.append(
                {"timestamp": times[h], "series": sid, "step": h + 1, "quantile": "mean"}
                | {t: y[idx[h], j] for j, t in enumerate(frame.targets)}
                | {"forecast_by": baseline}
            )
    return pd.DataFrame(rows)


def add_forecasts(table: pd.DataFrame, frame: Frame, baseline: str | None, horizon: int, season: int, freq: str):
    """``table`` (the model's forecast) with the short series' baseline rows appended and a ``forecast_by`` column."""
    if frame.short is None or baseline is None:
        return table
    return pd.concat(
        [table.assign(forecast_by="model"), forecast_rows(frame, baseline, horizon, season, freq)], ignore_index=True
    )

"""Baselines and error metrics on identical windows, in original and normalised units.

One definition of MASE across the project: model MAE / persistence MAE on the same windows,
on original values. Skill = 1 - MSE_model / MSE_persistence.
"""

from __future__ import annotations

import numpy as np

from . import windows
from .fsio import finite_or_none

BASELINES = ("persistence", "seasonal_naive", "window_mean")


def baseline_forecasts(
    raw_targets: np.ndarray, starts: np.ndarray, input_length: int, horizon: int, season: int, series_lo: np.ndarray
) -> dict[str, np.ndarray]:
    """Naive forecasts ``(B, H, T, 1)`` from observed values only.

    Args:
        raw_targets: ``(N, T)`` targets in original units.
        starts: ``(B,)`` window starts.
        season: season length ``m`` for seasonal naive: step ``h`` repeats row ``t + h - m*ceil(h/m)``.
        series_lo: ``(B,)`` first row of each window's series (seasonal lookback never crosses it).
    """
    last = windows.last_input_rows(starts, input_length)  # (B,)
    persistence = np.repeat(raw_targets[last][:, None, :], horizon, axis=1)  # (B, H, T)
    seasonal = raw_targets[windows.seasonal_rows(starts, input_length, horizon, season, series_lo)]  # (B, H, T)
    history = windows.gather_inputs(raw_targets, starts, input_length)  # (B, L, T)
    mean = np.repeat(history.mean(axis=1)[:, None, :], horizon, axis=1)
    return {k: v[..., None] for k, v in zip(BASELINES, (persistence, seasonal, mean))}


def _scores(err: np.ndarray, actual: np.ndarray, pred: np.ndarray, axis, pct_kind: str) -> dict:
    mse = np.mean(err**2, axis=axis)
    mae = np.mean(np.abs(err), axis=axis)
    out = {"mse": mse, "rmse": np.sqrt(mse), "mae": mae}
    with np.errstate(divide="ignore", invalid="ignore"):
        if pct_kind == "mape":
            out["mape"] = 100 * np.mean(np.abs(err) / np.abs(actual), axis=axis)
        else:
            denom = np.abs(actual) + np.abs(pred)
            ratio = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
            out["smape"] = 100 * np.mean(ratio, axis=axis)
    return out


def evaluate_forecasts(
    actual: np.ndarray, forecasts: dict[str, np.ndarray], targets: list[str], norm_scale: np.ndarray
) -> dict:
    """Metrics for every forecaster against ``actual``.

    Args:
        actual: ``(B, H, T)`` observed values, original units.
        forecasts: name -> ``(B, H, T, Q)``; must include ``persistence``. Point metrics use quantile 0.
        norm_scale: ``(T,)`` training-split std of each target; normalised metrics divide by it.

    Returns:
        ``{"original": {...}, "normalised": {...}}`` each with ``overall``, ``per_target`` and
        ``per_lead`` sections, every value a float or list of floats.
    """
    out = {}
    for units, scale in (("original", np.ones(len(targets))), ("normalised", np.asarray(norm_scale, float))):
        a = actual / scale
        pct_kind = {t: ("mape" if np.all(a[..., j] * scale[j] > 0) else "smape") for j, t in enumerate(targets)}
        overall_kind = "mape" if all(k == "mape" for k in pct_kind.values()) else "smape"
        section: dict = {"overall": {}, "per_target": {t: {} for t in targets}, "per_lead": {}}
        for name, f in forecasts.items():
            p = f[..., 0] / scale  # (B, H, T)
            err = p - a
            section["overall"][name] = _scores(err, a, p, None, overall_kind)
            for j, t in enumerate(targets):
                section["per_target"][t][name] = _scores(err[..., j], a[..., j], p[..., j], None, pct_kind[t])
            section["per_lead"][name] = _scores(err, a, p, (0, 2), overall_kind)
        _relative(section["overall"])
        for t in targets:
            _relative(section["per_target"][t])
        _relative(section["per_lead"])
        out[units] = _plain(section)
    return out


def _relative(block: dict) -> None:
    """Add MASE and skill (both versus persistence) to every forecaster in a block."""
    ref = block["persistence"]
    for scores in block.values():
        with np.errstate(divide="ignore", invalid="ignore"):
            scores["mase"] = np.where(ref["mae"] > 0, scores["mae"] / np.where(ref["mae"] > 0, ref["mae"], 1), np.nan)
            scores["skill"] = np.where(
                ref["mse"] > 0, 1 - scores["mse"] / np.where(ref["mse"] > 0, ref["mse"], 1), np.nan
            )


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_num(v) for v in x.tolist()] if x.ndim else _num(float(x))
    if isinstance(x, (np.floating, float)):
        return _num(float(x))
    return x


_num = finite_or_none  # NaN and infinity become null in metrics.json

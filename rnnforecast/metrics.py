"""Baselines and error metrics on identical windows, in original and normalised units.

One definition of MASE across the project: model MAE / persistence MAE on the same windows,
on original values. Skill = 1 - MSE_model / MSE_persistence.
"""

from __future__ import annotations

import warnings

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


ZERO = 1e-6  # |actual| + |forecast| below this share of a target's largest |actual|: a 0/0 sMAPE term


def _scores(err: np.ndarray, actual: np.ndarray, pred: np.ndarray, axis, pct_kind: str, tol=0.0) -> dict:
    """Scores of errors ``err``; NaN errors (values not observed) are left out of every mean. ``tol``: below it
    ``|actual| + |forecast|`` is zero for sMAPE (a 0/0 term: 0), so float32 noise around an actual 0 (2e-7 for
    0) does not score 200 %."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a lead or target with nothing observed: NaN, said as null
        mse = np.nanmean(err**2, axis=axis)
        mae = np.nanmean(np.abs(err), axis=axis)
        out = {"mse": mse, "rmse": np.sqrt(mse), "mae": mae}
        if pct_kind == "mape":
            out["mape"] = 100 * np.nanmean(np.abs(err) / np.abs(actual), axis=axis)
        else:
            denom = np.abs(actual) + np.abs(pred)
            ratio = np.where(denom > tol, 2 * np.abs(err) / np.where(denom > tol, denom, 1), 0.0)
            out["smape"] = 100 * np.nanmean(np.where(np.isnan(err), np.nan, ratio), axis=axis)
    return out


def evaluate_forecasts(
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    targets: list[str],
    norm_scale: np.ndarray,
    scored: np.ndarray | None = None,
) -> dict:
    """Metrics for every forecaster against ``actual``.

    Args:
        actual: ``(B, H, T)`` observed values, original units.
        forecasts: name -> ``(B, H, T, Q)``; must include ``persistence``. Point metrics use quantile 0.
        norm_scale: ``(T,)`` training-split std of each target; normalised metrics divide by it.
        scored: ``(B, H, T)`` False where ``actual`` was filled by the tool (gap rows): left out of every score.

    Returns:
        ``{"original": {...}, "normalised": {...}}`` each with ``overall``, ``per_target`` and
        ``per_lead`` sections, every value a float or list of floats.
    """
    out = {}
    for units, scale in (("original", np.ones(len(targets))), ("normalised", np.asarray(norm_scale, float))):
        out[units] = _plain(_section(actual / scale, forecasts, targets, scale, scored))
    return out


def _section(a: np.ndarray, forecasts: dict, targets: list[str], scale: np.ndarray, scored) -> dict:
    """One units block of :func:`evaluate_forecasts`: ``a`` the ``(B, H, T)`` actual values divided by ``scale``.

    A target's percentage error is MAPE when every actual value is positive, else sMAPE; overall, MAPE only when
    every target's is."""
    pct_kind = {t: ("mape" if np.all(a[..., j] * scale[j] > 0) else "smape") for j, t in enumerate(targets)}
    overall_kind = "mape" if all(k == "mape" for k in pct_kind.values()) else "smape"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a target with nothing observed
        tol = ZERO * np.nan_to_num(np.nanmax(np.abs(a), axis=(0, 1)))  # (T,): float32's noise at each target's size
    section: dict = {"overall": {}, "per_target": {t: {} for t in targets}, "per_lead": {}}
    for name, f in forecasts.items():
        p = f[..., 0] / scale  # (B, H, T)
        err = p - a if scored is None else np.where(scored, p - a, np.nan)
        section["overall"][name] = _scores(err, a, p, None, overall_kind, tol)
        for j, t in enumerate(targets):
            section["per_target"][t][name] = _scores(err[..., j], a[..., j], p[..., j], None, pct_kind[t], tol[j])
        section["per_lead"][name] = _scores(err, a, p, (0, 2), overall_kind, tol)
    for block in (section["overall"], *section["per_target"].values(), section["per_lead"]):
        _relative(block)
    return section


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


def verdict(
    maes: dict, split: str = "test", who: str = "the model", more: str | None = "see backtest for more evidence"
) -> list[str]:
    """The model against its best baseline, by MAE in original units: one ``verdict:`` line, and a warning
    when it loses to (or ties) any baseline. Every scoring command prints these two, from this rule.

    Args:
        maes: forecaster -> MAE (original units, None when unknown); ``"model"`` and the baselines present
            (``BASELINES`` names; others are ignored).
        who: how the lines name the model ("the model", "gru (best cell)").
        more: where more evidence is, in the warning's parentheses (None: nowhere to point, a backtest's own).

    Percentages are relative to the best baseline's MAE: beating 1.00 with 0.80 is "20.0 % lower".
    """
    mine = maes.get("model")
    base = {k: v for k, v in maes.items() if k in BASELINES and v is not None}
    if mine is None or not base:
        return [f"verdict: no MAE to compare on the {split} split"]
    best = min(base, key=base.get)
    how, by = _against(mine, base[best])
    lines = [f"verdict: on the {split} split {who} {how} the best baseline, {best} (MAE {_g(base[best])}){by}"]
    losses = [k for k in sorted(base, key=base.get) if mine >= base[k] or _tied(mine, base[k])]
    if losses:
        names = ", ".join(f"{k} (MAE {_g(base[k])})" for k in losses)
        lines.append(
            f"warning: {who} (MAE {_g(mine)}) does no better than {names} on the {split} split: "
            "a naive forecast is at least as good here" + (f" ({more})" if more else "")
        )
    return lines


TIE = 1e-6  # relative: MAEs closer than this are one number (a model that kept its baseline differs in float32 noise)


def _tied(a: float, b: float) -> bool:
    return abs(a - b) <= TIE * max(abs(a), abs(b))


def _against(mine: float, b: float) -> tuple[str, str]:
    """How MAE ``mine`` compares with the best baseline's ``b``: ("beats", ": MAE 0.8 is 20.0 % lower"); within
    ``TIE`` of it, "ties with" (2.9458263 against 2.9458264 is no win)."""
    if _tied(mine, b):
        return "ties with", ""
    rel = 100 * abs(mine - b) / b if b > 0 else float("inf")
    how = "beats" if mine < b else "loses to"
    pct = f"{rel:.1f}" if rel >= 0.1 else f"{rel:.1g}"  # a 0.01 % win does not read "0.0 % lower"
    return how, f": MAE {_g(mine)} is {pct} % {'lower' if mine < b else 'higher'}"


def overall_maes(section: dict) -> dict:
    """forecaster -> MAE from a metrics ``original.overall`` section."""
    return {k: v.get("mae") for k, v in section.items()}


def _g(v: float) -> str:
    return f"{v:.4g}"


THIN_WINDOWS = 30  # fewer test windows than this: a metric's noise is of the order of its differences


def evidence_warnings(n_windows: int, split_rows: int, season: int, filled: int, split: str = "test") -> list[str]:
    """Warnings when the numbers rest on thin evidence (few windows, a split shorter than one season), and a note
    on actual values the tool invented by gap filling (left out of every score)."""
    out = []
    thin = []
    if n_windows < THIN_WINDOWS:
        thin.append(f"{n_windows} windows (fewer than {THIN_WINDOWS})")
    if season > 1 and split_rows < season:
        thin.append(f"{split_rows} rows, shorter than one season ({season} steps)")
    if thin:
        out.append(
            f"warning: thin evidence on the {split} split: {' and '.join(thin)}; the scores may not hold on other "
            "periods. Fix: rnnforecast backtest CONFIG scores several periods (folds)."
        )
    if filled:
        out.append(
            f"note: {filled} {split} actual value(s) were invented by gap filling (interpolated rows or cells); "
            "they are left out of every score (column `filled` in evaluate --output)."
        )
    return out


def naive_maes(series: list[np.ndarray], horizon: int, season: int) -> dict[str, float]:
    """MAE of persistence and seasonal naive over leads 1..``horizon``, pooled over ``series`` (arrays of (N,) or
    (N, T) rows; missing values skipped; seasonal naive only when ``season`` >= 2). Seasonal naive copies the
    value ``season * ceil(h / season)`` steps back, as :func:`seasonal_naive` does. How ``init`` and
    ``model.residual: auto`` pick the baseline a residual model starts from."""
    errors: dict[str, list[np.ndarray]] = {"persistence": [], "seasonal_naive": []}
    for y in series:
        y = np.asarray(y, dtype=float)
        for h in range(1, horizon + 1):
            for name, lag in (("persistence", h), ("seasonal_naive", season * -(-h // season))):
                if (season >= 2 or name == "persistence") and lag < len(y):
                    errors[name].append(np.abs(y[lag:] - y[:-lag]).ravel())
    out = {}
    for name, parts in errors.items():
        e = np.concatenate(parts) if parts else np.array([])
        e = e[~np.isnan(e)]
        if len(e):
            out[name] = float(e.mean())
    return out


# a seasonal residual when seasonal naive's MAE is at most this share of persistence's. Measured
# (docs/accuracy.md): a seasonal residual won at 0.04-0.14 (seattle_temps, sf_temps, taylor by the week) and at 0.54
# (taylor by the day, what init finds: MAE 268 against 584 without), and cost at 0.72-0.80 (ETTh1, H = 96..720)
SEASONAL_SHARE = 0.6
SHARE_WORDS = f"{SEASONAL_SHARE:.0%} of persistence's"  # how init, validate and the help say the rule


def residual_choice(maes: dict[str, float]) -> str:
    """``seasonal`` when seasonal naive's MAE (of :func:`naive_maes`) is at most ``SEASONAL_SHARE`` (60 %) of
    persistence's: the season explains most of the change, and the network starts from "same time last season";
    else ``none``.

    Measured (docs/accuracy.md, "Defaults that adapt"): a seasonal residual gains most where the season dominates
    (seattle_temps, sf_temps, taylor: seasonal naive's MAE 0.04-0.14 of persistence's; taylor by the day, 0.54,
    still halves the error) and costs on ETTh1 (0.72),
    where segments of one season already let the cell compare days; a persistence residual changes little under
    window scaling, which already makes every window relative to its last value."""
    s, p = maes.get("seasonal_naive"), maes.get("persistence")
    return "seasonal" if s is not None and p is not None and s <= SEASONAL_SHARE * p else "none"

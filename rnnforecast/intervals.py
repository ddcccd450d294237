"""Prediction intervals: conformal calibration, quantile arrays, and their scores (pure numpy).

Shapes used throughout: ``N`` validation windows, ``B`` test windows, ``H`` leads (horizon),
``T`` targets, ``L`` interval levels, ``Q = 2L + 1`` quantiles. Levels are percentages
(``[80, 95]``); a level ``c`` has miscoverage ``alpha = 1 - c/100`` and bounds at quantiles
``alpha/2`` and ``1 - alpha/2``. Levels ``[80, 95]`` give the quantile axis
``[0.025, 0.1, 0.5, 0.9, 0.975]`` (widest lower bound first, the median in the middle).

Split conformal (per lead and target): the half-width for level ``c`` is the
``ceil((n+1)(1-alpha))``-th smallest absolute validation residual of that lead and target
(quantile level ``k/n`` with ``k = ceil((n+1)(1-alpha))``: numpy's ``inverted_cdf`` method; numpy's
``higher`` at ``k/n`` interpolates at position ``(n-1)k/n`` and returns the ``(k+1)``-th smallest,
one rank wider than the guarantee needs). When that rank exceeds
``n`` no finite band has the guarantee: the half-width is ``inf`` and :class:`Calibration`
says so, rather than a silently narrow band.

Joint (path) intervals: Bonferroni across leads (Stankeviciute, Alaa & van der Schaar 2021):
each lead is calibrated at ``alpha / H`` so that all ``H`` leads of a window lie in their
bands together with probability at least ``1 - alpha``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .fsio import finite_or_none

COVERAGE_TOLERANCE = 5.0  # percentage points between test coverage and nominal before a warning
DRIFT_BOUND = 1.5  # test / validation mean absolute residual beyond which train says the periods differ


# --------------------------------------------------------------------------- quantile axis, names


def check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Levels as sorted unique floats strictly between 0 and 100."""
    out = tuple(sorted({float(c) for c in levels}))
    if not out or any(not 0 < c < 100 for c in out):
        raise ValueError(f"interval levels must be percentages strictly between 0 and 100. Received: levels={levels}")
    return out


def quantile_levels(levels: Sequence[float]) -> np.ndarray:
    """The ordered quantile axis ``(Q,)`` for interval levels, e.g. ``[80, 95] -> [.025, .1, .5, .9, .975]``."""
    alphas = [1 - c / 100 for c in check_levels(levels)]
    lower = sorted(a / 2 for a in alphas)
    return np.array([*lower, 0.5, *(1 - a for a in reversed(lower))])


def quantile_name(q: float) -> str:
    """Suffix for quantile ``q``: ``0.1 -> p10``, ``0.025 -> p2.5``, ``0.5 -> p50``."""
    pct = round(100 * float(q), 6)
    return f"p{pct:g}"


def quantile_column(target: str, q: float) -> str:
    """The one column name for a target's quantile everywhere (CSV, plots, metrics): ``temp_max_p10``."""
    return f"{target}_{quantile_name(q)}"


def bound_indices(levels: Sequence[float]) -> list[tuple[int, int]]:
    """``(lower, upper)`` positions on the quantile axis for each level, in the order of ``check_levels``."""
    levels = check_levels(levels)
    n = len(levels)
    # Quantile axis: lower bounds widest (largest level) first, median at n, uppers mirrored.
    return [(n - 1 - i, n + 1 + i) for i in range(n)]


def median_index(levels: Sequence[float]) -> int:
    return len(check_levels(levels))


# --------------------------------------------------------------------------- conformal calibration


def conformal_rank(n: int, alpha: float) -> int:
    """``ceil((n+1)(1-alpha))``: the rank (1-based) of the calibration score that bounds the band."""
    return math.ceil((n + 1) * (1 - alpha) - 1e-9)  # the epsilon keeps 0.9 * 10 from becoming 9.000000001


def conformal_quantile(scores: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Finite-sample conformal quantile of ``scores`` along axis 0.

    Args:
        scores: ``(n, ...)`` nonconformity scores (absolute residuals, CQR scores).
        alpha: miscoverage in (0, 1), a float or an array broadcasting to ``scores.shape[1:]``.

    Returns:
        ``scores.shape[1:]`` array: the ``k = ceil((n+1)(1-alpha))``-th smallest score, i.e. numpy's
        ``quantile(..., k/n, method="inverted_cdf")``; ``inf`` where ``k`` exceeds ``n``.
    """
    scores = np.asarray(scores, dtype=float)
    n = scores.shape[0]
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), scores.shape[1:])
    if n == 0:
        return np.full(scores.shape[1:], np.inf)
    ranks = np.ceil((n + 1) * (1 - alpha) - 1e-9).astype(np.int64)  # (...)
    ordered = np.sort(scores, axis=0)
    idx = np.clip(ranks, 1, n) - 1
    out = np.take_along_axis(ordered, idx[None], axis=0)[0]
    return np.where(ranks > n, np.inf, out)


def min_calibration_windows(alpha: float) -> int:
    """Smallest ``n`` with a finite conformal band at miscoverage ``alpha``: ``ceil(1/alpha) - 1``."""
    return math.ceil(1 / alpha - 1e-9) - 1


@dataclass(frozen=True)
class Calibration:
    """Half-widths (or CQR corrections) per level, lead and target, from ``n`` validation windows.

    Attributes:
        levels: interval levels in percent, sorted.
        width: ``(L, H, T)`` half-width for conformal bands, additive correction for CQR;
            ``inf`` where ``n`` is too small for the level (see ``unbounded``).
        n: number of calibration windows.
        joint: True when leads were calibrated at ``alpha / H`` (Bonferroni path intervals).
        method: ``conformal`` or ``cqr``.
    """

    levels: tuple[float, ...]
    width: np.ndarray
    n: int
    joint: bool = False
    method: str = "conformal"

    @property
    def unbounded(self) -> np.ndarray:
        """``(L, H, T)`` True where no finite band holds the level with ``n`` windows."""
        return ~np.isfinite(self.width)

    def warnings(self) -> list[str]:
        """One line per level whose band is infinite because there are too few validation windows."""
        out = []
        h = self.width.shape[1]
        for i, c in enumerate(self.levels):
            if self.unbounded[i].any():
                alpha = (1 - c / 100) / (h if self.joint else 1)
                need = min_calibration_windows(alpha)
                out.append(
                    f"{c:g}% {'joint ' if self.joint else ''}interval is unbounded: {self.n} validation windows, "
                    f"at least {need} needed. Fix: enlarge the validation split or lower the level."
                )
        return out

    def to_dict(self) -> dict:
        """Plain JSON-able form (``inf`` written as ``None``)."""
        w = np.where(np.isfinite(self.width), self.width, np.nan)
        return {
            "levels": list(self.levels),
            "width": [[[None if v != v else float(v) for v in row] for row in lead] for lead in w.tolist()],
            "n": int(self.n),
            "joint": bool(self.joint),
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        w = np.array([[[np.inf if v is None else v for v in row] for row in lead] for lead in d["width"]], dtype=float)
        return cls(tuple(float(c) for c in d["levels"]), w, int(d["n"]), bool(d["joint"]), d.get("method", "conformal"))


def _alphas(levels: tuple[float, ...], horizon: int, joint: bool) -> list[float]:
    return [(1 - c / 100) / (horizon if joint else 1) for c in levels]


def calibrate(residuals: np.ndarray, levels: Sequence[float], joint: bool = False) -> Calibration:
    """Split-conformal half-widths from validation residuals.

    Args:
        residuals: ``(N, H, T)`` actual - forecast on the validation windows, original units.
        levels: interval levels in percent, e.g. ``[80, 95]``.
        joint: calibrate each lead at ``alpha / H`` so the whole path is covered (Bonferroni).

    Returns:
        :class:`Calibration` with ``width`` of shape ``(L, H, T)``.
    """
    residuals = np.asarray(residuals, dtype=float)
    if residuals.ndim != 3:
        raise ValueError(f"residuals must have shape (N, H, T). Received: shape={residuals.shape}")
    levels = check_levels(levels)
    scores = np.abs(residuals)
    width = np.stack([conformal_quantile(scores, a) for a in _alphas(levels, residuals.shape[1], joint)])
    return Calibration(levels, width, residuals.shape[0], joint, "conformal")


def apply_bands(point: np.ndarray, width: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Symmetric bands around point forecasts as a quantile array.

    Args:
        point: ``(B, H, T)`` point forecasts (or ``(B, H, T, 1)``).
        width: ``(L, H, T)`` half-widths (``Calibration.width``) or ``(B, L, H, T)`` per window (adaptive).
        levels: the levels ``width`` belongs to.

    Returns:
        ``(B, H, T, Q)`` quantiles ordered as :func:`quantile_levels`, the point forecast as median.
    """
    point = np.asarray(point, dtype=float)
    if point.ndim == 4:
        point = point[..., 0]
    levels = check_levels(levels)
    width = np.asarray(width, dtype=float)
    if width.ndim == 3:
        width = np.broadcast_to(width[None], (point.shape[0], *width.shape))  # (B, L, H, T)
    # Wider levels must never give narrower bands (finite-sample ranks can tie): enforce nesting.
    width = np.maximum.accumulate(width, axis=1)
    out = np.empty((*point.shape, 2 * len(levels) + 1))
    m = len(levels)
    out[..., m] = point
    for i, (lo, hi) in enumerate(bound_indices(levels)):
        out[..., lo] = point - width[:, i]
        out[..., hi] = point + width[:, i]
    return out


def conformal_bands(
    val_actual: np.ndarray, val_point: np.ndarray, point: np.ndarray, levels: Sequence[float], joint: bool = False
) -> tuple[np.ndarray, Calibration]:
    """Calibrate on validation windows and band ``point``: ``(B, H, T, Q)`` quantiles and the calibration.

    The same call gives a baseline its band: pass the persistence forecasts of the same
    validation and test windows (``metrics.baseline_forecasts(...)["persistence"]``).
    """
    cal = calibrate(_squeeze(val_actual) - _squeeze(val_point), levels, joint)
    return apply_bands(point, cal.width, cal.levels), cal


def _squeeze(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return a[..., 0] if a.ndim == 4 else a


# --------------------------------------------------------------------------- conformalized quantile regression


def cqr_scores(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CQR nonconformity ``E = max(lower - y, y - upper)`` (negative inside the band), same shape as ``actual``."""
    return np.maximum(np.asarray(lower) - actual, np.asarray(actual) - upper)


def calibrate_cqr(
    val_quantiles: np.ndarray, val_actual: np.ndarray, levels: Sequence[float], joint: bool = False
) -> Calibration:
    """CQR corrections (Romano, Patterson & Candès 2019) per level, lead and target.

    Args:
        val_quantiles: ``(N, H, T, Q)`` quantile-head forecasts on validation windows.
        val_actual: ``(N, H, T)`` observed values.

    Returns:
        :class:`Calibration` (method ``cqr``) whose ``width`` is added below and above each band;
        it may be negative (the head's band was too wide).
    """
    levels = check_levels(levels)
    y = _squeeze(val_actual)
    alphas = _alphas(levels, y.shape[1], joint)
    width = np.stack(
        [
            conformal_quantile(cqr_scores(val_quantiles[..., lo], val_quantiles[..., hi], y), a)
            for (lo, hi), a in zip(bound_indices(levels), alphas)
        ]
    )
    return Calibration(levels, width, y.shape[0], joint, "cqr")


def apply_cqr(quantiles: np.ndarray, cal: Calibration) -> np.ndarray:
    """Widen (or narrow) each band of ``quantiles (B, H, T, Q)`` by its correction; the median is kept.

    Bounds are re-sorted outward from the median afterwards, so a negative correction can never
    make quantiles cross.
    """
    out = np.array(quantiles, dtype=float)
    for i, (lo, hi) in enumerate(bound_indices(cal.levels)):
        out[..., lo] = quantiles[..., lo] - cal.width[i]
        out[..., hi] = quantiles[..., hi] + cal.width[i]
    return monotone(out, median_index(cal.levels))


def monotone(quantiles: np.ndarray, median: int) -> np.ndarray:
    """Make the quantile axis non-decreasing, keeping the median fixed (bounds pushed outward)."""
    out = np.array(quantiles, dtype=float)
    out[..., median:] = np.maximum.accumulate(out[..., median:], axis=-1)
    out[..., : median + 1] = np.minimum.accumulate(out[..., median::-1], axis=-1)[..., ::-1]
    return out


# --------------------------------------------------------------------------- adaptive conformal inference


@dataclass(frozen=True)
class Adaptive:
    """Adaptive conformal inference over test windows in time order.

    Attributes:
        width: ``(B, L, H, T)`` half-width used for each window (``inf`` where ``alpha_t <= 0``).
        alpha: ``(B, L, H, T)`` miscoverage level ``alpha_t`` each window was banded at.
    """

    levels: tuple[float, ...]
    width: np.ndarray
    alpha: np.ndarray
    state: AdaptiveState | None = None


@dataclass(frozen=True)
class AdaptiveState:
    """Where adaptive conformal inference stands once every scored window's outcome is known: the level ``alpha``
    reached per level, lead and target, and the half-width it gives the next band.

    Attributes:
        alpha: ``(L, H, T)`` miscoverage level after the update of the last scored window.
        width: ``(L, H, T)`` :func:`aci_width` of the score pool at ``alpha`` (``inf`` where ``alpha <= 0``).
        n: windows in that pool (validation scores, then the scored windows'; the last ``window`` when limited).
    """

    alpha: np.ndarray
    width: np.ndarray
    n: int

    def to_dict(self) -> dict:
        w = np.where(np.isfinite(self.width), self.width, np.nan).tolist()
        return {
            "alpha": self.alpha.tolist(),
            "width": [[[None if v != v else v for v in row] for row in lead] for lead in w],
            "n": int(self.n),
        }

    @classmethod
    def from_dict(cls, d: dict) -> AdaptiveState:
        alpha = np.array(d["alpha"], dtype=float)
        width = np.array([[[np.inf if v is None else v for v in row] for row in lead] for lead in d["width"]], float)
        if alpha.ndim != 3 or not np.isfinite(alpha).all() or (width < 0).any():
            raise ValueError("adaptive state needs finite (L, H, T) alpha and non-negative widths")
        return cls(alpha, width, int(d["n"]))


def aci_width(scores: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Half-widths ``(L, H, T)`` at levels ``alpha (L, H, T)`` from a score pool ``(n, H, T)``: the conformal quantile,
    ``inf`` where ``alpha <= 0`` (no finite band holds), 0 where ``alpha >= 1`` (any band does)."""
    a = np.clip(alpha, 1e-12, 1.0)
    w = np.stack([conformal_quantile(scores, a[i]) for i in range(len(alpha))])
    return np.where(alpha <= 0, np.inf, np.where(alpha >= 1, 0.0, w))


def adaptive_conformal(
    cal_scores: np.ndarray,
    test_scores: np.ndarray,
    levels: Sequence[float],
    gamma: float = 0.005,
    lag: int | None = None,
    window: int | None = None,
    joint: bool = False,
) -> Adaptive:
    """Adaptive conformal inference (Gibbs & Candès 2021) per level, lead and target.

    ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)`` where ``err_t = 1`` when window ``t`` was
    not covered. A window's outcome is only known once its last target row is observed: with
    windows one row apart (stride 1), window ``t``'s last target is seen when window ``t + H``
    is forecast, so the error of window ``t`` enters the update that bands window ``t + lag``
    (``lag = H`` by default; use ``ceil(H / stride)`` for strided windows, 1 for non-overlapping
    backtest folds). Until then ``alpha_t`` stays at ``alpha``.

    Each window is banded by the conformal quantile at ``alpha_t`` of the score pool known at
    that time: the validation scores plus the test scores already revealed (the most recent
    ``window`` of them all if ``window`` is set), so the band follows both the level and the
    scores. ``alpha_t <= 0`` gives an infinite band, ``alpha_t >= 1`` a zero-width one.

    Args:
        cal_scores: ``(N, H, T)`` absolute validation residuals.
        test_scores: ``(B, H, T)`` absolute test residuals, windows in time order.
        gamma: step size; 0 gives static split conformal with an expanding pool.
        lag: windows between a forecast and the knowledge of its outcome; default ``H``.
        window: keep only the last ``window`` scores in the pool (None: all).
        joint: target ``alpha / H`` per lead (Bonferroni) instead of ``alpha``.
    """
    levels = check_levels(levels)
    cal = np.abs(np.asarray(cal_scores, dtype=float))
    test = np.abs(np.asarray(test_scores, dtype=float))
    b, h = test.shape[0], test.shape[1]
    lag = h if lag is None else int(lag)
    if lag < 1 or gamma < 0:
        raise ValueError(f"lag must be >= 1 and gamma >= 0. Received: lag={lag}, gamma={gamma}")
    pool = np.concatenate([cal, test])  # (N + B, H, T): row N + t is revealed at window t + lag
    n0 = cal.shape[0]
    targets = np.array(_alphas(levels, h, joint))[:, None, None]  # (L, 1, 1)
    alpha_t = np.broadcast_to(targets, (len(levels), *test.shape[1:])).copy()  # (L, H, T)
    widths = np.empty((b, len(levels), *test.shape[1:]))
    alphas = np.empty_like(widths)
    for t in range(b):
        if t >= lag:  # window t - lag's outcome is now known: update, then add its score to the pool
            err = (test[t - lag] > widths[t - lag]).astype(float)  # (L, H, T)
            alpha_t = alpha_t + gamma * (targets - err)
        hi = n0 + max(0, t - lag + 1)
        lo = 0 if window is None else max(0, hi - window)
        alphas[t] = alpha_t
        widths[t] = aci_width(pool[lo:hi], alpha_t)
    # Once the scored rows end, every window's outcome is known: the windows still in flight update too.
    for t in range(max(0, b - lag), b):
        alpha_t = alpha_t + gamma * (targets - (test[t] > widths[t]))
    lo = 0 if window is None else max(0, len(pool) - window)
    kept = pool[lo:][np.isfinite(pool[lo:]).all(axis=(1, 2))]  # a window with an unobserved value scores nothing
    return Adaptive(levels, widths, alphas, AdaptiveState(alpha_t, aci_width(kept, alpha_t), len(kept)))


# --------------------------------------------------------------------------- scores


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> np.ndarray:
    """Pinball (quantile) loss elementwise: ``max(q (y - f), (q - 1)(y - f))``."""
    d = np.asarray(actual, dtype=float) - forecast
    return np.maximum(q * d, (q - 1) * d)


def crps_weights(qs: np.ndarray) -> np.ndarray:
    """Weights ``(Q,)`` summing to 1: the share of [0, 1] nearest each quantile level (midpoint rule)."""
    qs = np.asarray(qs, dtype=float)
    edges = np.concatenate([[0.0], (qs[1:] + qs[:-1]) / 2, [1.0]])
    return np.diff(edges)


def crps_from_quantiles(actual: np.ndarray, quantiles: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """CRPS approximated as ``2 * sum_k w_k pinball_{q_k}`` (CRPS = 2 * integral of pinball over q).

    With only the median this is ``|y - median|``, the CRPS of a point forecast. Returns
    ``actual.shape``.
    """
    w = crps_weights(qs)
    losses = np.stack([pinball(actual, quantiles[..., k], q) for k, q in enumerate(qs)], axis=-1)
    return 2 * losses @ w


def interval_score(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float) -> np.ndarray:
    """Interval score (Gneiting & Raftery 2007; M4's MSIS numerator), elementwise.

    ``(u - l) + 2/alpha (l - y) 1{y < l} + 2/alpha (y - u) 1{y > u}``.
    """
    y = np.asarray(actual, dtype=float)
    return (upper - lower) + (2 / alpha) * np.maximum(lower - y, 0) + (2 / alpha) * np.maximum(y - upper, 0)


def seasonal_naive_scale(
    train_values: np.ndarray, season: int, bounds: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """M4's MSIS/MASE denominator: in-sample mean ``|y_t - y_{t-m}|`` per target, ``(T,)``.

    Args:
        train_values: ``(N, T)`` training rows, original units.
        season: ``m`` (1 for non-seasonal data).
        bounds: row ranges of separate series inside ``train_values``; differences never cross them.
    """
    x = np.asarray(train_values, dtype=float)
    bounds = [(0, len(x))] if bounds is None else bounds
    diffs = [np.abs(x[lo + season : hi] - x[lo : hi - season]) for lo, hi in bounds if hi - lo > season]
    if not diffs:
        return np.full(x.shape[1], np.nan)
    return np.concatenate(diffs).mean(axis=0)


def _mean(x: np.ndarray, axis, nan: bool = False) -> np.ndarray:
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of nothing observed: NaN, said as null
        return np.nanmean(x, axis=axis) if nan else np.mean(x, axis=axis)


def interval_metrics(
    actual: np.ndarray,
    quantiles: np.ndarray,
    levels: Sequence[float],
    targets: Sequence[str],
    scale: np.ndarray | None = None,
    scored: np.ndarray | None = None,
) -> dict:
    """Interval and quantile scores in original units, per level, lead and target.

    Args:
        actual: ``(B, H, T)`` observed values.
        quantiles: ``(B, H, T, Q)`` forecast quantiles ordered as :func:`quantile_levels`.
        levels: the interval levels in percent.
        targets: the ``T`` target names.
        scale: ``(T,)`` :func:`seasonal_naive_scale` of the training rows; without it MSIS is omitted.
        scored: ``(B, H, T)`` False where ``actual`` was filled by the tool: left out of every score.

    Returns:
        ``{"levels": {"80": {...}}, "quantiles": {"p10": {...}}, "crps": {...}}``. Each level has
        ``coverage`` and ``joint_coverage`` in percent, ``width``, ``interval_score`` and ``msis``,
        each as ``{"overall": x, "per_lead": [H], "per_target": {t: x}}`` (``joint_coverage``: the
        share of windows whose whole path lies inside the band, per target and for all targets).
    """
    y = _squeeze(actual)
    keep = None if scored is None else np.asarray(scored, dtype=bool)  # (B, H, T)

    def summary(x: np.ndarray) -> dict:  # of the observed values only
        return _summary(x, targets) if keep is None else _summary(np.where(keep, x, np.nan), targets, nan=True)

    levels = check_levels(levels)
    qs = quantile_levels(levels)
    out: dict = {"levels": {}, "quantiles": {}}
    for c, (lo, hi) in zip(levels, bound_indices(levels)):
        low, up = quantiles[..., lo], quantiles[..., hi]
        inside = (y >= low) & (y <= up)  # (B, H, T)
        whole = inside if keep is None else inside | ~keep  # a path's unobserved steps do not break it
        alpha = 1 - c / 100
        block = {
            "coverage": summary(100.0 * inside),
            "joint_coverage": {
                "overall": _num(100 * np.mean(whole.all(axis=(1, 2)))),
                "per_target": {t: _num(100 * np.mean(whole[..., j].all(axis=1))) for j, t in enumerate(targets)},
            },
            "width": _summary(up - low, targets),
            "interval_score": summary(interval_score(y, low, up, alpha)),
        }
        if scale is not None:
            s = np.asarray(scale, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                block["msis"] = summary(interval_score(y, low, up, alpha) / s)
        out["levels"][f"{c:g}"] = block
    for k, q in enumerate(qs):
        out["quantiles"][quantile_name(q)] = summary(pinball(y, quantiles[..., k], q))
    out["crps"] = summary(crps_from_quantiles(y, quantiles, qs))
    return out


def _summary(x: np.ndarray, targets: Sequence[str], nan: bool = False) -> dict:
    """``(B, H, T)`` elementwise scores -> overall mean, mean per lead, mean per target (``nan``: NaN left out)."""
    return {
        "overall": _num(_mean(x, None, nan)),
        "per_lead": [_num(v) for v in _mean(x, (0, 2), nan)],
        "per_target": {t: _num(v) for t, v in zip(targets, _mean(x, (0, 1), nan))},
    }


_num = finite_or_none  # NaN and infinity become null in metrics.json


def coverage_warnings(metrics: dict, tolerance: float = COVERAGE_TOLERANCE, split: str = "test") -> list[str]:
    """One line per level whose coverage misses nominal by more than ``tolerance`` points."""
    out = []
    for c, block in metrics["levels"].items():
        cov = block["coverage"]["overall"]
        if cov is None or abs(cov - float(c)) <= tolerance:
            continue
        side = "below" if cov < float(c) else "above"
        why = "bands too narrow: the split differs from validation" if side == "below" else "bands wider than needed"
        out.append(
            f"warning: {c}% interval covers {cov:.1f}% of {split} values ({abs(cov - float(c)):.1f} points {side} "
            f"nominal; {why}). Fix: a longer validation split, or intervals.adaptive: true for drifting series."
        )
    return out


def scale_shift(
    val_scores: np.ndarray,
    test_scores: np.ndarray,
    targets: Sequence[str],
    bound: float = DRIFT_BOUND,
    adaptive: bool = False,
) -> tuple[dict, list[str]]:
    """Is the period scored unlike the period the bands were calibrated on?

    The rule: per target, the ratio of the model's mean absolute residual on the scored windows to that on the
    validation windows (NaN scores left out). Beyond ``bound`` either way (default 1.5: with Gaussian residuals a
    scale 1.5x the calibration's brings static 80 % bands to about 61 % coverage, 1/1.5 to about 95 %), one warning
    line per target.

    Args:
        val_scores: ``(N, H, T)`` absolute validation residuals; test_scores: ``(B, H, T)`` those of the split scored.

        adaptive: the bands adapt over the test windows (the fix then differs).

    Returns:
        ``({target: ratio or None}, warning lines)``.
    """
    ratios, out = {}, []
    for j, t in enumerate(targets):
        v, e = _mean(val_scores[..., j], None, nan=True), _mean(test_scores[..., j], None, nan=True)
        ratio = float(e / v) if v > 0 and np.isfinite(e) else None
        ratios[t] = ratio
        if ratio is not None and not 1 / bound <= ratio <= bound:
            how = "under-cover" if ratio > 1 else "are wider than needed"
            what = "the adaptive bands start from a wrong level" if adaptive else f"static bands {how}"
            fix = "" if adaptive else "intervals.adaptive: true, or "
            out.append(
                f"warning: bands calibrated on a period unlike the test: {t}'s test residuals are {ratio:.2f}x the "
                f"validation's (mean absolute error {e:.4g} vs {v:.4g}; bound {bound:g}x), so {what}. "
                f"Fix: {fix}a validation split nearer the test (data.split)"
            )
    return ratios, out


# --------------------------------------------------------------------------- a run's intervals


@dataclass(frozen=True)
class RunIntervals:
    """What a run keeps in ``intervals.json``: how its bands are made and the calibrations behind them.

    Attributes:
        method: ``conformal`` (point model + validation residuals), ``quantile`` (the head's own
            quantiles) or ``cqr`` (the head's quantiles corrected on validation).
        model: the model's calibration; None for ``quantile``.
        persistence: the persistence baseline's conformal calibration on the same validation windows.
        adaptive, gamma: adaptive conformal inference over test windows (conformal only).
        adaptive_state: series name -> :class:`AdaptiveState` reached at the end of the scored test windows
            (training saves it): the bands of every forecast past the data. None: static bands.
    """

    method: str
    levels: tuple[float, ...]
    joint: bool
    model: Calibration | None
    persistence: Calibration
    adaptive: bool = False
    gamma: float = 0.005
    adaptive_state: dict[str, AdaptiveState] | None = None

    @property
    def quantiles(self) -> np.ndarray:
        return quantile_levels(self.levels)

    def warnings(self) -> list[str]:
        return self.model.warnings() if self.model is not None else self.persistence.warnings()

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "levels": list(self.levels),
            "quantiles": [float(q) for q in self.quantiles],
            "joint": self.joint,
            "adaptive": self.adaptive,
            "gamma": self.gamma,
            "model": None if self.model is None else self.model.to_dict(),
            "persistence": self.persistence.to_dict(),
            **(
                {"adaptive_state": {k: v.to_dict() for k, v in self.adaptive_state.items()}}
                if self.adaptive_state
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunIntervals:
        model = None if d.get("model") is None else Calibration.from_dict(d["model"])
        levels = tuple(float(c) for c in d["levels"])
        per = Calibration.from_dict(d["persistence"])
        state = d.get("adaptive_state")
        state = {str(k): AdaptiveState.from_dict(v) for k, v in state.items()} if state else None
        adaptive = bool(d.get("adaptive"))
        return cls(d["method"], levels, bool(d["joint"]), model, per, adaptive, float(d["gamma"]), state)

    def forecast_width(self, series: str) -> np.ndarray | None:
        """``(L, H, T)`` half-widths of a forecast of ``series`` past the data: the adaptive state's when the run
        saved one for it, else None (the static calibration's bands apply). A single-series run's one state
        applies to whatever its rows are called (serve's batches name each item as a series)."""
        states = self.adaptive_state or {}
        state = next(iter(states.values())) if len(states) == 1 else states.get(str(series))
        return None if state is None else state.width

    def bands_note(self, series: Sequence[str]) -> str | None:
        """predict's one line on which bands an adaptive run gives (None for a static run)."""
        if not self.adaptive:
            return None
        missing = [str(s) for s in series if self.forecast_width(s) is None]
        if not missing:
            return "note: bands carry the adaptive level reached at the end of the test split (intervals.adaptive)"
        who = "" if len(series) == 1 else f" for series {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        return (
            f"note: bands{who} are static (split conformal on validation): the run saved no adaptive state for them. "
            "Fix: train again with this version to carry the adaptive level"
        )


def inconsistency(iv: RunIntervals, levels: Sequence[float], horizon: int, n_targets: int) -> str | None:
    """What in a loaded ``intervals.json`` disagrees with the run it belongs to (the config's levels, the
    ``(L, H, T)`` shape of every width table), or None when it is whole."""
    want = tuple(sorted(float(c) for c in levels))
    if tuple(sorted(iv.levels)) != want:
        return f"its levels {_pct(iv.levels)} are not the run's intervals.levels {_pct(want)}"
    shape = (len(want), horizon, n_targets)
    for name, cal in (("model", iv.model), ("persistence", iv.persistence)):
        wrong = None if cal is None else _calibration_inconsistency(name, cal, iv.levels, shape)
        if wrong:
            return wrong
    return _adaptive_inconsistency(iv.adaptive_state or {}, shape)


def _calibration_inconsistency(name: str, cal, levels: Sequence[float], shape: tuple) -> str | None:
    """What in one calibration (``model`` or ``persistence``) disagrees with the file's ``levels`` or the run's
    ``(L, H, T)`` ``shape``, or None."""
    if tuple(cal.levels) != tuple(levels):
        return f"{name}.levels {_pct(cal.levels)} differ from its levels {_pct(levels)}"
    if cal.width.shape != shape:
        got = "x".join(map(str, cal.width.shape))
        return f"{name}.width is {got} (levels x leads x targets), the run needs {'x'.join(map(str, shape))}"
    return None


def _adaptive_inconsistency(states: dict, shape: tuple) -> str | None:
    """The first series' adaptive state whose alpha or width is not ``(L, H, T)`` ``shape``, said, or None."""
    for name, st in states.items():
        if st.alpha.shape != shape or st.width.shape != shape:
            got = "x".join(map(str, st.alpha.shape)) + " alpha, " + "x".join(map(str, st.width.shape)) + " width"
            return f"adaptive_state[{name!r}] has {got}, the run needs {'x'.join(map(str, shape))} (levels x leads x targets)"
    return None


def _pct(levels: Sequence[float]) -> str:
    return "[" + ", ".join(f"{c:g}" for c in levels) + "]"


def point_forecast(output: np.ndarray, method: str | None, levels: Sequence[float] | None) -> np.ndarray:
    """The point forecast ``(B, H, T, 1)`` of a model output ``(B, H, T, Qm)``: the median of a quantile head."""
    if method in ("quantile", "cqr"):
        m = median_index(levels)
        return output[..., m : m + 1]
    return output


def calibrate_run(
    method: str,
    levels: Sequence[float],
    joint: bool,
    val_actual: np.ndarray,
    val_output: np.ndarray,
    val_persistence: np.ndarray,
    adaptive: bool = False,
    gamma: float = 0.005,
) -> RunIntervals:
    """Calibrate a run on its validation windows, all arrays in original units.

    Args:
        val_actual: ``(N, H, T)``; val_output: the model's ``(N, H, T, Qm)`` (Qm = 1 for a point model);
        val_persistence: ``(N, H, T, 1)`` persistence forecasts of the same windows.
    """
    levels = check_levels(levels)
    if method == "conformal":
        model = calibrate(_squeeze(val_actual) - _squeeze(val_output), levels, joint)
    elif method == "cqr":
        model = calibrate_cqr(val_output, val_actual, levels, joint)
    else:
        model = None
    persistence = calibrate(_squeeze(val_actual) - _squeeze(val_persistence), levels, joint)
    return RunIntervals(method, levels, joint, model, persistence, adaptive, gamma)


def model_bands(run: RunIntervals, output: np.ndarray, series: Sequence[str] | None = None) -> np.ndarray:
    """The model's quantiles ``(B, H, T, Q)`` from its output ``(B, H, T, Qm)`` in original units.

    ``series``: the series name of each row of a forecast past the data; an adaptive run's rows then get the width
    its saved :class:`AdaptiveState` reached for that series (static where it saved none).
    """
    if run.method == "conformal" and series is not None and run.adaptive_state:
        static = run.model.width
        width = np.stack([w if (w := run.forecast_width(s)) is not None else static for s in series])  # (B, L, H, T)
        return apply_bands(output, width, run.levels)
    if run.method == "conformal":
        return apply_bands(output, run.model.width, run.levels)
    if run.method == "cqr":
        return apply_cqr(output, run.model)
    # A monotone head cannot cross in model space; an inverse transform applied per quantile path keeps that
    # only for increasing maps, so sort once more in original units.
    return monotone(output, median_index(run.levels))


def adaptive_bands(
    run: RunIntervals, point: np.ndarray, actual: np.ndarray, val_scores: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """The quantiles ``(B, H, T, Q)`` of :func:`adaptive_run` (its states left aside)."""
    return adaptive_run(run, point, actual, val_scores, groups)[0]


def adaptive_run(
    run: RunIntervals, point: np.ndarray, actual: np.ndarray, val_scores: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, dict[int, AdaptiveState]]:
    """Conformal bands whose level adapts over the windows of each series in time order (ACI).

    Args:
        point: ``(B, H, T, 1)``; actual: ``(B, H, T)`` test windows, each series' windows in time order;
        val_scores: ``(N, H, T)`` absolute validation residuals; groups: ``(B,)`` series index of each window.

    Returns:
        ``(B, H, T, Q)`` quantiles, and per group the :class:`AdaptiveState` reached after its last window.
    """
    width = np.empty((len(point), len(run.levels), *point.shape[1:3]))  # (B, L, H, T)
    states = {}
    for g in np.unique(groups):
        m = groups == g
        test_scores = np.abs(_squeeze(actual[m]) - _squeeze(point[m]))
        aci = adaptive_conformal(val_scores, test_scores, run.levels, run.gamma, joint=run.joint)
        width[m], states[int(g)] = aci.width, aci.state
    return apply_bands(point, width, run.levels), states

"""Transforms before scaling, run in float64 and inverted exactly: the stationarising differences (diff, log_diff,
pct_change: each row against the row before) and ``log`` (each row on its own: errors become relative, a level a
multiple of another's, as ES-RNN divides by the level; positive values only)."""

from __future__ import annotations

import numpy as np

from .config import DIFFERENCES

KINDS = ("none", *DIFFERENCES, "log")


def forward(x: np.ndarray, kind: str) -> np.ndarray:
    """Transform one column ``(n,)``; with a difference the first value has no predecessor and becomes NaN."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "none":
        return x.copy()
    if kind == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)
    out = np.full_like(x, np.nan)
    if kind == "diff":
        out[1:] = x[1:] - x[:-1]
    elif kind == "log_diff":
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = np.log(x[1:]) - np.log(x[:-1])
    elif kind == "pct_change":
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = x[1:] / x[:-1] - 1.0
    else:
        raise ValueError(f"unknown transform {kind!r}; allowed: {', '.join(KINDS)}")
    return out


def inverse(level: np.ndarray, steps: np.ndarray, kind: str) -> np.ndarray:
    """Undo a transform for multi-step forecasts, cumulating a difference from the last observed level.

    Args:
        level: ``(B, ...)`` last observed original value of each window (not read by ``log``).
        steps: ``(B, H, ...)`` transformed values of the next ``H`` steps.

    Returns:
        ``(B, H, ...)`` values in original units.
    """
    steps = np.asarray(steps, dtype=np.float64)
    if kind == "none":
        return steps.copy()
    if kind == "log":
        return np.exp(steps)
    level = np.asarray(level, dtype=np.float64)[:, None]
    if kind == "diff":
        return level + np.cumsum(steps, axis=1)
    if kind == "log_diff":
        return level * np.exp(np.cumsum(steps, axis=1))
    if kind == "pct_change":
        return level * np.cumprod(1.0 + steps, axis=1)
    raise ValueError(f"unknown transform {kind!r}; allowed: {', '.join(KINDS)}")


def needs_positive(kind: str) -> bool:
    return kind in ("log_diff", "pct_change", "log")


def differences(transform: dict[str, str]) -> bool:
    """Whether any column's transform differences a row against the row before (the first row of a series then
    has no value, and the series is level-free)."""
    return any(k in DIFFERENCES for k in transform.values())


def history_rows(input_length: int, transform: dict[str, str]) -> int:
    """Rows of history one window needs: ``input_length``, and one more before it when any column is differenced
    (a differenced row needs its predecessor)."""
    return input_length + (1 if differences(transform) else 0)

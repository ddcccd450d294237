"""Stationarising transforms (diff, log_diff, pct_change), run in float64 and inverted exactly."""

from __future__ import annotations

import numpy as np

KINDS = ("none", "diff", "log_diff", "pct_change")


def forward(x: np.ndarray, kind: str) -> np.ndarray:
    """Transform one column ``(n,)``; the first value has no predecessor and becomes NaN."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "none":
        return x.copy()
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
    """Undo a transform for multi-step forecasts, cumulating from the last observed level.

    Args:
        level: ``(B, ...)`` last observed original value of each window.
        steps: ``(B, H, ...)`` transformed values of the next ``H`` steps.

    Returns:
        ``(B, H, ...)`` values in original units.
    """
    steps = np.asarray(steps, dtype=np.float64)
    if kind == "none":
        return steps.copy()
    level = np.asarray(level, dtype=np.float64)[:, None]
    if kind == "diff":
        return level + np.cumsum(steps, axis=1)
    if kind == "log_diff":
        return level * np.exp(np.cumsum(steps, axis=1))
    if kind == "pct_change":
        return level * np.cumprod(1.0 + steps, axis=1)
    raise ValueError(f"unknown transform {kind!r}; allowed: {', '.join(KINDS)}")


def needs_positive(kind: str) -> bool:
    return kind in ("log_diff", "pct_change")


def history_rows(input_length: int, transform: dict[str, str]) -> int:
    """Rows of history one window needs: ``input_length``, and one more before it when any column is transformed
    (a differenced row needs its predecessor)."""
    return input_length + (1 if any(k != "none" for k in transform.values()) else 0)

"""Rolling-origin backtest plans: which rows each fold trains, validates and tests on (pure index arithmetic).

Positions are rows of one series (0 .. n_rows-1). Fold ``k`` has an ``origin``: the first row
it forecasts. Its test forecasts start at rows ``origin .. origin+test_length-1`` and each
covers ``horizon`` rows, so its test stretch is ``[origin, origin + test_length + horizon - 1)``.
With ``n_rows=20, folds=3, step=2, val_length=3, horizon=2`` (``test_length = step``)::

    row:    ... 9 10 11 12 13 14 15 16 17 18 19
    fold 0: ... t  t  v  v  v  T  T  T              origin 13: train [0, 10), val [10, 13), test [13, 16)
    fold 1: ... t  t  t  t  v  v  v  T  T  T        origin 15: train [0, 12), val [12, 15), test [15, 18)
    fold 2: ... t  t  t  t  t  t  v  v  v  T  T  T  origin 17: train [0, 14), val [14, 17), test [17, 20)

The last fold's test stretch ends at the last row; earlier origins step back by ``step``, so
with ``test_length = step`` every forecast start in the backtested stretch is used exactly once.
Training is an expanding window (everything before ``origin - val_length``); validation is the
stretch just before the origin (early stopping and conformal calibration); test is the stretch
from the origin. No fold's train or validation rows reach its origin. A test window's inputs
may read rows before the origin (they are known at forecast time); its targets never precede
it (:func:`fold_window_starts`).

``refit``: ``all`` trains every fold; ``none`` trains fold 0 only and slides the origin with
that model; ``every:N`` trains folds 0, N, 2N, ... Folds that do not train reuse the model of
the last fold that did (``Fold.model_fold``) but still calibrate on their own validation stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import windows
from .errors import ConfigError


@dataclass(frozen=True)
class Fold:
    """One backtest fold; row ranges are half-open ``(lo, hi)``."""

    index: int
    origin: int
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    refit: bool  # this fold trains a model
    model_fold: int  # the fold whose model forecasts here (itself when ``refit``)


def parse_refit(text: str | int) -> int:
    """``all -> 1``, ``every:N -> N``, ``none -> 0`` (train once): folds between refits."""
    s = str(text).strip().lower()
    if s == "all":
        return 1
    if s == "none":
        return 0
    if s.startswith("every:"):
        try:
            n = int(s.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return n
    raise ConfigError(
        f"refit must be all, none or every:N with N >= 1. Received: refit={text!r}",
        where="--refit",
        fix="use --refit all, --refit none or --refit every:2",
    )


def plan_folds(
    n_rows: int,
    folds: int,
    step: int,
    val_length: int,
    horizon: int = 1,
    test_length: int | None = None,
    refit: str = "all",
    min_train: int = 1,
) -> list[Fold]:
    """The folds of a rolling-origin backtest over the last part of a series of ``n_rows`` rows.

    Args:
        n_rows: rows in the series.
        folds: number of folds ``K`` (>= 1).
        step: rows between consecutive origins ``S`` (>= 1).
        val_length: rows of validation just before each origin (>= 1).
        horizon: rows each forecast covers (``window.horizon``).
        test_length: forecast starts per fold; default ``step`` (folds tile the end without overlap).
        refit: ``all`` | ``none`` | ``every:N``.
        min_train: fewest training rows the first fold may have.

    Returns:
        ``K`` folds, earliest origin first.
    """
    test_length = step if test_length is None else test_length
    checks = (
        ("folds", folds),
        ("step", step),
        ("val_length", val_length),
        ("horizon", horizon),
        ("test_length", test_length),
    )
    for name, v in checks:
        if int(v) < 1:
            raise ConfigError(
                f"{name} must be >= 1. Received: {name}={v}", where=f"backtest.{name}", fix="use 1 or more"
            )
    every = parse_refit(refit)
    span = test_length + horizon - 1  # rows covered by one fold's test targets
    last = n_rows - span
    first = last - (folds - 1) * step
    if first - val_length < min_train:
        raise ConfigError(
            f"{folds} folds with step {step}, validation {val_length} rows and {span} test rows leave "
            f"{max(first - val_length, 0)} training rows in the first fold of a {n_rows}-row series "
            f"(at least {min_train} needed)",
            where="backtest",
            fix="use fewer folds, a smaller step or shorter validation/test stretches",
        )
    out, model_fold = [], 0
    for k in range(folds):
        origin = first + k * step
        refits = k == 0 or (every > 0 and k % every == 0)
        model_fold = k if refits else model_fold
        out.append(
            Fold(
                index=k,
                origin=origin,
                train=(0, origin - val_length),
                val=(origin - val_length, origin),
                test=(origin, origin + span),
                refit=refits,
                model_fold=model_fold,
            )
        )
    return out


def target_window_starts(
    span: tuple[int, int], input_length: int, horizon: int, stride: int = 1, series_lo: int = 0
) -> np.ndarray:
    """Starts of windows whose targets all lie in ``span``; inputs may read the rows before it.

    Used for validation and test stretches: the history before them is known at forecast time.
    """
    lo, hi = span
    return windows.window_starts([(max(series_lo, lo - input_length), hi)], input_length, horizon, stride)


def fold_window_starts(fold: Fold, input_length: int, horizon: int, stride: int = 1) -> dict[str, np.ndarray]:
    """Window starts per part of a fold: ``train`` windows lie inside the training rows entirely;
    ``val`` and ``test`` windows have all targets inside their stretch (:func:`target_window_starts`)."""
    return {
        "train": windows.window_starts([fold.train], input_length, horizon, stride),
        "val": target_window_starts(fold.val, input_length, horizon, stride),
        "test": target_window_starts(fold.test, input_length, horizon, stride),
    }

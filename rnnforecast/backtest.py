"""Rolling-origin backtests: the plan on the time axis, each fold's predictions as rows, and the aggregate (pure).

The folds are planned by :func:`folds.plan_folds` on the sorted unique timestamps of the data (all series
together), so every series shares the same origin timestamps. A fold becomes a config through its split
timestamps (``data.split.val_start`` = its first validation time, ``test_start`` = its origin), so the
fold trains through the same ``series.build`` and ``pipeline.fit_model`` as ``train``; the scaler sees
the fold's training rows only. The test stretch ends at ``test_end`` (``SeriesData.fold_view``).

Files of a backtest directory::

    plan.json          the folds (origin, validation and test timestamps, refit) and what they depend on
    folds/NN/          fold NN: fold.json (its scores) and predictions.csv; model.keras, scaler.json and
                       history.csv when the fold trained; fold.json is written last, so it marks the fold done
    predictions.csv    every fold's test forecasts, one row per window, lead and target (long format)
    metrics.json       per fold and aggregated over folds (mean and sample std)
    plots/             error per fold, error per lead across folds, actual vs forecast over the whole stretch
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import folds as F
from .config import Config
from .data import Frame
from .fsio import finite_or_none
from .records import Scores
from .series import split_rows
from .transforms import history_rows

SCORES = ("mae", "rmse", "mase")  # aggregated per forecaster, overall and per lead
# predictions.csv of a single series (several series add a `series` column after `fold`: predictions.predictions_table)
PREDICTION_COLUMNS = ("fold", "target", "origin_time", "target_time", "lead", "actual", "filled", "forecast")


@dataclass(frozen=True)
class Plan:
    """The folds of one backtest and the timestamps their row positions stand for."""

    folds: list[F.Fold]
    times: pd.DatetimeIndex  # sorted unique timestamps of the data: position i of a fold is times[i]
    step: int
    val_length: int
    test_length: int
    refit: str

    def time(self, position: int) -> str | None:
        """ISO timestamp of a position; None past the last row."""
        return self.times[position].isoformat() if position < len(self.times) else None

    def fold_times(self, fold: F.Fold) -> dict[str, str | None]:
        """``val_start``, ``origin`` (first forecast time), ``test_end`` (first time after the test stretch)."""
        return {
            "val_start": self.time(fold.val[0]),
            "origin": self.time(fold.origin),
            "test_end": self.time(fold.test[1]),
        }

    def overrides(self, fold: F.Fold) -> dict[str, str]:
        """Config changes that make ``fold`` the split: train before ``val_start``, validate up to the origin."""
        t = self.fold_times(fold)
        return {"data.split.val_start": t["val_start"], "data.split.test_start": t["origin"]}

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "val_length": self.val_length,
            "test_length": self.test_length,
            "refit": self.refit,
            "folds": [{**asdict(f), **self.fold_times(f)} for f in self.folds],
        }


def time_axis(frame: Frame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.unique(frame.df[frame.time_column].to_numpy()))


def make_plan(cfg: Config, frame: Frame, n_folds: int, step: int | None, refit: str) -> Plan:
    """Folds over the end of the time axis.

    Defaults come from the config's own split on the time axis: validation stretches as long as its
    validation split, and (without ``step``) ``n_folds`` test stretches that tile its test split.
    """
    times = time_axis(frame)
    n = len(times)
    b = split_rows(n, 0, cfg, pd.Series(times), str(frame.path))
    H, L = cfg.window.horizon, cfg.window.input_length
    val_length = b["val"][1] - b["val"][0]
    if step is None:
        step = max(1, (b["test"][1] - b["test"][0] - H + 1) // max(1, n_folds))
    plan = F.plan_folds(n, n_folds, step, val_length, H, refit=refit, min_train=history_rows(L, cfg.data.transform) + H)
    return Plan(plan, times, step, val_length, step, refit)


def fingerprint(cfg: Config, plan: Plan, levels: tuple[float, ...]) -> dict:
    """What a resumed backtest must share with the one that started the directory."""
    return {"config_sha256": cfg.hash(), "plan": plan.to_dict(), "levels": list(levels)}


def fold_dir(root: Path, index: int) -> Path:
    return root / "folds" / f"{index:02d}"


def fold_done(root: Path, index: int) -> bool:
    return (fold_dir(root, index) / "fold.json").exists()


def groups_to_run(plan: Plan, root: Path) -> list[list[F.Fold]]:
    """The folds grouped by the model they share (earliest first), less the groups whose folds are all done."""
    groups = [[f for f in plan.folds if f.model_fold == k] for k in sorted({f.model_fold for f in plan.folds})]
    return [g for g in groups if not all(fold_done(root, f.index) for f in g)]


def read_fold(root: Path, index: int) -> tuple[dict, pd.DataFrame]:
    d = fold_dir(root, index)
    return json.loads((d / "fold.json").read_text()), pd.read_csv(d / "predictions.csv")


# --------------------------------------------------------------------------- one fold


def fold_record(fold: F.Fold, plan: Plan, scores: dict, bands: dict, calibration: dict, training: dict | None) -> dict:
    """``fold.json``: where the fold lies, its point scores (model and baselines), interval scores, training facts."""
    return {
        "fold": fold.index,
        **plan.fold_times(fold),
        "rows": {"train": list(fold.train), "val": list(fold.val), "test": list(fold.test)},
        "trained": fold.refit,
        "model_fold": fold.model_fold,
        "n_windows": scores["n_windows"],
        "season_length": scores["season_length"],
        "original": scores["original"],
        "normalised": scores["normalised"],
        "per_series": scores.get("per_series"),
        "intervals": bands,
        "calibration": calibration,
        "training": training,
    }


# --------------------------------------------------------------------------- across folds


def _stats(values: list) -> dict:
    """Mean and sample std over folds, ignoring folds without a value."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    ok = v[np.isfinite(v)]
    mean = float(ok.mean()) if len(ok) else None
    std = float(ok.std(ddof=1)) if len(ok) > 1 else None
    return {"mean": mean, "std": std, "per_fold": [finite_or_none(x) for x in v]}


def _per_lead(rows: list[list]) -> dict:
    """``rows``: one list per fold of per-lead values -> mean and std per lead."""
    per = [_stats([r[i] for r in rows]) for i in range(len(rows[0]))]
    return {"mean": [p["mean"] for p in per], "std": [p["std"] for p in per]}


def _scores_block(records: list[dict], name: str) -> dict:
    out = {}
    for score in SCORES:
        overall = [Scores.of(r).overall[name][score] for r in records]
        lead = [Scores.of(r).per_lead[name][score] for r in records]
        out[score] = {**_stats(overall), "per_lead": _per_lead(lead)}
    return out


def _interval_block(records: list[dict], who: str, levels: tuple[float, ...]) -> dict:
    out = {}
    for c in levels:
        key = f"{c:g}"
        out[key] = {}
        for what in ("coverage", "width"):
            blocks = [r["intervals"][who]["levels"][key][what] for r in records]
            out[key][what] = {
                **_stats([b["overall"] for b in blocks]),
                "per_lead": _per_lead([b["per_lead"] for b in blocks]),
            }
    return out


def summarise(cfg: Config, plan: Plan, records: list[dict], levels: tuple[float, ...], seconds: float) -> dict:
    """``metrics.json`` of a backtest: every fold's record and the aggregate over folds (mean ± sample std)."""
    names = list(Scores.of(records[0]).overall)
    return {
        "kind": "backtest",
        "name": cfg.name,
        "targets": list(cfg.data.target),
        "horizon": cfg.window.horizon,
        "levels": list(levels),
        "plan": plan.to_dict(),
        "trainings": sum(1 for r in records if r["trained"]),
        "seconds": seconds,
        "aggregate": {
            "scores": {n: _scores_block(records, n) for n in names},
            "intervals": {who: _interval_block(records, who, levels) for who in records[0]["intervals"]},
        },
        "folds": records,
    }

"""Compare cells on identical data: the pure aggregation of finished runs into one record and ranking.

The loop that trains one run per cell and seed is ``pipeline.compare``; its tables are in ``text``.
Every run differs from the base config only in ``model.cell`` and ``seed``. The comparison
directory (claimed and finished by ``artifacts``)::

    <out>/
      config.yaml          the base config (each run changes model.cell and seed)
      compare.json         per cell: parameters, s/epoch, best epoch, val/test metrics, mean/std, run dirs
      compare.md           the ranked table as Markdown
      plots/*.png          val_loss, test_error, error_by_lead, forecast_overlay, params_vs_error, time_per_epoch
      runs/<cell>-seed<N>/ one normal run directory per cell and seed
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import artifacts, windows
from .cells import CELL_NAMES as CELLS
from .config import Config
from .errors import ConfigError
from .plots import compare_plots  # noqa: F401  (the figures live in plots.py; kept importable here)
from .records import Metrics

OVERLAY_WINDOWS = 200  # test windows shown in forecast_overlay.png
# The numbers per run and cell, in table order; all test/val values in original units.
FIELDS = ("params", "seconds_per_epoch", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase", "test_skill")


def parse_cells(text: str, dense: bool = False) -> list[str]:
    """``"simple_rnn,lstm"`` -> ``["simple_rnn", "lstm"]`` (+ ``"dense"`` when asked), checked against the known cells."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
    _check_cells(cells, text)
    if dense and "dense" not in cells:
        cells.append("dense")
    return cells


def _check_cells(cells: list[str], text: str) -> None:
    """At least one cell, each known (``CELLS``) and listed once."""
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ConfigError(
            f"unknown cell {bad[0]!r}" if bad else "no cell given",
            where="--cells",
            fix=f"choose from {', '.join(CELLS)}",
        )
    if len(set(cells)) != len(cells):
        raise ConfigError(
            f"a cell is listed twice ({text})", where="--cells", fix="list each cell once; use --repeats for more seeds"
        )


def seconds_per_epoch(epoch_seconds: list[float]) -> float | None:
    """Median epoch time, leaving out the first epoch (compilation) when there are others."""
    if not epoch_seconds:
        return None
    return float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds))


def seeds(seed: int, repeats: int) -> list[int]:
    """The seeds of a comparison's runs: ``seed .. seed + repeats - 1`` (``repeats`` >= 1)."""
    if repeats < 1:
        raise ConfigError(
            f"`repeats` must be at least 1. Received: repeats={repeats}",
            where="--repeats",
            fix="pass --repeats 1 or more",
        )
    return [seed + r for r in range(repeats)]


def run_numbers(metrics: dict, epoch_seconds: list[float], rel: Path, seed: int) -> dict:
    """The numbers of one finished run (its metrics.json and epoch times) that the comparison shows."""
    test = metrics["test"]["original"]
    model = test["overall"]["model"]
    return {
        "seed": seed,
        "run_dir": rel.as_posix(),
        "params": metrics["training"]["params"],
        "seconds_per_epoch": seconds_per_epoch(epoch_seconds),
        "best_epoch": metrics["training"]["best_epoch"],
        "epochs_run": metrics["training"]["epochs_run"],
        "val_mse": Metrics.of(metrics).val.model["mse"],
        "test_mse": model["mse"],
        "test_mae": model["mae"],
        "test_mase": model["mase"],
        "test_skill": model["skill"],
        "test_mse_by_lead": test["per_lead"]["model"]["mse"],
    }


def _stats(values: list) -> tuple[float | None, float | None]:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return None, None
    mean = float(v.mean())
    return mean, (float(v.std(ddof=1)) if len(v) > 1 else None)


def _cell_result(rs: list[dict]) -> dict:
    """Mean and sample std over the seeds of one cell."""
    mean, std = {}, {}
    for key in FIELDS:
        mean[key], std[key] = _stats([r[key] for r in rs])
    lead = np.array([r["test_mse_by_lead"] for r in rs], dtype=np.float64)  # (repeats, H)
    mean["test_mse_by_lead"] = lead.mean(axis=0).tolist()
    std["test_mse_by_lead"] = lead.std(axis=0, ddof=1).tolist() if len(rs) > 1 else None
    return {"mean": mean, "std": std, "runs": rs}


def _baselines(test_metrics: dict) -> dict:
    overall = test_metrics["original"]["overall"]
    lead = test_metrics["original"]["per_lead"]
    return {
        name: {
            "test_mse": s["mse"],
            "test_mae": s["mae"],
            "test_mase": s["mase"],
            "test_skill": s["skill"],
            "test_mse_by_lead": lead[name]["mse"],
        }
        for name, s in overall.items()
        if name != "model"
    }


def ranking(results: dict) -> list[str]:
    """Cells by mean test MSE, best first; cells without one last."""
    return sorted(
        results, key=lambda c: (results[c]["mean"]["test_mse"] is None, results[c]["mean"]["test_mse"] or 0.0)
    )


def record(cfg: Config, cells: list[str], seeds: list[int], runs: dict[str, list[dict]], test_metrics: dict) -> dict:
    """compare.json: per cell the runs and their mean/std, the baselines on the same test windows, the ranking.

    Args:
        runs: cell -> one :func:`run_numbers` dict per seed.
        test_metrics: the test-split metrics of one run (for the baselines, which every run shares).
    """
    results = {cell: _cell_result(runs[cell]) for cell in cells}
    targets = list(test_metrics["original"]["per_target"])
    return {
        "format_version": artifacts.FORMAT_VERSION,
        "name": cfg.name,
        "data": str(cfg.data_path),
        "targets": targets,
        "units": "original (the data's units; MSE in units squared)",
        "target_units": {t: cfg.data.units.get(t, "data units") for t in targets},
        "epochs": cfg.training.epochs,
        "loss": cfg.training.loss,
        "seeds": seeds,
        "cells": cells,
        "ranking": ranking(results),
        "n_test_windows": test_metrics["n_windows"],
        "results": results,
        "baselines": _baselines(test_metrics),
        "overlay": {
            "windows": OVERLAY_WINDOWS,
            "seed": seeds[0],
            "note": "one-step forecasts of the first target on the first test windows of the first series",
        },
    }


# --------------------------------------------------------------------------- plots


def _overlay_axis(data) -> dict:
    """Timestamps of the first target row of every test window of the first series (for the overlay)."""
    starts = data.starts("test", stride=1)
    first = starts[data.series_index(starts) == 0][:OVERLAY_WINDOWS]
    first_targets = windows.target_rows(first, data.input_length, 1)[:, 0]  # (B,) the t+1 row of each window
    return {"starts": first, "times": data.timestamps(first_targets), "target": data.targets[0]}


def _first_steps(ev, overlay: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's t+1 forecasts and the actual values (first target) on the overlay windows, original units."""
    pos = np.searchsorted(ev.starts, overlay["starts"])  # both sorted; the overlay's are a subset
    return ev.forecasts["model"][pos, 0, 0, 0], ev.actual[pos, 0, 0]

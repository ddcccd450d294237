"""Compare cells on identical data: one complete run per cell and seed, a ranked table and comparison plots.

Every run differs from the base config only in ``model.cell`` and ``seed``: same data, splits,
windows, epoch budget and seeds across cells. The comparison directory is written as
``<out>.partial`` and renamed when every run and file is done, so an interrupted comparison
never looks finished::

    <out>/
      config.yaml          the base config (each run changes model.cell and seed)
      compare.json         per cell: parameters, s/epoch, best epoch, val/test metrics, mean/std, run dirs
      compare.md           the ranked table as Markdown
      plots/*.png          val_loss, test_error, error_by_lead, forecast_overlay, params_vs_error, time_per_epoch
      runs/<cell>-seed<N>/ one normal run directory per cell and seed
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import artifacts, windows
from .cells import CELL_NAMES as CELLS
from .config import Config
from .errors import ConfigError, Interrupted, RunError
from .plots import compare_plots  # the figures live in plots.py; kept importable here

OVERLAY_WINDOWS = 200  # test windows shown in forecast_overlay.png
# The numbers per run and cell, in table order; all test/val values in original units.
FIELDS = ("params", "seconds_per_epoch", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase", "test_skill")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_cells(text: str, dense: bool = False) -> list[str]:
    """``"simple_rnn,lstm"`` -> ``["simple_rnn", "lstm"]`` (+ ``"dense"`` when asked), checked against the known cells."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
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
    if dense and "dense" not in cells:
        cells.append("dense")
    return cells


def plan_dir(cfg: Config, out: str | None) -> Path:
    if out:
        return Path(out)
    return Path(cfg.output.runs_dir) / f"{artifacts.slug(cfg.name)}-compare-{time.strftime('%Y%m%d-%H%M%S')}"


def _start(final: Path) -> Path:
    if final.exists():
        raise RunError(
            "the comparison directory already exists", where=str(final), fix="pass another --out or remove it"
        )
    partial = artifacts.partial_of(final)
    if partial.exists():
        raise RunError(
            "an unfinished comparison is already there", where=str(partial), fix="remove it, or pass another --out"
        )
    try:
        partial.mkdir(parents=True)
        (partial / artifacts.MARKER).write_text(
            "This comparison did not finish. It is not a result.\nRun rnnforecast compare again.\n"
        )
    except OSError as e:
        raise RunError(
            f"cannot create the comparison directory ({e.strerror})", where=str(partial), fix="choose a writable --out"
        ) from None
    return partial


# --------------------------------------------------------------------------- running


@dataclass
class CompareResult:
    out: Path
    record: dict  # the content of compare.json
    table: str  # the ranked table, plain text


def compare(
    cfg: Config,
    *,
    config_path: str,
    cells: list[str],
    repeats: int = 1,
    out: str | None = None,
    quiet: bool = False,
) -> CompareResult:
    """Train every cell in ``cells`` with seeds ``cfg.seed .. cfg.seed + repeats - 1`` and compare them.

    Args:
        cfg: the base config; each run replaces only ``model.cell`` and ``seed``.
        config_path: how the user named the config (with ``--set`` options), for resume hints.
        cells: cell names from ``cells.CELL_NAMES``, in the order they are trained.
        repeats: seeds per cell (>= 1); with more than one, tables show mean ± std.
        out: the comparison directory; default ``<runs_dir>/<name>-compare-<time>``.
        quiet: no per-epoch lines.
    """
    from . import pipeline

    if repeats < 1:
        raise ConfigError(
            f"`repeats` must be at least 1. Received: repeats={repeats}",
            where="--repeats",
            fix="pass --repeats 1 or more",
        )
    seeds = [cfg.seed + r for r in range(repeats)]
    configs = {
        (c, s): cfg.replace(**{"model.cell": c, "seed": s}) for c in cells for s in seeds
    }  # config errors before any work
    overlay = _overlay_axis(pipeline.load_data(cfg))  # data errors before any directory exists
    partial = _start(plan_dir(cfg, out))
    (partial / "config.yaml").write_text(
        "# base config of this comparison; each run in runs/ changes only model.cell and seed\n" + cfg.to_yaml()
    )
    runs: dict[str, list[dict]] = {c: [] for c in cells}
    curves: dict[str, list[list[float]]] = {c: [] for c in cells}
    forecasts: dict[str, np.ndarray] = {}
    evaluation = None
    n = len(configs)
    for i, ((cell, seed), run_cfg) in enumerate(configs.items(), 1):
        rel = Path("runs") / f"{cell}-seed{seed}"
        _say(f"[{i}/{n}] {cell}, seed {seed} -> {partial / rel}")
        try:
            result = pipeline.train(
                run_cfg,
                config_path=f"{config_path} --set model.cell={cell} --set seed={seed}",
                run_dir=str(partial / rel),
                quiet=quiet,
            )
        except Interrupted as e:
            raise Interrupted(
                "interrupted; the comparison is unfinished", where=str(partial), fix="run rnnforecast compare again"
            ) from e
        runs[cell].append(_run_numbers(result.run_dir, result.metrics, rel, seed))
        curves[cell].append(_val_losses(result.run_dir))
        if seed == seeds[0]:  # the overlay shows each cell's first seed
            forecasts[cell], overlay["actual"] = _first_steps(result.evaluation, overlay)
            evaluation = evaluation or result.evaluation
    record = _record(cfg, cells, seeds, runs, evaluation)
    table = ranked_table(record)
    artifacts.write_json(partial / "compare.json", record)
    _write_text(partial / "compare.md", markdown(record))
    compare_plots(partial / "plots", record, curves, overlay, forecasts)
    final = artifacts.finish(partial)
    return CompareResult(final, record, f"{table}\n\ncomparison directory: {final}")


def _val_losses(run_dir: Path) -> list[float]:
    import pandas as pd

    history = pd.read_csv(run_dir / "history.csv")
    return history["val_loss"].tolist() if "val_loss" in history else []


def seconds_per_epoch(epoch_seconds: list[float]) -> float | None:
    """Median epoch time, leaving out the first epoch (compilation) when there are others."""
    if not epoch_seconds:
        return None
    return float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds))


def _run_numbers(run_dir: Path, metrics: dict, rel: Path, seed: int) -> dict:
    timing = json.loads((run_dir / "timing.json").read_text())
    test = metrics["test"]["original"]
    model = test["overall"]["model"]
    return {
        "seed": seed,
        "run_dir": rel.as_posix(),
        "params": metrics["training"]["params"],
        "seconds_per_epoch": seconds_per_epoch(timing["epoch_seconds"]),
        "best_epoch": metrics["training"]["best_epoch"],
        "epochs_run": metrics["training"]["epochs_run"],
        "val_mse": metrics["val"]["original"]["overall"]["model"]["mse"],
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


def _record(cfg: Config, cells: list[str], seeds: list[int], runs: dict, ev) -> dict:
    results = {}
    for cell in cells:
        rs = runs[cell]
        mean, std = {}, {}
        for key in FIELDS:
            mean[key], std[key] = _stats([r[key] for r in rs])
        lead = np.array([r["test_mse_by_lead"] for r in rs], dtype=np.float64)  # (repeats, H)
        mean["test_mse_by_lead"] = lead.mean(axis=0).tolist()
        std["test_mse_by_lead"] = lead.std(axis=0, ddof=1).tolist() if len(rs) > 1 else None
        results[cell] = {"mean": mean, "std": std, "runs": rs}
    overall = ev.metrics["original"]["overall"]
    lead = ev.metrics["original"]["per_lead"]
    baselines = {
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
    ranking = sorted(
        cells, key=lambda c: (results[c]["mean"]["test_mse"] is None, results[c]["mean"]["test_mse"] or 0.0)
    )
    return {
        "format_version": artifacts.FORMAT_VERSION,
        "name": cfg.name,
        "data": str(cfg.data_path),
        "targets": list(ev.metrics["original"]["per_target"]),
        "units": "original (the data's units; MSE in units squared)",
        "target_units": {t: cfg.data.units.get(t, "data units") for t in ev.metrics["original"]["per_target"]},
        "epochs": cfg.training.epochs,
        "loss": cfg.training.loss,
        "seeds": seeds,
        "cells": cells,
        "ranking": ranking,
        "n_test_windows": ev.metrics["n_windows"],
        "results": results,
        "baselines": baselines,
        "overlay": {
            "windows": OVERLAY_WINDOWS,
            "seed": seeds[0],
            "note": "one-step forecasts of the first target on the first test windows of the first series",
        },
    }


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- tables

COLUMNS = (  # (header, key, format)
    ("cell", None, None),
    ("params", "params", "{:.0f}"),
    ("s/epoch", "seconds_per_epoch", "{:.3g}"),
    ("best epoch", "best_epoch", "{:.3g}"),
    ("val MSE", "val_mse", "{:.4g}"),
    ("test MSE", "test_mse", "{:.4g}"),
    ("test MAE", "test_mae", "{:.4g}"),
    ("MASE", "test_mase", "{:.3f}"),
    ("skill", "test_skill", "{:.3f}"),
)


def _cell(value, std, fmt: str) -> str:
    if value is None:
        return "n/a"
    text = fmt.format(value)
    return f"{text} ± {std:.2g}" if std is not None else text


def table_rows(record: dict) -> list[list[str]]:
    """Header, then one row per cell (ranked by test MSE), then one per baseline."""
    rows = [[h for h, _, _ in COLUMNS]]
    for cell in record["ranking"]:
        r = record["results"][cell]
        rows.append([cell] + [_cell(r["mean"][k], r["std"][k], f) for _, k, f in COLUMNS[1:]])
    for name, b in record["baselines"].items():
        rows.append([f"({name})"] + [_cell(b[k], None, f) if k in b else "" for _, k, f in COLUMNS[1:]])
    return rows


def ranked_table(record: dict) -> str:
    rows = table_rows(record)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"test split, original units, {record['n_test_windows']} windows, ranked by test MSE"
        + (f"; mean ± std over seeds {record['seeds']}" if len(record["seeds"]) > 1 else f"; seed {record['seeds'][0]}")
    ]
    for r in rows:
        lines.append("  ".join(v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r)).rstrip())
    return "\n".join(lines)


def markdown(record: dict) -> str:
    rows = table_rows(record)
    seeds = record["seeds"]
    out = [
        f"# Cell comparison: {record['name']}",
        "",
        f"Data `{record['data']}`, target(s) {', '.join(record['targets'])}; {record['epochs']} epoch(s) budget; "
        + (f"seeds {seeds[0]}..{seeds[-1]}, values are mean ± sample std." if len(seeds) > 1 else f"seed {seeds[0]}."),
        f"Test split, {record['n_test_windows']} windows, original units (MSE in units squared), ranked by test MSE. "
        "MASE = model MAE / persistence MAE; skill = 1 - model MSE / persistence MSE. "
        "Rows in parentheses are the naive baselines on the same windows.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    out += [
        "",
        "Runs: " + ", ".join(f"`{r['run_dir']}`" for c in record["cells"] for r in record["results"][c]["runs"]),
        "",
    ]
    return "\n".join(out)


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

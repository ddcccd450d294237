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

from . import artifacts
from .config import CELLS, Config
from .errors import ConfigError

OVERLAY_WINDOWS = 200  # test windows shown in forecast_overlay.png
BASELINE_STYLE = {"persistence": ("C7", "--"), "seasonal_naive": ("C8", ":"), "window_mean": ("C9", "-.")}
# The numbers per run and cell, in table order; all test/val values in original units.
FIELDS = ("params", "seconds_per_epoch", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase", "test_skill")


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


def seconds_per_epoch(epoch_seconds: list[float]) -> float | None:
    """Median epoch time, leaving out the first epoch (compilation) when there are others."""
    if not epoch_seconds:
        return None
    return float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds))


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
    return {"starts": first, "times": data.timestamps(first + data.input_length), "target": data.targets[0]}


def _first_steps(ev, overlay: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's t+1 forecasts and the actual values (first target) on the overlay windows, original units."""
    pos = np.searchsorted(ev.starts, overlay["starts"])  # both sorted; the overlay's are a subset
    return ev.forecasts["model"][pos, 0, 0, 0], ev.actual[pos, 0, 0]


def _colors(cells: list[str]) -> dict[str, str]:
    return {c: f"C{i}" for i, c in enumerate(cells)}


def compare_plots(directory: Path, record: dict, curves: dict, overlay: dict, forecasts: dict) -> list[Path]:
    """The six comparison plots.

    Args:
        curves: cell -> one validation-loss list per seed.
        overlay: ``starts``, ``times``, ``target`` and ``actual`` (first target, t+1) of the overlay windows.
        forecasts: cell -> ``(len(starts),)`` t+1 forecasts of its first seed, original units.
    """
    from .plots import _plt, _save

    plt = _plt()
    cells, colors = record["cells"], _colors(record["cells"])
    results, base = record["results"], record["baselines"]
    target = overlay["target"]
    unit = record["target_units"][target]
    units = f"{target}, {unit}" if len(record["targets"]) == 1 else "data units, mean over targets"
    seeds_note = (
        f"mean ± std over {len(record['seeds'])} seeds" if len(record["seeds"]) > 1 else f"seed {record['seeds'][0]}"
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in cells:
        for k, curve in enumerate(curves[cell]):
            ax.plot(
                np.arange(1, len(curve) + 1),
                curve,
                marker="o",
                ms=3,
                color=colors[cell],
                alpha=1 if k == 0 else 0.4,
                label=cell if k == 0 else None,
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        title="Validation loss per epoch, all cells",
        xlabel="epoch",
        ylabel=f"validation {record['loss']} (scaled units)",
    )
    ax.legend()
    _save(fig, directory / "val_loss.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(cells))
    for ax, key, label in ((axes[0], "test_mse", f"MSE ({units}²)"), (axes[1], "test_mae", f"MAE ({units})")):
        means = [results[c]["mean"][key] or np.nan for c in cells]
        stds = [results[c]["std"][key] or 0.0 for c in cells]
        ax.bar(x, means, yerr=stds if len(record["seeds"]) > 1 else None, capsize=4, color=[colors[c] for c in cells])
        for name, b in base.items():
            color, ls = BASELINE_STYLE.get(name, ("grey", "--"))
            ax.axhline(b[key], color=color, ls=ls, lw=1.2, label=name)
        ax.set_xticks(x, cells)
        ax.set(title=f"Test {key[5:].upper()} per cell ({seeds_note})", xlabel="cell", ylabel=label)
        ax.legend(fontsize=8)
    _save(fig, directory / "test_error.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in cells:
        mse = results[cell]["mean"]["test_mse_by_lead"]
        ax.plot(np.arange(1, len(mse) + 1), mse, marker="o", color=colors[cell], lw=2, label=cell)
    p = base.get("persistence")
    if p:
        ax.plot(
            np.arange(1, len(p["test_mse_by_lead"]) + 1),
            p["test_mse_by_lead"],
            color="C7",
            ls="--",
            label="persistence",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        title=f"Test MSE by lead time per cell ({seeds_note})",
        xlabel="lead time (steps ahead)",
        ylabel=f"MSE ({units}²)",
    )
    ax.legend()
    _save(fig, directory / "error_by_lead.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(overlay["times"], overlay["actual"], color="black", lw=1.4, label="actual")
    for cell in cells:
        ax.plot(overlay["times"], forecasts[cell], color=colors[cell], lw=1, alpha=0.9, label=f"{cell} (t+1)")
    ax.set(
        title=f"{target}: actual and each cell's one-step forecast, first {len(overlay['starts'])} test windows",
        xlabel="time",
        ylabel=f"{target} ({unit})",
    )
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    _save(fig, directory / "forecast_overlay.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cell in cells:
        m, s = results[cell]["mean"], results[cell]["std"]
        ax.errorbar(
            m["params"], m["test_mse"], yerr=s["test_mse"], fmt="o", ms=8, capsize=4, color=colors[cell], label=cell
        )
        ax.annotate(cell, (m["params"], m["test_mse"]), textcoords="offset points", xytext=(6, 6), fontsize=9)
    if p:
        ax.axhline(p["test_mse"], color="C7", ls="--", lw=1.2, label="persistence")
    params = [results[c]["mean"]["params"] for c in cells]
    if max(params) > 10 * min(params):
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    scale = " (log scale)" if max(params) > 10 * min(params) else ""
    ax.set(title="Parameters vs. test MSE", xlabel=f"parameters{scale}", ylabel=f"test MSE ({units}²)")
    ax.legend(fontsize=8)
    _save(fig, directory / "params_vs_error.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    secs = [results[c]["mean"]["seconds_per_epoch"] or np.nan for c in cells]
    errs = [results[c]["std"]["seconds_per_epoch"] or 0.0 for c in cells]
    ax.bar(x, secs, yerr=errs if len(record["seeds"]) > 1 else None, capsize=4, color=[colors[c] for c in cells])
    ax.set_xticks(x, cells)
    ax.set(
        title="Training time per epoch (median, first epoch excluded when possible)",
        xlabel="cell",
        ylabel="seconds per epoch",
    )
    _save(fig, directory / "time_per_epoch.png")
    return sorted(directory.glob("*.png"))

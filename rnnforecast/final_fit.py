"""The final fit: after the held-out evaluation, the same model trained again on every row; that model forecasts.

The held-out run (train split, early stopping on val, scored on test) decides how many epochs to train and
gives the scores in metrics.json and the intervals' calibration. The final fit then trains a fresh model with
the same config and seed on every row of every series (``series.build(..., train_all=True)``: the scaler is
fitted on every row too) for exactly the epoch count early stopping chose, with early stopping off. The run
directory's ``model.keras`` and ``scaler.json`` are the final model's (what predict, export, the API and the
server load); the held-out model and its scaler stay in ``heldout/``, which ``evaluate`` on the run's own
data reads so that it rebuilds the saved held-out scores.

Resumable: the final fit checkpoints into ``final-checkpoint/`` like any training; a resumed run whose
held-out training had finished goes straight to it and continues from its last committed epoch.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .series import SeriesData, build

HELDOUT = "heldout"  # the held-out model.keras and scaler.json in a run directory
CHECKPOINT = "final-checkpoint"  # the final fit's checkpoint inside a .partial run directory


@dataclass
class FinalFit:
    model: object
    data: SeriesData  # every row in the training split; its scaler fitted on every row
    epochs: int
    seconds: float


def final_config(cfg: Config, epochs: int) -> Config:
    """``cfg`` for the final fit: ``epochs`` epochs, no early stopping (no held-out rows left to stop on)."""
    return cfg.replace(
        **{"training.epochs": max(1, epochs), "training.early_stopping": None, "output.tensorboard": False}
    )


def refit(cfg: Config, data: SeriesData, epochs: int, partial: Path, quiet: bool = False) -> FinalFit:
    """Train the final model on every row of ``data``'s frame for ``epochs`` epochs (resuming its checkpoint)."""
    from .pipeline import fit_model, new_model  # the one training step; pipeline imports this module

    full = build(data.frame, cfg, train_all=True)
    if epochs == 0:  # no epoch beat the untrained residual model: the final model is that start, its baseline
        if not quiet:
            print("final fit: 0 epochs (the baseline was kept), scaler fitted on every row", file=sys.stderr)
        return FinalFit(new_model(cfg, full), full, 0, 0.0)
    fcfg = final_config(cfg, epochs)
    ckpt = partial / CHECKPOINT
    state_file = ckpt / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    if not quiet:
        print(f"final fit: {fcfg.training.epochs} epoch(s) on every row, seed {cfg.seed}", file=sys.stderr, flush=True)
    # no epoch lines: those on stderr are the held-out training's (one per epoch of history.csv)
    model, _, seconds = fit_model(fcfg, full, ckpt, quiet=True, state=state)
    return FinalFit(model, full, fcfg.training.epochs, seconds)


def record(final: FinalFit | None, reason: str | None = None) -> dict:
    """metrics.json's ``forecast_model``: which model forecasts, and why the scores above are held-out ones."""
    if final is None:
        return {"model": "held-out", "final_fit": False, **({"note": reason} if reason else {})}
    rows = sum(hi - lo for lo, hi in final.data.bounds("train"))
    return {
        "model": "final",
        "final_fit": True,
        "epochs": final.epochs,
        "training_rows": int(rows),  # its seconds are in timing.json: metrics.json is reproducible byte for byte
        "note": "model.keras was trained again on every row for the epochs early stopping chose; the scores and "
        "the intervals' calibration are the held-out model's (kept in heldout/)",
    }


def summary_line(rec: dict, intervals: bool) -> str:
    """What ``train`` prints under its table about the final fit."""
    bands = "; the intervals keep their held-out calibration" if intervals else ""
    return (
        f"forecasts come from the final model, trained again on every row ({rec['training_rows']} rows, "
        f"{rec['epochs']} epochs); the scores above are the held-out model's (heldout/){bands}"
    )


def save_heldout(partial: Path, model, data: SeriesData) -> None:
    """The held-out model and its scaler, in ``heldout/`` of the run."""
    from . import artifacts

    (partial / HELDOUT).mkdir(exist_ok=True)
    artifacts.save_model(model, partial / HELDOUT / "model.keras")
    artifacts.write_atomic(partial / HELDOUT / artifacts.SCALER, artifacts.scaler_json(data.scaler))


def heldout_dir(run_dir: Path) -> Path | None:
    """``heldout/`` of a final-fit run, or None."""
    d = Path(run_dir) / HELDOUT
    return d if (d / "model.keras").exists() else None


def trained_on(run, data_path: str | None, table) -> bool:
    """True when ``run`` has a held-out model and the data named are the rows its final model trained on: its own
    data, its own file passed again, or a table with the same rows (by SHA-256). Decided before reading a file."""
    if heldout_dir(run.path) is None:
        return False
    if table is not None:
        from .data import table_sha256

        return table_sha256(table) == run.metrics.get("data_sha256")
    own = run.config.data_path
    return data_path is None or (own is not None and Path(data_path).resolve() == Path(own).resolve())


def cleanup(partial: Path) -> None:
    shutil.rmtree(partial / CHECKPOINT, ignore_errors=True)

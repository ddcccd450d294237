"""The final fit: after the held-out evaluation, the same model trained again on every row; that model forecasts.

The held-out run (train split, early stopping on val, scored on test) decides how many epochs to train and
gives the scores in metrics.json and the intervals' calibration. The final fit then trains a fresh model with
the same config and seed on every row of every series (``series.build(..., train_all=True)``: the scaler is
fitted on every row too) for exactly the epoch count early stopping chose, with early stopping off. The run
directory's ``model.keras`` and ``scaler.json`` are the final model's (what predict, export, the API and the
server load); the held-out model and its scaler stay in ``heldout/``, which ``evaluate`` on the run's own
data reads so that it rebuilds the saved held-out scores.

A seed ensemble (``model.ensemble``) refits every member: member ``i`` with seed ``seed + i`` for the epochs its own
early stopping chose; the held-out members move to ``heldout/members/``.

Resumable: the final fit checkpoints into ``final-checkpoint/`` (member ``i`` of an ensemble into
``final-checkpoint-<i>/``) like any training; a resumed run whose held-out training had finished goes straight to it
and continues from its last committed epoch.
"""

from __future__ import annotations

import json
import os
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
    model: object  # a Keras model, or an Ensemble of the refitted members
    data: SeriesData  # every row in the training split; its scaler fitted on every row
    epochs: int  # member 0's
    seconds: float  # all members'
    member_epochs: list[int] | None = None  # a seed ensemble's, one per member


def final_config(cfg: Config, epochs: int) -> Config:
    """``cfg`` for the final fit: ``epochs`` epochs, no early stopping (no held-out rows left to stop on)."""
    return cfg.replace(
        **{"training.epochs": max(1, epochs), "training.early_stopping": None, "output.tensorboard": False}
    )


def refit(cfg: Config, data: SeriesData, epochs: int | list[int], partial: Path, quiet: bool = False) -> FinalFit:
    """Train the final model on every row of ``data``'s frame for ``epochs`` epochs (resuming its checkpoint); a
    list gives one count per seed-ensemble member, member ``i`` trained with seed ``cfg.seed + i``."""
    from .numpy_model import Ensemble

    counts = [epochs] if isinstance(epochs, int) else list(epochs)
    full = build(data.frame, cfg, train_all=True)
    if len(counts) == 1:
        model, seconds = refit_one(cfg, full, counts[0], partial / CHECKPOINT, quiet, 1)
        return FinalFit(model, full, counts[0], seconds)
    models, seconds = _refit_members(cfg, full, counts, partial, quiet)
    return FinalFit(Ensemble(models), full, counts[0], seconds, counts)


def _refit_members(cfg: Config, full: SeriesData, counts: list[int], partial: Path, quiet: bool):
    """A seed ensemble's members on every row: member 0 here; the others here after it, or, with
    ``runtime.workers`` > 1, in ``workers - 1`` local worker processes meanwhile (as ``pipeline.fit_ensemble``
    trains them). Same seeds, same numbers either way; each resumes its own checkpoint. ``(models, seconds)``."""
    import contextlib

    from .errors import TrainingError
    from .executor import WorkerDied
    from .many import Many
    from .pipeline import FinalMember, _say  # a task class lives with the others; predict never imports it

    n = len(counts)
    pool = None
    if cfg.runtime.workers > 1:
        from .executor import LocalExecutor

        pool = LocalExecutor(min(cfg.runtime.workers - 1, n - 1))
        _say(f"final fit of ensemble members 2..{n} in {pool.workers} worker process(es)")
    tasks = [
        FinalMember(
            label=f"the final fit of ensemble member {i + 1}",
            out=partial,
            seed=cfg.seed + i,
            cfg=cfg,
            full=full,
            i=i,
            epochs=counts[i],
            quiet=quiet or pool is not None,  # lines of parallel members would interleave
            n_members=n,
        )
        for i in range(1, n)
    ]
    with pool or contextlib.nullcontext(), Many(tasks, pool) as many:  # Ctrl-C stops the workers
        model, seconds = refit_one(cfg, full, counts[0], partial / CHECKPOINT, quiet, n)
        try:
            others = many.results()
        except WorkerDied as e:
            raise TrainingError(
                str(e),
                where=str(partial),
                fix="train again (it resumes); with runtime.workers: 1 the members train here",
            ) from None
    return [model, *(m["model"] for m in others)], seconds + sum(m["seconds"] for m in others)


def checkpoint_name(i: int) -> str:
    """The final-fit checkpoint directory of ensemble member ``i`` (0: the run's own model)."""
    return CHECKPOINT if i == 0 else f"{CHECKPOINT}-{i}"


def refit_one(cfg: Config, full: SeriesData, epochs: int, ckpt: Path, quiet: bool, n_members: int):
    """One model on every row: ``(model, seconds)``."""
    from .pipeline import fit_model, new_model  # the one training step; pipeline imports this module

    who = f"member seed {cfg.seed}" if n_members > 1 else f"seed {cfg.seed}"
    if epochs == 0:  # no epoch beat the untrained residual model: the final model is that start, its baseline
        if not quiet:
            print(f"final fit ({who}): 0 epochs (the baseline was kept), scaler fitted on every row", file=sys.stderr)
        return new_model(cfg, full), 0.0
    fcfg = final_config(cfg, epochs)
    state_file = ckpt / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    if not quiet:
        print(f"final fit: {fcfg.training.epochs} epoch(s) on every row, {who}", file=sys.stderr, flush=True)
    # no epoch lines: those on stderr are the held-out training's (one per epoch of history.csv)
    model, _, seconds = fit_model(fcfg, full, ckpt, quiet=True, state=state)
    return model, seconds


def record(final: FinalFit | None, reason: str | None = None) -> dict:
    """metrics.json's ``forecast_model``: which model forecasts, and why the scores above are held-out ones."""
    if final is None:
        return {"model": "held-out", "final_fit": False, **({"note": reason} if reason else {})}
    rows = sum(hi - lo for lo, hi in final.data.bounds("train"))
    which = "model.keras and members/ were" if final.member_epochs else "model.keras was"
    return {
        "model": "final",
        "final_fit": True,
        "epochs": final.epochs,
        **({"member_epochs": final.member_epochs} if final.member_epochs else {}),
        "training_rows": int(rows),  # its seconds are in timing.json: metrics.json is reproducible byte for byte
        "note": f"{which} trained again on every row for the epochs early stopping chose; the scores and "
        "the intervals' calibration are the held-out model's (kept in heldout/)",
    }


def summary_line(rec: dict, intervals: bool) -> str:
    """What ``train`` prints under its table about the final fit."""
    bands = "; the intervals keep their held-out calibration" if intervals else ""
    members = rec.get("member_epochs")
    what = f"the final model, trained again on every row ({rec['training_rows']} rows, {rec['epochs']} epochs)"
    if members:
        what = (
            f"the final ensemble, its {len(members)} members trained again on every row ({rec['training_rows']} "
            f"rows, {' / '.join(map(str, members))} epochs)"
        )
    return f"forecasts come from {what}; the scores above are the held-out model's (heldout/){bands}"


def save_heldout(partial: Path, model, data: SeriesData, n_members: int = 1) -> None:
    """The held-out model and its scaler, in ``heldout/`` of the run; a seed ensemble's other members (saved by
    training in ``members/``) move to ``heldout/members/``, where ``heldout_paths`` finds them."""
    from . import artifacts
    from .numpy_model import Ensemble

    held = partial / HELDOUT
    held.mkdir(exist_ok=True)
    artifacts.save_model(model.members[0] if isinstance(model, Ensemble) else model, held / artifacts.MODEL)
    for i in range(1, n_members):
        artifacts.member_path(held, i).parent.mkdir(exist_ok=True)
        os.replace(artifacts.member_path(partial, i), artifacts.member_path(held, i))
    artifacts.write_atomic(held / artifacts.SCALER, artifacts.scaler_json(data.scaler))


def heldout_paths(held: Path, n_members: int) -> list[Path]:
    """The held-out model files of a run's ``heldout/``: model.keras, then a seed ensemble's members."""
    from . import artifacts

    return [held / artifacts.MODEL, *(artifacts.member_path(held, i) for i in range(1, n_members))]


def heldout_dir(run_dir: Path) -> Path | None:
    """``heldout/`` of a final-fit run, or None."""
    d = Path(run_dir) / HELDOUT
    return d if (d / "model.keras").exists() else None


def trained_on(run, data_path: str | None, table) -> bool:
    """True when ``run`` has a held-out model and the data named are the rows its final model trained on: its own
    data, its own file passed again, a copy of it, or a table with the same rows (by SHA-256). Decided before the
    data is parsed."""
    if heldout_dir(run.path) is None:
        return False
    if table is not None:
        from .data import table_sha256

        return table_sha256(table) == run.metrics.get("data_sha256")
    own = run.config.data_path
    if data_path is None or (own is not None and Path(data_path).resolve() == Path(own).resolve()):
        return True
    from .artifacts import sha256

    try:
        if not Path(data_path).is_file():
            return False
        if own is not None and Path(own).is_file() and Path(own).stat().st_size != Path(data_path).stat().st_size:
            return False  # not a copy: no second read of a large file to hash it
        return sha256(data_path) == run.metrics.get("data_sha256")
    except OSError:  # unreadable: reading the data says so, with its fix
        return False


def in_sample_note(run, data: SeriesData, starts) -> str | None:
    """A final model scored on other data (``data``'s windows ``starts``): windows whose first target lies on or
    before the last row the final model trained on (schema.json's ``last_timestamp`` of their series) are scored
    in-sample. Says how many, or None."""
    import numpy as np
    import pandas as pd

    last = run.schema.get("last_timestamp") or {}
    if heldout_dir(run.path) is None or not len(starts) or not last:
        return None
    first = np.asarray(starts, dtype=np.int64) + data.input_length  # each window's first target row
    names = [data.segments[i].series for i in data.series_index(first)]
    times = data.timestamps(first)
    ends = pd.DatetimeIndex([pd.Timestamp(last[n]) if n in last else pd.NaT for n in names])
    inside = int((times <= ends).sum())  # NaT (a series the run never saw) compares False
    if not inside:
        return None
    from .text import dates_only, time_text

    newest = max(pd.Timestamp(last[n]) for n in set(names) if n in last)
    shown = time_text(newest, dates_only(data.timestamps(first)))  # a date for daily data
    return (
        f"warning: {inside} of {len(starts)} scored windows forecast rows up to {shown}, which the final model "
        "trained on (training.final_fit): their scores are in-sample. Fix: score rows after those, or pass the "
        "run's own data file to score its held-out model"
    )


def is_checkpoint(name: str) -> bool:
    """A final-fit checkpoint directory's name (``checkpoint_name``)."""
    return name == CHECKPOINT or (name.startswith(f"{CHECKPOINT}-") and name[len(CHECKPOINT) + 1 :].isdigit())


def cleanup(partial: Path) -> None:
    for d in partial.iterdir():
        if is_checkpoint(d.name):
            shutil.rmtree(d, ignore_errors=True)

"""The one pipeline: config -> frame -> scaled series -> windows -> model -> metrics, plots, run directory.

One function per command (validate, train, evaluate, predict, compare, inspect), each composing the
stages; none of them needs click. Keras is imported only by the functions that train or load a model,
after the backend is chosen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts, backend, nextsteps, plots, text, windows
from . import backtest as B
from . import compare as C
from . import final_fit as FF
from . import intervals as I
from . import short_series as SS
from .config import Config, cuda_path_warning
from .data import Frame, load_source
from .errors import DISK_FULL_FIX, ExitCode, Interrupted, RunError, Terminated, TrainingError, disk_full
from .executor import WorkerDied
from .folds import Fold
from .forecaster import (  # noqa: F401 (scoring and forecasting live in forecaster; these names stay importable here)
    Evaluation,
    Forecaster,
    add_intervals,
    calibrate,
    empty_forecast,
    evaluate_model,
    filled_history_warnings,
    forecast_table,
    msis_scale,
    norm_scale,
    open_run_with_data,
)
from .internals import inspect_model
from .many import Many, Task, run_many
from .models import build_model, model_quantiles
from .predictions import predictions_table
from .records import Schema
from .scaling import Scaler
from .series import SeriesData, build
from .series import settle as settle_config

_say = text.say


# --------------------------------------------------------------------------- validate


def settle(cfg: Config, table: pd.DataFrame | None = None) -> tuple[Config, SeriesData]:
    """The config with its ``auto`` values decided for its data (:func:`series.settle`), and the data (``table``
    when given, else ``data.sql`` or ``data.path``) split and scaled as that config says; series too short for
    the model set apart (:mod:`short_series`)."""
    frame = SS.set_apart(load_source(cfg, table), cfg)
    cfg = settle_config(frame, cfg)
    return cfg, build(frame, cfg)


def load_data(cfg: Config, table: pd.DataFrame | None = None) -> SeriesData:
    """The data of :func:`settle`."""
    return settle(cfg, table)[1]


def stationarity_hints(data: SeriesData) -> dict[str, float]:
    """Share of test-split target values outside the training split's range, per target."""
    out = {}
    for j, col in zip(data.target_idx, data.targets):
        outside = total = 0
        for s in data.segments:
            tr = data.raw[slice(*s.bounds["train"]), j]
            te = data.raw[slice(*s.bounds["test"]), j]
            outside += int(((te < tr.min()) | (te > tr.max())).sum())
            total += len(te)
        out[col] = outside / total if total else 0.0
    return out


FILLED_SHARE = 0.5  # a validation split more filled than observed calibrates bands on invented values


def filled_validation_warnings(data: SeriesData, cfg: Config) -> list[str]:
    """Targets whose validation values were mostly filled by the tool (gap rows, missing cells interpolated): the
    interval bands are calibrated on residuals against those invented values, so their width means little."""
    if cfg.intervals is None or not cfg.intervals.levels or data.frame.filled is None:
        return []
    out = []
    for t, col in enumerate(data.targets):
        spans = [s.bounds["val"] for s in data.segments]
        n = sum(hi - lo for lo, hi in spans)
        k = sum(int(data.frame.filled[lo:hi, t].sum()) for lo, hi in spans)
        if n and k / n > FILLED_SHARE:
            out.append(
                f"warning: {k} of the {n} validation values of {col!r} ({k / n:.0%}) were missing and filled "
                f"(data.missing: {cfg.data.missing}): the intervals are calibrated against values nobody observed. "
                "Fix: move the validation split onto observed rows (data.split.val_start), or fill the gap in the data"
            )
    return out


def validate(cfg: Config) -> str:
    """The validate report of ``cfg`` and its data; trains nothing."""
    settled, data = settle(cfg)
    return text.describe(settled, data, stationarity_hints(data), asked=cfg)


# --------------------------------------------------------------------------- train


@dataclass
class TrainResult:
    run_dir: Path
    evaluation: Evaluation  # the test split
    metrics: dict  # the content of metrics.json
    table: str  # what `train` prints
    history: pd.DataFrame  # the content of history.csv
    timing: dict  # the content of timing.json
    forecast: pd.DataFrame | None = None  # the content of forecast.csv
    decimals: dict = field(default_factory=dict)  # per target, the decimals the data is recorded with
    latest: tuple | None = None  # (runs/<name>-latest or None, note) when the run went to the default runs_dir


def train(
    cfg: Config,
    *,
    config_path: str,
    run_dir: str | None = None,
    resume: str | None = None,
    quiet: bool = False,
    split: str = "test",
    callbacks: list | tuple = (),
    table: pd.DataFrame | None = None,
    force_resume: bool = False,
) -> TrainResult:
    """Train as ``cfg`` says and write a complete run directory (or raise, leaving a marked partial one).

    ``split`` is the split the run is scored on; ``tune`` trials pass "val" so the test split stays unseen.
    ``callbacks`` are extra Keras callbacks (tune's pruning callback). ``table``: the data as a DataFrame
    (the Python API) instead of ``data.path``. ``force_resume`` resumes although the config or data changed
    since the run started.
    """
    backend_name = backend.activate(cfg.runtime.backend)
    backend.check_distribution(cfg.runtime.distribution, backend_name)
    cfg, data = settle(cfg, table)
    hints = [*text.hint_lines(stationarity_hints(data), cfg, data.level_shift()), *text.setup_notes(cfg, data)]
    for line in [*data.frame.warnings, *filled_validation_warnings(data, cfg), *hints]:
        _say(line)
    warn = cuda_path_warning(cfg)
    if warn:
        _say(f"warning: {warn}")

    if resume:
        partial, notes = artifacts.resume_dir(resume, cfg, force=force_resume, source_sha256=data.frame.source_sha256)
        for line in notes:
            _say(line)
        state = artifacts.read_state(partial)
    else:
        planned = artifacts.plan_run_dir(cfg, run_dir)
        keys = artifacts.resume_keys(cfg, data.frame.source_sha256)
        partial = artifacts.start(planned, config_path, record=keys, numbered=run_dir is None)
        state = None
    with artifacts.kept_on_failure(partial, config_path, cfg.training.epochs):
        result = _train_into(partial, cfg, data, state, backend_name, quiet, split, callbacks)
    if run_dir is None and result.run_dir.parent.resolve() == cfg.runs_path:  # not compare's, tune's or --run-dir's
        result.latest = nextsteps.update_latest(result.run_dir, artifacts.slug(cfg.name))
    return result


def _train_into(
    partial: Path,
    cfg: Config,
    data: SeriesData,
    state: dict | None,
    backend_name: str,
    quiet: bool,
    split: str = "test",
    callbacks: list | tuple = (),
) -> TrainResult:
    artifacts.write_config(partial, cfg)
    forecaster, fitted = Forecaster.fit(cfg, data, partial, quiet=quiet, state=state, callbacks=callbacks)
    val = forecaster.score(data, "val")
    forecaster.calibrate(val)
    test = forecaster.score(data, split, val=val)  # a tune trial (split "val") never touches test
    if split == "test":
        forecaster.adapt(test)  # adaptive bands: forecasts past the data start where the test split left them
    record = _run_record(cfg, data, forecaster, fitted, test, val, backend_name, split)
    refit = _final_fit(cfg, data, fitted, partial, split, forecaster, quiet)
    forecasting, f_data = _forecasting(forecaster, refit, data, record, test, "not for tune trials")
    timing = artifacts.timing_record(fitted.seconds, fitted.fit.epoch_seconds) | (
        {"final_fit_seconds": refit.seconds} if refit else {}
    )
    history = artifacts.history_table(fitted.fit.history, fitted.fit.epochs_run)
    # data.future columns need horizon rows (predict --data), which training data lacks
    table = forecasting.forecast(f_data) if data.can_forecast() else empty_forecast(data.targets)
    forecasting.write_into(partial)
    artifacts.write_run(partial, history=history, metrics=record, timing=timing, forecast=table)
    FF.cleanup(partial)
    if cfg.output.plots:
        plots.run_plots(partial / "plots", fitted.fit.history, fitted.fit.best_epoch, test, data)
        if data.can_forecast():  # the forecast past the data's end, as a fan chart (the report's first figure)
            draw_forecast(table, f_data, partial / "plots" / "forecast_next.png", forecaster.calibration)
    if cfg.output.tensorboard:
        from .fit import log_lead_scores  # imports Keras

        log_lead_scores(partial / "tensorboard", val.metrics)
    final = artifacts.finish(partial)
    summary = text.train_summary(test, record, fitted.seconds, final.resolve())  # absolute: runs_dir may be ../..
    if record["forecast_model"]["final_fit"]:
        head, _, last = summary.rpartition("\n")  # the final-fit line above the last one, which names the run
        summary = f"{head}\n{FF.summary_line(record['forecast_model'], forecaster.calibration is not None)}\n{last}"
    decimals = nextsteps.target_decimals(data)
    return TrainResult(final, test, record, summary, history, timing, table, decimals)


def _run_record(cfg: Config, data: SeriesData, forecaster, fitted, test, val, backend_name: str, split: str) -> dict:
    """metrics.json of a trained run (``artifacts.metrics_record``)."""
    extra = {
        "stationarity": stationarity_hints(data),
        "backend": backend_name,
        "devices": backend.batch_split(),  # how many devices each batch was split over (runtime.distribution)
        "versions": backend.versions(),
        "data_sha256": data.frame.source_sha256,  # the rows of a SQL source or DataFrame; None: the file is hashed
    }
    if fitted.members:
        extra["ensemble"] = artifacts.ensemble_record(cfg.seed, fitted.fit, fitted.members)
    params = int(forecaster.model.count_params())
    return artifacts.metrics_record(cfg, test.metrics, val.metrics, fitted.fit, params, extra, split)


def _final_fit(cfg: Config, data: SeriesData, fitted, partial: Path, split: str, forecaster: Forecaster, quiet: bool):
    """The final fit on every row when ``training.final_fit`` asks (not for a tune trial); the held-out model (or
    ensemble members) is kept in ``heldout/``. A seed ensemble refits each member for its own best epoch count."""
    if not cfg.training.final_fit or split != "test":  # metrics.json forecast_model says which
        return None
    FF.save_heldout(partial, forecaster.model, data, 1 + len(fitted.members))
    epochs = [fitted.fit.best_epoch, *(m["fit"].best_epoch for m in fitted.members)]
    return FF.refit(cfg, data, epochs if fitted.members else epochs[0], partial, quiet)


def _forecasting(
    forecaster: Forecaster, refit, data: SeriesData, record: dict, test, skipped: str
) -> tuple[Forecaster, SeriesData]:
    """The forecaster whose model.keras and scaler.json the run keeps (the final fit's, else the held-out one), the
    data it forecasts from, and metrics.json's ``forecast_model`` and ``short_series`` (added to ``record``).

    The final model keeps the held-out calibration; the series too short for the model are forecast by the naive
    baseline that scored better on the test split (:mod:`short_series`)."""
    final_fit = forecaster.config.training.final_fit
    record["forecast_model"] = FF.record(refit, None if refit or not final_fit else skipped)
    short_by = SS.best_baseline(test.metrics) if data.frame.short is not None else None
    if short_by:
        record["short_series"] = SS.record(data.frame, short_by)
    changes = {"short_by": short_by, "season_length": test.metrics["season_length"]}
    if refit:
        changes |= {"model": refit.model, "scaler": refit.data.scaler}
    return dataclasses.replace(forecaster, **changes), refit.data if refit else data


def fit_model(
    cfg: Config,
    data: SeriesData,
    checkpoint_dir: Path,
    *,
    quiet: bool = False,
    state: dict | None = None,
    callbacks: list | tuple = (),
):
    """The one training step of every command: seed, build and compile (or restore ``state``), fit on
    ``data``'s train split with early stopping on its val split. Returns ``(model, FitResult, seconds)``."""
    from . import fit as T  # imports Keras

    _seed(cfg)
    model = _resumed_model(checkpoint_dir, cfg, state) if state is not None else _built_model(cfg, data)
    t0 = time.perf_counter()
    fit = T.fit(model, data, cfg, checkpoint_dir, quiet=quiet, resume_state=state, extra_callbacks=callbacks)
    return model, fit, time.perf_counter() - t0 + fit.earlier_seconds  # a resumed training counts its earlier epochs


def new_model(cfg: Config, data: SeriesData):
    """The untrained, compiled model of ``cfg`` for ``data``, seeded as ``fit_model`` seeds it (the same weights)."""
    _seed(cfg)
    return _built_model(cfg, data)


def _seed(cfg: Config) -> None:
    backend.seed_everything(cfg.seed, cfg.runtime.deterministic)
    backend.distribute(cfg.runtime.distribution, cfg.training.batch_size)  # before the model's variables exist


def _built_model(cfg: Config, data: SeriesData):
    from . import fit as T  # imports Keras

    model = build_model(
        cfg.model,
        cfg.window.input_length,
        data.framing.network_inputs,
        cfg.window.horizon,
        data.framing.network_targets,
        cfg.seed,
        n_future=len(data.future_idx),
        quantiles=model_quantiles(cfg),
        context=len(data.targets) if data.framing.independent else 0,
    )
    T.compile_model(model, cfg)
    return model


def fit_ensemble(
    cfg: Config, data: SeriesData, partial: Path, *, quiet: bool, state: dict | None, callbacks: list | tuple = ()
):
    """Member 0 (the run's own training, resumable from ``state``) and the other members of a seed ensemble.

    With ``runtime.workers`` > 1, members 1..N-1 train in ``workers - 1`` local worker processes (the executor)
    while member 0 trains here; else here, one after another, after it. Same seeds, same numbers either way.
    Resuming an interrupted ensemble resumes member 0 from its checkpoint and trains the other members again.

    Returns:
        ``(model, fit, seconds, members)``: member 0's model, FitResult and training seconds, and one
        ``{"model", "fit", "seconds"}`` per other member (none for a single model), in member order.
    """
    n = cfg.model.ensemble
    pool = None
    if n > 1 and cfg.runtime.workers > 1:
        from .executor import LocalExecutor

        pool = LocalExecutor(min(cfg.runtime.workers - 1, n - 1))
        _say(f"ensemble members 2..{n} (seeds {cfg.seed + 1}..{cfg.seed + n - 1}) in {pool.workers} worker process(es)")
    quiet_members = quiet or pool is not None  # epoch lines of parallel members would interleave
    tasks = [
        Member(
            label=f"ensemble member {i + 1}",
            out=partial,
            seed=cfg.seed + i,
            cfg=cfg,
            data=data,
            i=i,
            quiet=quiet_members,
        )
        for i in range(1, n)
    ]

    def announce(k: int, m: Member) -> None:
        _say(f"ensemble member {m.i + 1} of {n} (seed {m.seed})")

    with pool or contextlib.nullcontext(), Many(tasks, pool, on_start=announce) as many:  # Ctrl-C stops the workers
        model, fit, seconds = fit_model(
            cfg, data, partial / "checkpoint", quiet=quiet, state=state, callbacks=callbacks
        )
        try:
            members = many.results()
        except WorkerDied as e:
            raise TrainingError(
                str(e), where=str(partial), fix="train again; with runtime.workers: 1 the members train in this process"
            ) from None
    return model, fit, seconds, members


@dataclass(frozen=True, kw_only=True)
class Member(Task):
    """Member ``i`` (1..N-1) of a seed ensemble: ``cfg`` with seed ``cfg.seed + i`` trained on ``data``, saved to
    ``members/<i>.keras`` in the run directory ``out``."""

    cfg: Config
    data: SeriesData
    i: int
    quiet: bool

    def run(self) -> dict:
        backend.activate(self.cfg.runtime.backend)  # a no-op here; a worker process chooses its backend
        member_cfg = self.cfg.replace(**{"seed": self.seed, "output.tensorboard": False})
        path = artifacts.member_path(self.out, self.i)
        checkpoint = path.with_suffix(".checkpoint")
        model, fit, seconds = fit_model(member_cfg, self.data, checkpoint, quiet=self.quiet)
        artifacts.save_model(model, path)
        shutil.rmtree(checkpoint, ignore_errors=True)  # made by fit_model a moment ago
        return {"model": model, "fit": fit, "seconds": seconds}

    def to_driver(self, result: dict) -> dict:
        """The model goes back through ``members/<i>.keras``, the rest as plain data."""
        return {"fit": dataclasses.replace(result["fit"], model=None), "seconds": result["seconds"], "pid": os.getpid()}

    def from_worker(self, result: dict) -> dict:
        return {"model": artifacts.load_model(artifacts.member_path(self.out, self.i)), **result}


@dataclass(frozen=True, kw_only=True)
class FinalMember(Task):
    """Member ``i`` (1..N-1) of a seed ensemble trained again on every row (``full``) for ``epochs`` epochs with
    seed ``cfg.seed + i``, resuming ``final-checkpoint-<i>`` of the run directory ``out``; the model goes back to the
    driver through ``final-checkpoint-<i>/final.keras`` (the run keeps it as ``members/<i>.keras``)."""

    cfg: Config
    full: SeriesData
    i: int
    epochs: int
    quiet: bool
    n_members: int

    def run(self) -> dict:
        backend.activate(self.cfg.runtime.backend)  # a no-op here; a worker process chooses its backend
        member_cfg = self.cfg.replace(**{"seed": self.seed})
        model, seconds = FF.refit_one(member_cfg, self.full, self.epochs, self._checkpoint, self.quiet, self.n_members)
        return {"model": model, "seconds": seconds}

    @property
    def _checkpoint(self) -> Path:
        return self.out / FF.checkpoint_name(self.i)

    def to_driver(self, result: dict) -> dict:
        self._checkpoint.mkdir(parents=True, exist_ok=True)  # an epoch-0 member made none
        artifacts.save_model(result["model"], self._checkpoint / "final.keras")
        return {"seconds": result["seconds"]}

    def from_worker(self, result: dict) -> dict:
        return {"model": artifacts.load_model(self._checkpoint / "final.keras"), **result}


def _resumed_model(checkpoint_dir: Path, cfg: Config, state: dict):
    model = artifacts.load_model_compiled(checkpoint_dir / state.get("model", "model.keras"), model_quantiles(cfg))
    _say(f"resuming from epoch {state['epoch'] + 1} of {cfg.training.epochs}")
    return model


# --------------------------------------------------------------------------- compare


@dataclass
class DirectoryResult:
    """What a command that writes one directory of many trainings (compare, backtest) returns."""

    out: Path
    record: dict  # the directory's main JSON: compare.json, or backtest's metrics.json
    table: str  # what the command prints


def compare(
    cfg: Config,
    *,
    config_path: str,
    cells: list[str],
    repeats: int = 1,
    out: str | None = None,
    quiet: bool = False,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> DirectoryResult:
    """Train every cell in ``cells`` with seeds ``cfg.seed .. cfg.seed + repeats - 1`` and compare them.

    Every run is a normal ``train`` that differs from ``cfg`` only in ``model.cell`` and ``seed``.

    Args:
        cfg: the base config.
        config_path: how the user named the config (with ``--set`` options), for resume hints.
        cells: cell names from ``config.CELLS``, in the order they are trained.
        repeats: seeds per cell (>= 1); with more than one, tables show mean ± std.
        out: the comparison directory; default ``<runs_dir>/<name>-compare-<time>``.
        quiet: no per-epoch lines (runs in worker processes are always quiet).
        workers: runs at once. 1 with the local executor trains them here, one after another; otherwise
            each run is a task of ``executor`` (``local`` processes or ``ray``, at ``address``).
    """
    seeds = C.seeds(cfg.seed, repeats)
    configs = {(c, s): cfg.replace(**{"model.cell": c, "seed": s}) for c in cells for s in seeds}  # errors now
    overlay = C._overlay_axis(load_data(cfg))  # data errors before any directory exists
    with contextlib.ExitStack() as stack:
        pool = None
        if workers > 1 or executor != "local" or address:
            from .executor import make_executor

            pool = stack.enter_context(make_executor(executor, workers, address))  # errors before the directory
        partial = artifacts.start(artifacts.plan_compare_dir(cfg, out), what="comparison", numbered=out is None)
        stack.callback(artifacts.release, partial)  # the comparison's lock; a finished one was released by finish
        artifacts.write_atomic(
            partial / "config.yaml",
            "# base config of this comparison; each run in runs/ changes only model.cell and seed\n" + cfg.to_yaml(),
        )
        # epoch lines of parallel runs would interleave
        tasks = _compare_tasks(configs, config_path, partial, overlay["starts"], quiet or pool is not None)
        with _removed_when_disk_full(partial):
            done = _compare_runs(pool, tasks, partial)
            return _compare_finish(cfg, cells, seeds, tasks, done, overlay, partial)


@contextlib.contextmanager
def _removed_when_disk_full(partial: Path):
    """A comparison (no resume) that fills the disk is removed whole: this process made it, and a half comparison
    on a full disk helps nobody. Other failures keep it, as Ctrl-C does."""
    try:
        yield
    except Exception as e:
        why = disk_full(e)
        if not why:
            raise
        artifacts.release(partial)
        shutil.rmtree(partial, ignore_errors=True)
        raise RunError(
            f"disk full while writing the comparison ({why}); the unfinished comparison was removed",
            where=str(partial),
            fix=DISK_FULL_FIX,
        ) from None


def _compare_tasks(configs: dict, config_path: str, partial: Path, overlay_starts, quiet: bool) -> list[CompareRun]:
    """One :class:`CompareRun` per ``(cell, seed)`` config, trained into ``partial/runs/<cell>-seed<seed>``."""
    return [
        CompareRun(
            label=f"{cell}, seed {seed}",
            out=partial / "runs" / f"{cell}-seed{seed}",
            seed=seed,
            cfg=run_cfg,
            cell=cell,
            config_path=f"{config_path} --set model.cell={cell} --set seed={seed}",
            overlay_starts=overlay_starts,
            quiet=quiet,
        )
        for (cell, seed), run_cfg in configs.items()
    ]


def _compare_finish(cfg: Config, cells, seeds, tasks, done: list[dict], overlay: dict, partial: Path):
    """compare.json, compare.md and the plots from the runs' results (in ``tasks`` order), then the final directory."""
    runs: dict[str, list[dict]] = {c: [] for c in cells}
    curves: dict[str, list[list[float]]] = {c: [] for c in cells}
    forecasts: dict[str, np.ndarray] = {}
    for task, r in zip(tasks, done):
        runs[task.cell].append(r["numbers"])
        curves[task.cell].append(r["curve"])
        if task.seed == seeds[0]:  # the overlay shows each cell's first seed
            forecasts[task.cell], overlay["actual"] = r["first_steps"]
    record = C.record(cfg, cells, seeds, runs, done[0]["test_metrics"])
    artifacts.write_json(partial / "compare.json", record)
    artifacts.write_atomic(partial / "compare.md", text.markdown(record))
    C.compare_plots(partial / "plots", record, curves, overlay, forecasts)
    final = artifacts.finish(partial)
    return DirectoryResult(final, record, f"{text.ranked_table(record)}\n\ncomparison directory: {final}")


@dataclass(frozen=True, kw_only=True)
class CompareRun(Task):
    """One run of a comparison: ``train`` of ``cfg`` (the base config with ``cell`` and ``seed``) into ``out``."""

    cfg: Config
    cell: str
    config_path: str  # how the user would train it alone, for resume hints
    overlay_starts: np.ndarray  # the windows whose t+1 forecasts the overlay plot draws
    quiet: bool

    def run(self) -> dict:
        """Plain data: the run's numbers for compare.json (with the ``pid`` of the process that trained it), its
        validation-loss curve, its t+1 forecasts and actual values on the overlay windows, its test metrics."""
        result = train(self.cfg, config_path=self.config_path, run_dir=str(self.out), quiet=self.quiet)
        rel = Path("runs") / self.out.name
        numbers = C.run_numbers(result.metrics, result.timing["epoch_seconds"], rel, self.seed)
        return {
            "numbers": {**numbers, "pid": os.getpid()},
            "curve": result.history["val_loss"].tolist() if "val_loss" in result.history else [],
            "first_steps": C._first_steps(result.evaluation, {"starts": self.overlay_starts}),
            "test_metrics": result.evaluation.metrics,
        }


def _compare_runs(pool, tasks: list[CompareRun], partial: Path) -> list[dict]:
    """The runs here, one after another, or as tasks of ``pool`` (up to ``pool.workers`` at once); results in
    ``tasks`` order. Ctrl-C, SIGTERM, an interrupted run or a worker that died leaves the comparison unfinished."""
    n = len(tasks)

    def started(i: int, t: CompareRun) -> None:
        _say(f"[{i}/{n}] {t.cell}, seed {t.seed} -> {t.out}")

    def finished(t: CompareRun, result: dict, k: int) -> None:
        if pool is not None:
            _say(f"[{k}/{n}] {t.cell}, seed {t.seed} done -> {t.out}")

    if pool is not None:
        _say(f"{n} runs, {pool.workers} at a time in {pool.label} -> {partial}")
    try:
        with pool or contextlib.nullcontext():  # closed (workers joined) before the comparison's lock is released
            return run_many(tasks, pool, on_start=started, on_done=finished)
    except (KeyboardInterrupt, Interrupted, WorkerDied) as e:
        raise _unfinished(partial, e) from e


COMPARE_AGAIN = "compare has no resume: remove this unfinished comparison, or run the command again with another --out"


def _unfinished(partial: Path, e: BaseException, what: str = "comparison", fix: str = COMPARE_AGAIN):
    """Ctrl-C, SIGTERM, an interrupted run or a worker that died left ``what`` unfinished in ``partial``; what
    finished there is kept. SIGTERM keeps its exit code (143), as a training's does."""
    terminated = isinstance(e, Terminated) or getattr(e, "exit_code", None) == ExitCode.TERMINATED
    err = Interrupted(
        f"interrupted{' (SIGTERM)' if terminated else ''}; the {what} is unfinished", where=str(partial), fix=fix
    )
    if terminated:
        err.exit_code = ExitCode.TERMINATED
    return err


# --------------------------------------------------------------------------- using a finished run


def evaluate(
    run_dir: str | Forecaster,
    data_path: str | None = None,
    split: str = "test",
    output: str | None = None,
    table: pd.DataFrame | None = None,
    force: bool = False,
) -> tuple[Evaluation, list[str]]:
    """Score a finished run (a directory or a loaded Forecaster) and the baselines on ``split`` of its data (or of
    ``data_path``, or ``table``).

    A run with intervals gets its saved bands scored too (adaptive ones start from the validation residuals).
    ``output``: also write every window's forecast there in long format (:func:`predictions.predictions_table`);
    an existing file only with ``force``.
    """
    if split not in ("train", "val", "test"):  # the CLI's choice; the API passes any text
        raise RunError(
            f"--split must be train, val or test. Received: {split!r}", fix="pass --split test (or val, train)"
        )
    if output:  # refused before any work
        artifacts.check_output(output, "--output", force=force)
    if isinstance(run_dir, Forecaster):
        forecaster = run_dir
        if not forecaster.heldout and forecaster.run is not None and FF.trained_on(forecaster.run, data_path, table):
            forecaster = Forecaster.load(forecaster.run, heldout=True)
    else:  # the final model trained on these rows: score the held-out one (decided before any data is read)
        run = artifacts.open_run(run_dir)
        forecaster = Forecaster.load(run, heldout=FF.trained_on(run, data_path, table))
    data, warnings = forecaster.read_data(data_path, table)
    ev = forecaster.score(data, split)
    if not forecaster.heldout and forecaster.run is not None and (data_path or table is not None):
        warnings += [w for w in [FF.in_sample_note(forecaster.run, data, ev.starts)] if w]
    if forecaster.calibration is not None:
        warnings += ev.metrics["intervals"]["warnings"]
    w = text.mase_warning(ev)
    if w:
        warnings.append(w)
    warnings += text.run_verdict(ev.metrics, ev.split)[1:] + text.evidence(ev.metrics, ev.split)
    if output:
        artifacts.write_table(output, forecaster.windows_table(data, ev), force)
    return ev, warnings


@dataclass
class Prediction:
    """What ``predict`` returns: the forecast table, the data it starts from, and warnings."""

    table: pd.DataFrame
    data: SeriesData
    warnings: list[str]


def forecast(
    run_dir: str, data_path: str | None = None, table: pd.DataFrame | None = None, allow_missing_tail: bool = False
) -> tuple[pd.DataFrame, SeriesData, list[str]]:
    """Forecast ``horizon`` steps past the end of the data (``data_path`` or ``table`` when given), in original
    units and timestamps. Trailing missing target values in new data are refused unless ``allow_missing_tail``
    (then filled, warned)."""
    p = predict(run_dir, data_path, table=table, allow_missing_tail=allow_missing_tail)
    return p.table, p.data, p.warnings


def predict(
    run_dir: str | Forecaster,
    data_path: str | None = None,
    *,
    table: pd.DataFrame | None = None,
    output: str | None = None,
    plot: str | None = None,
    allow_missing_tail: bool = False,
    force: bool = False,
) -> Prediction:
    """The predict command: forecast past the end of the data, and write the table to ``output`` and a plot of
    it to ``plot`` when given (both paths checked before any work; existing files replaced only with ``force``).
    ``run_dir`` may be a loaded Forecaster."""
    check_outputs(output, plot, force)
    forecaster = run_dir if isinstance(run_dir, Forecaster) else Forecaster.load(run_dir)
    data, warnings = forecaster.read_data(data_path, table, allow_missing_tail)
    forecast_rows = forecaster.forecast(data)
    warnings += filled_history_warnings(data)  # forecaster.py
    note = forecaster.calibration and forecaster.calibration.bands_note([s.series for s in data.segments])
    if note:
        warnings.append(note)
    if data.frame.zone.endswith("in UTC"):  # the zone rule (data.zone_rule): finer than daily, offsets -> UTC
        warnings.append(
            f"note: timestamps are UTC, not local time: the data's times carry {data.frame.zone} (README, Time zones)"
        )
    if forecaster.schema.calendar == "steps":
        warnings.append(
            f"note: rows are steps; future timestamps follow the {forecaster.schema.frequency!r} calendar "
            "(e.g. business days), holidays not excluded"
        )
    if output:
        save_forecast(forecast_rows, output, force)
    if plot:
        plot_forecast(forecast_rows, data, plot, forecaster.calibration, force)
    return Prediction(forecast_rows, data, warnings)


def check_outputs(output: str | None, plot: str | None, force: bool = False) -> None:
    """``predict``'s output paths, before any work: never a file of a run, the plot a .png, neither an existing
    file unless ``force``."""
    if output and plot and Path(output).resolve() == Path(plot).resolve():  # the plot would replace the table
        raise RunError("--output and --plot name the same file", where=str(plot), fix="give each its own file")
    if output:
        artifacts.check_output(output, "--output", force=force)
    if plot:
        artifacts.check_output(plot, "--plot", suffix=".png", force=force)


def save_forecast(table: pd.DataFrame, path: str, force: bool = False) -> None:
    """``predict --output``: the forecast table as CSV, written atomically."""
    artifacts.write_table(path, table, force)


def plot_forecast(
    table: pd.DataFrame, data: SeriesData, path: str, calibration: I.RunIntervals | None = None, force: bool = False
) -> None:
    """``predict --plot``: the first series' recent history (5 input windows) and its forecast of the first target,
    with a fan of its intervals (``calibration``, the run's) when the run has them."""
    with artifacts.atomic_output(artifacts.check_output(path, "--plot", suffix=".png", force=force), "--plot") as tmp:
        draw_forecast(table, data, tmp, calibration)


def draw_forecast(table: pd.DataFrame, data: SeriesData, path: Path, calibration: I.RunIntervals | None) -> None:
    """The fan chart of ``plot_forecast`` into ``path`` (train: plots/forecast_next.png of the run it writes)."""
    seg = data.segments[0]
    rows = windows.history_rows(seg.lo, seg.hi, 5 * data.input_length)
    target = data.targets[0]
    first = table[table["series"] == seg.series] if "series" in table else table
    bands, levels = None, ()
    if calibration is not None:
        bands = first[[I.quantile_column(target, q) for q in calibration.quantiles]].to_numpy()  # (H, Q)
        levels = calibration.levels
    plots.predict_plot(
        data.timestamps(rows),
        data.raw[rows, data.target_idx[0]],
        first["timestamp"],
        first[target],
        target,
        path,
        unit=data.frame.unit(target),
        bands=bands,
        levels=levels,
    )


def inspect_run(
    run_dir: str | Path, split: str = "test", window_index: int = 0, output: str | Path | None = None
) -> tuple[dict, Path, list[str]]:
    """Run ``internals.inspect_model`` on the windows of one split of a run; writes ``output``, by default
    ``<run>-inspect/`` beside the run (``artifacts.inspection_dir``), never into a result.

    Returns:
        ``(numbers, directory, warnings)``: the numbers behind the plots (as in inspect.json), where they are, warnings.
    """
    run = artifacts.open_run(run_dir)
    out = artifacts.inspection_dir(run_dir, output)  # refused, and its place made, before the model loads
    with artifacts.new_directory(out, "--output", lambda d: artifacts.is_inspection_of(d, run.path)) as tmp:
        forecaster = Forecaster.load(run, keras=True)  # inspect reads Keras layers
        data, warnings = forecaster.read_data()
        starts = data.starts(split, stride=1)
        if not 0 <= window_index < len(starts):
            valid = f"0..{len(starts) - 1}" if len(starts) else "none, the split has no complete window"
            raise RunError(
                f"--window {window_index} is out of range for the {split} split (valid: {valid})",
                where=str(run.path),
                fix=f"pass --window {len(starts) - 1} or less" if len(starts) else "use a split with windows (--split)",
            )
        x, _ = data.batch(starts)  # (N, L, F) model space
        x = data.framing.fold({"past": x})[0]["past"]  # independent channels: (N*T, L, 1+E+T)
        step = forecaster.schema.median_step_seconds
        of = {"run": str(run.path.resolve()), "metrics_sha256": artifacts.sha256(run.path / artifacts.METRICS)}
        try:
            numbers = inspect_model(
                forecaster.model, x, data.network_features, tmp, window_index=window_index, step_seconds=step, of=of
            )
        except OSError as e:
            raise RunError(
                f"cannot write the inspection ({e.strerror or e})", where=str(out), fix="pass a writable --output"
            ) from None
    return numbers, out, warnings


# --------------------------------------------------------------------------- backtest


def backtest(
    cfg: Config,
    *,
    config_path: str,
    folds: int = 4,
    step: int | None = None,
    refit: str = "all",
    out: str | None = None,
    levels: tuple[float, ...] = (80.0, 95.0),
    workers: int = 1,
    quiet: bool = False,
) -> DirectoryResult:
    """Rolling-origin backtest: each fold trains (``refit``) on everything before its validation stretch,
    calibrates conformal bands on it, and forecasts every window of its test stretch (``backtest.py``).

    A rerun with the same ``out`` resumes: finished folds (``folds/NN/fold.json``) are kept.
    """
    levels = I.check_levels(levels)
    cfg, data = settle(cfg)  # config and data errors before any directory exists
    plan = B.make_plan(cfg, data.frame, folds, step, refit)
    partial, resumed, resume = _backtest_dir(cfg, config_path, plan, folds, out, levels, data.frame.source_sha256)
    t0 = time.perf_counter()
    todo = B.groups_to_run(plan, partial)
    _say(
        f"backtest: {len(plan.folds)} folds, {len(todo)} model(s) to run{' (resumed)' if resumed else ''} -> {partial}"
    )
    common = {"out": partial, "seed": cfg.seed, "cfg": cfg, "frame": data.frame, "plan": plan, "levels": levels}
    tasks = [
        Folds(label=f"folds {', '.join(str(f.index) for f in g)}", folds=tuple(g), quiet=quiet, **common) for g in todo
    ]
    try:
        _backtest_run(tasks, workers)
        record = _backtest_finish(cfg, data, plan, partial, levels, time.perf_counter() - t0)
        final = artifacts.finish(partial)
    except (KeyboardInterrupt, Interrupted, WorkerDied) as e:
        raise _unfinished(partial, e, "backtest", f"finished folds are kept; resume with: {resume}") from e
    except Exception as e:  # a full disk (folds, predictions.csv, plots): what is done stays for the resume
        why = disk_full(e)
        if not why:
            raise
        raise RunError(
            f"disk full while writing the backtest ({why}); finished folds are kept",
            where=str(partial),
            fix=f"free disk space, then resume with: {resume}",
        ) from None
    return DirectoryResult(final, record, text.backtest_table(record, final))


def _backtest_finish(cfg: Config, data: SeriesData, plan, partial: Path, levels, seconds: float) -> dict:
    """predictions.csv, metrics.json and the plots of a backtest whose folds are all done; returns the record."""
    parts = [B.read_fold(partial, f.index) for f in plan.folds]
    record = B.summarise(cfg, plan, [r for r, _ in parts], levels, seconds)
    predictions = pd.concat([p for _, p in parts], ignore_index=True)
    artifacts.write_atomic(partial / "predictions.csv", predictions.to_csv(index=False))
    artifacts.write_json(partial / "metrics.json", record)
    if cfg.output.plots:
        plots.backtest_plots(partial / "plots", record, predictions, {t: data.frame.unit(t) for t in data.targets})
    return record


def _backtest_dir(
    cfg: Config, config_path: str, plan, folds: int, out: str | None, levels, source_sha256: str | None
) -> tuple[Path, bool, str]:
    """The backtest directory, claimed new or resumed (same config, plan, levels and data), and the command resuming
    it.

    Returns:
        ``(partial, resumed, resume_command)``.
    """
    final = artifacts.plan_compare_dir(
        cfg, out[: -len(".partial")] if out and out.endswith(".partial") else out, "backtest"
    )
    resume = f"rnnforecast backtest {config_path} --folds {folds} --step {plan.step} --refit {plan.refit} --out {final}"
    again = f"Resume it with: {resume}"
    fingerprint = {**B.fingerprint(cfg, plan, levels), **artifacts.resume_keys(cfg, source_sha256)}
    partial, resumed = artifacts.start_or_resume(final, fingerprint, what="backtest", again=again)
    if not resumed:
        artifacts.write_atomic(
            partial / "config.yaml", "# base config; each fold changes only data.split\n" + cfg.to_yaml()
        )
    return partial, resumed, resume


def _backtest_run(tasks: list[Folds], workers: int) -> None:
    """Each group of folds (one model) here, as ``train`` runs (Ctrl-C and SIGTERM stop it at the next batch), or
    as tasks of ``workers`` local processes; says which folds each group ran as it finishes."""

    def finished(task: Folds, ran: list[int], k: int) -> None:
        _say(f"backtest: fold{'s' if len(ran) != 1 else ''} {', '.join(str(i) for i in ran)} done")

    if workers == 1:
        run_many(tasks, on_done=finished)
        return
    from .executor import make_executor

    with make_executor("local", workers) as ex:
        run_many(tasks, ex, on_done=finished)


@dataclass(frozen=True, kw_only=True)
class Folds(Task):
    """The backtest folds that share one model, earliest first; the first of them trains it. ``out`` is the
    backtest directory: each fold writes ``folds/NN/`` and marks itself done with ``fold.json``; done folds are
    skipped."""

    cfg: Config
    frame: Frame  # the driver's read of the data
    plan: B.Plan
    folds: tuple[Fold, ...]  # earliest first
    levels: tuple[float, ...]
    quiet: bool

    def run(self) -> list[int]:
        """The indices of the folds run (those not done already)."""
        cfg, plan, root = self.cfg, self.plan, self.out
        backend.activate(cfg.runtime.backend)
        forecaster, ran = None, []
        for fold in self.folds:
            if B.fold_done(root, fold.index):
                continue
            fcfg = cfg.replace(**plan.overrides(fold))
            end = plan.fold_times(fold)["test_end"]
            forecaster, data, training = _fold_model(fcfg, self.frame, fold, end, root, forecaster, self.quiet)
            record, table = _fold_forecasts(forecaster, data, fold, plan, self.levels, training)
            fdir = B.fold_dir(root, fold.index)
            fdir.mkdir(parents=True, exist_ok=True)
            artifacts.write_atomic(fdir / "predictions.csv", table.to_csv(index=False))
            artifacts.write_json(fdir / "fold.json", record)  # last: the fold is done
            ran.append(fold.index)
        return ran


def _fold_model(cfg: Config, frame, fold, end: str | None, root: Path, forecaster: Forecaster | None, quiet: bool):
    """The fold's forecaster and its view of the data (test stretch ending before ``end``): trained here when
    the fold refits, else its model fold's model with that fold's scaler (the only scaling the model knows).

    Returns:
        ``(forecaster, data, training)``; ``training`` is None when the fold reuses a model.
    """
    end = pd.Timestamp(end) if end else None
    if not fold.refit:
        mdir = B.fold_dir(root, fold.model_fold)
        scaler = Scaler.load(mdir / "scaler.json")
        data = build(frame, cfg, scaler=scaler, check_splits=False).fold_view(end)
        model = forecaster.model if forecaster else artifacts.load_model(mdir / "model.keras")
        return Forecaster(cfg, model, scaler, Schema.of(artifacts.schema_of(data, cfg))), data, None
    data = build(frame, cfg, check_splits=False).fold_view(end)
    fdir = B.fold_dir(root, fold.index)
    fdir.mkdir(parents=True, exist_ok=True)
    from .fit import epoch_label  # imports Keras

    with epoch_label(f"fold {fold.index}"):  # epoch lines say whose
        model, fit, seconds = fit_model(cfg, data, fdir / "checkpoint", quiet=quiet)
    artifacts.save_model(model, fdir / "model.keras")
    artifacts.write_atomic(fdir / "scaler.json", artifacts.scaler_json(data.scaler))
    history = artifacts.history_table(fit.history, fit.epochs_run)
    artifacts.write_atomic(fdir / "history.csv", history.to_csv(index=False))  # the tool's own file: no output check
    shutil.rmtree(fdir / "checkpoint", ignore_errors=True)  # made by fit_model a moment ago
    training = {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "train_seconds": seconds}
    return Forecaster(cfg, model, data.scaler, Schema.of(artifacts.schema_of(data, cfg))), data, training


def _fold_forecasts(
    forecaster: Forecaster, data: SeriesData, fold, plan, levels, training
) -> tuple[dict, pd.DataFrame]:
    """Score the fold's test windows (model and baselines), band them with conformal widths from its
    validation windows (persistence too), and lay them out as rows."""
    val, test = forecaster.score(data, "val"), forecaster.score(data, "test")
    bands, scores, cal = {}, {}, None
    for name in ("model", "persistence"):
        q, c = I.conformal_bands(val.actual, val.forecasts[name], test.forecasts[name], levels)
        bands[name], scores[name] = q, I.interval_metrics(test.actual, q, levels, data.targets, scored=~test.filled)
        cal = cal or c
    q = bands["model"]  # (B, H, T, Q), the median is the point forecast
    table = predictions_table(
        data, test.starts, test.actual, q[..., I.median_index(levels)], q, I.quantile_levels(levels), fold.index
    )
    record = B.fold_record(fold, plan, test.metrics, scores, cal.to_dict(), training)
    return record, table

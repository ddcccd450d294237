"""The one pipeline: config -> frame -> scaled series -> windows -> model -> metrics, plots, run directory.

One function per command (validate, train, evaluate, predict, compare, inspect), each composing the
stages; none of them needs click. Keras is imported only by the functions that train or load a model,
after the backend is chosen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts, backend, metrics, plots, text, windows
from . import backtest as B
from . import compare as C
from . import intervals as I
from .config import Config, cuda_path_warning
from .data import load_source, season_length
from .errors import ConfigError, DataError, ExitCode, Interrupted, RunError, Terminated, TrainingError
from .internals import inspect_model
from .models import build_model, model_quantiles
from .numpy_model import Ensemble
from .predictions import predictions_table
from .scaling import Scaler
from .series import SeriesData, build


def _say(msg: str = "") -> None:
    """Progress and warnings go to stderr, so stdout holds only the result."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- validate


def load_data(cfg: Config, table: pd.DataFrame | None = None) -> SeriesData:
    """The config's data (``table`` when given, else ``data.sql`` or ``data.path``), split and scaled."""
    return build(load_source(cfg, table), cfg)


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


def validate(cfg: Config) -> str:
    """The validate report of ``cfg`` and its data; trains nothing."""
    data = load_data(cfg)
    return text.describe(cfg, data, stationarity_hints(data))


# --------------------------------------------------------------------------- evaluation


def norm_scale(data: SeriesData) -> np.ndarray:
    rows = np.concatenate([np.arange(*s.bounds["train"]) for s in data.segments])
    std = data.raw[rows][:, data.target_idx].std(axis=0)
    return np.where(std > 0, std, 1.0)


@dataclass
class Evaluation:
    split: str
    starts: np.ndarray
    actual: np.ndarray  # (B, H, T) original units
    forecasts: dict[str, np.ndarray]  # name -> (B, H, T, 1) point forecasts; "model" first
    metrics: dict
    output: np.ndarray | None = None  # (B, H, T, Qm) the model's whole output, original units
    bands: dict[str, np.ndarray] = field(default_factory=dict)  # "model"/"persistence" -> (B, H, T, Q) quantiles
    intervals: I.RunIntervals | None = None
    source: str = ""  # the data scored: a file, a masked SQL URL, or <DataFrame>


def evaluate_model(model, data: SeriesData, cfg: Config, split: str = "test") -> Evaluation:
    """The model and the naive baselines on every window of ``split``, scored in original and normalised units.

    A quantile model is scored on its median; bands are added by :func:`add_intervals`.
    """
    from .numpy_model import predict_windows

    starts = data.starts(split, stride=1)
    if len(starts) == 0:
        raise DataError(
            f"the {split} split has no complete window",
            where=str(data.frame.path),
            fix="use more data or a shorter window",
        )
    output = data.invert(starts, predict_windows(model, data, starts))  # (B, H, T, Qm)
    iv = cfg.intervals
    pred = I.point_forecast(output, iv and iv.method, iv and iv.levels)  # (B, H, T, 1)
    actual = data.actual(starts)
    raw_t = data.raw[:, data.target_idx]
    seg_lo = np.array([s.lo for s in data.segments])[data.series_index(starts)]
    season = season_length(data.frame.frequency, cfg.data.season_length)
    forecasts = {
        "model": pred,
        **metrics.baseline_forecasts(raw_t, starts, data.input_length, data.horizon, season, seg_lo),
    }
    result = metrics.evaluate_forecasts(actual, forecasts, data.targets, norm_scale(data))
    result["season_length"] = season
    result["n_windows"] = int(len(starts))
    if len(data.segments) > 1:
        result["per_series"] = _per_series(data, starts, actual, forecasts)
    return Evaluation(split, starts, actual, forecasts, result, output, source=str(data.frame.path))


def calibrate(cfg: Config, val: Evaluation) -> I.RunIntervals | None:
    """The run's intervals calibrated on the validation windows (None when the config asks for none)."""
    iv = cfg.intervals
    if iv is None:
        return None
    if len(val.starts) == 0:
        raise DataError(
            "intervals need validation windows to calibrate on, and the val split has none",
            where="intervals",
            fix="enlarge data.split.val, or remove the intervals section",
        )
    persistence = val.forecasts["persistence"]
    return I.calibrate_run(iv.method, iv.levels, iv.joint, val.actual, val.output, persistence, iv.adaptive, iv.gamma)


def add_intervals(ev: Evaluation, run: I.RunIntervals, data: SeriesData, val: Evaluation | None = None) -> None:
    """Band the model and persistence on ``ev``'s windows and score the bands into ``ev.metrics["intervals"]``.

    ``val`` (the validation evaluation) is needed only for adaptive bands: its residuals start the score pool.
    """
    if run.adaptive and val is not None:
        val_scores = np.abs(val.actual - val.forecasts["model"][..., 0])  # (N, H, T)
        model_q = I.adaptive_bands(run, ev.forecasts["model"], ev.actual, val_scores, data.series_index(ev.starts))
    else:
        model_q = I.model_bands(run, ev.output)
    ev.bands = {
        "model": model_q,
        "persistence": I.apply_bands(ev.forecasts["persistence"], run.persistence.width, run.levels),
    }
    ev.intervals = run
    scale = msis_scale(data, ev.metrics["season_length"])
    scored = {k: I.interval_metrics(ev.actual, q, run.levels, data.targets, scale) for k, q in ev.bands.items()}
    ev.metrics["intervals"] = {
        "method": run.method,
        "levels": list(run.levels),
        "joint": run.joint,
        "adaptive": run.adaptive and val is not None,
        "calibration_windows": (run.model or run.persistence).n,
        **scored,
        "warnings": run.warnings() + I.coverage_warnings(scored["model"], split=ev.split),
    }


def msis_scale(data: SeriesData, season: int) -> np.ndarray:
    """M4's MSIS denominator per target: the training rows' mean seasonal absolute difference, ``(T,)``."""
    bounds, lo = [], 0
    for s in data.segments:
        a, b = s.bounds["train"]
        bounds.append((lo, lo + b - a))
        lo += b - a
    rows = np.concatenate([np.arange(*s.bounds["train"]) for s in data.segments])
    return I.seasonal_naive_scale(data.raw[rows][:, data.target_idx], season, bounds)


def _per_series(data: SeriesData, starts: np.ndarray, actual: np.ndarray, forecasts: dict) -> dict:
    names = data.series_of(starts)
    out = {}
    for s in data.segments:
        m = names == s.series
        if m.any():
            sub = {k: v[m] for k, v in forecasts.items()}
            out[s.series] = metrics.evaluate_forecasts(actual[m], sub, data.targets, norm_scale(data))["original"][
                "overall"
            ]
    return out


# --------------------------------------------------------------------------- train


@dataclass
class TrainResult:
    run_dir: Path
    evaluation: Evaluation  # the test split
    metrics: dict  # the content of metrics.json
    table: str  # what `train` prints
    history: pd.DataFrame  # the content of history.csv
    timing: dict  # the content of timing.json


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
    data = load_data(cfg, table)
    for line in [*data.frame.warnings, *text.hint_lines(stationarity_hints(data), cfg)]:
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
        return _train_into(partial, cfg, data, state, backend_name, quiet, split, callbacks)


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
    model, fit, train_seconds, members = fit_ensemble(cfg, data, partial, quiet=quiet, state=state, callbacks=callbacks)
    train_seconds += sum(m["seconds"] for m in members)
    if members:
        model = Ensemble([model, *(m["model"] for m in members)])
    val = evaluate_model(model, data, cfg, "val")
    test = val if split == "val" else evaluate_model(model, data, cfg, split)  # a tune trial never touches test
    calibration = calibrate(cfg, val)
    if calibration is not None:
        add_intervals(test, calibration, data, val)
    extra = {
        "stationarity": stationarity_hints(data),
        "backend": backend_name,
        "devices": backend.batch_split(),  # how many devices each batch was split over (runtime.distribution)
        "versions": backend.versions(),
        "data_sha256": data.frame.source_sha256,  # the rows of a SQL source or DataFrame; None: the file is hashed
    }
    if members:
        extra["ensemble"] = artifacts.ensemble_record(cfg.seed, fit, train_seconds, members)
    record = artifacts.metrics_record(cfg, test.metrics, val.metrics, fit, int(model.count_params()), extra, split)
    timing = artifacts.timing_record(train_seconds, fit.epoch_seconds)
    history = artifacts.history_table(fit.history, fit.epochs_run)
    artifacts.write_run(
        partial,
        model=model.members[0] if members else model,  # model.keras: member 0; members/N.keras: the others
        scaler=data.scaler,
        schema=artifacts.schema_of(data, cfg),
        history=history,
        metrics=record,
        timing=timing,
        forecast=forecast_table(model, data, data.frame.frequency, calibration)
        if data.can_forecast()  # data.future columns need horizon rows (predict --data), which training data lacks
        else pd.DataFrame(columns=["timestamp", "step", "quantile", *data.targets]),
        intervals=calibration and calibration.to_dict(),
    )
    if cfg.output.plots:
        plots.run_plots(partial / "plots", fit.history, fit.best_epoch, test, data)
    if cfg.output.tensorboard:
        importlib.import_module(".train", __package__).log_lead_scores(partial / "tensorboard", val.metrics)
    final = artifacts.finish(partial)
    summary = text.train_summary(test, record, train_seconds, final.resolve())  # absolute: runs_dir may be ../..
    return TrainResult(final, test, record, summary, history, timing)


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
    T = importlib.import_module(".train", __package__)  # imports Keras; the package's `train` is the API's

    backend.seed_everything(cfg.seed, cfg.runtime.deterministic)
    backend.distribute(cfg.runtime.distribution, cfg.training.batch_size)  # before the model's variables exist
    if state is not None:
        model = _resumed_model(checkpoint_dir, cfg, state)
    else:
        model = build_model(
            cfg.model,
            cfg.window.input_length,
            len(data.feature_idx),
            cfg.window.horizon,
            len(data.target_idx),
            cfg.seed,
            n_future=len(data.future_idx),
            quantiles=model_quantiles(cfg),
        )
        T.compile_model(model, cfg)
    t0 = time.perf_counter()
    fit = T.fit(model, data, cfg, checkpoint_dir, quiet=quiet, resume_state=state, extra_callbacks=callbacks)
    return model, fit, time.perf_counter() - t0


def fit_ensemble(
    cfg: Config, data: SeriesData, partial: Path, *, quiet: bool, state: dict | None, callbacks: list | tuple = ()
):
    """Member 0 (the run's own training, resumable from ``state``) and the other members of a seed ensemble.

    With ``runtime.workers`` > 1, members 1..N-1 train in ``workers - 1`` local worker processes (the executor)
    while member 0 trains here; else here, one after another, after it. Same seeds, same numbers either way.

    Returns:
        ``(model, fit, seconds, members)``: member 0's model, FitResult and training seconds, and one
        ``{"model", "fit", "seconds"}`` per other member (none for a single model).
    """
    n = cfg.model.ensemble
    pool = None
    if n > 1 and cfg.runtime.workers > 1:
        from .executor import LocalExecutor

        pool = LocalExecutor(min(cfg.runtime.workers - 1, n - 1))
        _say(f"ensemble members 2..{n} (seeds {cfg.seed + 1}..{cfg.seed + n - 1}) in {pool.workers} worker process(es)")
    with pool or contextlib.nullcontext():  # an interruption here stops the workers too
        spec = {"cfg": cfg, "data": data, "dir": str(partial)}
        handles = [pool.submit(fit_member, {**spec, "i": i}) for i in range(1, n)] if pool else []
        model, fit, seconds = fit_model(
            cfg, data, partial / "checkpoint", quiet=quiet, state=state, callbacks=callbacks
        )
        members = _members_from(handles, partial) if pool else fit_members(cfg, data, partial, quiet) if n > 1 else []
    return model, fit, seconds, members


def fit_members(cfg: Config, data: SeriesData, partial: Path, quiet: bool) -> list[dict]:
    """Members 1..N-1 of a seed ensemble (member 0 is the run's own training), one after another in this
    process, each a :func:`fit_model` with ``seed + i``; each is saved to ``members/<i>.keras`` when done.

    Returns:
        One ``{"model", "fit", "seconds"}`` per member. Resuming an interrupted ensemble resumes member 0
        from its checkpoint and trains these members again.
    """
    out = []
    n = cfg.model.ensemble
    for i in range(1, n):
        _say(f"ensemble member {i + 1} of {n} (seed {cfg.seed + i})")
        out.append(_fit_member(cfg, data, partial, i, quiet))
    return out


def _fit_member(cfg: Config, data: SeriesData, partial: Path, i: int, quiet: bool) -> dict:
    member_cfg = cfg.replace(**{"seed": cfg.seed + i, "output.tensorboard": False})
    checkpoint = artifacts.member_path(partial, i).with_suffix(".checkpoint")
    model, fit, seconds = fit_model(member_cfg, data, checkpoint, quiet=quiet)
    artifacts.save_model(model, artifacts.member_path(partial, i))
    shutil.rmtree(checkpoint, ignore_errors=True)  # made by fit_model a moment ago
    return {"model": model, "fit": fit, "seconds": seconds}


def fit_member(spec: dict) -> dict:
    """Executor task: member ``spec["i"]`` of a seed ensemble, trained in a worker process and saved to
    ``members/<i>.keras``; the model goes back through that file, the rest as plain data."""
    cfg = spec["cfg"]
    backend.activate(cfg.runtime.backend)
    out = _fit_member(cfg, spec["data"], Path(spec["dir"]), spec["i"], quiet=True)
    return {"fit": dataclasses.replace(out["fit"], model=None), "seconds": out["seconds"], "pid": os.getpid()}


def _members_from(handles: list, partial: Path) -> list[dict]:
    """The members trained by :func:`fit_member` tasks, in member order, their models read back from their files."""
    from .executor import WorkerDied

    out = []
    for i, h in enumerate(handles, 1):
        try:
            r = h.result()
        except WorkerDied as e:
            raise TrainingError(
                f"the worker process training ensemble member {i + 1} died ({e})",
                where=str(partial),
                fix="train again; with runtime.workers: 1 the members train in this process",
            ) from None
        out.append({"model": artifacts.load_model(artifacts.member_path(partial, i)), **r})
    return out


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
    if repeats < 1:
        raise ConfigError(
            f"`repeats` must be at least 1. Received: repeats={repeats}",
            where="--repeats",
            fix="pass --repeats 1 or more",
        )
    seeds = [cfg.seed + r for r in range(repeats)]
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
        specs = [
            {
                "cfg": run_cfg,
                "config_path": f"{config_path} --set model.cell={cell} --set seed={seed}",
                "run_dir": str(partial / "runs" / f"{cell}-seed{seed}"),
                "rel": f"runs/{cell}-seed{seed}",
                "cell": cell,
                "seed": seed,
                "overlay_starts": overlay["starts"],
                "quiet": quiet or pool is not None,  # epoch lines of parallel runs would interleave
            }
            for (cell, seed), run_cfg in configs.items()
        ]
        done = _compare_on(pool, specs, partial) if pool is not None else _compare_here(specs, partial)
        return _compare_finish(cfg, cells, seeds, specs, done, overlay, partial)


def _compare_finish(cfg: Config, cells, seeds, specs, done: list[dict], overlay: dict, partial: Path):
    """compare.json, compare.md and the plots from the runs' results (in ``specs`` order), then the final directory."""
    runs: dict[str, list[dict]] = {c: [] for c in cells}
    curves: dict[str, list[list[float]]] = {c: [] for c in cells}
    forecasts: dict[str, np.ndarray] = {}
    for spec, r in zip(specs, done):
        runs[spec["cell"]].append(r["numbers"])
        curves[spec["cell"]].append(r["curve"])
        if spec["seed"] == seeds[0]:  # the overlay shows each cell's first seed
            forecasts[spec["cell"]], overlay["actual"] = r["first_steps"]
    record = C.record(cfg, cells, seeds, runs, done[0]["test_metrics"])
    artifacts.write_json(partial / "compare.json", record)
    artifacts.write_atomic(partial / "compare.md", text.markdown(record))
    C.compare_plots(partial / "plots", record, curves, overlay, forecasts)
    final = artifacts.finish(partial)
    return DirectoryResult(final, record, f"{text.ranked_table(record)}\n\ncomparison directory: {final}")


def compare_run(spec: dict) -> dict:
    """One run of a comparison (an executor task, or called here): ``train`` into ``spec["run_dir"]``.

    Returns:
        Plain data: the run's numbers for compare.json (with the ``pid`` of the process that trained it), its
        validation-loss curve, its t+1 forecasts and actual values on the overlay windows, its test metrics.
    """
    result = train(spec["cfg"], config_path=spec["config_path"], run_dir=spec["run_dir"], quiet=spec["quiet"])
    numbers = C.run_numbers(result.metrics, result.timing["epoch_seconds"], Path(spec["rel"]), spec["seed"])
    return {
        "numbers": {**numbers, "pid": os.getpid()},
        "curve": result.history["val_loss"].tolist() if "val_loss" in result.history else [],
        "first_steps": C._first_steps(result.evaluation, {"starts": spec["overlay_starts"]}),
        "test_metrics": result.evaluation.metrics,
    }


def _compare_here(specs: list[dict], partial: Path) -> list[dict]:
    """The runs in this process, one after another."""
    done = []
    for i, spec in enumerate(specs, 1):
        _say(f"[{i}/{len(specs)}] {spec['cell']}, seed {spec['seed']} -> {spec['run_dir']}")
        try:
            done.append(compare_run(spec))
        except Interrupted as e:
            raise _unfinished(partial, e) from e
    return done


def _compare_on(pool, specs: list[dict], partial: Path) -> list[dict]:
    """The runs as tasks of ``pool``, up to ``pool.workers`` at once; results in ``specs`` order.

    Ctrl-C, an interrupted run or a worker that died leaves the comparison unfinished, as a Ctrl-C does here.
    """
    from .executor import WorkerDied

    _say(f"{len(specs)} runs, {pool.workers} at a time in {pool.label} -> {partial}")
    done: dict[int, dict] = {}
    try:
        with pool:  # closed (workers joined) before the comparison's lock is released
            handles = {pool.submit(compare_run, spec): i for i, spec in enumerate(specs)}
            for h in pool.as_completed(handles):
                i = handles[h]
                done[i] = h.result()
                _say(
                    f"[{len(done)}/{len(specs)}] {specs[i]['cell']}, seed {specs[i]['seed']} done -> {specs[i]['run_dir']}"
                )
    except (KeyboardInterrupt, Interrupted, WorkerDied) as e:
        raise _unfinished(partial, e) from e
    return [done[i] for i in range(len(specs))]


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


def _open(run_dir: str | Path, keras_model: bool = False):
    """The run and its model: numpy when it can (no Keras import), or ``keras_model`` for the Keras object."""
    from .numpy_model import load_predictor

    run = artifacts.open_run(run_dir)
    backend.activate(run.config.runtime.backend if run.config.runtime.backend != "auto" else "auto")
    paths = run.member_paths()
    if keras_model or len(paths) == 1:  # inspect reads member 0's layers
        return run, load_predictor(paths[0], run.schema, keras=keras_model)
    return run, Ensemble([load_predictor(p, run.schema) for p in paths])


def run_data(
    run: artifacts.Run, data_path: str | None, table: pd.DataFrame | None = None, allow_missing_tail: bool = False
) -> tuple[SeriesData, list[str]]:
    """The run's own data (its file or ``data.sql``, read again), or new data (``data_path`` or ``table``) checked
    against the run's schema; scaled with the run's scaler. Trailing missing target values in new data are refused
    unless ``allow_missing_tail``."""
    cfg: Config = run.config
    categories = run.schema.get("categories")
    if data_path or table is not None:
        frame = _new_data(run, data_path, table)
        warnings = []
    elif cfg.data.sql is not None:
        frame = load_source(cfg, categories=categories)
        warnings = _changed_warning(frame.path) if frame.source_sha256 != run.metrics.get("data_sha256") else []
    else:
        warnings = _own_data_warnings(run, cfg.data_path)
        frame = load_source(cfg, categories=categories)
    if data_path or table is not None:
        open_rows = cfg.window.horizon if cfg.data.future else 0  # horizon rows that carry known-future inputs
        warnings += artifacts.check_tail(frame, allow_missing_tail, open_rows)
    scaler = artifacts.load_scaler(run)
    if frame.columns != run.schema["columns"]:
        raise RunError(
            f"the data gives model columns {frame.columns}, the run was trained on {run.schema['columns']}",
            where=str(frame.path),
            fix="pass a file with the same columns as the training data",
        )
    return build(frame, cfg, scaler=scaler, check_splits=False), warnings


def _new_data(run: artifacts.Run, data_path: str | None, table: pd.DataFrame | None):
    """``--data FILE`` (or a DataFrame) for a run: its columns and time step checked against the run's schema."""
    categories = run.schema.get("categories")
    if table is not None:
        artifacts.check_against_schema(Path("<DataFrame>"), run.schema, table.columns)
        frame = load_source(run.config, table, categories)
    else:
        path = Path(data_path).resolve()
        if not path.exists():
            raise DataError("--data file not found", where=str(path), fix="check the path given to --data")
        cfg = run.config.replace(**{"data.path": str(path), "data.sql": None})
        check = functools.partial(artifacts.check_against_schema, path, run.schema)  # on the file read once
        frame = load_source(cfg, categories=categories, check_columns=check)
    artifacts.check_step(frame, run.schema, frame.path)
    return in_schema_order(frame, run.schema["columns"])


def in_schema_order(frame, columns: list[str]):
    """New data whose model columns are the run's in another order (a file written with its columns swapped):
    the inputs taken by name, in the order the model was trained on."""
    if frame.columns == columns or sorted(frame.columns) != sorted(columns):
        return frame
    return dataclasses.replace(frame, features=[c for c in columns if c in frame.features])


def _changed_warning(source) -> list[str]:
    return [f"warning: {source} changed since training (SHA-256 differs); results will not match the run's metrics"]


def _own_data_warnings(run: artifacts.Run, path: Path) -> list[str]:
    if not path.exists():
        raise RunError("the run's data file is gone", where=str(path), fix="pass the data with --data FILE")
    return _changed_warning(path) if artifacts.sha256(path) != run.metrics.get("data_sha256") else []


def open_run_with_data(
    run_dir: str | Path,
    data_path: str | None = None,
    table: pd.DataFrame | None = None,
    keras_model: bool = False,
    allow_missing_tail: bool = False,
):
    """A finished run, its model (numpy when it can; ``keras_model`` for the Keras object) and its data (its own,
    ``data_path`` or ``table``) scaled with the run's scaler (trailing missing targets of new data refused unless
    ``allow_missing_tail``).

    Returns:
        ``(run, model, data, warnings)``.
    """
    run, model = _open(run_dir, keras_model)
    data, warnings = run_data(run, data_path, table, allow_missing_tail)
    return run, model, data, warnings


def evaluate(
    run_dir: str,
    data_path: str | None = None,
    split: str = "test",
    output: str | None = None,
    table: pd.DataFrame | None = None,
) -> tuple[Evaluation, list[str]]:
    """Score a finished run and the baselines on ``split`` of its data (or of ``data_path``, or ``table``).

    A run with intervals gets its saved bands scored too (adaptive ones start from the validation residuals).
    ``output``: also write every window's forecast there in long format (:func:`predictions.predictions_table`).
    """
    if output:  # refused before any work
        artifacts.check_output(output, "--output")
    run, model, data, warnings = open_run_with_data(run_dir, data_path, table)
    ev = evaluate_model(model, data, run.config, split)
    calibration = run.intervals
    if calibration is not None:
        val = evaluate_model(model, data, run.config, "val") if calibration.adaptive and split != "val" else None
        add_intervals(ev, calibration, data, val)
        warnings += ev.metrics["intervals"]["warnings"]
    w = text.mase_warning(ev)
    if w:
        warnings.append(w)
    if output:
        qs = calibration.quantiles if calibration else None
        table = predictions_table(data, ev.starts, ev.actual, ev.forecasts["model"], ev.bands.get("model"), qs)
        artifacts.write_table(output, table)
    return ev, warnings


def forecast(
    run_dir: str, data_path: str | None = None, table: pd.DataFrame | None = None, allow_missing_tail: bool = False
) -> tuple[pd.DataFrame, SeriesData, list[str]]:
    """Forecast ``horizon`` steps past the end of the data (``data_path`` or ``table`` when given), in original
    units and timestamps. Trailing missing target values in new data are refused unless ``allow_missing_tail``
    (then filled, warned)."""
    run, model, data, warnings = open_run_with_data(run_dir, data_path, table, allow_missing_tail=allow_missing_tail)
    table = forecast_table(model, data, run.schema["frequency"], run.intervals)
    if run.schema.get("calendar") == "steps":
        warnings.append(
            f"note: rows are steps; future timestamps follow the {run.schema['frequency']!r} calendar "
            "(e.g. business days), holidays not excluded"
        )
    return table, data, warnings


def forecast_table(model, data: SeriesData, frequency: str, calibration: I.RunIntervals | None = None) -> pd.DataFrame:
    """One row per series and step: timestamp, [series], step, quantile, one column per target.

    With intervals, one more column per target and quantile (``intervals.quantile_column``: ``temp_max_p10``).
    """
    _check_history(data)
    L = data.input_length
    starts, inputs = data.forecast_inputs(frequency)  # (S,), the window ending at each series' last observed row
    # the compiled predict step: an eager model(x) under JAX compiles the scan anew each call (~200 ms)
    raw_pred = np.asarray(model.predict_on_batch(inputs))
    output = data.invert(starts, raw_pred)  # (S, H, T, Qm)
    method, levels = (calibration.method, calibration.levels) if calibration else (None, None)
    pred = I.point_forecast(output, method, levels)  # (S, H, T, 1)
    bands = I.model_bands(calibration, output) if calibration else None  # (S, H, T, Q)
    last_times = data.timestamps(windows.last_input_rows(starts, L))  # (S,)
    rows = []
    for i, s in enumerate(data.segments):
        future = windows.target_times(last_times[i], data.horizon, frequency)
        for h in range(data.horizon):
            row = {"timestamp": future[h]}
            if len(data.segments) > 1:
                row["series"] = s.series
            row |= {"step": h + 1, "quantile": "median" if method in ("quantile", "cqr") else "mean"}
            row |= {t: pred[i, h, j, 0] for j, t in enumerate(data.targets)}
            if bands is not None:
                row |= _quantile_cells(bands[i, h], data.targets, calibration.quantiles)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["intervals"] = calibration  # for plot_forecast's fan
    return table


def _quantile_cells(bands: np.ndarray, targets: list[str], qs: np.ndarray) -> dict:
    """``(T, Q)`` quantiles of one forecast step -> ``{temp_max_p10: ..., ...}``."""
    return {I.quantile_column(t, q): bands[j, k] for j, t in enumerate(targets) for k, q in enumerate(qs)}


def _check_history(data: SeriesData) -> None:
    """Every series needs ``input_length`` rows of history (one more when a transform differences it)."""
    L = data.input_length
    skip = 1 if any(k != "none" for k in data.transform.values()) else 0
    for s in data.segments:
        if s.hi - s.lo - skip < L:
            who = f"series {s.series!r} has" if len(data.segments) > 1 else "the data has"
            raise DataError(
                f"{who} {s.hi - s.lo} rows, fewer than input_length={L}{' + 1 (for the transform)' if skip else ''}",
                where=str(data.frame.path),
                fix=f"pass at least {L + skip} rows of history",
            )


def check_outputs(output: str | None, plot: str | None) -> None:
    """``predict``'s output paths, before any work: never a file of a run, the plot a .png."""
    if output:
        artifacts.check_output(output, "--output")
    if plot:
        artifacts.check_output(plot, "--plot", suffix=".png")


def save_forecast(table: pd.DataFrame, path: str) -> None:
    """``predict --output``: the forecast table as CSV, written atomically."""
    artifacts.write_table(path, table)


def plot_forecast(table: pd.DataFrame, data: SeriesData, path: str) -> None:
    """``predict --plot``: the first series' recent history (5 input windows) and its forecast of the first target,
    with a fan of its intervals when the run has them."""
    seg = data.segments[0]
    rows = windows.history_rows(seg.lo, seg.hi, 5 * data.input_length)
    target = data.targets[0]
    first = table[table["series"] == seg.series] if "series" in table else table
    bands, levels = None, ()
    calibration = table.attrs.get("intervals")  # set by forecast_table
    if calibration is not None:
        bands = first[[I.quantile_column(target, q) for q in calibration.quantiles]].to_numpy()  # (H, Q)
        levels = calibration.levels
    with artifacts.atomic_output(artifacts.check_output(path, "--plot", suffix=".png"), "--plot") as tmp:
        plots.predict_plot(
            data.timestamps(rows),
            data.raw[rows, data.target_idx[0]],
            first["timestamp"],
            first[target],
            target,
            tmp,
            unit=data.frame.unit(target),
            bands=bands,
            levels=levels,
        )


def inspect_run(run_dir: str | Path, split: str = "test", window_index: int = 0) -> tuple[dict, Path, list[str]]:
    """Run ``internals.inspect_model`` on the windows of one split of a run; writes ``<run>/inspect/``.

    Returns:
        ``(numbers, directory, warnings)``: the numbers behind the plots (as in inspect.json), where they are, warnings.
    """
    run, model, data, warnings = open_run_with_data(run_dir, keras_model=True)  # inspect reads Keras layers
    starts = data.starts(split, stride=1)
    if not 0 <= window_index < len(starts):
        valid = f"0..{len(starts) - 1}" if len(starts) else "none, the split has no complete window"
        raise RunError(
            f"--window {window_index} is out of range for the {split} split (valid: {valid})",
            where=str(run.path),
            fix=f"pass --window {len(starts) - 1} or less" if len(starts) else "use a split with windows (--split)",
        )
    x, _ = data.batch(starts)  # (N, L, F) model space
    out = run.path / "inspect"
    step = run.schema.get("median_step_seconds")
    try:
        numbers = inspect_model(model, x, data.features, out, window_index=window_index, step_seconds=step)
    except OSError as e:
        raise RunError(
            f"cannot write the inspection ({e.strerror or e})",
            where=str(e.filename or out),
            fix="make the run directory writable, or copy the run somewhere writable and inspect the copy",
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
    from .executor import WorkerDied

    levels = I.check_levels(levels)
    data = load_data(cfg)  # config and data errors before any directory exists
    plan = B.make_plan(cfg, data.frame, folds, step, refit)
    final = artifacts.plan_compare_dir(
        cfg, out[: -len(".partial")] if out and out.endswith(".partial") else out, "backtest"
    )
    resume = f"rnnforecast backtest {config_path} --folds {folds} --step {plan.step} --refit {refit} --out {final}"
    again = f"Resume it with: {resume}"
    fingerprint = {**B.fingerprint(cfg, plan, levels), **artifacts.resume_keys(cfg, data.frame.source_sha256)}
    partial, resumed = artifacts.start_or_resume(final, fingerprint, what="backtest", again=again)
    if not resumed:
        artifacts.write_atomic(
            partial / "config.yaml", "# base config; each fold changes only data.split\n" + cfg.to_yaml()
        )
    t0 = time.perf_counter()
    groups = [[f for f in plan.folds if f.model_fold == k] for k in sorted({f.model_fold for f in plan.folds})]
    todo = [g for g in groups if not all(B.fold_done(partial, f.index) for f in g)]
    _say(
        f"backtest: {len(plan.folds)} folds, {len(todo)} model(s) to run{' (resumed)' if resumed else ''} -> {partial}"
    )
    spec = {"cfg": cfg, "frame": data.frame, "plan": plan, "dir": str(partial), "levels": levels, "quiet": quiet}
    try:
        for ran in _backtest_groups(spec, todo, workers):
            _say(f"backtest: folds {', '.join(str(i) for i in ran)} done")
    except (KeyboardInterrupt, Interrupted, WorkerDied) as e:
        raise _unfinished(partial, e, "backtest", f"finished folds are kept; resume with: {resume}") from e
    parts = [B.read_fold(partial, f.index) for f in plan.folds]
    record = B.summarise(cfg, plan, [r for r, _ in parts], levels, time.perf_counter() - t0)
    predictions = pd.concat([p for _, p in parts], ignore_index=True)
    artifacts.write_atomic(partial / "predictions.csv", predictions.to_csv(index=False))
    artifacts.write_json(partial / "metrics.json", record)
    if cfg.output.plots:
        plots.backtest_plots(partial / "plots", record, predictions, {t: data.frame.unit(t) for t in data.targets})
    final = artifacts.finish(partial)
    return DirectoryResult(final, record, text.backtest_table(record, final))


def _backtest_groups(spec: dict, groups: list[list], workers: int):
    """Each group of folds (one model) in this process, as ``train`` runs (Ctrl-C and SIGTERM stop it at the next
    batch), or as tasks of ``workers`` local processes; yields the folds each group ran."""
    from .executor import make_executor

    if workers == 1:
        for g in groups:
            yield backtest_folds({**spec, "folds": g})
        return
    with make_executor("local", workers) as ex:
        for h in ex.as_completed([ex.submit(backtest_folds, {**spec, "folds": g}) for g in groups]):
            yield h.result()


def backtest_folds(spec: dict) -> list[int]:
    """Executor task: the folds that share one model, earliest first; the first of them trains it.

    Each fold writes ``folds/NN/`` and marks itself done with ``fold.json``; done folds are skipped.
    """
    cfg, frame, plan, root = spec["cfg"], spec["frame"], spec["plan"], Path(spec["dir"])  # the driver's read
    backend.activate(cfg.runtime.backend)
    model, ran = None, []
    for fold in spec["folds"]:
        if B.fold_done(root, fold.index):
            continue
        fcfg = cfg.replace(**plan.overrides(fold))
        end = plan.fold_times(fold)["test_end"]
        model, data, training = _fold_model(fcfg, frame, fold, end, root, model, spec["quiet"])
        record, table = _fold_forecasts(model, data, fcfg, fold, plan, spec["levels"], training)
        fdir = B.fold_dir(root, fold.index)
        fdir.mkdir(parents=True, exist_ok=True)
        artifacts.write_atomic(fdir / "predictions.csv", table.to_csv(index=False))
        artifacts.write_json(fdir / "fold.json", record)  # last: the fold is done
        ran.append(fold.index)
    return ran


def _fold_model(cfg: Config, frame, fold, end: str | None, root: Path, model, quiet: bool):
    """The fold's model and its view of the data (test stretch ending before ``end``): trained here when the
    fold refits, else its model fold's model with that fold's scaler (the only scaling the model knows).

    Returns:
        ``(model, data, training)``; ``training`` is None when the fold reuses a model.
    """
    end = pd.Timestamp(end) if end else None
    if not fold.refit:
        mdir = B.fold_dir(root, fold.model_fold)
        data = build(frame, cfg, scaler=Scaler.load(mdir / "scaler.json"), check_splits=False).fold_view(end)
        return model or artifacts.load_model(mdir / "model.keras"), data, None
    data = build(frame, cfg, check_splits=False).fold_view(end)
    fdir = B.fold_dir(root, fold.index)
    fdir.mkdir(parents=True, exist_ok=True)
    model, fit, seconds = fit_model(cfg, data, fdir / "checkpoint", quiet=quiet)
    artifacts.save_model(model, fdir / "model.keras")
    data.scaler.save(fdir / "scaler.json")
    history = artifacts.history_table(fit.history, fit.epochs_run)
    artifacts.write_atomic(fdir / "history.csv", history.to_csv(index=False))  # the tool's own file: no output check
    shutil.rmtree(fdir / "checkpoint", ignore_errors=True)  # made by fit_model a moment ago
    return model, data, {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "train_seconds": seconds}


def _fold_forecasts(model, data: SeriesData, cfg: Config, fold, plan, levels, training) -> tuple[dict, pd.DataFrame]:
    """Score the fold's test windows (model and baselines), band them with conformal widths from its
    validation windows (persistence too), and lay them out as rows."""
    val, test = evaluate_model(model, data, cfg, "val"), evaluate_model(model, data, cfg, "test")
    bands, scores, cal = {}, {}, None
    for name in ("model", "persistence"):
        q, c = I.conformal_bands(val.actual, val.forecasts[name], test.forecasts[name], levels)
        bands[name], scores[name] = q, I.interval_metrics(test.actual, q, levels, data.targets)
        cal = cal or c
    q = bands["model"]  # (B, H, T, Q), the median is the point forecast
    table = predictions_table(
        data, test.starts, test.actual, q[..., I.median_index(levels)], q, I.quantile_levels(levels), fold.index
    )
    record = B.fold_record(fold, plan, test.metrics, scores, cal.to_dict(), training)
    return record, table

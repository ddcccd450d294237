"""The one pipeline: config -> frame -> scaled series -> windows -> model -> metrics, plots, run directory.

Every CLI command is a function here; none of them needs click. Keras is imported only by the
functions that train or load a model, after the backend is chosen.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import artifacts, backend, metrics
from .config import Config, cuda_path_warning
from .data import SERIES, Frame, load_frame, ns, read_table, season_length
from .errors import DataError, Interrupted, RunError, TrainingError
from .scaling import Scaler
from .series import SPLITS, SeriesData, build


def _say(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def load_data(cfg: Config) -> SeriesData:
    frame = load_frame(cfg.data, cfg.data_path)
    return build(frame, cfg)


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


def hint_lines(data: SeriesData, cfg: Config) -> list[str]:
    lines = []
    for col, share in stationarity_hints(data).items():
        if (
            share > 0.2
            and cfg.data.transform.get(col, cfg.data.transform.get("*", "none")) == "none"
            and cfg.data.scaling != "window"
        ):
            lines.append(
                f"hint: {share:.0%} of the test values of {col!r} lie outside the training range; the model will have to "
                f"extrapolate. Consider data.transform: {{{col}: log_diff}} (or diff) or data.scaling: window."
            )
    return lines


def describe(cfg: Config, data: SeriesData) -> str:
    """The validate report: config, data, splits, window geometry, batch shapes."""
    f, df = data.frame, data.frame.df
    tc = f.time_column
    L, H, S = cfg.window.input_length, cfg.window.horizon, cfg.window.stride
    out = ["# resolved config", cfg.to_yaml().rstrip(), "", "# data"]
    out.append(f"file:       {f.path}")
    out.append(
        f"rows:       {len(df)} ({len(f.series)} series{': ' + ', '.join(f.series[:8]) if len(f.series) > 1 else ''})"
    )
    out.append(
        f"time range: {df[tc].iloc[0]} .. {df[tc].iloc[-1]}"
        if len(f.series) == 1
        else f"time range: {df[tc].min()} .. {df[tc].max()}"
    )
    cal = (
        "rows are steps (no rows invented for gaps)"
        if f.calendar == "steps"
        else f"regular; {f.gap_rows} gap rows added"
    )
    out.append(f"frequency:  {f.frequency} ({'given' if cfg.data.frequency else 'inferred'}; {cal})")
    out.append(f"targets:    {', '.join(f.targets)}")
    out.append(f"features:   {', '.join(f.features)} ({len(f.features)})")
    out.append(f"missing values per column (before `missing: {cfg.data.missing}`):")
    for col, n in f.missing_before.items():
        out.append(f"  {col:<24} {n}")
    out += ["", "# splits (chronological; scaler fitted on train only)"]
    for s in data.segments:
        prefix = f"[{s.series}] " if len(data.segments) > 1 else ""
        for name in SPLITS:
            lo, hi = s.bounds[name]
            t0, t1 = (df[tc].iloc[lo], df[tc].iloc[hi - 1]) if hi > lo else ("-", "-")
            out.append(f"{prefix}{name:<5} rows {lo:>7}..{hi - 1:<7} ({hi - lo:>6} rows)  {t0} .. {t1}")
    out += ["", "# windows"]
    out.append(f"input_length={L}  horizon={H}  stride={S}")
    out.append(
        f"first window: inputs rows [0, {L - 1}], targets rows [{L}, {L + H - 1}]; next window starts at row {S}"
    )
    for name in SPLITS:
        out.append(f"{name:<5} windows: {len(data.starts(name, stride=S if name == 'train' else 1))}")
    B = cfg.training.batch_size
    out.append(
        f"batch shapes: past ({B}, {L}, {len(data.feature_idx)}) -> forecast ({B}, {H}, {len(data.target_idx)}, 1)  # (batch, horizon, targets, quantiles)"
    )
    out += ["", "# stationarity (share of test-split values outside the training split's range)"]
    for col, share in stationarity_hints(data).items():
        out.append(f"{col:<24} {share:.0%}")
    hints = hint_lines(data, cfg)
    if hints:
        out += hints
    return "\n".join(out)


def validate(cfg: Config) -> str:
    return describe(cfg, load_data(cfg))


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
    forecasts: dict[str, np.ndarray]  # name -> (B, H, T, Q); "model" first
    metrics: dict


def evaluate_model(model, data: SeriesData, cfg: Config, split: str = "test") -> Evaluation:
    from .numpy_model import predict_windows

    starts = data.starts(split, stride=1)
    if len(starts) == 0:
        raise DataError(
            f"the {split} split has no complete window",
            where=str(data.frame.path),
            fix="use more data or a shorter window",
        )
    pred = data.invert(starts, predict_windows(model, data, starts))  # (B, H, T, Q)
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
        names = data.series_of(starts)
        result["per_series"] = {}
        for s in data.segments:
            m = names == s.series
            if m.any():
                sub = {k: v[m] for k, v in forecasts.items()}
                result["per_series"][s.series] = metrics.evaluate_forecasts(
                    actual[m], sub, data.targets, norm_scale(data)
                )["original"]["overall"]
    return Evaluation(split, starts, actual, forecasts, result)


def summary_table(ev: Evaluation) -> str:
    rows = ev.metrics["original"]["overall"]
    pct = "mape" if "mape" in rows["model"] else "smape"
    lines = [f"{'':<16}{'MSE':>12}{'RMSE':>12}{'MAE':>12}{pct.upper():>9}{'MASE':>8}{'skill':>8}"]
    for name, r in rows.items():
        lines.append(
            f"{name:<16}{_fmt(r['mse'])}{_fmt(r['rmse'])}{_fmt(r['mae'])}{_fmt(r[pct], 9, 2)}{_fmt(r['mase'], 8, 3)}{_fmt(r['skill'], 8, 3)}"
        )
    return "\n".join(lines)


def _fmt(v, width: int = 12, digits: int = 4) -> str:
    if v is None:
        return f"{'n/a':>{width}}"
    return f"{v:>{width}.{digits}g}" if digits == 4 else f"{v:>{width}.{digits}f}"


def mase_warning(ev: Evaluation) -> str | None:
    mase = ev.metrics["original"]["overall"]["model"]["mase"]
    if mase is not None and mase >= 1:
        return (
            f"warning: MASE {mase:.3f} >= 1 on the {ev.split} split: the model does no better than repeating the last "
            "observed value (persistence)."
        )
    return None


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    run_dir: Path
    evaluation: Evaluation
    metrics: dict
    table: str


def train(
    cfg: Config, *, config_path: str, run_dir: str | None = None, resume: str | None = None, quiet: bool = False
) -> TrainResult:
    """Train as ``cfg`` says and write a complete run directory (or raise, leaving a marked partial one)."""
    backend_name = backend.activate(cfg.runtime.backend)
    data = load_data(cfg)
    for line in hint_lines(data, cfg):
        _say(line)
    warn = cuda_path_warning(cfg)
    if warn:
        _say(f"warning: {warn}")

    if resume:
        partial = _resume_dir(resume, cfg)
        state = _read_state(partial)
    else:
        partial = artifacts.start(artifacts.plan_run_dir(cfg, run_dir), config_path)
        state = None
    from . import train as T  # imports Keras

    try:
        return _train_into(partial, cfg, data, state, backend_name, quiet)
    except KeyboardInterrupt:
        epoch = artifacts.keep_only_checkpoint(partial)
        if epoch is None:
            raise Interrupted(
                "interrupted before the first epoch finished; nothing was kept",
                where=str(partial),
                fix=f"start again: rnnforecast train {config_path}",
            ) from None
        raise Interrupted(
            f"interrupted; epoch {epoch} of {cfg.training.epochs} is saved in this unfinished run",
            where=str(partial),
            fix=f"resume with: rnnforecast train {config_path} --resume {partial}",
        ) from None
    except OSError as e:
        epoch = artifacts.keep_only_checkpoint(partial)  # no half-written files stay behind
        kept = f"epoch {epoch} is kept in {partial}" if epoch else "nothing was kept"
        fix = (
            f"free disk space, then resume with: rnnforecast train {config_path} --resume {partial}"
            if epoch
            else "free disk space or choose a writable --run-dir"
        )
        raise TrainingError(
            f"cannot write the run ({e.strerror or e}); {kept}", where=str(e.filename or partial), fix=fix
        ) from None
    except TrainingError:
        artifacts.keep_only_checkpoint(partial)
        raise
    finally:
        del T


def _resume_dir(resume: str, cfg: Config) -> Path:
    p = Path(resume)
    if not p.name.endswith(artifacts.PARTIAL_SUFFIX) and artifacts.partial_of(p).exists():
        p = artifacts.partial_of(p)
    if not p.exists():
        raise RunError(
            "nothing to resume here", where=str(p), fix="pass the .partial directory printed when training stopped"
        )
    if not (p / "checkpoint" / "state.json").exists():
        raise RunError(
            "no completed epoch was saved, so there is nothing to resume", where=str(p), fix="start a new training"
        )
    saved = yaml.safe_load((p / "config.yaml").read_text()) if (p / "config.yaml").exists() else None
    if saved is not None and saved != cfg.to_dict():
        raise RunError(
            "the config differs from the one this run started with",
            where=str(p / "config.yaml"),
            fix="resume with the same config and --set options",
        )
    return p


def _read_state(partial: Path) -> dict:
    import json

    return json.loads((partial / "checkpoint" / "state.json").read_text())


def _train_into(
    partial: Path, cfg: Config, data: SeriesData, state: dict | None, backend_name: str, quiet: bool
) -> TrainResult:
    from . import train as T
    from .models import build_model

    (partial / "config.yaml").write_text(cfg.to_yaml())
    T.seed_everything(cfg.seed, cfg.runtime.deterministic)
    ckpt = partial / "checkpoint"
    if state is not None:
        model = artifacts.load_model_compiled(ckpt / state.get("model", "model.keras"))
        _say(f"resuming from epoch {state['epoch'] + 1} of {cfg.training.epochs}")
    else:
        model = build_model(
            cfg.model,
            cfg.window.input_length,
            len(data.feature_idx),
            cfg.window.horizon,
            len(data.target_idx),
            cfg.seed,
        )
        T.compile_model(model, cfg)
    t0 = time.perf_counter()
    fit = T.fit(model, data, cfg, ckpt, quiet=quiet, resume_state=state)
    train_seconds = time.perf_counter() - t0

    ev = evaluate_model(model, data, cfg, "test")
    val = evaluate_model(model, data, cfg, "val")
    model.save(partial / "model.keras")
    data.scaler.save(partial / "scaler.json")
    artifacts.write_json(partial / "schema.json", schema_of(data, cfg))
    pd.DataFrame(
        {
            "epoch": np.arange(1, fit.epochs_run + 1),
            **{k: v for k, v in fit.history.items() if len(v) == fit.epochs_run},
        }
    ).to_csv(partial / "history.csv", index=False)
    record = {
        "format_version": artifacts.FORMAT_VERSION,
        "split": "test",
        "n_windows": ev.metrics["n_windows"],
        "season_length": ev.metrics["season_length"],
        "test": {k: ev.metrics[k] for k in ("original", "normalised")},
        "val": {k: val.metrics[k] for k in ("original", "normalised")},
        "per_series": ev.metrics.get("per_series"),
        "training": {
            "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch,
            "stopped_early": fit.stopped_early,
            "params": int(model.count_params()),
            "best_val_loss": _finite(min(fit.history.get("val_loss", [math.nan]))),
        },
        "stationarity": {"share_test_outside_train_range": stationarity_hints(data)},
        "backend": backend_name,
        "versions": backend.versions(),
        "config_sha256": cfg.hash(),
        "data_sha256": artifacts.sha256(cfg.data_path),
        "seed": cfg.seed,
    }
    artifacts.write_json(partial / "metrics.json", record)
    artifacts.write_json(
        partial / "timing.json",
        {
            "train_seconds": train_seconds,
            "epoch_seconds": fit.epoch_seconds,
            "median_epoch_seconds": float(np.median(fit.epoch_seconds)) if fit.epoch_seconds else None,
        },
    )
    forecast_table(model, data, data.frame.frequency).to_csv(partial / "forecast.csv", index=False)
    if cfg.output.plots:
        from . import plots

        plots.run_plots(partial / "plots", fit.history, fit.best_epoch, ev, data)
    final = artifacts.finish(partial)
    table = summary_table(ev)
    tail = [
        "",
        f"test split, original units, {ev.metrics['n_windows']} windows:",
        table,
        "",
        f"epochs run {fit.epochs_run}, best epoch {fit.best_epoch}, training time {train_seconds:.1f}s "
        f"({record['training']['params']} parameters, backend {backend_name})",
    ]
    w = mase_warning(ev)
    if w:
        tail.append(w)
    tail.append(f"run directory: {final}")
    return TrainResult(final, ev, record, "\n".join(tail))


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != math.inf else None


def schema_of(data: SeriesData, cfg: Config) -> dict:
    f = data.frame
    df = f.df
    t = pd.DatetimeIndex(df[f.time_column])
    last = {s.series: str(t[s.hi - 1]) for s in data.segments}
    steps = np.diff(ns(t)) if len(t) > 1 else np.array([0])
    return {
        "format_version": artifacts.FORMAT_VERSION,
        "time_column": f.time_column,
        "series_id": cfg.data.series_id,
        "series": [s.series for s in data.segments],
        "columns": data.columns,
        "features": data.features,
        "targets": data.targets,
        "source_columns": sorted(set(f.numeric_source) - {SERIES}),
        "dtypes": f.numeric_source,
        "categories": f.categories,
        "frequency": f.frequency,
        "calendar": f.calendar,
        "median_step_seconds": float(np.median(steps[steps > 0]) / 1e9) if (steps > 0).any() else None,
        "last_timestamp": last,
        "transform": data.transform,
        "input_length": data.input_length,
        "horizon": data.horizon,
        "n_quantiles": 1,
        "quantiles": ["mean"],
        "rows": int(len(df)),
    }


# --------------------------------------------------------------------------- using a run


def _open(run_dir: str | Path, keras_model: bool = False):
    """The run and its model: numpy when it can (no Keras import), or ``keras_model`` for the Keras object."""
    from .numpy_model import load_predictor

    run = artifacts.open_run(run_dir)
    backend.activate(run.config.runtime.backend if run.config.runtime.backend != "auto" else "auto")
    model = load_predictor(run.model_path, run.schema, keras=keras_model)
    return run, model


def _run_data(run, data_path: str | None, check_splits: bool) -> tuple[SeriesData, list[str]]:
    cfg: Config = run.config
    warnings = []
    path = Path(data_path).resolve() if data_path else cfg.data_path
    if data_path and not path.exists():
        raise DataError("--data file not found", where=str(path), fix="check the path given to --data")
    if data_path:
        check_against_schema(path, run.schema)
    elif not path.exists():
        raise RunError("the run's data file is gone", where=str(path), fix="pass the data with --data FILE")
    elif artifacts.sha256(path) != run.metrics.get("data_sha256"):
        warnings.append(
            f"warning: {path} changed since training (SHA-256 differs); results will not match the run's metrics"
        )
    if data_path:
        cfg = cfg.replace(**{"data.path": str(path)})
    frame = load_frame(cfg.data, path, categories=run.schema.get("categories"))
    if data_path:
        _check_step(frame, run.schema, path)
    scaler = Scaler.load(run.path / "scaler.json")
    if frame.columns != run.schema["columns"]:
        raise RunError(
            f"the data gives model columns {frame.columns}, the run was trained on {run.schema['columns']}",
            where=str(path),
            fix="pass a file with the same columns as the training data",
        )
    return build(frame, cfg, scaler=scaler, check_splits=check_splits), warnings


def check_against_schema(path: Path, schema: dict) -> None:
    df = read_table(path)
    have = set(map(str, df.columns))
    need = [c for c in schema["source_columns"] if c != "__line__"]
    missing = [
        c
        for c in need
        if c not in have and c in set(schema["columns"]) | {schema["time_column"]} | set(schema.get("categories", {}))
    ]
    if missing:
        raise RunError(
            f"columns {missing} that the run was trained on are missing (file has: {', '.join(sorted(have))})",
            where=str(path),
            fix="pass a file with the training data's columns (see schema.json in the run)",
        )


def _check_step(frame: Frame, schema: dict, path: Path) -> None:
    t = pd.DatetimeIndex(frame.df[frame.time_column])
    steps = np.diff(ns(t))
    steps = steps[steps > 0]
    want = schema.get("median_step_seconds")
    if want and len(steps):
        got = float(np.median(steps)) / 1e9
        if abs(got - want) > 0.01 * want:
            raise RunError(
                f"the file's time step is {pd.Timedelta(seconds=got)}, the run was trained on {pd.Timedelta(seconds=want)} ({schema['frequency']})",
                where=str(path),
                fix="resample the file to the training frequency, or train a new run on it",
            )


def open_run_with_data(run_dir: str | Path, data_path: str | None = None):
    """A finished run, its model (backend activated first) and its data scaled with the run's scaler.

    Returns:
        ``(run, model, data, warnings)``.
    """
    run, model = _open(run_dir, keras_model=True)
    data, warnings = _run_data(run, data_path, check_splits=False)
    return run, model, data, warnings


def inspect_run(run_dir: str | Path, split: str = "test", window_index: int = 0) -> tuple[dict, Path, list[str]]:
    """Run ``rnnforecast.inspect`` on the windows of one split of a run; writes ``<run>/inspect/``.

    Returns:
        ``(numbers, directory, warnings)``: the numbers behind the plots (as in inspect.json), where they are, warnings.
    """
    run, model, data, warnings = open_run_with_data(run_dir)
    starts = data.starts(split, stride=1)
    if not 0 <= window_index < len(starts):
        valid = f"0..{len(starts) - 1}" if len(starts) else "none, the split has no complete window"
        raise RunError(
            f"--window {window_index} is out of range for the {split} split (valid: {valid})", where=str(run.path)
        )
    from .internals import inspect_model

    x, _ = data.batch(starts)  # (N, L, F) model space
    out = run.path / "inspect"
    step = run.schema.get("median_step_seconds")
    return inspect_model(model, x, data.features, out, window_index=window_index, step_seconds=step), out, warnings


def evaluate(run_dir: str, data_path: str | None = None, split: str = "test") -> tuple[Evaluation, list[str]]:
    run, model = _open(run_dir)
    data, warnings = _run_data(run, data_path, check_splits=False)
    ev = evaluate_model(model, data, run.config, split)
    w = mase_warning(ev)
    if w:
        warnings.append(w)
    return ev, warnings


def forecast(run_dir: str, data_path: str | None = None) -> tuple[pd.DataFrame, SeriesData, list[str]]:
    """Forecast ``horizon`` steps past the end of the data, in original units and timestamps."""
    run, model = _open(run_dir)
    data, warnings = _run_data(run, data_path, check_splits=False)
    table = forecast_table(model, data, run.schema["frequency"])
    if run.schema.get("calendar") == "steps":
        warnings.append(
            f"note: rows are steps; future timestamps follow the {run.schema['frequency']!r} calendar "
            "(e.g. business days), holidays not excluded"
        )
    return table, data, warnings


def forecast_table(model, data: SeriesData, frequency: str) -> pd.DataFrame:
    """One row per series and step: timestamp, [series], step, quantile, one column per target."""
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
    starts = np.array([s.hi - L for s in data.segments], dtype=np.int64)
    # the compiled predict step: an eager model(x) under JAX compiles the scan anew each call (~200 ms)
    raw_pred = np.asarray(model.predict_on_batch({"past": data.inputs(starts)}))
    pred = data.invert(starts, raw_pred)  # (S, H, T, Q)
    offset = pd.tseries.frequencies.to_offset(frequency)
    rows = []
    for i, s in enumerate(data.segments):
        last = data.timestamps(np.array([s.hi - 1]))[0]
        future = pd.date_range(last, periods=data.horizon + 1, freq=offset)[1:]
        for h in range(data.horizon):
            row = {"timestamp": future[h]}
            if len(data.segments) > 1:
                row["series"] = s.series
            row["step"] = h + 1
            row["quantile"] = "mean"
            for j, t in enumerate(data.targets):
                row[t] = pred[i, h, j, 0]
            rows.append(row)
    return pd.DataFrame(rows)

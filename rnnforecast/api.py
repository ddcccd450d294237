"""The Python API: ``train``, ``evaluate``, ``predict`` and ``load_run``, the CLI's pipeline without click.

A config is a YAML path, a dict (the YAML's content) or a ``Config``; data may be a pandas DataFrame in
place of ``data.path``, and goes through every check a file goes through. Results are typed: forecasts
are DataFrames with a ``timestamp`` column, scores are dicts of floats in the data's units.

A tz-aware time column follows the CLI's one zone rule (``data.zone_rule``, README "Time zones"): daily and
coarser data at local midnight keep their local dates, finer data is read in UTC; forecast timestamps are naive
in that reading, never re-localised.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import pipeline
from .artifacts import OWNER, PARTIAL_SUFFIX, open_run, partial_of
from .config import Config, from_dict, load_config
from .errors import RnnForecastError, RunError
from .records import Scores

__all__ = ["Evaluation", "Forecast", "Run", "Training", "evaluate", "load_run", "predict", "train"]


@dataclass(frozen=True)
class Evaluation:
    """Scores of a run's model and the naive baselines on one split, in the data's units."""

    run_dir: Path  # absolute, like every path the API returns
    split: str  # "test", "val" or "train"
    n_windows: int
    scores: dict[str, float]  # the model's mse, rmse, mae, mape (or smape), mase, skill over all windows and leads
    baselines: dict[str, dict[str, float]]  # persistence, seasonal_naive, ... -> the same scores
    mae_by_lead: list[float]  # the model's MAE at t+1 .. t+horizon
    metrics: dict  # everything, as `rnnforecast evaluate --json` prints under "metrics"
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Forecast:
    """The next ``horizon`` steps after the data's last row."""

    run_dir: Path
    table: pd.DataFrame  # timestamp (datetime64), [series], step, quantile, one column per target
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Training:
    """A finished training: where its run directory is and how it scored on the test split."""

    run_dir: Path
    evaluation: Evaluation  # the test split
    history: pd.DataFrame  # one row per epoch: loss, val_loss, ...
    forecast: pd.DataFrame  # the forecast past the end of the training data (forecast.csv)


@dataclass(frozen=True)
class Run:
    """A finished run directory, read back (the model loads once, when it is first used)."""

    path: Path
    config: Config
    metrics: dict  # metrics.json
    schema: dict  # schema.json: the columns new data must have

    @functools.cached_property
    def forecaster(self) -> pipeline.Forecaster:
        """The trained model, scaler and calibration, loaded on first use and kept."""
        return pipeline.Forecaster.load(self.path)

    def predict(self, data: pd.DataFrame | str | Path | None = None) -> Forecast:
        return predict(self, data)

    def evaluate(self, data: pd.DataFrame | str | Path | None = None, split: str = "test") -> Evaluation:
        return evaluate(self, data, split)


def _config(config: str | Path | dict | Config, overrides: tuple[str, ...] | list[str]) -> tuple[Config, str]:
    """A ``Config`` and how to name it in resume hints."""
    if isinstance(config, Config):
        cfg, name = config, config.source
    elif isinstance(config, dict):
        cfg, name = from_dict(config, source="<dict>", base_dir=str(Path.cwd())), "<dict>"
    else:
        return load_config(config, overrides), str(config)
    if overrides:
        from .config import parse_override

        cfg = cfg.replace(**dict(parse_override(o) for o in overrides))
    return cfg, name


# The CLI's words in error messages -> the API's (argument names), for errors raised under an API call.
PYTHON_TERMS = (
    (re.compile(r"--set (\S*?[.=]\S*?)(?=[,.;:]?(?:\s|$))"), r'overrides=["\1"]'),  # a key or KEY=VALUE
    (re.compile(r"--set\b"), "overrides"),
    (re.compile(r"--run-dir\b"), "run_dir"),
    (re.compile(r"--data\b"), "data"),
    (re.compile(r"--split\b"), "split"),
    (re.compile(r"--allow-missing-tail\b"), "allow_missing_tail=True"),
)


def _python_terms(text: str | None) -> str | None:
    if text is None:
        return None
    for pattern, words in PYTHON_TERMS:
        text = pattern.sub(words, text)
    return text


def _in_python_terms(function):
    """Errors of the pipeline name CLI options (``--run-dir``); raised from the API they name its arguments."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RnnForecastError as e:
            e.message, e.where, e.fix = _python_terms(e.message), _python_terms(e.where), _python_terms(e.fix)
            e.args = (e.one_line(),)
            raise

    return call


def _evaluation(run_dir: Path, ev: pipeline.Evaluation, warnings: list[str]) -> Evaluation:
    scores = Scores.of(ev.metrics)
    return Evaluation(
        run_dir=Path(run_dir),
        split=ev.split,
        n_windows=ev.metrics["n_windows"],
        scores=scores.model,
        baselines=scores.baselines,
        mae_by_lead=scores.per_lead["model"]["mae"],
        metrics=ev.metrics,
        warnings=warnings,
    )


@_in_python_terms
def train(
    config: str | Path | dict | Config,
    data: pd.DataFrame | None = None,
    *,
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    overrides: tuple[str, ...] | list[str] = (),
    quiet: bool = True,
) -> Training:
    """Train as the config says and write a run directory, exactly as ``rnnforecast train`` does.

    Args:
        config: a YAML path, a dict with the YAML's content, or a ``Config``.
        data: the rows to train on, in place of ``data.path`` (the time column may be the index).
        run_dir: where to write the run (default ``runs/<name>-<time>/``). When it exists the run goes to
            ``<run_dir>-2``, ``-3``, ... (``Training.run_dir`` says where), unless ``overwrite``.
        overwrite: replace an existing ``run_dir``, when it is a finished run directory holding only what
            rnnforecast writes there (anything else is refused, never deleted). The old run is kept until the new
            one is complete.
        overrides: ``--set`` style changes, e.g. ``["training.epochs=3"]``.
        quiet: no per-epoch lines on stderr (default True).
    """
    cfg, name = _config(config, overrides)
    run_dir, replaced = _target(run_dir, overwrite)
    try:
        result = pipeline.train(
            cfg, config_path=name, run_dir=str(run_dir) if run_dir else None, quiet=quiet, table=data
        )
    except BaseException:
        if replaced is not None and not Path(run_dir).exists():
            os.rename(replaced, run_dir)  # the old run back where it was
        raise
    if replaced is not None:
        shutil.rmtree(replaced)
    run_dir = result.run_dir.resolve()
    return Training(run_dir, _evaluation(run_dir, result.evaluation, []), result.history, result.forecast)


# What a finished run directory may hold for overwrite= to replace it: its own files, and what report, inspect
# and export of earlier versions added inside it (they now write beside the run: artifacts.annex_path).
RUN_ENTRIES = frozenset(
    {"model.keras", "config.yaml", "scaler.json", "schema.json", "metrics.json", "history.csv", "timing.json"}
    | {"forecast.csv", "intervals.json", "plots", "members", "inspect", "tensorboard", "report.html", "heldout"}
)


def _target(run_dir: str | Path | None, overwrite: bool) -> tuple[Path | None, Path | None]:
    """Where ``train`` writes (``run_dir`` or a free name beside it), and where an overwritten run was set aside."""
    if run_dir is None:
        return None, None
    target = Path(run_dir)
    if overwrite and (target.exists() or target.is_symlink()):
        return target, _set_aside(target)
    return (target if overwrite else _free_name(target)), None


def _free_name(target: Path) -> Path:
    """``target``, or ``target-2``, ``-3``, ... : the first name with neither a directory nor a .partial."""
    candidate, n = target, 1
    while candidate.exists() or candidate.is_symlink() or partial_of(candidate).exists():
        n += 1
        candidate = target.with_name(f"{target.name}-{n}")
    return candidate


def _set_aside(target: Path) -> Path:
    """Move the finished run at ``target`` to a hidden name beside it (the caller removes it once the new run is
    complete). Anything but a finished run holding only rnnforecast's files is refused."""
    if target.is_symlink() or not target.is_dir():
        raise RunError(
            "overwrite=True replaces a run directory; this is not one", where=str(target), fix="pass another run_dir"
        )
    open_run(target)  # complete, readable, this version's
    foreign = sorted(p.name for p in target.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith("export-"))
    if foreign or target.name.endswith(PARTIAL_SUFFIX) or (target / OWNER).exists():
        raise RunError(
            f"overwrite=True would delete {', '.join(foreign) or 'an unfinished run'}, which rnnforecast did not write",
            where=str(target),
            fix="move those files out of the run directory, or pass another run_dir",
        )
    aside = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    os.rename(target, aside)
    return aside


def _data_args(data: pd.DataFrame | str | Path | None) -> tuple[str | None, pd.DataFrame | None]:
    if data is None or isinstance(data, pd.DataFrame):
        return None, data
    return str(data), None


@_in_python_terms
def predict(
    run: str | Path | Run, data: pd.DataFrame | str | Path | None = None, *, allow_missing_tail: bool = False
) -> Forecast:
    """Forecast the ``horizon`` steps after the last row of ``data`` (default: the run's own data).

    ``allow_missing_tail``: forecast although the last target values of ``data`` are missing (filled, warned)."""
    run_dir = Path(run.path if isinstance(run, Run) else run).resolve()
    path, table = _data_args(data)
    p = pipeline.predict(
        run.forecaster if isinstance(run, Run) else str(run_dir),
        path,
        table=table,
        allow_missing_tail=allow_missing_tail,
    )
    return Forecast(run_dir, p.table, p.warnings)


@_in_python_terms
def evaluate(run: str | Path | Run, data: pd.DataFrame | str | Path | None = None, split: str = "test") -> Evaluation:
    """Score a run and the naive baselines on ``split`` of ``data`` (default: the run's own data)."""
    run_dir = Path(run.path if isinstance(run, Run) else run).resolve()
    path, table = _data_args(data)
    ev, warnings = pipeline.evaluate(run.forecaster if isinstance(run, Run) else str(run_dir), path, split, table=table)
    return _evaluation(run_dir, ev, warnings)


@_in_python_terms
def load_run(path: str | Path) -> Run:
    """A finished run directory: its config, metrics and schema (checked as ``evaluate`` checks them)."""
    r = open_run(path)
    return Run(r.path.resolve(), r.config, r.metrics, r.schema)

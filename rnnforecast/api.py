"""The Python API: ``train``, ``evaluate``, ``predict`` and ``load_run``, the CLI's pipeline without click.

A config is a YAML path, a dict (the YAML's content) or a ``Config``; data may be a pandas DataFrame in
place of ``data.path``, and goes through every check a file goes through. Results are typed: forecasts
are DataFrames with a ``timestamp`` column, scores are dicts of floats in the data's units.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import pipeline
from .artifacts import open_run
from .config import Config, from_dict, load_config
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


def train(
    config: str | Path | dict | Config,
    data: pd.DataFrame | None = None,
    *,
    run_dir: str | Path | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    quiet: bool = True,
) -> Training:
    """Train as the config says and write a run directory, exactly as ``rnnforecast train`` does.

    Args:
        config: a YAML path, a dict with the YAML's content, or a ``Config``.
        data: the rows to train on, in place of ``data.path`` (the time column may be the index).
        run_dir: where to write the run (default ``runs/<name>-<time>/``).
        overrides: ``--set`` style changes, e.g. ``["training.epochs=3"]``.
        quiet: no per-epoch lines on stderr (default True).
    """
    cfg, name = _config(config, overrides)
    result = pipeline.train(cfg, config_path=name, run_dir=str(run_dir) if run_dir else None, quiet=quiet, table=data)
    run_dir = result.run_dir.resolve()
    return Training(run_dir, _evaluation(run_dir, result.evaluation, []), result.history, result.forecast)


def _data_args(data: pd.DataFrame | str | Path | None) -> tuple[str | None, pd.DataFrame | None]:
    if data is None or isinstance(data, pd.DataFrame):
        return None, data
    return str(data), None


def predict(run: str | Path | Run, data: pd.DataFrame | str | Path | None = None) -> Forecast:
    """Forecast the ``horizon`` steps after the last row of ``data`` (default: the run's own data)."""
    run_dir = Path(run.path if isinstance(run, Run) else run).resolve()
    path, table = _data_args(data)
    p = pipeline.predict(run.forecaster if isinstance(run, Run) else str(run_dir), path, table=table)
    return Forecast(run_dir, p.table, p.warnings)


def evaluate(run: str | Path | Run, data: pd.DataFrame | str | Path | None = None, split: str = "test") -> Evaluation:
    """Score a run and the naive baselines on ``split`` of ``data`` (default: the run's own data)."""
    run_dir = Path(run.path if isinstance(run, Run) else run).resolve()
    path, table = _data_args(data)
    ev, warnings = pipeline.evaluate(run.forecaster if isinstance(run, Run) else str(run_dir), path, split, table=table)
    return _evaluation(run_dir, ev, warnings)


def load_run(path: str | Path) -> Run:
    """A finished run directory: its config, metrics and schema (checked as ``evaluate`` checks them)."""
    r = open_run(path)
    return Run(r.path.resolve(), r.config, r.metrics, r.schema)

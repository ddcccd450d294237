"""What a run directory holds, named once: its file names and typed views of schema.json and metrics.json.

README, "What a run directory holds", describes each file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

MODEL = "model.keras"  # member 0 of a seed ensemble; the others are members/<i>.keras
CONFIG = "config.yaml"  # the resolved config
SCALER = "scaler.json"
SCHEMA = "schema.json"  # what new data must look like
METRICS = "metrics.json"
TIMING = "timing.json"
HISTORY = "history.csv"
FORECAST = "forecast.csv"  # the forecast past the end of the training data
INTERVALS = "intervals.json"  # the interval calibration, when the config asks for intervals
REQUIRED = (MODEL, CONFIG, SCALER, SCHEMA, METRICS)  # a run without one of these is refused
COMPARISON = "compare.json"  # a comparison directory's record (compare)
TUNE = "tune.json"  # a tune directory's record; trials.csv beside it
TRIALS = "trials.csv"
PLAN = "plan.json"  # what a compare, backtest or tune depends on (its resume fingerprint); backtest: the folds
FOLD = "fold.json"  # a backtest fold's record; predictions.csv beside it
PREDICTIONS = "predictions.csv"

# The files that mark a finished directory rnnforecast wrote, and its kind; the first match decides.
KINDS = (
    ((METRICS, SCHEMA), "run"),
    ((COMPARISON,), "comparison"),
    ((TUNE,), "tune"),
    ((PLAN, METRICS), "backtest"),
    ((FOLD, PREDICTIONS), "backtest fold"),
)


def kind_of(d: Path) -> str | None:
    """What the finished directory ``d`` is, from the records it holds: "run", "comparison", "tune", "backtest"
    or "backtest fold"; None for a directory rnnforecast did not finish (or did not write)."""
    for names, kind in KINDS:
        if all((d / name).is_file() for name in names):
            return kind
    return None


@dataclass(frozen=True)
class Scores:
    """One scored split in original units (``metrics.evaluate_forecasts``'s ``original`` block): forecaster name
    ("model" first, then the baselines) -> score name (mse, rmse, mae, mape or smape, mase, skill) -> value."""

    overall: dict[str, dict[str, float | None]]
    per_lead: dict[str, dict[str, list]]  # forecaster -> score -> one value per lead
    per_target: dict

    @classmethod
    def of(cls, scored: dict) -> Scores:
        """``scored``: an evaluation's metrics, or metrics.json's ``test``/``val`` block, or a backtest fold."""
        o = scored["original"]
        return cls(o["overall"], o.get("per_lead", {}), o.get("per_target", {}))

    @property
    def model(self) -> dict[str, float | None]:
        return self.overall["model"]

    @property
    def baselines(self) -> dict[str, dict[str, float | None]]:
        return {k: v for k, v in self.overall.items() if k != "model"}


@dataclass(frozen=True)
class Metrics:
    """metrics.json of a run, read: the scored split and val as :class:`Scores`, and what the run depends on."""

    split: str  # "test" for a run, "val" for a tune trial
    scores: Scores  # the scored split
    val: Scores
    n_windows: int
    data_sha256: str | None
    record: dict  # the whole file

    @classmethod
    def of(cls, record: dict) -> Metrics:
        split = record.get("split", "test")
        return cls(
            split,
            Scores.of(record[split]),
            Scores.of(record["val"]),
            record["n_windows"],
            record.get("data_sha256"),
            record,
        )


@dataclass(frozen=True)
class Schema:
    """schema.json, read: what new data must look like to be used with a run (``artifacts.schema_of`` writes it;
    ``artifacts.open_run`` checks the keys read here)."""

    time_column: str
    columns: list[str]
    features: list[str]
    targets: list[str]
    frequency: str
    input_length: int
    horizon: int
    calendar: str | None = None
    categories: dict = field(default_factory=dict)
    median_step_seconds: float | None = None
    n_quantiles: int = 1
    record: dict = field(default_factory=dict)  # the whole file

    @classmethod
    def of(cls, record: dict) -> Schema:
        keys = {f.name for f in fields(cls)} - {"record"}
        return cls(**{k: record[k] for k in keys if record.get(k) is not None}, record=record)

    def __getitem__(self, key: str):  # schema.json's own keys, for readers of the dict (numpy_model.check_shapes)
        return self.record[key]

    def get(self, key: str, default=None):
        return self.record.get(key, default)

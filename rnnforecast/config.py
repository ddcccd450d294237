"""The experiment config: YAML read once into frozen dataclasses, with defaults declared here.

Every field carries its default and a one-line description in ``metadata["help"]``;
constraints live in ``metadata`` too (``min``, ``max``, ``gt``). ``Literal`` types list the
allowed choices. Nothing in this module imports pandas, numpy or Keras.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import stat
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .cells import CELL_NAMES, CELLS, MAX_PARAMETERS, estimate_parameters
from .errors import ConfigError, did_you_mean, first_line
from .masking import mask_secrets

TIME_FEATURES = ("hour_of_day", "day_of_week", "day_of_month", "day_of_year", "month_of_year")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "elu", "selu", "softsign")
DIFFERENCES = ("diff", "log_diff", "pct_change")  # data.transform kinds that read the row before (level-free)


def _f(default: Any = dataclasses.MISSING, help: str = "", **constraints: Any) -> Any:
    meta = {"help": help, **constraints}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: d, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SplitConfig:
    """Chronological split: fractions, or the first timestamp of val and test."""

    train: float = _f(0.7, "fraction of rows (per series) for training", gt=0, max=1)
    val: float = _f(0.15, "fraction of rows for validation", min=0, max=1)
    test: float = _f(0.15, "fraction of rows for the test", min=0, max=1)
    val_start: str | None = _f(None, "first timestamp of the validation split (overrides fractions)")
    test_start: str | None = _f(None, "first timestamp of the test split (overrides fractions)")


def mask_password(text: str, secret: str | None = None) -> str:
    """``text`` with every URL credential and ``secret`` as ``***``; ``${VAR}`` stays (the one rule:
    :func:`rnnforecast.masking.mask_secrets`)."""
    return mask_secrets(text, secret)


def sqlite_file(url: str, base_dir: str) -> Path | None:
    """The SQLite file a ``data.sql.url`` names (a path, or ``sqlite:///path``) resolved against ``base_dir``;
    None for a server URL or an in-memory database."""
    if "://" in url and not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url
    return None if path in ("", ":memory:") else (Path(base_dir) / Path(path).expanduser()).resolve()


@dataclass(frozen=True)
class SqlConfig:
    """A database table or query read through SQLAlchemy (``pandas.read_sql``) instead of a file."""

    url: str = _f(
        help="SQLAlchemy URL (postgresql://user@host/db) or a SQLite file path relative to the config's folder; "
        "${VAR} expands from the environment"
    )
    query: str | None = _f(None, "SELECT statement whose rows are the data (or give `table`)")
    table: str | None = _f(None, "table to read whole (or give `query`)")
    password_env: str | None = _f(None, "environment variable that holds the password (never written to the run)")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    path: str | None = _f(None, "CSV or Parquet file, relative to the config file's folder (or give `sql`)")
    sql: SqlConfig | None = _f(None, "read from a database instead of `path`: {url, query | table, password_env}")
    target: list[str] = _f(help="column(s) to forecast: one name or a list")
    time_column: str = _f("date", "column holding the timestamps")
    features: list[str] | None = _f(None, "input columns; default: all numeric columns, targets included")
    categorical: list[str] = _f([], "text columns to one-hot encode as extra inputs")
    frequency: str | None = _f(None, "pandas offset alias (D, h, B, ...); inferred when absent")
    time_unit: Literal["year", "s", "ms", "us", "ns"] | None = _f(
        None,
        "unit of a numeric time column: year (1990), s/ms/us/ns since 1970-01-01 UTC; "
        "numeric times are refused without it",
    )
    calendar: Literal["regular", "steps"] = _f(
        "regular",
        "regular: gaps at `frequency` become explicit rows; steps: each row is one step "
        "(trading days), future timestamps follow `frequency`",
    )
    sort: bool = _f(False, "sort rows by time instead of refusing unsorted data")
    missing: Literal["interpolate", "ffill", "drop", "error"] = _f("interpolate", "how to fill missing values")
    split: SplitConfig = _f(SplitConfig(), "chronological train/val/test split")
    scaling: Literal["auto", "standard", "minmax", "none", "window", "instance"] = _f(
        "auto",
        "auto: window, or standard when a transform is set or the window is one step; "
        "standard/minmax: fitted on the training split; window: each input window relative to its last value; "
        "instance: standard, then each window's targets by their own mean and standard deviation (RevIN), "
        "the forecast de-normalised with the same statistics and the loss measured in the standard scaler's units",
    )
    scale_per_series: bool = _f(True, "with series_id: fit one scaler per series (else one global)")
    transform: dict[str, Literal["none", "diff", "log_diff", "pct_change", "log"]] = _f(
        {},
        "per-column transform before scaling, e.g. {close: log_diff}; a single value applies to all targets; "
        "diff, log_diff, pct_change: each row against the row before (level-free); log: each value's logarithm, so "
        "window scaling and a residual work on ratios and the loss on relative errors (positive values only)",
    )
    time_features: list[Literal[TIME_FEATURES]] | Literal["auto"] = _f(  # type: ignore[valid-type]
        [],
        "calendar features encoded as sin/cos pairs; auto: the ones init writes, those whose period is longer than "
        "the step and seen twice in the data (hourly over 2 days: hour_of_day; up to daily over 14 days: "
        "day_of_week; ...), none when data.features lists the inputs (not the default: measured a wash, "
        "docs/accuracy.md)",
    )
    future_time_features: bool = _f(
        False,
        "also feed time_features of the forecast steps to the output head (known in advance); off by default "
        "until docs/accuracy.md measures it (such a model predicts through Keras, not the numpy path)",
    )
    future: list[str] = _f(
        [],
        "input columns known in advance (holiday): their values at the forecast steps feed the output head; "
        "predict --data must then end with `horizon` rows whose target is empty and these columns filled",
    )
    filter: dict[str, Any] = _f({}, "keep only rows where column == value (or is in a list)")
    series_id: str | None = _f(None, "column naming the series in a long-format file (ticker, station)")
    season_length: int | None = _f(None, "season for the seasonal-naive baseline; inferred from frequency", min=1)
    units: dict[str, str] = _f({}, "units of columns for plot labels, e.g. {temp_max: °C}")

    @property
    def differenced(self) -> bool:
        """Whether any column is differenced against the row before (diff, log_diff, pct_change: level-free, its
        first row has no value); ``log`` keeps the level. The one place that says so for a config
        (``transforms.differences`` for a run's resolved transforms)."""
        return any(kind in DIFFERENCES for kind in self.transform.values())


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry, drawn in windows.py."""

    input_length: int = _f(24, "steps of history the model sees", min=1)
    horizon: int = _f(1, "steps ahead forecast at once (multi-step direct)", min=1)
    stride: int = _f(1, "steps between the starts of consecutive windows", min=1)


@dataclass(frozen=True)
class ModelConfig:
    cell: Literal[CELL_NAMES] = _f("lstm", "recurrent cell; dense = non-recurrent reference")  # type: ignore[valid-type]
    units: list[int] = _f([32], "one recurrent (or dense) layer per entry")
    dropout: float = _f(0.0, "dropout on layer inputs", min=0, max=0.99)
    recurrent_dropout: float = _f(0.0, "dropout on recurrent state (leaves the cuDNN path)", min=0, max=0.99)
    bidirectional: bool = _f(False, "wrap each recurrent layer in Bidirectional")
    activation: str = _f(
        "tanh", "recurrent activation of the cell output (tanh keeps the cuDNN path)", choices=ACTIVATIONS
    )
    l2: float = _f(0.0, "L2 weight regularisation factor", min=0)
    reset_after: bool = _f(True, "GRU only: apply reset gate after the matrix product (Keras/cuDNN default)")
    ensemble: int = _f(
        1, "members trained with seeds seed..seed+N-1; forecast = their mean (median of quantiles)", min=1, max=100
    )
    channels: Literal["auto", "mixed", "independent"] = _f(
        "auto",
        "auto: independent for several targets (all among the inputs), else mixed; "
        "mixed: all columns into one state; independent: every target column runs through the same network as "
        "its own sequence, with a learned channel embedding; non-target inputs reach every channel",
    )
    segment_length: int | Literal["auto"] | None = _f(
        "auto",
        "SegRNN: cut the window into segments of this many steps, embed each, run the cell over segments and "
        "decode every output segment at once from learned position embeddings; null: one step at a time; "
        "auto: one season (data.season_length or the frequency's) when the window holds at least two and the "
        "cell is recurrent and forward, else null",
        min=1,
    )
    segment_layout: Literal["keras", "segrnn"] = _f(
        "keras",
        "segment models: segrnn builds the layer as SegRNN's reference code does (PyTorch's initialisation, "
        "U(-a, a) with a = 1/sqrt(fan-in) for weights and biases; with independent channels each segment embedded "
        "from the channel's values alone and the decoder's input [position | channel] halves); keras: Keras' "
        "initialisation, the channel one-hot in every segment's embedding too, position + channel embedding",
    )
    residual: Literal["auto", "none", "persistence", "seasonal"] = _f(
        "auto",
        "the network forecasts the difference to this baseline, which is added back: persistence (last value) "
        "or seasonal (same step last season, data.season_length or the frequency's season); auto: seasonal when "
        "seasonal naive's MAE on the training rows is at most 60% of persistence's, else none (none when "
        "data.transform differences: diff, log_diff, pct_change)",
    )


@dataclass(frozen=True)
class EarlyStoppingConfig:
    patience: int = _f(5, "epochs without val-loss improvement before stopping", min=1)
    min_delta: float = _f(0.0, "smallest change that counts as improvement", min=0)


@dataclass(frozen=True)
class ReduceLROnPlateauConfig:
    factor: float = _f(0.5, "multiply the learning rate by this", gt=0, max=0.99)
    patience: int = _f(3, "epochs without improvement before reducing", min=1)
    min_lr: float = _f(1e-6, "lower bound on the learning rate", min=0)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = _f(20, "maximum number of epochs", min=1)
    batch_size: int = _f(32, "windows per batch", min=1)
    optimizer: Literal["adam", "rmsprop", "sgd"] = _f("adam", "optimizer")
    learning_rate: float = _f(1e-3, "optimizer learning rate", gt=0)
    loss: Literal["mse", "mae", "huber"] = _f(
        "mae", "training loss (mae: the error every table leads with; measured to win, docs/accuracy.md)"
    )
    lr_schedule: Literal["constant", "cosine", "step"] = _f(
        "constant",
        "cosine: the learning rate decays to 0 over the epochs; step: it stays for lr_decay_after epochs, then is "
        "multiplied by lr_decay every epoch (the long-horizon papers' type3 schedule); either after warmup_epochs of "
        "linear warm-up",
    )
    warmup_epochs: int = _f(0, "epochs of linear learning-rate warm-up (with lr_schedule: cosine or step)", min=0)
    warmup_start: float | None = _f(
        None,
        "the warm-up's first rate as a fraction of learning_rate, rising linearly to the full rate; null: "
        "1 / (warmup_epochs + 1), equal steps (SegRNN's code runs its first epoch at 0.04 x the rate: warmup_epochs 1, "
        "warmup_start 0.04 and lr_decay_after 2 reproduce its schedule, docs/accuracy.md)",
        gt=0,
        max=1,
    )
    lr_decay: float = _f(
        0.9, "with lr_schedule: step, the factor applied every epoch after lr_decay_after", gt=0, max=1
    )
    lr_decay_after: int = _f(3, "with lr_schedule: step, epochs at the full rate (after warm-up) before decay", min=0)
    clipnorm: float | None = _f(None, "clip gradient norm (against exploding gradients)", gt=0)
    ema: float | None = _f(
        None,
        "momentum of an exponential moving average of the weights, updated every batch (Polyak averaging, Keras' "
        "use_ema), e.g. 0.99: validation, early stopping and the saved model use the averaged weights; null: off",
        gt=0,
        max=0.9999,
    )
    early_stopping: EarlyStoppingConfig | None = _f(EarlyStoppingConfig(), "null disables")
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = _f(None, "null disables")
    shuffle: bool = _f(True, "shuffle training windows each epoch (seeded by seed and epoch)")
    jit_compile: bool | Literal["auto"] = _f("auto", "XLA-compile the train step (auto: Keras decides)")
    steps_per_execution: int = _f(1, "batches per compiled call", min=1)
    final_fit: bool = _f(
        True,
        "after the held-out evaluation, train again on every row for the epochs early stopping chose; that model "
        "forecasts (README, 'A final fit on every row')",
    )


@dataclass(frozen=True)
class OutputConfig:
    runs_dir: str = _f("runs", "where run directories go, relative to the current directory")
    plots: bool = _f(True, "write plots/ at the end of training")
    tensorboard: bool = _f(False, "write TensorBoard logs into the run's tensorboard/ (tensorboard --logdir runs/)")


@dataclass(frozen=True)
class RuntimeConfig:
    backend: Literal["auto", "jax", "tensorflow"] = _f("auto", "Keras backend; auto picks the fastest installed")
    deterministic: bool = _f(True, "enable op determinism so reruns give identical metrics")
    distribution: Literal["none", "data_parallel"] = _f(
        "none", "data_parallel: split every batch over the visible devices (JAX only; README, 'Tune and scale out')"
    )
    workers: int = _f(
        1,
        "trainings of a seed ensemble (model.ensemble) at once: member 0 here, the others in workers - 1 local "
        "processes; the numbers do not change",
        min=1,
    )


INTERVAL_METHODS = ("conformal", "quantile", "cqr")


@dataclass(frozen=True)
class IntervalsConfig:
    """Prediction intervals; the section absent means point forecasts only (README, "Prediction intervals")."""

    levels: list[float] = _f([80.0, 95.0], "interval levels in percent, each strictly between 0 and 100")
    method: Literal[INTERVAL_METHODS] = _f(  # type: ignore[valid-type]
        "conformal",
        "conformal: validation residuals of the point model; quantile: a pinball-loss quantile head; "
        "cqr: the quantile head corrected on validation (conformalized quantile regression)",
    )
    joint: bool = _f(False, "Bonferroni across leads so the whole horizon path is covered at the level")
    adaptive: bool = _f(False, "conformal only: adaptive conformal inference over the test windows in time order")
    gamma: float = _f(0.005, "adaptive step size (Gibbs & Candes 2021)", min=0, max=1)


@dataclass(frozen=True)
class Config:
    data: DataConfig = _f(help="dataset section")
    name: str = _f("experiment", "run name, used in the run directory name", max_len=100)
    seed: int = _f(42, "one seed for python, numpy and Keras", min=0, max=2**32 - 1)  # numpy's range
    window: WindowConfig = _f(WindowConfig(), "window geometry")
    model: ModelConfig = _f(ModelConfig(), "model section")
    training: TrainingConfig = _f(TrainingConfig(), "training section")
    output: OutputConfig = _f(OutputConfig(), "output section")
    runtime: RuntimeConfig = _f(RuntimeConfig(), "runtime section")
    intervals: IntervalsConfig | None = _f(None, "prediction intervals; absent: point forecasts only")
    # Where the config came from; not part of the YAML schema.
    source: str = field(default="<config>", compare=False, metadata={"internal": True})
    base_dir: str = field(default=".", compare=False, metadata={"internal": True})

    @property
    def data_path(self) -> Path:
        """``data.path`` resolved against the config's folder (meaningless when the data comes from ``data.sql``)."""
        return (Path(self.base_dir) / (self.data.path or "")).resolve()

    @property
    def runs_path(self) -> Path:
        """``output.runs_dir`` as an absolute path (relative to the current directory), ``..`` resolved."""
        return Path(self.output.runs_dir).expanduser().resolve()

    def to_dict(self, *, resolved_path: bool = True) -> dict:
        d = _to_plain(self)
        if d.get("intervals") is None:  # absent stays absent: runs without intervals keep their config and hash
            d.pop("intervals", None)
        if resolved_path and self.data.path is not None:
            d["data"]["path"] = str(self.data_path)
        if resolved_path and self.data.sql is not None and "${" not in self.data.sql.url:
            file = sqlite_file(self.data.sql.url, self.base_dir)  # a run re-reads it from its own folder
            d["data"]["sql"]["url"] = str(file) if file else self.data.sql.url
        return d

    def to_yaml(self) -> str:
        """The resolved config as YAML, for files: a password written into ``data.sql.url`` becomes ``***``."""
        d = self.to_dict()
        if d["data"].get("sql"):
            d["data"]["sql"]["url"] = mask_password(d["data"]["sql"]["url"])
        return yaml.safe_dump(d, sort_keys=False, allow_unicode=True)  # °C, not "\\xB0C"

    def hash(self) -> str:
        """SHA-256 of the resolved config, independent of key order.

        ``runtime.workers`` is left out: it changes how many processes train, not the numbers, so a run may be
        resumed with another value (and runs made before the key existed keep their hash).
        """
        d = self.to_dict()
        d["runtime"].pop("workers", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    @property
    def unsettled(self) -> bool:
        """Whether a key of the model's shape is still ``auto`` (:meth:`settled` decides them for the data)."""
        d, m = self.data, self.model
        return "auto" in (d.scaling, d.time_features, m.channels, m.segment_length, m.residual)

    def settled(self, season: int, residual: str | None = None, time_features: list[str] | None = None) -> Config:
        """This config with every ``auto`` of the model's shape replaced by what it means for data whose season is
        ``season`` steps (README, "Defaults that adapt"; measured in docs/accuracy.md). A run directory keeps the
        settled config, so a forecast never re-decides; explicit values are kept as written.

        - ``data.scaling``: window (each window relative to its last value: a test period at a level the training
          rows never reached is still in range); standard when ``data.transform`` differences (a differenced series
          is already level-free; ``log`` is not) or the window is one step (relative to itself it would hold only
          zeros);
        - ``model.channels``: independent when there are several targets, each among the inputs; else mixed;
        - ``model.segment_length``: one season when the window holds two or more whole ones and the cell runs
          forward over time (recurrent, not bidirectional); else null (one step at a time);
        - ``model.residual``: ``residual``, what :func:`rnnforecast.series.auto_residual` measured on the
          training rows (seasonal when the season explains most of the change, else none); none with a
          differencing transform. Left ``auto`` when ``residual`` is not given;
        - ``data.time_features``: ``time_features``, what the data loader found for the step and span
          (:func:`frequencies.time_features`; none when ``data.features`` lists the inputs). Left ``auto`` when
          not given.
        """
        d, m = self.data, self.model
        differenced = d.differenced  # a log keeps the level: window scaling and a residual still apply
        scaling = d.scaling
        if scaling == "auto":  # a one-step window relative to its last value would hold only zeros
            scaling = "standard" if differenced or self.window.input_length < 2 else "window"
        channels = m.channels
        if channels == "auto":
            inputs = d.target if d.features is None else d.features
            channels = "independent" if len(d.target) > 1 and all(t in inputs for t in d.target) else "mixed"
        segment = m.segment_length
        if segment == "auto":
            forward = CELLS[m.cell].recurrent and not m.bidirectional
            segment = season_segment(self.window.input_length, season) if forward else None
        if m.residual != "auto":
            residual = m.residual
        elif differenced or residual:
            residual = "none" if differenced else residual
        else:
            residual = "auto"
        calendar = d.time_features if d.time_features != "auto" or time_features is None else list(time_features)
        return dataclasses.replace(
            self,
            data=dataclasses.replace(d, scaling=scaling, time_features=calendar),
            model=dataclasses.replace(m, channels=channels, segment_length=segment, residual=residual),
        )

    def replace(self, **changes: Any) -> Config:
        """Change dotted keys (``{"model.cell": "gru"}``) and re-validate."""
        raw = self.to_dict(resolved_path=False)
        for key, value in changes.items():
            _assign(raw, key.split("."), value)
        return from_dict(raw, source=self.source, base_dir=self.base_dir)


def season_segment(input_length: int, season: int) -> int | None:
    """Segments of one season when the window holds two or more whole seasons (every step used), else None:
    ``model.segment_length: auto`` and ``init``'s model section."""
    if season >= 2 and input_length % season == 0 and input_length // season >= 2:
        return season
    return None


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {
            f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get("internal")
        }
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- loading


class _Where:
    """Maps dotted keys to YAML line numbers, to point errors at a line."""

    def __init__(self, source: str, lines: dict[str, int] | None = None):
        self.source = source
        self.lines = lines or {}

    def __call__(self, key: str) -> str:
        # A rule about a section whose key came from --set points at that --set, not at the file's line.
        overridden = [k for k, line in self.lines.items() if line == 0 and k.startswith(key + ".")] if key else []
        if overridden:
            return f"{self.source}: --set {overridden[0]}"
        parts = key.split(".")
        while parts:
            name = ".".join(parts)
            for candidate in (name, re.sub(r"(\[\d+\])+$", "", name)):  # a list entry's line is its list's
                line = self.lines.get(candidate)
                if line == 0:
                    return f"{self.source}: --set {key}"
                if line is not None:
                    return f"{self.source}:{line}: {key}"
            parts.pop()
        return f"{self.source}: {key}" if key else self.source


def _node_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines[key] = key_node.start_mark.line + 1
            lines.update(_node_lines(value_node, key))
    return lines


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, override (``key=value`` strings) and validate a YAML config file."""
    path = Path(path)
    source = str(path)
    text = _read_text(path, source)
    raw, node = _parse_yaml(text, source)
    _check_top_level(raw, source)
    _check_duplicate_keys(node, source)
    raw.pop("tune", None)  # the search space: read and checked by tune.py, not part of a run's config
    lines = _apply_overrides(raw, _node_lines(node), overrides, source)
    return from_dict(raw, source=source, base_dir=str(path.resolve().parent), lines=lines)


# A config is a page of settings; these bounds stop a hostile file (an alias "billion laughs", a 50,000-deep
# bracket, a multi-gigabyte file) long before it costs memory or time.
MAX_CONFIG_BYTES = 1_000_000
MAX_DEPTH = 50  # nested mappings/lists
MAX_VALUES = 100_000  # values after expanding every alias


def _read_text(path: Path, source: str) -> str:
    if not path.exists():
        raise ConfigError("config file not found", where=source, fix="check the path")
    if path.is_dir():
        raise ConfigError("is a directory, not a config file", where=source, fix="pass a .yaml file")
    if not stat.S_ISREG(path.stat().st_mode):  # /dev/zero never ends, a FIFO blocks
        raise ConfigError("not a regular file", where=source, fix="pass a .yaml file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read the file ({e.strerror})", where=source, fix="check its permissions") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"larger than {MAX_CONFIG_BYTES:,} bytes: not a config", where=source, fix="pass the YAML config file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        raise ConfigError(
            f"not UTF-8 text (byte {start}, line {line})", where=f"{source}:{line}", fix="save the config as UTF-8 YAML"
        ) from None
    if "\x00" in text:
        raise ConfigError("binary file, not YAML", where=source, fix="pass a YAML config file")
    return text


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH while it composes (before any recursion limit)."""

    depth = 0
    where = "<config>"

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    f"nested more than {MAX_DEPTH} levels deep",
                    where=f"{self.where}:{mark.line + 1}:{mark.column + 1}",
                    fix="a config needs a few levels of sections; remove the extra brackets or indentation",
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is written out (aliases share nodes: memo by id)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a self-referencing alias counts once here; _check_duplicate_keys refuses it
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(v, memo) for v in node.value)
    memo[id(node)] = size
    return size


def _compose_bounded(text: str, source: str) -> yaml.Node | None:
    """The node tree of ``text``, refused when it is too deep or expands to too many values."""
    loader = _BoundedLoader(text)
    loader.where = source
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise ConfigError(
                f"the YAML expands to {size:,} values through aliases (&anchor/*alias); the limit is {MAX_VALUES:,}",
                where=source,
                fix="write the values out instead of nesting aliases",
            )
    return node


def _construct(node: yaml.Node | None) -> Any:
    return yaml.SafeLoader("").construct_document(node) if node is not None else None


def _parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (the nodes carry line numbers); safe: builds no Python objects."""
    try:
        node = _compose_bounded(text, source)
        return _construct(node), node
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None


def _yaml_error(e: yaml.YAMLError, source: str) -> ConfigError:
    """The parser's complaint as one line at file:line:column, with where an unclosed bracket started."""
    mark = getattr(e, "problem_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = getattr(e, "problem", None) or first_line(e)
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None and (mark is None or cmark.line != mark.line):
        problem += f" ({context} started at line {cmark.line + 1}, column {cmark.column + 1})"
    if isinstance(e, yaml.constructor.ConstructorError) and "constructor for the tag" in problem:
        tag = problem.split("tag", 1)[1].strip().strip("'").replace("tag:yaml.org,2002:", "!!")
        return ConfigError(
            f"the YAML tag {tag} is not allowed: configs are read with yaml.safe_load, which builds no Python objects",
            where=where,
            fix="remove the tag and write a plain value",
        )
    return ConfigError(f"not valid YAML: {problem}", where=where, fix="fix the YAML syntax there")


def _check_top_level(raw: Any, source: str) -> None:
    if raw is None:
        raise ConfigError(
            "the config is empty", where=source, fix="add at least a `data:` section with `path` and `target`"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"the config must be a mapping of sections, received a {_type_name(raw)}",
            where=f"{source}:1",
            fix="write `key: value` sections (data, window, model, training, output)",
        )


def _apply_overrides(raw: dict, lines: dict[str, int], overrides: Sequence[str], source: str) -> dict[str, int]:
    """Set each ``key=value`` into ``raw``; return the line map with the overridden keys marked 0 (from --set)."""
    for item in overrides:
        try:
            key, value = parse_override(item)
            _check_override_key(key)
        except ConfigError as e:  # say which config the override was meant for
            raise ConfigError(e.message, where=f"{source}: {e.where}", fix=e.fix) from None
        _assign(raw, key.split("."), value)
        lines = {k: v for k, v in lines.items() if k != key and not k.startswith(key + ".")}
        lines[key] = 0  # 0: the value came from --set, not from a line of the file
    return lines


def _check_duplicate_keys(
    node: yaml.Node, source: str, prefix: str = "", _open: set | None = None, _done: set | None = None
) -> None:
    """YAML lets a repeated key silently replace the first; refuse it instead (and aliases that contain themselves)."""
    _open, _done = (set(), set()) if _open is None else (_open, _done)
    if id(node) in _open:
        raise ConfigError(
            "a YAML alias refers to a section that contains it (a recursive structure)",
            where=f"{source}:{node.start_mark.line + 1}",
            fix="write the values out instead of the recursive alias",
        )
    if id(node) in _done:
        return
    _open.add(id(node))
    if isinstance(node, yaml.MappingNode):
        _check_mapping_keys(node, source, prefix, _open, _done)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, source, prefix, _open, _done)
    _open.discard(id(node))
    _done.add(id(node))


def _check_mapping_keys(node: yaml.MappingNode, source: str, prefix: str, _open: set, _done: set) -> None:
    """Each key of one mapping once; then every value, recursively (:func:`_check_duplicate_keys`)."""
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key is not None and key in seen:
            raise ConfigError(
                f"key {dotted} appears twice (first on line {seen[key]}); YAML would silently keep only the last",
                where=f"{source}:{key_node.start_mark.line + 1}",
                fix="keep one of them",
            )
        if key is not None:
            seen[key] = key_node.start_mark.line + 1
        _check_duplicate_keys(value_node, source, dotted, _open, _done)


def parse_override(item: str) -> tuple[str, Any]:
    """``"training.epochs=3"`` -> ``("training.epochs", 3)``; the value is read as YAML."""
    if "=" not in item:
        raise ConfigError(
            f"--set expects KEY=VALUE, received {item!r}", where="--set", fix="write e.g. --set training.epochs=3"
        )
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set has no key in {item!r}", where="--set", fix="write e.g. --set training.epochs=3")
    try:
        value = _construct(_compose_bounded(text, f"--set {key}")) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(
            f"cannot parse the value {text!r}", where=f"--set {key}", fix="quote strings, write lists as [a, b]"
        ) from None
    glued = (
        next((k for k, v in value.items() if v is None and ":" in str(k)), None) if isinstance(value, dict) else None
    )
    if glued is not None:  # {close:log} is YAML for the key 'close:log' with no value
        name, _, rest = str(glued).partition(":")
        raise ConfigError(
            f"{{{glued}}} reads as one key {glued!r} with no value: YAML needs a space after the colon",
            where=f"--set {key}",
            fix=f"write {key}={{{name}: {rest}}}",
        )
    return key, value


def _check_override_key(key: str) -> None:
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = _schema_fields(cls)
        if part not in fields:
            dotted = ".".join(parts[: i + 1])
            raise ConfigError(
                f"unknown key{did_you_mean(part, fields)}",
                where=f"--set {dotted}",
                fix=f"use one of: {', '.join(sorted(fields))}",
            )
        inner = _dataclass_in(_hints(cls)[part])
        if inner is None:
            if i < len(parts) - 1:
                raise ConfigError(
                    f"{'.'.join(parts[: i + 1])} is not a section", where=f"--set {key}", fix="set the key itself"
                )
            return
        cls = inner


def _assign(raw: dict, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if not isinstance(raw.get(part), dict):
            raw[part] = {}
        raw = raw[part]
    raw[parts[-1]] = value


def from_dict(
    raw: dict, *, source: str = "<config>", base_dir: str = ".", lines: dict[str, int] | None = None
) -> Config:
    where = _Where(source, lines)
    cfg = _build(Config, raw, "", where)
    cfg = dataclasses.replace(cfg, source=source, base_dir=base_dir)
    _check_consistency(cfg, where)
    return cfg


def _schema_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _build(cls: type, raw: Any, prefix: str, where: _Where) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"expected a mapping, received {_show(raw)}",
            where=where(prefix.rstrip(".")),
            fix=f"write `{prefix.rstrip('.').split('.')[-1]}:` followed by indented `key: value` lines",
        )
    fields = _schema_fields(cls)
    hints = _hints(cls)
    for key in raw:
        if key not in fields:
            dotted = f"{prefix}{key}"
            raise ConfigError(
                f"unknown key{did_you_mean(key, fields)}",
                where=where(dotted),
                fix=f"allowed keys here: {', '.join(fields)}",
            )
    values = {}
    for name, f in fields.items():
        dotted = f"{prefix}{name}"
        if name in raw:
            values[name] = _convert(hints[name], raw[name], dotted, where, f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(
                "required key is missing",
                where=where(prefix.rstrip(".")) + f" -> {dotted}",
                fix=f"add `{name}: ...` ({f.metadata.get('help', '')})",
            )
    return cls(**values)


def _type_name(v: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        type(v), type(v).__name__
    )


def _show(v: Any) -> str:
    text = repr(v)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(v)})" if v is not None else "null"


def _convert(tp: Any, value: Any, key: str, where: _Where, meta: dict | None = None) -> Any:
    """Check ``value`` against the type ``tp`` of the field at dotted ``key``; return it typed."""
    meta = meta or {}
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, key, where, meta)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, f"{key}.", where)
    if origin is Literal:
        return _convert_literal(typing.get_args(tp), value, key, where)
    if origin is list:
        return _convert_list(typing.get_args(tp)[0], value, key, where, meta)
    if origin is dict:
        return _convert_dict(typing.get_args(tp)[1], value, key, where)
    if tp is Any:
        return value
    return _convert_scalar(tp, value, key, where, meta)


def _convert_literal(args: tuple, value: Any, key: str, where: _Where) -> str:
    """One of the allowed words ``args``; the error lists them (and the nearest one)."""
    if not isinstance(value, str) or value not in args:
        raise ConfigError(
            f"received {_show(value)}{did_you_mean(value, args)}",
            where=where(key),
            fix=f"use one of: {', '.join(map(str, args))}",
        )
    return value


def _word_or_entry(tp: Any, options: list, value: str, where: str) -> None:
    """A word given to a ``list[Literal] | Literal`` key (``time_features``): near one of the words (``autoo``), or
    an entry of the list written without brackets (``hour_of_day``, ``hour_of_dya``): the error with its fix."""
    words = [w for a in options if typing.get_origin(a) is Literal for w in typing.get_args(a)]
    entry = typing.get_args(next(a for a in options if typing.get_origin(a) is list))[0]
    entries = typing.get_args(entry) if typing.get_origin(entry) is Literal else ()
    if value in entries:
        raise ConfigError(f"received {_show(value)}, one entry", where=where, fix=f"write it as a list: [{value}]")
    if did_you_mean(value, words):
        raise ConfigError(
            f"received {_show(value)}{did_you_mean(value, words)}", where=where, fix=f"set {_describe(tp)}"
        )
    hint = did_you_mean(value, entries)
    if hint:
        raise ConfigError(f"received {_show(value)}{hint}", where=where, fix=f"write [{hint.split(chr(39))[1]}]")


def _convert_union(tp: Any, value: Any, key: str, where: _Where, meta: dict) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    errors = []
    for arg in options:
        try:
            return _convert(arg, value, key, where, meta)
        except ConfigError as e:
            errors.append(e)
    if len(options) == 1:
        raise errors[0]
    lists = [e for a, e in zip(options, errors) if typing.get_origin(a) is list]
    if isinstance(value, list) and len(lists) == 1:
        words = [w for a in options if typing.get_origin(a) is Literal for w in typing.get_args(a)]
        if len(value) == 1 and isinstance(value[0], str) and value[0] in words:  # [auto]
            raise ConfigError(
                f"received [{value[0]}], a list", where=where(key), fix=f"write {value[0]} without brackets"
            )
        raise lists[0]  # [hour_of_dya]: the entry's own error (did you mean hour_of_day), not "expected a list or auto"
    if isinstance(value, str) and len(lists) == 1:
        _word_or_entry(tp, options, value, where(key))
    raise ConfigError(
        f"received {_show(value)}; expected {_describe(tp)}", where=where(key), fix=f"set {_describe(tp)}"
    )


def _convert_list(item: Any, value: Any, key: str, where: _Where, meta: dict) -> list:
    if isinstance(value, str) and key in ("data.target", "data.features", "data.categorical", "data.future"):
        value = [value]  # one name stands for a list of one
    if not isinstance(value, list):
        raise ConfigError(
            f"received {_show(value)}; expected a list", where=where(key), fix=_list_fix(item, value, key, where, meta)
        )
    if not value and key in ("data.target", "model.units"):
        raise ConfigError("must not be empty", where=where(key), fix="give at least one entry")
    return [_convert(item, v, f"{key}[{i}]", where, meta) for i, v in enumerate(value)]


def _list_fix(item: Any, value: Any, key: str, where: _Where, meta: dict) -> str:
    """``write a list: [64]`` when the received value would do as the list's one entry, else an example."""
    if value is not None and not isinstance(value, dict):
        try:
            one = _convert(item, value, f"{key}[0]", where, meta)
        except ConfigError:
            pass
        else:
            return f"write a list: {yaml.safe_dump([one], default_flow_style=True, allow_unicode=True).strip()}"
    return f"write a list like [{_example(item)}]"


def _convert_dict(item: Any, value: Any, key: str, where: _Where) -> dict:
    if key == "data.transform" and isinstance(value, str):
        return {"*": _convert(item, value, key, where)}  # one transform for every target
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"received {_show(value)}; expected a mapping", where=where(key), fix="write `column: value` pairs"
        )
    return {str(k): _convert(item, v, f"{key}.{k}", where) for k, v in value.items()}


def _convert_scalar(tp: type, value: Any, key: str, where: _Where, meta: dict) -> Any:
    convert = _SCALARS.get(tp)
    if convert is None:
        raise AssertionError(f"unsupported config type {tp!r} at {key}")  # a bug in the schema, not user input
    return convert(value, key, where, meta)


def _to_bool(value: Any, key: str, where: _Where, meta: dict) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"received {_show(value)}; expected true or false", where=where(key), fix="write true or false"
        )
    return value


def _to_int(value: Any, key: str, where: _Where, meta: dict) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # bool is an int to Python, not to a config
        raise ConfigError(f"received {_show(value)}; expected an integer", where=where(key), fix="write a whole number")
    _check_range(value, key, where, meta)
    return value


# YAML 1.1 (PyYAML) reads 1e-4 as text: its floats need a dot (1.0e-4); YAML 1.2 and JSON read a number
_EXPONENT_ONLY = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def yaml_number(value: Any) -> Any:
    """``value`` as a float when it is a number written with an exponent but no dot (``1e-4``), which PyYAML
    leaves as text; anything else unchanged. The one place a config's and a search space's numbers are read."""
    return float(value) if isinstance(value, str) and _EXPONENT_ONLY.fullmatch(value.strip()) else value


def _to_float(value: Any, key: str, where: _Where, meta: dict) -> float:
    value = yaml_number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"received {_show(value)}; expected a number", where=where(key), fix="write a number like 0.001"
        )
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"received {value}; expected a finite number", where=where(key), fix="write a finite number")
    _check_range(value, key, where, meta)
    return value


def _to_str(value: Any, key: str, where: _Where, meta: dict) -> str:
    if hasattr(value, "isoformat"):  # YAML read an unquoted date as a date object
        return value.isoformat()
    if not isinstance(value, str):
        raise ConfigError(f"received {_show(value)}; expected a string", where=where(key), fix="write a text value")
    if not value.strip():
        raise ConfigError("must not be empty", where=where(key), fix="write a non-empty value")
    longest = meta.get("max_len")
    if longest is not None and len(value) > longest:
        raise ConfigError(
            f"is {len(value)} characters long, the limit is {longest}",
            where=where(key),
            fix=f"shorten it to at most {longest} characters",
        )
    bad = next((c for c in value if not c.isprintable()), None) if longest is not None else None
    if bad is not None:  # a name: a line break or control character would not survive config.yaml (YAML folds U+0085)
        raise ConfigError(
            f"contains the control character U+{ord(bad):04X}",
            where=where(key),
            fix="use letters, digits, spaces and punctuation",
        )
    return value


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _describe(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return " or ".join(_example(a) for a in args) + (" or null" if type(None) in typing.get_args(tp) else "")


def _example(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "/".join(map(str, typing.get_args(tp)))
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _check_range(value: float, key: str, where: _Where, meta: dict) -> None:
    lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
    if lo is not None and value < lo:
        raise ConfigError(f"must be >= {lo}, received {value}", where=where(key), fix=f"set a value of at least {lo}")
    if gt is not None and value <= gt:
        raise ConfigError(f"must be > {gt}, received {value}", where=where(key), fix=f"set a value above {gt}")
    if hi is not None and value > hi:
        raise ConfigError(f"must be <= {hi}, received {value}", where=where(key), fix=f"set a value of at most {hi}")


def _check_consistency(cfg: Config, where: _Where) -> None:
    """Rules that span several keys (or a whole list), checked after every key has its type."""
    _check_split(cfg.data.split, where)
    _check_units(cfg.model.units, where)
    _check_size(cfg, where)
    _check_targets(cfg.data, where)
    if cfg.data.features is not None and not cfg.data.features:
        # Targets need not be among the features: a model may forecast a column it does not see.
        raise ConfigError("must not be empty", where=where("data.features"), fix="list input columns or remove the key")
    _check_activation(cfg.model.activation, where)
    _check_model_shape(cfg, where)
    _check_schedule(cfg.training, where)
    _check_frequency(cfg.data.frequency, where)
    _check_source(cfg.data, where)
    _check_future(cfg.data, where)
    if cfg.intervals is not None:
        _check_intervals(cfg.intervals, where)
    tc = cfg.data.time_column
    if tc != "*" and tc in cfg.data.transform:  # the key "*" means every target, never a column
        raise ConfigError(
            "cannot transform the time column", where=where(f"data.transform.{tc}"), fix="remove that entry"
        )


def _check_intervals(iv: IntervalsConfig, where: _Where) -> None:
    levels = iv.levels
    bad = next((c for c in levels if not 0 < c < 100), None)
    if not levels or bad is not None:
        raise ConfigError(
            f"levels must be percentages strictly between 0 and 100, received {levels}",
            where=where("intervals.levels"),
            fix="write levels like [80, 95]",
        )
    if list(levels) != sorted(set(levels)):
        raise ConfigError(
            f"levels must be sorted and unique, received {levels}",
            where=where("intervals.levels"),
            fix=f"write [{', '.join(f'{c:g}' for c in sorted(set(levels)))}]",
        )
    if iv.adaptive and iv.method != "conformal":
        raise ConfigError(
            f"adaptive applies to method conformal, received method={iv.method}",
            where=where("intervals.adaptive"),
            fix="set intervals.method: conformal, or adaptive: false",
        )


def _check_source(data: DataConfig, where: _Where) -> None:
    """At most one of ``path`` and ``sql``; a query or a table, not both. (Neither: the Python API passes a frame.)"""
    if data.path is not None and data.sql is not None:
        raise ConfigError(
            "give data.path or data.sql, not both", where=where("data.sql"), fix="remove one of the two keys"
        )
    if data.sql is not None and (data.sql.query is None) == (data.sql.table is None):
        raise ConfigError(
            "give exactly one of `query` and `table`",
            where=where("data.sql"),
            fix="add `table: NAME` to read a whole table, or `query: SELECT ...`",
        )


def _check_future(data: DataConfig, where: _Where) -> None:
    """A column known in advance is an input the model reads, never a target it forecasts."""
    both = [c for c in data.future if c in data.target]
    if both:
        raise ConfigError(
            f"{both[0]!r} is a target; a target is not known in advance",
            where=where("data.future"),
            fix=f"remove {both[0]!r} from data.future",
        )
    if data.features is not None:
        unseen = [c for c in data.future if c not in data.features and c not in data.categorical]
        if unseen:
            raise ConfigError(
                f"{unseen[0]!r} is not among data.features {data.features}",
                where=where("data.future"),
                fix=f"add {unseen[0]!r} to data.features",
            )


def _check_split(s: SplitConfig, where: _Where) -> None:
    if s.val_start is None and s.test_start is None:
        total = s.train + s.val + s.test
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"split fractions must sum to 1, received train={s.train} + val={s.val} + test={s.test} = {total:g}",
                where=where("data.split"),
                fix="adjust the fractions so they add up to 1.0",
            )
    elif (s.val_start is None) != (s.test_start is None):
        raise ConfigError(
            "give both val_start and test_start, or neither",
            where=where("data.split"),
            fix="add the missing timestamp, or remove both to split by fractions",
        )


def _check_units(units: list[int], where: _Where) -> None:
    bad = next((u for u in units if u < 1), None)
    if bad is not None:
        raise ConfigError(
            f"every layer needs at least 1 unit, received {bad}",
            where=where("model.units"),
            fix="use positive integers, e.g. [32]",
        )


def _check_model_shape(cfg: Config, where: _Where) -> None:
    """Segment and channel options that need a recurrent cell, whole segments, or targets among the inputs."""
    if isinstance(cfg.model.segment_length, int):
        _check_segments(cfg.model, cfg.window, where)
    features = cfg.data.features
    missing = [t for t in cfg.data.target if features is not None and t not in features]
    if cfg.model.channels == "independent" and missing:
        raise ConfigError(
            f"runs each target's own history, but target {missing[0]!r} is not among data.features",
            where=where("model.channels"),
            fix=f"add {missing[0]!r} to data.features",
        )


def _check_segments(m: ModelConfig, w: WindowConfig, where: _Where) -> None:
    """model.segment_length: a recurrent cell, read forward, over segments no longer than the window."""
    if m.cell == "dense":
        raise ConfigError(
            "segments run a recurrent cell; cell dense has none",
            where=where("model.segment_length"),
            fix="set model.cell to gru, lstm or simple_rnn, or remove model.segment_length",
        )
    if m.segment_length > w.input_length:
        raise ConfigError(
            f"a segment of {m.segment_length} steps is longer than window.input_length={w.input_length}",
            where=where("model.segment_length"),
            fix=f"use a segment_length of at most {w.input_length} (a divisor of it uses every step)",
        )
    if m.bidirectional:
        raise ConfigError(
            "segment models read the window forward only",
            where=where("model.bidirectional"),
            fix="set model.bidirectional: false, or remove model.segment_length",
        )


def _check_schedule(t: TrainingConfig, where: _Where) -> None:
    """Warm-up belongs to a schedule (cosine or step), which sets the learning rate alone (no
    reduce_lr_on_plateau); the step schedule's keys mean nothing without it."""
    if t.lr_schedule != "constant" and t.reduce_lr_on_plateau is not None:
        raise ConfigError(
            f"a {t.lr_schedule} schedule sets the learning rate itself; reduce_lr_on_plateau cannot change it",
            where=where("training.reduce_lr_on_plateau"),
            fix="set training.reduce_lr_on_plateau: null, or training.lr_schedule: constant",
        )
    if t.warmup_epochs and t.lr_schedule == "constant":
        raise ConfigError(
            "warm-up is part of a learning-rate schedule",
            where=where("training.warmup_epochs"),
            fix="set training.lr_schedule: cosine or step, or warmup_epochs: 0",
        )
    if t.warmup_start is not None and not t.warmup_epochs:
        raise ConfigError(
            "warmup_start is the first rate of a warm-up, and there is none",
            where=where("training.warmup_start"),
            fix="set training.warmup_epochs: 1 or more, or remove training.warmup_start",
        )
    default = TrainingConfig()
    for key in ("lr_decay", "lr_decay_after"):
        if getattr(t, key) != getattr(default, key) and t.lr_schedule != "step":
            raise ConfigError(
                f"{key} belongs to the step schedule",
                where=where(f"training.{key}"),
                fix=f"set training.lr_schedule: step, or remove training.{key}",
            )


def _check_size(cfg: Config, where: _Where) -> None:
    """A model too large to build is refused here, not by an out-of-memory error from the backend: the estimate
    counts one input column per target (features are known only with the data), so it is a lower bound."""
    m = cfg.model
    n = estimate_parameters(m.cell, m.units, len(cfg.data.target), cfg.window.input_length, m.bidirectional)
    if n > MAX_PARAMETERS:
        raise ConfigError(
            f"{m.units} makes a {m.cell} model of at least {n:,} weights ({n * 4 / 1e9:,.1f} GB as float32), more than"
            f" the {MAX_PARAMETERS:,} rnnforecast builds",
            where=where("model.units"),
            fix="use fewer units per layer, e.g. [64] or [128, 64]",
        )


def _check_targets(data: DataConfig, where: _Where) -> None:
    targets = data.target
    if len(set(targets)) != len(targets):
        raise ConfigError(
            f"duplicate target columns {targets}", where=where("data.target"), fix="list each target once"
        )
    calendar = data.time_features if isinstance(data.time_features, list) else []
    twice = next((n for i, n in enumerate(calendar) if n in calendar[:i]), None)
    if twice is not None:  # else the second sin/cos pair collides with the first, as a column of the file would
        raise ConfigError(
            f"{twice} is listed twice in data.time_features", where=where("data.time_features"), fix="list it once"
        )
    if data.time_column in targets:
        raise ConfigError(
            f"the time column {data.time_column!r} cannot be a target",
            where=where("data.target"),
            fix="pick a value column",
        )


def _check_frequency(frequency: str | None, where: _Where) -> None:
    """A step must move forward: refuse 0D, -1h, 0.0s (pandas checks the alias itself when the data is read)."""
    if frequency is None:
        return
    count = re.match(r"\s*([+-]?\d*\.?\d*)", frequency).group(1)
    if frequency.strip().startswith("-") or (count.strip("+-.") and float(count) <= 0):
        raise ConfigError(
            f"received {frequency!r}; a step must be positive",
            where=where("data.frequency"),
            fix="use a positive pandas offset alias such as h, D, B, 15min, MS",
        )


def _check_activation(activation: str, where: _Where) -> None:
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"received {activation!r}{did_you_mean(activation, ACTIVATIONS[:4])}",  # suggest only the common four
            where=where("model.activation"),
            fix=f"use one of: {', '.join(ACTIVATIONS)}",
        )


def cuda_path_warning(cfg: Config) -> str | None:
    """The reason a config leaves the fast cuDNN-compatible path, or None."""
    m = cfg.model
    if m.cell == "dense":
        return None
    reasons = []
    if m.activation != "tanh":
        reasons.append(f"activation={m.activation}")
    if m.recurrent_dropout > 0:
        reasons.append(f"recurrent_dropout={m.recurrent_dropout}")
    if m.cell == "gru" and not m.reset_after:
        reasons.append("reset_after=false")
    if not reasons:
        return None
    return (
        f"model settings {', '.join(reasons)} leave the cuDNN-compatible path: "
        "training on a GPU will use the slower generic kernel"
    )


def default_config_yaml() -> str:
    """All keys with their defaults and help text, for `rnnforecast config --defaults`.

    A section that is off by default (``null``) is listed with its keys commented out.
    """
    out: list[str] = []

    def walk(cls: type, indent: int, mark: str = "") -> None:
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            pad = mark + "  " * indent
            help_ = f.metadata.get("help", "")
            inner = _dataclass_in(_hints(cls)[f.name])
            default = _default_of(f)
            if inner is not None and default is not None:
                req = " (required)" if default == "<required>" else ""
                out.append(f"{pad}{f.name}:{'  # ' + help_ + req if help_ else ''}")
                walk(inner, indent + 1, mark)
            elif inner is not None and f.name == "intervals":  # off by default; show how to turn it on
                out.append(f"{pad}{f.name}: null  # {help_}; to turn on, a mapping of:")
                walk(inner, indent + 1, "# ")
            else:
                shown = json.dumps(default, ensure_ascii=False) if default != "<required>" else "<required>"
                allowed = allowed_values(_hints(cls)[f.name]) or list(f.metadata.get("choices", ()))
                out.append(f"{pad}{f.name}: {shown}  # {help_}" + (f" ({' | '.join(allowed)})" if allowed else ""))

    walk(Config, 0)
    return "\n".join(out) + "\n"


def allowed_values(tp: Any) -> list[str]:
    """The values a key with type ``tp`` may take when they are a closed set (``Literal`` anywhere in the type, with
    ``bool`` as true/false and ``None`` as null), else ``[]``: ``Literal["a", "b"] | None`` -> ``[a, b, null]``."""
    literals = []

    def collect(t: Any) -> None:
        if typing.get_origin(t) is Literal:
            literals.extend(map(str, typing.get_args(t)))
        for arg in typing.get_args(t):
            collect(arg)

    collect(tp)
    if not literals:
        return []
    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else ()
    extra = (["true", "false"] if bool in args else []) + (["null"] if type(None) in args else [])
    return extra + literals if bool in args else literals + extra


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else "<required>"

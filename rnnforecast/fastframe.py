"""Rows already parsed from JSON to a run's ``SeriesData`` on arrays: the clean case of ``data.load_frame``.

A forecast request carries a few dozen rows as JSON records. :meth:`Plan.of` reads once what a run needs (its
columns, categories, calendar columns, time step, scaler); :meth:`Plan.data` turns the rows of one or more items
(each item one series) into the ``SeriesData`` that ``load_frame`` + ``check_step`` + ``check_tail`` +
``series.build`` make of them, the checks done on arrays: every column the run needs and no other, numbers that are
finite and below ``data.MAX_ABS``, ISO timestamps in nanosecond range, strictly increasing, on the run's regular
step, categories as text, enough rows. This module writes no error message: rows that any of those checks would
refuse, fill or warn about, and runs it does not cover (``Plan.of`` gives None: series_id, filter, transforms,
data.future, a calendar of steps, a step of varying length, ...), give None, and the caller takes the full path,
whose message and numbers are the CLI's. tests/test_serve_fast.py asserts both paths give identical numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np
import pandas as pd

from .data import MAX_ABS, PERIODS, Frame, season_length
from .errors import DataError
from .series import Segment, SeriesData, _resolve_transforms, _scaled, assemble, split_rows
from .transforms import history_rows

# ISO dates and times without a UTC offset, one per line: what numpy and pandas parse to the same instant
# (to the microsecond: parsed exactly as datetime64[us])
ISO_LINES = re.compile(r"(?:\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?)?\n)*")
US_MIN, US_MAX = -(-pd.Timestamp.min.value // 1000), pd.Timestamp.max.value // 1000  # datetime64[ns]'s range, in us
MAX_EXACT = 2.0**63  # a larger integer is no int64 for pandas (an object column): left to the full path
NO_ROWS = pd.DataFrame()  # the df of a frame built here: a reader of its rows fails loudly (KeyError)


@dataclass(frozen=True)
class Plan:
    """What a run's forecast needs from a request's rows, read once when the run is loaded."""

    forecaster: object  # forecaster.Forecaster
    time_column: str
    numeric: frozenset  # source columns read as numbers
    categories: dict  # categorical column -> the run's categories
    source: frozenset  # every column a record must have, and no other
    step_ns: int  # the run's step in nanoseconds (fixed-length steps only)
    infer: bool  # data.frequency unset: load_frame infers it, needing 3 rows
    order_ok: dict  # the key order of a first record -> whether its model columns are the run's, in order

    @classmethod
    def of(cls, forecaster) -> Plan | None:
        """The plan of a run this module covers, else None (every request goes the full way)."""
        cfg, schema = forecaster.config, forecaster.schema.record
        d = cfg.data
        if not _covered(forecaster):
            return None
        step_ns = _run_step(schema)
        if step_ns is None:
            return None  # no fixed step, or check_step would refuse every request
        if schema.get("zone", "").endswith("in UTC"):
            return None  # the run's timestamps were read in UTC; a request's without offsets is warned about
        if d.frequency is None and cfg.model.residual == "seasonal":
            return None  # the season would follow the frequency load_frame infers from a request's few rows
        columns = _source_columns(schema, d.time_column, d.categorical)
        if columns is None:
            return None
        source, categories, numeric = columns
        return cls(forecaster, d.time_column, numeric, categories, source, step_ns, d.frequency is None, {})

    def data(self, items: list[list[dict]], path: str = "data") -> SeriesData | None:
        """The ``SeriesData`` of ``items`` (each a list of records: one series; several are named ``000000``,
        ``000001``, ...), or None when any item needs the full path."""
        resolved = self._items_columns(items)
        if resolved is None:
            return None
        features, model_columns = resolved
        numeric = [c for c in model_columns if c in self.numeric]  # the order of the raw columns built below
        rows = self._rows(items, numeric)
        if rows is None:
            return None
        times, numbers, text = rows
        n = [self._history_rows()] * len(items)
        raw = self._raw(times, numbers, text, numeric, model_columns)  # (N, C) float64
        keys = ["all"] if len(items) == 1 else [f"{k:06d}" for k in range(len(items))]
        frame = self._frame(times, raw, features, model_columns, keys, path)
        return self._series_data(frame, raw, model_columns, self._segments(frame, keys, n, path))

    def _rows(self, items, numeric: list[str]) -> tuple | None:
        """``(times (N,), numbers (N, k), {categorical column: text (N,)})`` of the last ``_history_rows`` rows of
        every item, one item after the other, or None when any row of any item needs the full path.

        Every row of every item is checked, all items' rows at once (``rows``: lists of dicts,
        ``serve.check_records``; each must have exactly the run's source columns); only the rows the forecast
        reads (the window, and a season before it) are kept: a 60-row item costs about what a 14-row one does."""
        need = max(self._history_rows(), 3 if self.infer else 1)  # load_frame infers a frequency from 3 rows
        if not all(isinstance(rows, list) and len(rows) >= need for rows in items):
            return None
        rows = list(chain.from_iterable(items))
        if set(map(len, rows)) != {len(self.source)}:
            return None
        cells = self._cells(rows, numeric)
        if cells is None or cells[0] is None:
            return None
        times, numbers, text = cells
        steps = np.diff(times.view(np.int64))
        ends = np.cumsum([len(r) for r in items])  # (S,) one past each item's last row
        steps[ends[:-1] - 1] = self.step_ns  # an item's first row follows no row of its own
        if (steps != self.step_ns).any():
            return None  # disorder, a duplicate, a gap or another step: load_frame and check_step say which
        numbers = _numbers(numbers, len(rows), len(numeric))
        if numbers is None or not all(_plain_text(v) for v in text.values()):
            return None
        if self._far_outside(numbers, numeric):
            return None  # forecaster.far_outside_warnings looks at every row: the full path warns
        h = self._history_rows()
        keep = (ends[:, None] - h + np.arange(h)).ravel()  # (S * h,) each item's last h rows
        return times[keep], numbers[keep], {col: np.array(v, dtype=object)[keep] for col, v in text.items()}

    def _far_outside(self, numbers: np.ndarray, numeric: list[str]) -> bool:
        """Whether a target value of any row lies far outside the training data (``Scaler.far_outside``; no
        transform and one scaler group here, so a target's model values are its numbers)."""
        scaler = self.forecaster.scaler
        for t in self.forecaster.config.data.target:
            k, c = numeric.index(t), scaler.columns.index(t)
            try:
                if scaler.far_outside(scaler.transform(numbers[:, k], 0, [c]), 0, c).any():
                    return True
            except DataError:  # beyond float32 once scaled: the full path says so
                return True
        return False

    def _items_columns(self, items) -> tuple[list[str], list[str]] | None:
        """The features and model columns of ``items``, or None: an item whose first record is no dict with exactly
        the run's source columns, or whose key order gives other model columns than the run's."""
        firsts = [_first_record(rows) for rows in items]
        if not items or any(r is None or r.keys() != self.source for r in firsts):
            return None
        # each item alone: its first record's key order is its columns' order (pandas), which must give the run's
        if any(self._model_columns(tuple(r)) is None for r in firsts):
            return None
        return self._model_columns(tuple(firsts[0]))

    def _history_rows(self) -> int:
        """The rows of each item a forecast reads (no transform here: no row before the history)."""
        return history_rows(self._history_length(), {})

    def _history_length(self) -> int:
        """The rows before a forecast the model reads: its window, and before it one season for a seasonal
        residual (Framing.history_extra; the plan has a frequency)."""
        cfg = self.forecaster.config
        if cfg.model.residual != "seasonal":
            return cfg.window.input_length
        return cfg.window.input_length + season_length(cfg.data.frequency, cfg.data.season_length)

    def _raw(self, times, numbers, text: dict, numeric: list[str], model_columns: list[str]) -> np.ndarray:
        """``(N, C)`` float64 model columns of the rows: numbers, one-hot categories, calendar."""
        columns = {c: numbers[:, j] for j, c in enumerate(numeric)}
        for col, cats in self.categories.items():
            for c in cats:
                columns[f"{col}={c}"] = (text[col] == c).astype("float64")
        calendar = Calendar(times)
        for name in self.forecaster.config.data.time_features:
            fn, period = PERIODS[name]
            phase = 2 * np.pi * np.asarray(fn(calendar), dtype="float64") / period
            columns[f"{name}_sin"], columns[f"{name}_cos"] = np.sin(phase), np.cos(phase)
        return np.column_stack([columns[c] for c in model_columns])

    def _segments(self, frame: Frame, keys: list[str], n: list[int], path: str) -> list[Segment]:
        """One ``Segment`` per item, its rows split as ``series.build`` splits them (by date when val_start is set)."""
        cfg = self.forecaster.config
        dated = pd.Series(frame.times) if cfg.data.split.val_start is not None else None  # split by date
        los = np.concatenate([[0], np.cumsum(n)]).tolist()
        return [
            Segment(k, lo, hi, split_rows(hi - lo, lo, cfg, None if dated is None else dated[lo:hi], path))
            for k, lo, hi in zip(keys, los[:-1], los[1:])
        ]

    def _series_data(self, frame: Frame, raw: np.ndarray, model_columns: list[str], segments) -> SeriesData:
        f = self.forecaster
        # one scaler for every series (Plan.of): the rows of all items scaled at once, as the items' own would be
        values = _scaled(raw, [Segment("*", 0, len(raw), {})], f.scaler)
        return assemble(f.config, frame, raw, values, {c: "none" for c in model_columns}, f.scaler, segments)

    def _model_columns(self, order: tuple) -> tuple[list[str], list[str]] | None:
        """The model columns ``load_frame`` resolves from records with keys in ``order``; None unless they are the
        run's, in the run's order (the full path then says so). Cached per key order."""
        if order not in self.order_ok:
            features, columns = self._resolve_columns(order)
            self.order_ok[order] = (features, columns) if columns == self.forecaster.schema.record["columns"] else None
        return self.order_ok[order]

    def _resolve_columns(self, order: tuple) -> tuple[list[str], list[str]]:
        """Features and model columns as ``load_frame`` resolves them from records with keys in ``order``:
        ``data.features`` or the numeric columns in the rows' order, then targets, one-hot and calendar columns."""
        d = self.forecaster.config.data
        if d.features is not None:
            features = list(d.features)
        else:
            features = [c for c in order if c in self.numeric]
            features += [t for t in d.target if t not in features]
        features += self._derived_columns()
        return features, features + [t for t in d.target if t not in features]

    def _derived_columns(self) -> list[str]:
        """The columns ``load_frame`` derives: one-hot categories (``col=value``), then calendar (``name_sin``,
        ``name_cos``)."""
        one_hot = [f"{col}={c}" for col, cats in self.categories.items() for c in cats]
        return one_hot + [f"{n}_{p}" for n in self.forecaster.config.data.time_features for p in ("sin", "cos")]

    def _cells(self, rows, numeric: list[str]):
        """``(times or None, number cells (one list a column, in ``numeric`` order), {categorical column: its
        values})`` read from ``rows``, or None: a key missing, or a record that is no dict."""
        try:  # as many keys as the run's columns, and each of them: the same keys (itemgetter runs in C)
            times = _times(list(map(itemgetter(self.time_column), rows)))
            cells = [list(map(itemgetter(col), rows)) for col in numeric]
            text = {col: list(map(itemgetter(col), rows)) for col in self.categories}
        except (KeyError, TypeError):  # a key missing, or a record that is no dict
            return None
        return times, cells, text

    def _frame(self, times, raw, features, model_columns, keys, path) -> Frame:
        cfg, schema = self.forecaster.config, self.forecaster.schema.record
        # no DataFrame: a forecast reads its timestamps from ``times`` (SeriesData.timestamps), its numbers from
        # ``raw`` (the model columns), its series from the segments; building one cost more than the forecast
        tc, df = self.time_column, NO_ROWS
        targets = list(cfg.data.target)
        n = len(times)
        return Frame(
            df=df,
            path=path,
            time_column=tc,
            frequency=schema["frequency"],
            calendar=cfg.data.calendar,
            targets=targets,
            features=features,
            categories={c: list(v) for c, v in self.categories.items()},
            missing_before={c: 0 for c in model_columns},
            series=list(keys),
            units=dict(cfg.data.units),
            open_tail={k: 0 for k in keys},
            filled=np.zeros((n, len(targets)), dtype=bool),
            times=times,
        )


MINUTE_NS, HOUR_NS, DAY_NS = 60 * 10**9, 3600 * 10**9, 86_400 * 10**9


class Calendar:
    """The calendar fields ``data.PERIODS`` reads from a pandas ``.dt`` accessor, computed on datetime64[ns] with
    numpy (the same integers; pandas builds a Series and an index per field, ~0.3 ms a call)."""

    def __init__(self, times: np.ndarray):
        self.ns = times.view(np.int64)  # (N,) datetime64[ns] as integers: floor divisions, before 1970 too
        self.days = (self.ns // DAY_NS).astype("datetime64[D]")

    @property
    def hour(self) -> np.ndarray:
        return self.ns % DAY_NS // HOUR_NS

    @property
    def minute(self) -> np.ndarray:
        return self.ns % HOUR_NS // MINUTE_NS

    @property
    def dayofweek(self) -> np.ndarray:
        return (self.days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0

    @property
    def day(self) -> np.ndarray:
        return (self.days - self.days.astype("datetime64[M]")).astype(np.int64) + 1

    @property
    def dayofyear(self) -> np.ndarray:
        return (self.days - self.days.astype("datetime64[Y]")).astype(np.int64) + 1

    @property
    def month(self) -> np.ndarray:
        return self.days.astype("datetime64[M]").astype(np.int64) % 12 + 1


def _covered(forecaster) -> bool:
    """Whether this module covers a run's data section, scaler and transforms (the step is checked apart)."""
    cfg = forecaster.config
    d = cfg.data
    if d.filter or d.time_unit or d.series_id or d.future or d.calendar != "regular":
        return False
    if forecaster.scaler.groups != ["*"] or forecaster.short_by is not None:
        return False
    columns = list(forecaster.schema.record["columns"])
    return not any(k != "none" for k in _resolve_transforms(cfg, columns, "").values())


def _source_columns(schema: dict, time_column: str, categorical) -> tuple[frozenset, dict, frozenset] | None:
    """``(source columns, {categorical column: the run's categories}, numeric source columns)``, or None when a
    source column is neither time, category nor model column (or a categorical column has no categories)."""
    source = frozenset(c for c in schema["source_columns"] if c != "__line__")
    categories = {c: list(schema.get("categories", {}).get(c, [])) for c in categorical}
    numeric = source - {time_column} - set(categories)
    if not numeric <= set(schema["columns"]) or time_column not in source or any(not v for v in categories.values()):
        return None
    return source, categories, frozenset(numeric)


def _first_record(rows) -> dict | None:
    """An item's first record when the item is a non-empty list starting with a dict, else None."""
    return rows[0] if isinstance(rows, list) and rows and type(rows[0]) is dict else None


def _run_step(schema: dict) -> int | None:
    """The run's fixed step in ns, or None: a step of varying length, or a frequency whose step is not the median
    step the run saw (check_step would refuse every request)."""
    step_ns = _fixed_step(schema["frequency"])
    median = schema.get("median_step_seconds")
    if step_ns is None or not median:
        return None
    if abs(step_ns / 1e9 - median) > 0.01 * median:
        return None
    return step_ns


def _times(values: list) -> np.ndarray | None:
    """ISO text timestamps without an offset as datetime64[ns], or None (the full path parses the others)."""
    try:
        text = "\n".join(values)
    except TypeError:
        return None  # numbers (a time_unit question) or nulls
    if not _iso_lines(text + "\n"):
        return None
    try:
        us = np.array(values, dtype="datetime64[us]")
    except ValueError:
        return None
    ticks = us.view(np.int64)
    if ticks.min() < US_MIN or ticks.max() > US_MAX:
        return None
    return us.astype("datetime64[ns]")


DIGIT_SHAPE = bytes(48 if 48 <= b <= 57 else b for b in range(256))  # every digit read as "0", the rest as is


def _iso_lines(text: str) -> bool:
    """Whether ``text`` (lines, each ended by a newline) matches ``ISO_LINES``. The common case, every line of one
    shape (``2015-12-31`` with other digits), is checked as bytes in C: the first line against the pattern, then
    the whole text, digits mapped to ``0``, against that line's shape repeated (the pattern tells lines apart by
    their shape only); other texts go through the pattern line by line (10x slower)."""
    end = text.find("\n") + 1
    if end == 0 or not text.isascii():
        return ISO_LINES.fullmatch(text) is not None
    shape = text[:end].encode().translate(DIGIT_SHAPE)
    if len(text) % end == 0 and text.encode().translate(DIGIT_SHAPE) == shape * (len(text) // end):
        return ISO_LINES.fullmatch(text[:end]) is not None
    return ISO_LINES.fullmatch(text) is not None


def _numbers(cells: list[list], n: int, k: int) -> np.ndarray | None:
    """``(n, k)`` float64 of ``k`` columns of JSON numbers that are finite and within ``MAX_ABS``, or None (a missing
    value, a bool, text: the full path fills, converts or refuses it)."""
    if not set(map(type, chain.from_iterable(cells))) <= {int, float}:
        return None
    try:
        numbers = np.array(cells, dtype=np.float64).reshape(k, n).T  # a list of numbers a column: one C loop each
    except OverflowError:  # an integer beyond float64
        return None
    if not (np.isfinite(numbers).all() and np.abs(numbers).max(initial=0.0) <= min(MAX_ABS, MAX_EXACT)):
        return None
    return numbers


def _plain_text(values: list) -> bool:
    """Categories as text that is no number: the full path reads a column of number-like text as numbers
    ("07" -> 7) before it encodes it."""
    kinds = set(values)
    if set(map(type, kinds)) != {str}:
        return False
    for v in kinds:
        try:
            float(v)
            return False
        except ValueError:
            pass
    return True


def _fixed_step(frequency: str) -> int | None:
    """The step of a frequency whose steps all have one length on naive timestamps (h, min, D, 15min), in ns."""
    try:
        offset = pd.tseries.frequencies.to_offset(frequency)
    except ValueError:
        return None
    if not isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)) or offset.n <= 0:
        return None
    grid = pd.date_range("2001-01-01", periods=400, freq=offset).as_unit("ns").asi8
    steps = np.unique(np.diff(grid))
    return int(steps[0]) if len(steps) == 1 else None

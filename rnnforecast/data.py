"""Load a CSV or Parquet file into a clean, regular, checked frame as the config describes it."""

from __future__ import annotations

import codecs
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import frequencies
from .config import Config, DataConfig
from .errors import ConfigError, DataError, did_you_mean, first_line

SERIES = "__series__"  # internal column: the series id (one value when there is no series_id)
LINE = "__line__"  # internal column: the row's line in a CSV (its row number in Parquet), for error messages
RESERVED = (SERIES, LINE)  # a user column with one of these names is refused, never overwritten
PARQUET_SUFFIXES = (".parquet", ".pq")
DATAFRAME = "<DataFrame>"  # how messages name a frame passed to the Python API
HEAD_BYTES = 4096  # what is read to sniff a CSV before pandas reads it
MAX_ABS = 1e30  # the model computes in float32 (max 3.4e38); a loss squares values, so refuse beyond this
MAX_ROWS = 10_000_000  # rows a regular grid may have after gaps become rows
GAP_WARN_SHARE = 0.05  # warn when regularising invents more than this share of the rows
PERIODS = {  # time feature -> (accessor, period)
    "hour_of_day": (lambda t: t.hour + t.minute / 60, 24),
    "day_of_week": (lambda t: t.dayofweek, 7),
    "day_of_month": (lambda t: t.day - 1, 31),
    "day_of_year": (lambda t: t.dayofyear - 1, 365.25),
    "month_of_year": (lambda t: t.month - 1, 12),
}


@dataclass
class Frame:
    """The cleaned data: one row per step, sorted by series then time."""

    df: pd.DataFrame  # columns: time column, SERIES, every model column
    path: Path | str  # the file, or a label for rows read elsewhere (DATAFRAME, a masked SQL URL)
    time_column: str
    frequency: str
    calendar: str
    targets: list[str]
    features: list[str]  # model input columns, after one-hot and time features
    categories: dict[str, list[str]] = field(default_factory=dict)
    missing_before: dict[str, int] = field(default_factory=dict)  # NaNs per column as read (and gap rows)
    gap_rows: int = 0
    series: list[str] = field(default_factory=lambda: ["all"])
    numeric_source: dict[str, str] = field(default_factory=dict)  # column -> dtype as read
    units: dict[str, str] = field(default_factory=dict)  # column -> unit label, from the config
    warnings: list[str] = field(default_factory=list)  # "warning: ... Fix: ..." lines for train/validate to print
    source_sha256: str | None = None  # hash of the rows as read, for sources that are not a file (SQL, DataFrame)
    missing_tail: dict[str, list[int]] = field(default_factory=dict)  # series -> file lines of its last rows
    # whose target is missing (filled before use); what `predict --data` refuses to forecast from by default
    open_tail: dict[str, int] = field(default_factory=dict)  # series -> trailing rows whose targets were all empty
    short: pd.DataFrame | None = None  # rows of series too short for the model, set apart (short_series.py)
    filled: np.ndarray | None = None  # (N, T) target values the tool filled (gap rows, missing cells): no actuals
    zone: str = ""  # what the zone rule (zone_rule) did with the time column's UTC offsets; "" when it had none
    time_features: list[str] = field(default_factory=list)  # data.time_features as used (``auto`` decided)
    times: np.ndarray | None = None  # (N,) datetime64 of the time column when the rows were built on arrays (serve's
    # fast path, fastframe.py: its df has no rows then, its numbers are SeriesData.raw); else read from df

    def time_values(self) -> np.ndarray:
        """``(N,)`` datetime64: the time column of every row."""
        return self.times if self.times is not None else self.df[self.time_column].to_numpy()

    def unit(self, column: str) -> str:
        return self.units.get(column, "data units")

    @property
    def columns(self) -> list[str]:
        """Model columns: features first, then targets that are not features."""
        return self.features + [t for t in self.targets if t not in self.features]


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV or Parquet with errors that name the file and say how to fix it.

    Only regular files are read (``/dev/zero`` never ends, a FIFO blocks), and errors about the content
    quote at most column names and a position: the file may not be a table at all (``/etc/shadow``).
    """
    where = str(path)
    _check_regular_file(path, where)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        df = _read_parquet(path, where)
    else:
        head = _read_head(path, where)
        _check_csv_head(head, path, where)
        sep = "\t" if "".join(path.suffixes[-2:]).lower().endswith(".tsv") else ","
        df = _read_csv(path, sep, where)
        _check_csv_header(path, sep, df, where)
    _check_unique_columns([str(c) for c in df.columns], where)
    if df.empty:
        raise DataError("the file has a header but no rows", where=where, fix="add data rows")
    return df


def _check_regular_file(path: Path, where: str) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(
            "data file not found", where=where, fix="check data.path (relative to the config's folder)"
        ) from None
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror})", where=where, fix="check data.path") from None
    if stat.S_ISDIR(mode):
        raise DataError("is a directory, not a data file", where=where, fix="point data.path at a CSV or Parquet file")
    if not stat.S_ISREG(mode):
        raise DataError(
            "not a regular file (a device, FIFO or socket)", where=where, fix="point data.path at a CSV or Parquet file"
        )
    if not os.access(path, os.R_OK):
        raise DataError("cannot read the file (permission denied)", where=where, fix="check its permissions")


def _read_head(path: Path, where: str) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror})", where=where, fix="check its permissions") from None


def _read_parquet(path: Path, where: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many kinds; its first line names the problem, not the content
        first = first_line(e, 160)
        raise DataError(
            f"cannot read Parquet ({type(e).__name__}: {first})", where=where, fix="check the file is valid Parquet"
        ) from None


def _not_utf8(path: Path, where: str) -> DataError:
    """The first byte that is not UTF-8, at its real offset and line (pandas reports an offset inside its buffer)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                at = offset - pending + e.start
                line = lines + e.object.count(b"\n", 0, e.start) + 1
                return DataError(
                    f"not UTF-8: byte 0x{e.object[e.start]:02x} at offset {at} (line {line})",
                    where=f"{where}:{line}",
                    fix="re-save the file as UTF-8 (a byte like this usually means latin-1 or cp1252)",
                )
            if not chunk:
                break
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return DataError("not UTF-8", where=where, fix="re-save the file as UTF-8")


def _empty_file(where: str) -> DataError:
    return DataError("the file is empty", where=where, fix="point data.path at a CSV with a header and rows")


def _check_csv_head(head: bytes, path: Path, where: str) -> None:
    """Refuse what is plainly not CSV text, from the file's first bytes."""
    if not head.strip():
        raise _empty_file(where)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head.startswith(codecs.BOM_UTF32_LE):
        raise DataError("UTF-16/32 text, not UTF-8", where=where, fix="re-save the file as UTF-8 CSV")
    if b"\x00" in head or head.startswith(b"PAR1"):
        raise DataError("looks binary, not CSV text", where=where, fix="use a CSV or a .parquet file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # an error in the last 4 bytes may be a character cut in half by the head
            raise _not_utf8(path, where) from None


def _read_csv(path: Path, sep: str, where: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, encoding="utf-8-sig")  # -sig: a byte-order mark is not part of a name
    except UnicodeDecodeError:
        raise _not_utf8(path, where) from None
    except pd.errors.EmptyDataError:
        raise _empty_file(where) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as e:
        # pandas' messages name a line and counts ("Expected 2 fields in line 3, saw 5"), never the line's text.
        first = first_line(e, 160) or type(e).__name__
        raise DataError(f"cannot parse CSV: {first}", where=where, fix="check the separator and quoting") from None


def _check_csv_header(path: Path, sep: str, df: pd.DataFrame, where: str) -> None:
    """A table has at least a time and a value column, each named once (pandas would rename a second 'y' 'y.1')."""
    if len(df.columns) < 2:
        name = "tab" if sep == "\t" else "comma"
        header = str(df.columns[0]) if len(df.columns) else ""
        if ";" in header:  # a European spreadsheet export: semicolons between columns, often decimal commas
            raise DataError(
                f"not a table: the header line has no {name} separating columns, but semicolons ({_short(header)})",
                where=f"{where}:1",
                fix="save it with commas between columns and points as decimal marks, e.g. in Python "
                "pd.read_csv(path, sep=';', decimal=',').to_csv(new_path, index=False)",
            )
        raise DataError(
            f"not a table: the header line has no {name} separating columns (1 column)",
            where=f"{where}:1",
            fix="point data.path at a CSV with a header like date,value"
            + (" (a tab-separated file needs the suffix .tsv)" if sep == "," else ""),
        )
    header = pd.read_csv(path, sep=sep, encoding="utf-8-sig", header=None, nrows=1, dtype=str, keep_default_na=False)
    _check_unique_columns([str(c) for c in header.iloc[0].tolist()], where)


def _check_unique_columns(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"column {_short(name)} appears twice in the header",
                where=f"{where}: column {_short(name, quote=False)}",
                fix="give every column its own name",
            )
        seen.add(name)


def _cell(value: object, limit: int = 40) -> str:
    """A cell of the file for a message: quoted when short, else only its length (it may be a secret's line)."""
    text = str(value)
    return repr(text) if len(text) <= limit else f"a {len(text)}-character value"


def _short(value: object, limit: int = 40, quote: bool = True) -> str:
    """A value or name for a message, cut to ``limit`` characters (a message never carries a whole line)."""
    text = str(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text) if quote else text


def _missing_column(col: str, df: pd.DataFrame, where: str, key: str) -> DataError:
    cols = [str(c) for c in df.columns if c not in (LINE, SERIES)]
    shown = ", ".join(_short(c, quote=False) for c in cols[:12])
    return DataError(
        f"column {col!r} not found{did_you_mean(col, cols)}",
        where=f"{where}: {key}",
        fix=f"use one of the file's columns: {shown}{' ...' if len(cols) > 12 else ''}",
    )


def _require_columns(df: pd.DataFrame, columns: list[str], where: str, key: str) -> None:
    for col in columns:
        if col not in df.columns:
            raise _missing_column(col, df, where, key)


def _csv_line(row: int) -> int:
    return row + 2  # header is line 1


def load_source(
    cfg: Config, table: pd.DataFrame | None = None, categories: dict | None = None, check_columns=None
) -> Frame:
    """The config's data as a checked frame: ``table`` when given (the Python API), else ``data.sql``, else the file.

    Every source goes through the same steps of ``load_frame``, so every check applies to each;
    ``check_columns`` (of the file) as in ``load_frame``.
    """
    if table is not None:
        if not isinstance(table, pd.DataFrame):
            raise DataError(
                f"expected a pandas DataFrame, received {type(table).__name__}",
                where="data",
                fix="pass pandas.DataFrame rows, or leave data out to read data.path",
            )
        if table.index.name == cfg.data.time_column and cfg.data.time_column not in table.columns:
            table = table.reset_index()  # a DatetimeIndex named like the time column is that column
        return load_frame(cfg.data, DATAFRAME, categories, table=table)
    if cfg.data.sql is not None:
        from . import sql

        rows = sql.read(cfg.data.sql, cfg.base_dir)
        return load_frame(cfg.data, sql.shown(cfg.data.sql, cfg.base_dir), categories, table=rows)
    if cfg.data.path is None:
        raise ConfigError(
            "the config names no data",
            where=f"{cfg.source}: data",
            fix="add data.path (a CSV or Parquet file) or data.sql (a database table or query)",
        )
    return load_frame(cfg.data, cfg.data_path, categories, check_columns=check_columns)


def table_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and values, independent of its index."""
    import hashlib

    h = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def load_frame(
    cfg: DataConfig,
    path: Path | str,
    categories: dict[str, list[str]] | None = None,
    table: pd.DataFrame | None = None,
    check_columns=None,
    line_of=None,
) -> Frame:
    """Read, filter, parse time, check order, regularise, fill missing values, encode.

    Args:
        path: the CSV or Parquet file; with ``table``, only the name messages give the rows.
        categories: the one-hot categories of a trained run; values not in it encode as all zeros.
        table: rows read elsewhere (a DataFrame from the Python API, a ``data.sql`` query) instead of the file.
        check_columns: called with the column names read, before any step (a run's schema check of new data).
        line_of: with ``table``, the row number messages give each row (default: its position, from 0).
    """
    where, tc = str(path), cfg.time_column
    if table is None:
        df = _read_numbered(path)
    else:
        df = _numbered(table.copy(), where, line_of=line_of or (lambda rows: rows))
    if check_columns is not None:
        check_columns([c for c in df.columns if c != LINE])
    df = _apply_filter(df, cfg.filter, path, where)
    df, zone = _parse_time(df, tc, where, cfg.time_unit)
    df = _label_series(df, cfg, where)
    df = _order_by_time(df, cfg, where)
    frequency = cfg.frequency or _infer_frequency(df, tc, where, zone)
    offset = _offset(frequency, where)

    numeric_source = {c: str(df[c].dtype) for c in df.columns if c != LINE}
    features = _resolve_features(cfg, df, where)
    df = _to_numeric(df, list(dict.fromkeys(features + cfg.target)), where)
    values = list(dict.fromkeys(cfg.target + features))  # every column the model reads, targets first
    missing_before = {c: int(df[c].isna().sum()) for c in values}

    gap_rows, warnings = 0, []
    if cfg.calendar == "regular":
        df, gap_rows = _regularise(df, tc, offset, where, frequency, zone)
        warnings += _gap_warning(gap_rows, len(df), frequency, where)
    for col in values:
        _check_values(df, col, where)
    missing_tail = _missing_tail(df, cfg.target)
    open_tail = _open_tail(df, cfg.target)
    filled = df[list(cfg.target)].isna().to_numpy() if cfg.missing != "drop" else None  # (N, T)
    df = _fill_missing(df, cfg.missing, values, tc, where)

    df, categories, one_hot = _encode_categories(df, cfg.categorical, categories, where)
    calendar = _time_feature_names(cfg, df, tc, frequency)
    df, cyclic = _add_time_features(df, calendar, tc, where)
    features = features + one_hot + cyclic

    df = df[[tc, SERIES, *dict.fromkeys(features + cfg.target)]].reset_index(drop=True)
    return Frame(
        df=df,
        path=path,
        time_column=tc,
        frequency=frequency,
        calendar=cfg.calendar,
        targets=list(cfg.target),
        features=features,
        categories=categories,
        missing_before=missing_before,
        gap_rows=gap_rows,
        series=df[SERIES].unique().tolist(),  # in order of appearance
        numeric_source=numeric_source,
        units=dict(cfg.units),
        warnings=warnings,
        source_sha256=None if table is None else table_sha256(table),
        missing_tail=missing_tail,
        open_tail=open_tail,
        filled=filled if filled is not None else np.zeros((len(df), len(cfg.target)), dtype=bool),
        zone=zone,
        time_features=calendar,
    )


def _missing_tail(df: pd.DataFrame, targets: list[str]) -> dict[str, list[int]]:
    """Per series, the file lines (0 for an invented gap row) of the trailing rows with a missing target."""
    names, bounds = series_blocks(df)
    counts = trailing(df[targets].isna().any(axis=1).to_numpy(), bounds)
    lines = df[LINE].to_numpy()
    return {
        str(name): [int(x) if x == x else 0 for x in lines[hi - n : hi]]
        for name, (_, hi), n in zip(names, bounds.tolist(), counts.tolist())
        if n
    }


def _open_tail(df: pd.DataFrame, targets: list[str]) -> dict[str, int]:
    """Per series, the rows at its end with every target empty (horizon rows that carry known-future inputs)."""
    names, bounds = series_blocks(df)
    counts = trailing(df[targets].isna().all(axis=1).to_numpy(), bounds)
    return {str(name): n for name, n in zip(names, counts.tolist())}


def series_codes(df: pd.DataFrame) -> tuple[np.ndarray, pd.Index, bool]:
    """``(codes, names, contiguous)``: each row's series as 0, 1, ... in order of appearance
    (``groupby(SERIES, sort=False)``'s order), the series' names, and whether each series' rows are contiguous
    (then the codes never decrease: a series that came back after another would)."""
    codes, names = pd.factorize(df[SERIES], sort=False)
    return codes, names, not (len(codes) and (np.diff(codes) < 0).any())


def series_blocks(df: pd.DataFrame) -> tuple[list, np.ndarray]:
    """``(names, bounds (S, 2))``: each series' rows ``[lo, hi)`` in a frame whose series are contiguous (as
    ``_order_by_time`` and ``_regularise`` leave them), in order of appearance, found at once instead of a group
    each."""
    codes, names, contiguous = series_codes(df)
    if not contiguous:  # no frame these functions see
        raise AssertionError("the rows of each series must be contiguous")
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    return list(names), np.column_stack([starts, np.append(starts[1:], len(codes))])


def trailing(flags: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``(S,)`` how many rows at the end of each block ``[lo, hi)`` of ``bounds`` are flagged."""
    if not len(bounds):
        return np.zeros(0, dtype=np.int64)
    unflagged = np.where(flags, -1, np.arange(len(flags)))  # a row's index where not flagged
    last = np.maximum.reduceat(unflagged, bounds[:, 0])  # each block's last unflagged row, or < lo when none
    lo, hi = bounds[:, 0], bounds[:, 1]
    return np.where(last >= lo, hi - 1 - last, hi - lo)


def _read_numbered(path: Path) -> pd.DataFrame:
    """The table with text column names and a LINE column that error messages point at."""
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    return _numbered(read_table(path), str(path), line_of=(lambda rows: rows) if parquet else _csv_line)


def _numbered(df: pd.DataFrame, where: str, line_of) -> pd.DataFrame:
    """Text column names, reserved names refused, and a LINE column (``line_of(row numbers)``)."""
    if df.empty:
        raise DataError("the table has no rows", where=where, fix="pass rows of data")
    df.columns = [str(c) for c in df.columns]
    _check_unique_columns(list(df.columns), where)
    for name in RESERVED:
        if name in df.columns:
            raise DataError(
                f"column {name!r} has a name rnnforecast uses internally",
                where=f"{where}: column {name}",
                fix=f"rename the column ({', '.join(RESERVED)} are reserved)",
            )
    df = df.reset_index(drop=True)
    df[LINE] = line_of(np.arange(len(df)))
    return df


def _apply_filter(df: pd.DataFrame, filters: dict, path: Path, where: str) -> pd.DataFrame:
    """Keep the rows where each filter column equals the value (or one of the listed values)."""
    full = df
    for col, wanted in filters.items():
        if col not in df.columns:
            raise _missing_column(col, df, where, f"data.filter.{col}")
        values = wanted if isinstance(wanted, list) else [wanted]
        # A YAML 7 matches a CSV "7" and a Parquet 7 alike.
        keep = df[col].isin(values) | df[col].astype(str).isin([str(v) for v in values])
        df = df[keep]
        if df.empty:
            seen = sorted(map(str, full[col].dropna().unique()))[:10]
            raise DataError(
                f"filter {col}={wanted!r} keeps no rows",
                where=f"{where}: data.filter.{col}",
                fix=f"values present: {', '.join(seen)}",
            )
    return df


def _first_line_where(df: pd.DataFrame, bad: pd.Series, where: str) -> str:
    """``file:line`` of the first row where ``bad`` is true."""
    return f"{where}:{df[LINE].iloc[int(np.argmax(bad.to_numpy()))]}"


def _parse_time(df: pd.DataFrame, tc: str, where: str, unit: str | None = None) -> tuple[pd.DataFrame, str]:
    """Turn the time column into naive timestamps by the zone rule (:func:`zone_rule`); the first value that is not
    a timestamp is an error.

    Returns:
        ``(df, zone)``: ``zone`` says what the rule did with UTC offsets ("" when the column had none).
    """
    if tc not in df.columns:
        raise _missing_column(tc, df, where, "data.time_column")
    col = df[tc]
    if col.isna().any():
        raise DataError(
            f"empty time value in column {tc!r}",
            where=_first_line_where(df, col.isna(), where),
            fix="fill in the timestamp or remove the row",
        )
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    wall, offsets = None, ""
    if unit is not None:
        times = _numeric_times(df, tc, where, unit)
    elif numeric:
        raise _numeric_time_error(col, tc, where)
    elif pd.api.types.is_datetime64_any_dtype(col):
        times = col
        if getattr(col.dt, "tz", None) is not None:
            wall, offsets = col.dt.tz_localize(None), f"time zone {col.dt.tz}"
    else:
        times, wall, offsets = _text_times(df, tc, where)
    zone = ""
    if wall is not None:
        times, zone = zone_rule(times, wall, offsets)
    df[tc] = _in_ns_range(times, df, tc, where)
    return df, zone


def parse_times(
    values: pd.Series, tc: str, where: str, unit: str | None = None, parquet: bool = False
) -> tuple[pd.Series, str]:
    """The time column ``values`` parsed as the loader parses it, zone rule included (``init`` asks this).

    Returns:
        ``(naive timestamps with values' index, zone note)``; errors point at the file's line (Parquet: row).
    """
    df = pd.DataFrame({tc: values.reset_index(drop=True)})
    rows = np.arange(len(df))
    df[LINE] = rows if parquet else _csv_line(rows)
    df, zone = _parse_time(df, tc, where, unit)
    return df[tc].set_axis(values.index), zone


ZONE_RULE = "local midnights keep their dates, other times are read in UTC"


def zone_rule(times: pd.Series, wall: pd.Series, offsets: str) -> tuple[pd.Series, str]:
    """The one rule for zoned timestamps (file, SQL and the Python API alike; README "Time zones").

    Daily and coarser data (every wall-clock time at midnight) keep the local calendar: a Tokyo day stays that
    date, a Berlin day stays a day across daylight saving. Finer data is converted to UTC, where daylight saving
    neither repeats nor skips an hour. Either way the result is naive, and so are forecast timestamps.

    Args:
        times: the aware timestamps (any zone, or mixed offsets already in UTC).
        wall: the same instants as naive local wall-clock times.
        offsets: words naming the zone or offsets seen, for the note.

    Returns:
        ``(naive times, note)``: the note names the rule applied, for messages and ``validate``.
    """
    if bool((wall == wall.dt.normalize()).all()):
        return wall, f"{offsets}, every one at local midnight: local dates kept"
    utc = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return utc, f"{offsets}, not all at local midnight: read in UTC"


def _zone_words(zone: str) -> str:
    """The zone rule, where it shaped the timestamps a message is about."""
    return f" ({zone}; the zone rule: {ZONE_RULE})" if zone else ""


def _zone_fix(zone: str) -> str:
    return "; for daily data give local midnights or plain dates (2020-03-29)" if zone.endswith("in UTC") else ""


TZ_SUFFIX = r":\d{2}(?:\.\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"  # 12:00+01:00, 12:00:00Z, 12:00-0500
OFFSET = r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"  # the offset part of a TZ_SUFFIX


def _text_times(df: pd.DataFrame, tc: str, where: str) -> tuple[pd.Series, pd.Series | None, str]:
    """Parse text timestamps; those with a UTC offset also as local wall-clock times (the offset cut off).

    Returns:
        ``(times, wall, offsets)``: ``times`` aware in UTC when the text has offsets, with ``wall`` their local
        wall-clock times and ``offsets`` naming the distinct offsets; else naive, None and "".
    """
    text = df[tc].astype(str).str.strip()
    aware = _with_offset(text)
    if aware.any() and not aware.all():
        i = int(np.argmax(~aware if aware[0] else aware))
        raise DataError(
            f"column {tc!r} mixes timestamps with and without a UTC offset",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="give every timestamp an offset (e.g. +01:00) or none",
        )
    times = _parsed(df, tc, where, text, utc=bool(aware.any()))
    if not aware.any():
        return times, None, ""
    wall = _parsed(df, tc, where, text.str.replace(OFFSET, "", regex=True), utc=False)
    seen = list(dict.fromkeys(text.str.extract(f"({OFFSET})", expand=False).str.strip()))
    return times, wall, "UTC offsets " + ", ".join(seen[:4]) + (", ..." if len(seen) > 4 else "")


def _parsed(df: pd.DataFrame, tc: str, where: str, text: pd.Series, utc: bool) -> pd.Series:
    # pandas 3 reads text as "str", not object; without format="mixed" it guesses the format from
    # the first value and turns a later "2020-01-19 12:00" after "2020-01-18" into NaT.
    dayfirst = _day_first(df, tc, where, text)
    try:
        times = pd.to_datetime(text, errors="coerce", format="mixed", utc=utc, dayfirst=dayfirst)
    except (ValueError, OverflowError):
        times = pd.Series([_one_time(v, utc) for v in text], index=text.index)
    if times.isna().any():
        i = int(np.argmax(times.isna().to_numpy()))
        raise DataError(
            f"cannot parse time value {_cell(df[tc].iloc[i])} in column {tc!r}",
            where=_first_line_where(df, times.isna(), where),
            fix="use ISO timestamps like 2015-01-31 or 2015-01-31 13:00",
        )
    return times


NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:$|[ T])")  # 31/12/2020, 12.31.20 13:00


def _day_first(df: pd.DataFrame, tc: str, where: str, text: pd.Series) -> bool:
    """Whether dates written in numbers only (``31/12/2020``, ``12/31/2020``, ``31.12.2020``) put the day first.

    One reading for the whole column: pandas alone reads each cell on its own, month first where it can, so
    ``01/08/2021`` became January 8 beside ``19/07/2021``'s July 19 (days invented, a wrong frequency, wrong
    forecast dates). Day first when some first number exceeds 12, month first when some second one does. When
    none does (a short file, monthly data on the 1st), the reading whose timestamps lie on a regular calendar with
    fewer gaps wins (``01/03 .. 12/03/2021`` are twelve days of March, not the 3rd of twelve months); a column
    where neither reading is the more regular, one written both ways, or one mixing these dates with other
    formats is refused in one line.
    """
    if not len(text) or not NUMERIC_DATE.match(text.iloc[0]):
        return False
    parts = text.str.extract(NUMERIC_DATE.pattern)
    if parts[0].isna().any():
        i = int(np.argmax(parts[0].isna().to_numpy()))
        raise DataError(
            f"column {tc!r} writes dates in two formats ({_cell(df[tc].iloc[0])} and {_cell(df[tc].iloc[i])})",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="write every date one way, best as ISO dates like 2021-07-19",
        )
    a, b = parts[0].astype(int), parts[1].astype(int)
    if (a > 12).any() and (b > 12).any():
        i, j = int(np.argmax((a > 12).to_numpy())), int(np.argmax((b > 12).to_numpy()))
        raise DataError(
            f"column {tc!r} writes dates both day first ({_cell(df[tc].iloc[i])}) and month first "
            f"({_cell(df[tc].iloc[j])})",
            where=f"{where}:{df[LINE].iloc[j]}",
            fix="write the dates one way, best as ISO dates like 2021-07-19",
        )
    if (a > 12).any() or (b > 12).any() or (a == b).all():  # a == b in every row: one date either way
        return bool((a > 12).any())
    score = {first: _calendar_fit(text, first) for first in (True, False)}
    if score[True] != score[False]:
        return score[True] < score[False]
    raise DataError(
        f"column {tc!r} holds dates like {_cell(df[tc].iloc[0])} that read as day/month and as month/day alike "
        "(no number above 12 decides, and neither reading is the more regular)",
        where=f"{where}:{df[LINE].iloc[0]}",
        fix="write ISO dates like 2021-07-19",
    )


def _calendar_fit(text: pd.Series, dayfirst: bool) -> tuple[bool, float]:
    """How badly the column's dates fit a calendar when read ``dayfirst`` or not: (no regular step, rows a regular
    calendar would add per row); lower is better. Repeated timestamps (several series) count once."""
    t = pd.to_datetime(text, errors="coerce", format="mixed", dayfirst=dayfirst)
    u = pd.DatetimeIndex(t.dropna().drop_duplicates().sort_values())
    if t.isna().any() or len(u) < 3:
        return True, math.inf
    found = frequencies.infer(u)
    return found.frequency is None, found.gap_rows / len(u)


def _with_offset(text: pd.Series) -> np.ndarray:
    """Which timestamps end in a UTC offset (``TZ_SUFFIX``). The regex runs only where one could be: a ``Z`` at the
    end, or a sign among the last 6 characters (``+01:00``, ``-0500``); most files have none, and a regex per row
    cost 33 ms per 100,000 rows."""
    tail = text.str.slice(-6)
    could = text.str.endswith("Z") | tail.str.contains("+", regex=False) | tail.str.contains("-", regex=False)
    aware = np.zeros(len(text), dtype=bool)
    maybe = could.to_numpy(dtype=bool)
    if maybe.any():
        aware[maybe] = text[maybe].str.contains(TZ_SUFFIX, regex=True).to_numpy(dtype=bool)
    return aware


def _one_time(value: str, utc: bool) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, utc=utc)
    except (ValueError, OverflowError):
        return pd.NaT


TIME_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}  # nanoseconds per unit


def _numeric_times(df: pd.DataFrame, tc: str, where: str, unit: str) -> pd.Series:
    """Numbers read as ``unit``: years (1990 -> 1990-01-01) or s/ms/us/ns since 1970-01-01 UTC."""
    values = pd.to_numeric(df[tc], errors="coerce")
    bad = values.isna().to_numpy().copy()
    if unit == "year":
        bad |= ~(values.between(1, 9999) & (values % 1 == 0)).to_numpy()
    else:
        limit = np.iinfo(np.int64).max / TIME_UNITS[unit]
        bad |= ~(values.abs() < limit).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        what = "a whole year" if unit == "year" else f"a number of {unit} since 1970 that pandas can represent"
        raise DataError(
            f"time value {_cell(df[tc].iloc[i])} in column {tc!r} is not {what}",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="correct the value, or set data.time_unit to the column's real unit",
        )
    if unit == "year":
        years = values.astype("int64")
        return pd.to_datetime(pd.DataFrame({"year": years, "month": 1, "day": 1}), errors="coerce")
    if pd.api.types.is_integer_dtype(values):  # exact: float64 would round epoch nanoseconds to 256 ns
        nanos = values.to_numpy(dtype="int64") * TIME_UNITS[unit]
    else:
        nanos = np.round(values.to_numpy(dtype="float64") * TIME_UNITS[unit]).astype("int64")
    return pd.Series(pd.to_datetime(nanos, unit="ns"), index=df.index)


def _numeric_time_error(col: pd.Series, tc: str, where: str) -> DataError:
    """Numbers in the time column are ambiguous (a year? seconds since 1970?): refuse, proposing the likely unit."""
    v = float(np.nanmedian(np.abs(col.to_numpy(dtype="float64"))))
    guesses = [
        (1000 <= v <= 2300 and bool((col % 1 == 0).all()), "year", "years"),
        (19_000_101 <= v <= 21_001_231, None, "dates written as YYYYMMDD"),
        (1e8 <= v < 1e11, "s", "seconds since 1970"),
        (1e11 <= v < 1e14, "ms", "milliseconds since 1970"),
        (1e14 <= v < 1e17, "us", "microseconds since 1970"),
        (1e17 <= v < 1e19, "ns", "nanoseconds since 1970"),
    ]
    unit, looks = next(((u, d) for ok, u, d in guesses if ok), (None, None))
    if unit:
        fix = f"set data.time_unit: {unit} (the values look like {looks}), or write ISO timestamps"
    elif looks:
        fix = f"the values look like {looks}: write them as text dates like 2020-01-31"
    else:
        fix = "set data.time_unit (year, s, ms, us or ns), or write ISO timestamps like 2015-01-31"
    return DataError(
        f"the time column {tc!r} holds numbers (e.g. {str(col.iloc[0])[:40]}), which could be years or seconds "
        "since 1970; rnnforecast does not guess",
        where=f"{where}: data.time_unit",
        fix=fix,
    )


def _in_ns_range(times: pd.Series, df: pd.DataFrame, tc: str, where: str) -> pd.Series:
    """Timestamps as datetime64[ns]: refuse the ones nanoseconds cannot hold (before 1677-09-22 or after 2262-04-11)."""
    out = (times < pd.Timestamp.min) | (times > pd.Timestamp.max)
    if out.any():
        i = int(np.argmax(out.to_numpy()))
        raise DataError(
            f"time value {times.iloc[i]} in column {tc!r} lies outside 1677-09-22 .. 2262-04-11, the range rnnforecast handles",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="correct the timestamp (a typo in the year?)",
        )
    return times.astype("datetime64[ns]")


def _label_series(df: pd.DataFrame, cfg: DataConfig, where: str) -> pd.DataFrame:
    """Add the SERIES column (the series_id as text, or "all"), then check the targets exist."""
    if cfg.series_id:
        _require_columns(df, [cfg.series_id], where, "data.series_id")
        df[SERIES] = df[cfg.series_id].astype(str)
    else:
        df[SERIES] = "all"
    _require_columns(df, cfg.target, where, "data.target")
    return df


def _order_by_time(df: pd.DataFrame, cfg: DataConfig, where: str) -> pd.DataFrame:
    """Group rows by series (stable); sort by time only when asked, else refuse disorder and duplicates."""
    by = [SERIES, cfg.time_column] if cfg.sort else SERIES
    df = df.sort_values(by, kind="stable")
    codes = series_codes(df)[0]  # sorted: each series' rows contiguous
    t = df[cfg.time_column].to_numpy()
    if (t[1:] > t[:-1])[codes[1:] == codes[:-1]].all():  # every series in order, no duplicate: checked at once
        return df
    parts = [
        _check_time_order(g, cfg.time_column, where, sid, cfg.series_id) for sid, g in df.groupby(SERIES, sort=False)
    ]
    return pd.concat(parts)


def _offset(frequency: str, where: str) -> pd.DateOffset:
    try:
        offset = pd.tseries.frequencies.to_offset(frequency)
    except Exception:  # ValueError for most, others for odd strings; none of them is the user's bug to read
        offset = None
    if offset is None or getattr(offset, "n", 1) <= 0:
        raise ConfigError(
            f"unknown or non-positive frequency {frequency!r}",
            where=f"{where}: data.frequency",
            fix="use a positive pandas offset alias such as h, D, B, W, MS, 15min",
        )
    return offset


def _to_numeric(df: pd.DataFrame, columns: list[str], where: str) -> pd.DataFrame:
    for col in columns:
        df[col] = _numeric(df, col, where)
    return df


def _encode_categories(
    df: pd.DataFrame, columns: list[str], known: dict[str, list[str]] | None, where: str
) -> tuple[pd.DataFrame, dict[str, list[str]], list[str]]:
    """One-hot ``col=value`` columns; ``known`` (a trained run's categories) fixes the set of values."""
    categories: dict[str, list[str]] = {}
    added: list[str] = []
    for col in columns:
        _require_columns(df, [col], where, "data.categorical")
        filled = df[col].astype("string").fillna("missing")
        cats = known[col] if known and col in known else sorted(filled.unique())
        categories[col] = list(cats)
        for c in cats:
            name = f"{col}={c}"
            _check_new_column(df, name, f"data.categorical ({col})", where)
            df[name] = (filled == c).astype("float64")
            added.append(name)
    return df, categories, added


def _time_feature_names(cfg: DataConfig, df: pd.DataFrame, tc: str, frequency: str) -> list[str]:
    """``data.time_features``, ``auto`` decided by the step and the rows' span (:func:`frequencies.time_features`,
    init's rule); none when ``data.features`` lists the inputs (the user chose them)."""
    if cfg.time_features != "auto":
        return list(cfg.time_features)
    if cfg.features is not None or df.empty:
        return []
    return frequencies.time_features(frequencies.step_seconds(frequency), df[tc].max() - df[tc].min())


def _add_time_features(df: pd.DataFrame, names: list[str], tc: str, where: str = "") -> tuple[pd.DataFrame, list[str]]:
    """A sin/cos pair per calendar feature, so the last hour of a day sits next to the first."""
    added: list[str] = []
    for name in names:
        fn, period = PERIODS[name]
        phase = 2 * np.pi * np.asarray(fn(df[tc].dt), dtype="float64") / period
        for added_name in (f"{name}_sin", f"{name}_cos"):
            _check_new_column(df, added_name, f"data.time_features ({name})", where, f"or leave {name} out of it")
        df[f"{name}_sin"] = np.sin(phase)
        df[f"{name}_cos"] = np.cos(phase)
        added += [f"{name}_sin", f"{name}_cos"]
    return df, added


def _check_new_column(df: pd.DataFrame, name: str, key: str, where: str, other: str = "") -> None:
    """A column the tool adds must not replace one of the user's; ``other``: another fix, after renaming."""
    if name in df.columns:
        raise DataError(
            f"{key} adds a column {name!r}, but the file already has a column of that name",
            where=f"{where}: column {name}" if where else f"column {name}",
            fix=f"rename that column in the file{', ' + other if other else ''}",
        )


def _check_time_order(g: pd.DataFrame, tc: str, where: str, sid: str, series_col: str | None) -> pd.DataFrame:
    t = g[tc].to_numpy()
    label = f" of series {sid!r}" if series_col else ""
    dup = np.nonzero(t[1:] == t[:-1])[0]
    back = np.nonzero(t[1:] < t[:-1])[0]
    if back.size and (not dup.size or back[0] < dup[0]):
        i = back[0] + 1
        raise DataError(
            f"timestamps{label} are out of order: {pd.Timestamp(t[i])} comes after {pd.Timestamp(t[i - 1])}",
            where=f"{where}:{g[LINE].iloc[i]}",
            fix="sort the file by time, or set data.sort: true",
        )
    if dup.size:
        i = dup[0] + 1
        raise DataError(
            f"duplicate timestamp {pd.Timestamp(t[i])}{label}",
            where=f"{where}:{g[LINE].iloc[i]}",
            fix="remove or aggregate duplicate rows"
            + ("" if series_col else "; for several series in one file set data.series_id"),
        )
    return g


def _infer_frequency(df: pd.DataFrame, tc: str, where: str, zone: str = "") -> str:
    """The first series' step by :func:`frequencies.infer` (the one inference ``init`` uses too)."""
    g = df[df[SERIES] == df[SERIES].iloc[0]]
    t = pd.DatetimeIndex(g[tc])
    if len(t) < 3:
        raise DataError(
            "too few rows to infer the frequency",
            where=f"{where}: data.frequency",
            fix="set data.frequency (e.g. D or h)",
        )
    found = frequencies.infer(t)
    if found.frequency is None:
        raise DataError(
            f"cannot infer the frequency: timestamps are irregular (the most common step, "
            f"{pd.Timedelta(seconds=found.common_seconds)}, covers {found.common_share:.0%} of rows){_zone_words(zone)}",
            where=f"{where}: data.frequency",
            fix="set data.frequency (e.g. D, h, B, W-SUN, MS); for trading days also set data.calendar: steps"
            + _zone_fix(zone),
        )
    return found.frequency


def _resolve_features(cfg: DataConfig, df: pd.DataFrame, where: str) -> list[str]:
    internal = {cfg.time_column, SERIES, LINE, cfg.series_id, *cfg.categorical, *cfg.filter}
    if cfg.features is None:
        cols = [
            c
            for c in df.columns
            if c not in internal and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        ]
        return list(dict.fromkeys(cols + [t for t in cfg.target if t not in cols]))
    for col in cfg.features:
        if col not in df.columns:
            raise _missing_column(col, df, where, "data.features")
    return list(cfg.features)


def _numeric(df: pd.DataFrame, col: str, where: str) -> pd.Series:
    s = df[col]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    try:
        conv = pd.to_numeric(s, errors="coerce")
    except OverflowError:  # a Python int past float64 (a JSON number of hundreds of digits): that cell is bad
        conv = pd.to_numeric(s.map(lambda v: None if isinstance(v, int) and not _fits_float(v) else v), errors="coerce")
    bad = (conv.isna() & s.notna()) | s.map(lambda v: isinstance(v, (bool, np.bool_)))  # true/false: not 1/0
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        v = s.iloc[i]
        big = isinstance(v, int) and not isinstance(v, bool) and not _fits_float(v)
        raise DataError(
            f"column {col!r} holds a number beyond the float range ({len(str(abs(v)))} digits)"
            if big
            else f"column {col!r} is not numeric: value {_cell(v)}",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="correct the value"
            if big
            else f"clean the column, or list text columns under data.categorical instead of using {col!r} as a number",
        )
    return conv.astype("float64")


def _fits_float(v: int) -> bool:
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _check_values(df: pd.DataFrame, col: str, where: str) -> None:
    v = df[col].to_numpy(dtype="float64")
    if np.isnan(v).all():
        raise DataError(
            f"column {col!r} has no values (all missing)",
            where=f"{where}: column {col}",
            fix="remove it from data.features/target or fill it",
        )
    inf = np.isinf(v)
    if inf.any():
        i = int(np.argmax(inf))
        line = df[LINE].iloc[i]
        raise DataError(
            f"column {col!r} holds an infinite value",
            where=f"{where}:{int(line) if line == line else '?'}: column {col}",
            fix="replace inf with a number or leave the cell empty to treat it as missing",
        )
    huge = np.abs(v) > MAX_ABS
    if huge.any():
        i = int(np.argmax(huge))
        line = df[LINE].iloc[i]
        raise DataError(
            f"column {col!r} holds {v[i]:.3g}; the model computes in float32 and its loss squares values, "
            f"so magnitudes above {MAX_ABS:.0e} overflow",
            where=f"{where}:{int(line) if line == line else '?'}: column {col}",
            fix=f"express {col!r} in larger units (divide it by a power of ten) before training",
        )


def _regularise(
    df: pd.DataFrame, tc: str, offset, where: str, frequency: str, zone: str = ""
) -> tuple[pd.DataFrame, int]:
    """One row per step of ``offset`` from each series' first to last time; new rows are all missing."""
    if _on_grid(df, tc, offset):  # the common case, checked for every series at once: the same frame, reordered
        out = df.reset_index(drop=True)
        return out[[tc, *(c for c in out.columns if c != tc)]], 0
    parts, gaps = [], 0
    for sid, g in df.groupby(SERIES, sort=False):
        _check_grid_size(g, tc, offset, where, frequency)  # before anything is allocated
        full = pd.date_range(g[tc].iloc[0], g[tc].iloc[-1], freq=offset)
        if len(full) == 0 or not pd.DatetimeIndex(g[tc]).isin(full).all():
            bad = ~pd.DatetimeIndex(g[tc]).isin(full)
            i = int(np.argmax(bad))
            raise DataError(
                f"timestamp {g[tc].iloc[i]} is not on the {frequency!r} grid{_zone_words(zone)}",
                where=f"{where}:{g[LINE].iloc[i]}",
                fix="set data.frequency to the data's real step, or data.calendar: steps to treat each row as one step"
                + _zone_fix(zone),
            )
        r = g.set_index(tc).reindex(full)
        r.index.name = tc
        r[SERIES] = sid
        gaps += len(full) - len(g)
        parts.append(r.reset_index())
    return pd.concat(parts, ignore_index=True), gaps


def _on_grid(df: pd.DataFrame, tc: str, offset) -> bool:
    """Whether every series already has one row per step of a fixed-length ``offset`` (a Tick such as h or 15min,
    or days) from its first time to its last, its rows contiguous: then ``_regularise`` adds no row and each
    series' grid is its own times."""
    if isinstance(offset, pd.offsets.Tick):
        step = pd.Timedelta(offset).value
    elif isinstance(offset, pd.offsets.Day):  # naive times (_parse_time): a day is 24 hours
        step = offset.n * 86_400 * 10**9
    else:
        return False
    if len(df) > MAX_ROWS or getattr(df[tc].dt, "tz", None) is not None:
        return False
    codes, _, contiguous = series_codes(df)
    if not contiguous:
        return False
    return bool((np.diff(ns(df[tc]))[np.diff(codes) == 0] == step).all())


def _check_grid_size(g: pd.DataFrame, tc: str, offset, where: str, frequency: str) -> None:
    rows = frequencies.grid_rows(g[tc].iloc[0], g[tc].iloc[-1], offset)
    if rows > 20 * len(g) or rows > MAX_ROWS:
        shown = f"{rows:,.0f}" if rows != float("inf") else "unboundedly many"
        gap = np.diff(ns(g[tc]))
        i = int(np.argmax(gap)) + 1 if len(gap) else 0
        raise DataError(
            f"frequency {frequency!r} would turn {len(g)} rows into {shown} mostly empty ones "
            f"(the largest gap starts before line {g[LINE].iloc[i]})",
            where=f"{where}: data.frequency",
            fix="check the timestamps for a typo, set data.frequency to the data's real step, or data.calendar: steps",
        )


def _gap_warning(gap_rows: int, total: int, frequency: str, where: str) -> list[str]:
    share = gap_rows / total if total else 0.0
    if share <= GAP_WARN_SHARE:
        return []
    return [
        f"warning: {where}: {gap_rows} of {total} rows ({share:.0%}) were invented to fill gaps on the "
        f"{frequency!r} grid and interpolated. Fix: for data with natural gaps (trading days) set "
        "data.calendar: steps; otherwise check data.frequency."
    ]


def _fill_missing(df: pd.DataFrame, how: str, cols: list[str], tc: str, where: str) -> pd.DataFrame:
    if how == "error":
        for c in cols:
            na = df[c].isna()
            if na.any():
                i = int(np.argmax(na.to_numpy()))
                line = df[LINE].iloc[i]
                at = f"line {int(line)}" if line == line else f"gap row at {df[tc].iloc[i]}"
                raise DataError(
                    f"column {c!r} has {int(na.sum())} missing values (first: {at})",
                    where=f"{where}: column {c}",
                    fix="set data.missing to interpolate, ffill or drop",
                )
        return df
    if how == "drop":
        return df.dropna(subset=cols).reset_index(drop=True)
    if not df[cols].isna().to_numpy().any():  # nothing to fill (the common case): no copy per series
        return df.reset_index(drop=True)
    out = []
    for _, g in df.groupby(SERIES, sort=False):
        g = g.copy()
        if how == "interpolate":
            g[cols] = g[cols].interpolate(method="linear", limit_direction="both")
        else:
            g[cols] = g[cols].ffill().bfill()
        out.append(g)
    return pd.concat(out, ignore_index=True)


def ns(times) -> np.ndarray:
    """Timestamps as int64 nanoseconds, whatever resolution pandas chose."""
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def season_length(frequency: str, configured: int | None) -> int:
    """Season for the seasonal-naive baseline: configured, or from the frequency (:func:`frequencies.season`)."""
    return configured or frequencies.season(frequency).length

"""Load a CSV or Parquet file into a clean, regular, checked frame as the config describes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DataConfig
from .errors import DataError, did_you_mean

SERIES = "__series__"  # internal column: the series id (one value when there is no series_id)
LINE = "__line__"  # internal column: the row's line in a CSV (its row number in Parquet), for error messages
PARQUET_SUFFIXES = (".parquet", ".pq")
DEFAULT_SEASON = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "ME": 12, "MS": 12, "Q": 4, "QE": 4, "QS": 4, "min": 60}
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
    path: Path
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

    def unit(self, column: str) -> str:
        return self.units.get(column, "data units")

    @property
    def columns(self) -> list[str]:
        """Model columns: features first, then targets that are not features."""
        return self.features + [t for t in self.targets if t not in self.features]


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV or Parquet with errors that name the file and say how to fix it."""
    where = str(path)
    if not path.exists():
        raise DataError("data file not found", where=where, fix="check data.path (relative to the config's folder)")
    if path.is_dir():
        raise DataError("is a directory, not a data file", where=where, fix="point data.path at a CSV or Parquet file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, where)
    _check_csv_head(path.read_bytes()[:4096], where)
    sep = "\t" if "".join(path.suffixes[-2:]).lower().endswith(".tsv") else ","
    df = _read_csv(path, sep, where)
    if df.empty:
        raise DataError("the file has a header but no rows", where=where, fix="add data rows")
    return df


def _read_parquet(path: Path, where: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many kinds
        raise DataError(
            f"cannot read Parquet ({type(e).__name__}: {e})", where=where, fix="check the file is valid Parquet"
        ) from None


def _not_utf8(where: str, offset: int) -> DataError:
    return DataError(f"not UTF-8 (invalid byte at offset {offset})", where=where, fix="re-save the file as UTF-8")


def _empty_file(where: str) -> DataError:
    return DataError("the file is empty", where=where, fix="point data.path at a CSV with a header and rows")


def _check_csv_head(head: bytes, where: str) -> None:
    """Refuse what is plainly not CSV text, from the file's first bytes."""
    if not head.strip():
        raise _empty_file(where)
    if b"\x00" in head or head.startswith(b"PAR1"):
        raise DataError("looks binary, not CSV text", where=where, fix="use a CSV or a .parquet file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # an error in the last 4 bytes may be a character cut in half by [:4096]
            raise _not_utf8(where, e.start) from None


def _read_csv(path: Path, sep: str, where: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(where, e.start) from None
    except pd.errors.EmptyDataError:
        raise _empty_file(where) from None
    except pd.errors.ParserError as e:
        raise DataError(
            f"cannot parse CSV: {str(e).strip()}", where=where, fix="check the separator and quoting"
        ) from None


def _missing_column(col: str, df: pd.DataFrame, where: str, key: str) -> DataError:
    cols = [str(c) for c in df.columns if c not in (LINE, SERIES)]
    return DataError(
        f"column {col!r} not found{did_you_mean(col, cols)}",
        where=f"{where}: {key}",
        fix=f"use one of the file's columns: {', '.join(cols[:12])}{' ...' if len(cols) > 12 else ''}",
    )


def _require_columns(df: pd.DataFrame, columns: list[str], where: str, key: str) -> None:
    for col in columns:
        if col not in df.columns:
            raise _missing_column(col, df, where, key)


def _csv_line(row: int) -> int:
    return row + 2  # header is line 1


def load_frame(cfg: DataConfig, path: Path, categories: dict[str, list[str]] | None = None) -> Frame:
    """Read, filter, parse time, check order, regularise, fill missing values, encode.

    Args:
        categories: the one-hot categories of a trained run; values not in it encode as all zeros.
    """
    where, tc = str(path), cfg.time_column
    df = _read_numbered(path)
    df = _apply_filter(df, cfg.filter, path, where)
    df = _parse_time(df, tc, where)
    df = _label_series(df, cfg, where)
    df = _order_by_time(df, cfg, where)
    frequency = cfg.frequency or _infer_frequency(df, tc, where)
    offset = _offset(frequency, where)

    numeric_source = {c: str(df[c].dtype) for c in df.columns if c != LINE}
    features = _resolve_features(cfg, df, where)
    df = _to_numeric(df, list(dict.fromkeys(features + cfg.target)), where)
    values = list(dict.fromkeys(cfg.target + features))  # every column the model reads, targets first
    missing_before = {c: int(df[c].isna().sum()) for c in values}

    gap_rows = 0
    if cfg.calendar == "regular":
        df, gap_rows = _regularise(df, tc, offset, where, frequency)
    for col in values:
        _check_values(df, col, where)
    df = _fill_missing(df, cfg.missing, values, tc, where)

    df, categories, one_hot = _encode_categories(df, cfg.categorical, categories, where)
    df, cyclic = _add_time_features(df, cfg.time_features, tc)
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
        series=list(dict.fromkeys(df[SERIES])),
        numeric_source=numeric_source,
        units=dict(cfg.units),
    )


def _read_numbered(path: Path) -> pd.DataFrame:
    """The table with text column names and a LINE column that error messages point at."""
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    rows = np.arange(len(df))
    df[LINE] = rows if path.suffix.lower() in PARQUET_SUFFIXES else _csv_line(rows)
    return df


def _apply_filter(df: pd.DataFrame, filters: dict, path: Path, where: str) -> pd.DataFrame:
    """Keep the rows where each filter column equals the value (or one of the listed values)."""
    for col, wanted in filters.items():
        if col not in df.columns:
            raise _missing_column(col, df, where, f"data.filter.{col}")
        values = wanted if isinstance(wanted, list) else [wanted]
        # A YAML 7 matches a CSV "7" and a Parquet 7 alike.
        keep = df[col].isin(values) | df[col].astype(str).isin([str(v) for v in values])
        df = df[keep]
        if df.empty:
            seen = sorted(map(str, read_table(path)[col].dropna().unique()))[:10]
            raise DataError(
                f"filter {col}={wanted!r} keeps no rows",
                where=f"{where}: data.filter.{col}",
                fix=f"values present: {', '.join(seen)}",
            )
    return df


def _parse_time(df: pd.DataFrame, tc: str, where: str) -> pd.DataFrame:
    """Turn the time column into naive timestamps; the first value that is not one is an error."""
    if tc not in df.columns:
        raise _missing_column(tc, df, where, "data.time_column")
    # pandas 3 reads text as "str", not object; without format="mixed" it guesses the format from
    # the first value and turns a later "2020-01-19 12:00" after "2020-01-18" into NaT.
    text_like = df[tc].dtype == object or pd.api.types.is_string_dtype(df[tc])
    times = pd.to_datetime(df[tc], errors="coerce", format="mixed" if text_like else None)
    bad = times.isna() & df[tc].notna() | df[tc].isna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        value = df[tc].iloc[i]
        what = (
            f"empty time value in column {tc!r}"
            if pd.isna(value)
            else f"cannot parse time value {value!r} in column {tc!r}"
        )
        raise DataError(
            what,
            where=f"{where}:{df[LINE].iloc[i]}",
            fix="use ISO timestamps like 2015-01-31 or 2015-01-31 13:00",
        )
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert(None)
    df[tc] = times
    return df


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
    parts = [
        _check_time_order(g, cfg.time_column, where, sid, cfg.series_id) for sid, g in df.groupby(SERIES, sort=False)
    ]
    return pd.concat(parts)


def _offset(frequency: str, where: str) -> pd.DateOffset:
    try:
        return pd.tseries.frequencies.to_offset(frequency)
    except ValueError:
        raise DataError(
            f"unknown frequency {frequency!r}",
            where=f"{where}: data.frequency",
            fix="use a pandas offset alias such as h, D, B, W, MS",
        ) from None


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
            df[name] = (filled == c).astype("float64")
            added.append(name)
    return df, categories, added


def _add_time_features(df: pd.DataFrame, names: list[str], tc: str) -> tuple[pd.DataFrame, list[str]]:
    """A sin/cos pair per calendar feature, so the last hour of a day sits next to the first."""
    added: list[str] = []
    for name in names:
        fn, period = PERIODS[name]
        phase = 2 * np.pi * np.asarray(fn(df[tc].dt), dtype="float64") / period
        df[f"{name}_sin"] = np.sin(phase)
        df[f"{name}_cos"] = np.cos(phase)
        added += [f"{name}_sin", f"{name}_cos"]
    return df, added


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


def _infer_frequency(df: pd.DataFrame, tc: str, where: str) -> str:
    g = df[df[SERIES] == df[SERIES].iloc[0]]
    t = pd.DatetimeIndex(g[tc])
    if len(t) < 3:
        raise DataError(
            "too few rows to infer the frequency",
            where=f"{where}: data.frequency",
            fix="set data.frequency (e.g. D or h)",
        )
    freq = pd.infer_freq(t[: min(len(t), 2000)])
    if freq is None:
        # Tolerate gaps: use the most common step if it covers most rows.
        steps = pd.Series(np.diff(ns(t)))
        common = int(steps.mode().iloc[0])
        share = float((steps == common).mean())
        if common > 0 and (steps % common == 0).all():  # a regular grid with gaps
            freq = _alias(common)
        else:
            raise DataError(
                f"cannot infer the frequency: timestamps are irregular (the most common step, {pd.Timedelta(common, unit='ns')}, covers {share:.0%} of rows)",
                where=f"{where}: data.frequency",
                fix="set data.frequency (e.g. D, h, B); for trading days also set data.calendar: steps",
            )
    return freq


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
    conv = pd.to_numeric(s, errors="coerce")
    bad = conv.isna() & s.notna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"column {col!r} is not numeric: value {s.iloc[i]!r}",
            where=f"{where}:{df[LINE].iloc[i]}",
            fix=f"clean the column, or list text columns under data.categorical instead of using {col!r} as a number",
        )
    return conv.astype("float64")


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


def _regularise(df: pd.DataFrame, tc: str, offset, where: str, frequency: str) -> tuple[pd.DataFrame, int]:
    parts, gaps = [], 0
    for sid, g in df.groupby(SERIES, sort=False):
        full = pd.date_range(g[tc].iloc[0], g[tc].iloc[-1], freq=offset)
        if len(full) == 0 or not pd.DatetimeIndex(g[tc]).isin(full).all():
            bad = ~pd.DatetimeIndex(g[tc]).isin(full)
            i = int(np.argmax(bad))
            raise DataError(
                f"timestamp {g[tc].iloc[i]} is not on the {frequency!r} grid",
                where=f"{where}:{g[LINE].iloc[i]}",
                fix="set data.frequency to the data's real step, or data.calendar: steps to treat each row as one step",
            )
        if len(full) > 20 * len(g):
            raise DataError(
                f"frequency {frequency!r} would turn {len(g)} rows into {len(full)} mostly empty ones",
                where=f"{where}: data.frequency",
                fix="set data.frequency to the data's real step, or data.calendar: steps",
            )
        r = g.set_index(tc).reindex(full)
        r.index.name = tc
        r[SERIES] = sid
        gaps += len(full) - len(g)
        parts.append(r.reset_index())
    return pd.concat(parts, ignore_index=True), gaps


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
    out = []
    for _, g in df.groupby(SERIES, sort=False):
        g = g.copy()
        if how == "interpolate":
            g[cols] = g[cols].interpolate(method="linear", limit_direction="both")
        else:
            g[cols] = g[cols].ffill().bfill()
        out.append(g)
    return pd.concat(out, ignore_index=True)


def _alias(step_ns: int) -> str:
    for unit, size in (("D", 86_400), ("h", 3600), ("min", 60), ("s", 1)):
        n, rest = divmod(step_ns, size * 10**9)
        if n and not rest:
            return unit if n == 1 else f"{n}{unit}"
    return f"{step_ns}ns"


def ns(times) -> np.ndarray:
    """Timestamps as int64 nanoseconds, whatever resolution pandas chose."""
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def season_length(frequency: str, configured: int | None) -> int:
    """Season for the seasonal-naive baseline: configured, or 24 hourly / 7 daily / 5 business days."""
    if configured:
        return configured
    base = "".join(ch for ch in frequency if not ch.isdigit()) or frequency
    return DEFAULT_SEASON.get(base, DEFAULT_SEASON.get(base.upper(), 1))

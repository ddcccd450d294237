"""`rnnforecast init`: look at a data file and write a commented starter config for it.

Detects the time column, the step (trading days included), numeric, categorical and id-like
columns, missing values and trends; suggests the window from the step and the file's length;
writes only what differs from the defaults, checks it with ``validate`` before writing it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import frequencies
from .config import from_dict, season_segment
from .data import PARQUET_SUFFIXES, parse_times, read_table
from .errors import ConfigError, DataError, RnnForecastError, RunError, did_you_mean
from .metrics import SHARE_WORDS, naive_maes, residual_choice

DATA_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", *PARQUET_SUFFIXES)
TIME_NAMES = ("date", "time", "timestamp", "datetime", "ds", "day", "period", "month", "week")
YEAR_NAMES = ("year", "yr", "years")  # a numeric column of whole years under one of these names is the time
TIME_UNITS = ("year", "s", "ms", "us", "ns")  # data.time_unit: what the numbers of a numeric time column count
TARGET_NAMES = ("y", "target", "value", "close", "adj_close", "sales", "demand", "load", "price", "count")
TARGET_PREFIXES = ("target", "close", "sales", "demand", "load", "price", "temp", "value")
MAX_CATEGORIES = 50  # a text column with more distinct values is an id or free text, not a category
TREND_SHARE = 0.2  # the share of test values outside the training range above which a column is differenced
DAY = 86_400


def refuse_data_file(path: str) -> None:
    """A data file passed where a config is expected: answer with the `init` command that writes one."""
    name = Path(path).name.lower()
    if name.endswith(DATA_SUFFIXES):
        raise ConfigError(
            "this is a data file, not a config",
            where=path,
            fix=f"write a config for it with: rnnforecast init {shlex.quote(path)} (then rnnforecast train config.yaml)",
        )


@dataclass
class Step:
    """The time step of the data as init understands it."""

    seconds: float  # most common gap between rows
    label: str  # words for people: "daily", "trading days", "hourly"
    frequency: str  # what to write as data.frequency (the loader would infer the same)
    calendar: str  # regular | steps
    gap_rows: int  # rows a regular calendar would add


@dataclass
class Detected:
    """Everything init found in the file; ``yaml_text`` renders it."""

    path: Path
    rows: int
    time_column: str
    first: pd.Timestamp
    last: pd.Timestamp
    step: Step
    numeric: list[str]
    categorical: list[str]
    ignored: dict[str, str]  # column -> why it is not used
    missing: dict[str, int]  # column -> missing cells (only columns with some)
    target: str
    target_reason: str
    input_length: int
    horizon: int
    time_features: list[str]
    horizon_given: bool = False  # --horizon (else the step's suggestion, perhaps shortened)
    transform: dict[str, str] = field(default_factory=dict)
    trend: dict[str, float] = field(default_factory=dict)  # column -> share of test values outside train range
    sort: bool = False
    series_id: str | None = None
    time_unit: str | None = None  # data.time_unit for a numeric time column (years, seconds since 1970)
    zone: str = ""  # what the zone rule did with UTC offsets (data.zone_rule); "" when there were none
    baselines: dict[str, float] = field(default_factory=dict)  # baseline -> MAE on the first 70% of rows


@dataclass(frozen=True)
class Recipe:
    """The model keys init writes: what ``model.residual: auto`` and ``segment_length: auto`` decide
    (:func:`metrics.residual_choice`, :func:`config.season_segment`), measured on the file's first 70% of rows
    and written out with the reason."""

    residual: str  # seasonal | none
    residual_why: str
    segment_length: int | None
    segment_why: str

    @classmethod
    def of(cls, d: Detected) -> Recipe:
        season = frequencies.season(d.step.frequency).length
        p, s = d.baselines.get("persistence"), d.baselines.get("seasonal_naive")
        residual = residual_choice(d.baselines)  # the rule of model.residual: auto, on the first 70% of rows
        if s is None or p is None:
            why = "no season to start from: the network learns from scratch"
        else:
            verdict = "at most" if residual == "seasonal" else "more than"
            why = f"seasonal naive's MAE {_g(s)} on the first 70% of rows is {verdict} {SHARE_WORDS} {_g(p)}"
        L = d.input_length
        segment = season_segment(L, season)
        if segment:
            return cls(residual, why, segment, f"the cell steps over {L // segment} segments of one season (SegRNN)")
        return cls(residual, why, None, "")


def _g(x: float) -> str:
    return f"{x:.4g}"


# --------------------------------------------------------------------------- detection


def detect(
    path: Path,
    target: str | None = None,
    horizon: int | None = None,
    time_column: str | None = None,
    time_unit: str | None = None,
):
    """Read ``path`` and work out a starter config's contents; errors name the column and the fix."""
    df = _read(path)
    where = str(path)
    tc, time_unit = _time_column(df, time_column, where, time_unit)
    times, zone = parse_times(df[tc], tc, where, time_unit, parquet=path.suffix.lower() in PARQUET_SUFFIXES)
    categorical, ignored = _text_columns(df, tc)
    series_id = _series_column(df, tc, times, categorical + _id_columns(df, ignored), where)
    if series_id in categorical:
        categorical.remove(series_id)
    ignored.pop(series_id, None)  # an id column of many series: too many values for a category, not free text
    numeric = _numeric_columns(df, (tc, series_id), where)
    constant = [c for c in numeric if df[c].nunique(dropna=True) <= 1 and c != target]
    if len(constant) < len(numeric):  # a column that never changes says nothing a model can learn from
        ignored.update({c: "one value only" for c in constant})
        numeric = [c for c in numeric if c not in constant]
    target, reason = _target(numeric, target, df, where)
    first = times[df[series_id] == df[series_id].iloc[0]] if series_id else times
    ordered = first.sort_values()
    step = _step(pd.DatetimeIndex(ordered), where)
    n = len(ordered) + step.gap_rows
    horizon_given = horizon is not None
    input_length, horizon = _window(step, n, horizon, where)
    trend, transform = _trends(df, ordered.index, numeric)
    missing = {c: int(df[c].isna().sum()) for c in df.columns if c != tc and df[c].isna().any()}
    groups = [g.sort_values(tc)[target] for _, g in df.assign(**{tc: times}).groupby(series_id)] if series_id else None
    values = groups or [df.loc[ordered.index, target]]
    baselines = _baseline_maes(values, horizon, frequencies.season(step.frequency).length)
    return Detected(
        path=path,
        rows=len(df),
        time_column=tc,
        first=ordered.iloc[0],
        last=ordered.iloc[-1],
        step=step,
        numeric=numeric,
        categorical=categorical,
        ignored=ignored,
        missing=missing,
        target=target,
        target_reason=reason,
        input_length=input_length,
        horizon=horizon,
        horizon_given=horizon_given,
        time_features=frequencies.time_features(step.seconds, ordered.iloc[-1] - ordered.iloc[0]),
        transform=transform,
        trend=trend,
        sort=not first.is_monotonic_increasing,
        series_id=series_id,
        time_unit=time_unit,
        zone=zone,
        baselines=baselines,
    )


def _baseline_maes(series: list[pd.Series], horizon: int, season: int, share: float = 0.7) -> dict[str, float]:
    """:func:`metrics.naive_maes` on the first ``share`` of each series' rows (the training split at the default
    fractions)."""
    values = [pd.to_numeric(s, errors="coerce").to_numpy(dtype=float) for s in series]
    return naive_maes([y[: int(round(share * len(y)))] for y in values], horizon, season)


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s)


def _looks_like_time(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    if not _is_text(s):
        return False  # plain numbers (years, epoch seconds) are not taken for time without --time-column
    sample = s.dropna().astype(str).head(200)
    if sample.empty or sample.str.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*").all() or _comma_numbers(sample):
        return False  # numbers, also with thousands separators or decimal commas ("60,20" parses as a date)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)  # mixed offsets (DST) parse too
    return bool(parsed.notna().mean() >= 0.95)


def _require_column(option: str, given: str, df: pd.DataFrame, where: str, allowed: list[str], what: str) -> None:
    """``--target`` / ``--time-column`` must name a column of the file."""
    if given not in df.columns:
        raise DataError(
            f"{option} {given!r} is not a column{did_you_mean(given, df.columns)}",
            where=where,
            fix=f"use one of {what}: {', '.join(map(str, allowed))}",
        )


def _first_text_cell(s: pd.Series) -> tuple[int, str] | None:
    """The file line (header = 1) and text of the first cell of ``s`` that is not a number, or None."""
    conv = pd.to_numeric(s, errors="coerce")
    bad = (conv.isna() & s.notna()).to_numpy()
    if not bad.any():
        return None
    i = int(bad.argmax())
    return i + 2, str(s.iloc[i])[:40]


def numeric_share(s: pd.Series) -> float:
    """The share of the non-empty cells of ``s`` that read as numbers."""
    present = s.dropna()
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def _year_column(df: pd.DataFrame) -> str | None:
    """A numeric column named like a year (YEAR, yr) holding distinct whole years 1000..9999, or None. Years past
    2262 are found too: reading them then names the first one outside the range pandas holds, with its line."""
    for c in df.columns:
        s = df[c]
        if c.strip().lower() in YEAR_NAMES and _is_number(s) and s.notna().all() and s.is_unique:
            if bool(((s % 1 == 0) & s.between(1000, 9999)).all()):
                return c
    return None


def _read(path: Path) -> pd.DataFrame:
    """The data file's rows, column names as text."""
    if not path.exists():  # read_table's fix speaks of data.path, which init has not written yet
        raise DataError("data file not found", where=str(path), fix="check the path of the CSV or Parquet file")
    if path.is_dir():
        raise DataError("is a directory, not a data file", where=str(path), fix="give init a CSV or Parquet file")
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    return df


def _numeric_columns(df: pd.DataFrame, exclude: tuple, where: str) -> list[str]:
    """The columns that may be forecast: numeric, not the time or series-id column; at least one."""
    numeric = [c for c in df.columns if c not in exclude and _is_number(df[c])]
    if not numeric:
        for c in (c for c in df.columns if c not in exclude and _is_text(df[c])):
            commas = _comma_numbers(df[c])
            if commas:
                mark, sample, option = commas
                raise DataError(
                    f"no numeric column to forecast: column {c!r} writes numbers with {mark} (e.g. {sample!r})",
                    where=where,
                    fix=f"save it without them, e.g. in Python pd.read_csv(path, {option}).to_csv(new_path, index=False)",
                )
        raise DataError(
            f"no numeric column to forecast (columns: {', '.join(df.columns)})",
            where=where,
            fix="add a numeric column, or clean the one you want to forecast so every value is a number",
        )
    return numeric


THOUSANDS = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,234.5
DECIMAL_COMMA = r"[-+]?\d+,\d+"  # 12,5


def _comma_numbers(s: pd.Series) -> tuple[str, str, str] | None:
    """``(what, an example, the pandas option that reads it)`` when most of a text column's values are numbers written
    with thousands separators (``1,234.5``) or decimal commas (``12,5``), else None."""
    v = s.dropna().astype(str).str.strip()
    if not len(v) or not v.str.contains(",", regex=False).any():
        return None
    for mark, pattern, plain, option in (  # plain: a number written the same either way (10 beside 8,432)
        ("thousands separators", THOUSANDS, r"[-+]?\d+(?:\.\d+)?", "thousands=','"),
        ("decimal commas", DECIMAL_COMMA, r"[-+]?\d+", "decimal=','"),
    ):
        hits = v.str.fullmatch(pattern)
        if hits.any() and (hits | v.str.fullmatch(plain)).mean() > 0.9:
            return mark, v[hits].iloc[0], option
    return None


def _trends(df: pd.DataFrame, rows: pd.Index, numeric: list[str]) -> tuple[dict, dict]:
    """Per numeric column, :func:`_outside_share` of its values (``rows``: the first series' rows in time order),
    and the transform proposed where that share is over TREND_SHARE."""
    trend = {c: _outside_share(df.loc[rows, c].to_numpy(dtype=float)) for c in numeric}
    transform = {c: _transform_for(df[c]) for c, share in trend.items() if share > TREND_SHARE}
    return trend, transform


def _time_column(df: pd.DataFrame, given: str | None, where: str, unit: str | None) -> tuple[str, str | None]:
    """The time column and its ``data.time_unit`` (None for timestamps): given, found, or a column of years."""
    if given is not None:
        return given, _given_time_unit(df, given, where, unit)
    found = [c for c in df.columns if _looks_like_time(df[c])]
    if not found:
        return _untimed_column(df, where, unit)
    if len(found) > 1:
        raise DataError(
            f"several columns hold timestamps: {', '.join(found)}",
            where=where,
            fix=f"name the one that orders the rows, e.g. --time-column {shlex.quote(found[0])}",
        )
    return found[0], unit


def _counted_time_column(df: pd.DataFrame) -> str | None:
    """The one number column named like time (whose numbers --time-unit counts), if exactly one."""
    named = [c for c in df.columns if _is_number(df[c]) and c.lower() in TIME_NAMES + YEAR_NAMES]
    return named[0] if len(named) == 1 else None


def _given_time_unit(df: pd.DataFrame, given: str, where: str, unit: str | None) -> str | None:
    """The unit of the column --time-column names: --time-unit, "year" for a column of years, else timestamps."""
    _require_column("--time-column", given, df, where, list(df.columns), "the columns")
    if unit is None and _is_number(df[given]) and given == _year_column(df[[given]]):
        unit = "year"
    if unit is None:
        _refuse_numbers_as_time(df[given], given, df, where)
    return unit


def _untimed_column(df: pd.DataFrame, where: str, unit: str | None) -> tuple[str, str | None]:
    """No column holds timestamps: a column of years, or the one number column named like time when --time-unit
    says what its numbers count; else the refusal."""
    year = _year_column(df)
    if year is not None:
        return year, unit or "year"
    counted = _counted_time_column(df) if unit is not None else None
    if counted is not None:
        return counted, unit
    named = [c for c in df.columns if c.lower() in TIME_NAMES]
    hint = f" ({named[0]!r} is named like one but its values are not timestamps)" if named else ""
    fix = "add a column of ISO timestamps (e.g. date: 2015-01-31), or name it with --time-column"
    if unit is not None:  # --time-unit says a number column counts time; none is named like time
        rising = [c for c in df.columns if _is_number(df[c]) and df[c].notna().all() and df[c].is_monotonic_increasing]
        hint = f"; --time-unit {unit} says a number column counts time, and none is named like time ({', '.join(TIME_NAMES[:4])}, ...)"
        fix = (
            f"name it, e.g. --time-column {shlex.quote(str(rising[0]))} --time-unit {unit}"
            if len(rising) == 1
            else f"name it with --time-column beside --time-unit {unit}"
        )
    raise DataError(f"no time column found: no column holds timestamps{hint}", where=where, fix=fix)


def _refuse_numbers_as_time(s: pd.Series, name: str, df: pd.DataFrame, where: str) -> None:
    """--time-column naming a column of fractional numbers (pandas would read them as nanoseconds after 1970)."""
    if not pd.api.types.is_float_dtype(s) or (s.dropna() % 1 == 0).all():  # whole numbers may be years or epochs
        return
    found = [c for c in df.columns if c != name and _looks_like_time(df[c])]
    raise DataError(
        f"--time-column {name!r} holds numbers (e.g. {s.dropna().iloc[0] if s.notna().any() else 'NaN'}), not timestamps",
        where=where,
        fix=f"name the timestamp column, e.g. --time-column {shlex.quote(found[0])}"
        if found
        else "add a column of ISO timestamps (e.g. date: 2015-01-31) and name it with --time-column",
    )


def _text_columns(df: pd.DataFrame, tc: str) -> tuple[list[str], dict[str, str]]:
    """Text (and boolean) columns with few distinct values are categories; the rest are ignored, with why."""
    categorical, ignored = [], {}
    for c in df.columns:
        s = df[c]
        if c == tc or not (_is_text(s) or pd.api.types.is_bool_dtype(s)):
            continue
        k = s.nunique(dropna=True)
        commas = _comma_numbers(s) if _is_text(s) else None
        if commas:
            ignored[c] = f"numbers written with {commas[0]}, e.g. {commas[1]!r}: read them with pandas' {commas[2]}"
        elif k <= 1:
            ignored[c] = "one value only"
        elif k > MAX_CATEGORIES or k > len(s) // 2:
            ignored[c] = f"text with {k} distinct values (an id or free text)"
        else:
            categorical.append(c)
    return categorical, ignored


def _id_columns(df: pd.DataFrame, ignored: dict[str, str]) -> list[str]:
    """Text columns with too many values for a category that could still name series: some value repeats."""
    return [c for c in ignored if _is_text(df[c]) and 1 < df[c].nunique(dropna=True) < df[c].notna().sum()]


def _series_column(df: pd.DataFrame, tc: str, times: pd.Series, categorical: list[str], where: str) -> str | None:
    """The column that tells several series apart when timestamps repeat (long format), or None."""
    if not times.duplicated().any():
        return None
    keyed = pd.DataFrame({"t": times})
    found = [c for c in categorical if not keyed.assign(k=df[c].astype(str)).duplicated().any()]
    if len(found) == 1:
        return found[0]
    i = int(np.argmax(times.duplicated().to_numpy()))
    what = f"several columns could name the series: {', '.join(found)}" if found else "no column tells them apart"
    raise DataError(
        f"timestamp {times.iloc[i]} repeats (row {i + 1}) and {what}",
        where=where,
        fix="keep one series per file, or one row per timestamp and series with a single text column naming the series",
    )


def _target(numeric: list[str], given: str | None, df: pd.DataFrame, where: str) -> tuple[str, str]:
    if given is not None:
        _require_column("--target", given, df, where, numeric, "the numeric columns")
        if given not in numeric:
            cell = _first_text_cell(df[given])
            if cell is not None and numeric_share(df[given]) >= 0.5:  # a number column with a stray word: where it is
                line, value = cell
                raise DataError(
                    f"column {given!r} is not numeric: value {value!r}",
                    where=f"{where}:{line}",
                    fix="correct that cell (or leave it empty: a missing value)",
                )
            raise DataError(f"--target {given!r} is not numeric", where=where, fix=f"use one of: {', '.join(numeric)}")
        return given, "given with --target"
    if len(numeric) == 1:
        return numeric[0], "the only numeric column"
    low = {c.lower(): c for c in numeric}
    for name in TARGET_NAMES:
        if name in low:
            return low[name], "guessed from its name; change with --target"
    for prefix in TARGET_PREFIXES:
        for c in numeric:
            if c.lower().startswith(prefix):
                return c, "guessed from its name; change with --target"
    return numeric[0], "the first numeric column; change with --target"


def _step(t: pd.DatetimeIndex, where: str) -> Step:
    """The step by :func:`frequencies.infer`, the inference the loader uses: trading days are B with rows as steps."""
    if len(t) < 3:
        raise DataError(
            f"only {len(t)} row{'s' if len(t) != 1 else ''}",
            where=where,
            fix="use a file with at least a few dozen rows",
        )
    found = frequencies.infer(t)
    if found.trading_days:
        return Step(DAY, f"trading days ({found.gap_rows} weekdays absent, e.g. holidays)", "B", "steps", 0)
    if found.frequency is None:
        common = found.common_seconds
        words = f"irregular (most common step {pd.Timedelta(seconds=common)}, {found.common_share:.0%} of rows)"
        return Step(common, words, frequencies.alias(common), "steps", 0)
    seconds = found.common_seconds if found.frequency != "B" else DAY
    return Step(seconds, frequencies.label(found.frequency), found.frequency, "regular", found.gap_rows)


def _suggested_window(seconds: float) -> tuple[int, int, str]:
    """(input_length, horizon, why) for a step: about one natural cycle in, one shorter cycle out."""
    if seconds < 3600:
        per_hour = max(1, round(3600 / seconds))
        return min(192, 24 * per_hour), per_hour, "one day in (at most 192 steps), one hour out"
    if seconds < DAY:
        per_day = max(1, round(DAY / seconds))
        return min(168, 7 * per_day), per_day, "one week in, one day out"
    if seconds == DAY:
        return 28, 7, "four weeks in, one week out"
    if seconds <= 7 * DAY:
        return 26, 4, "half a year in, a month out"
    if seconds <= 31 * DAY:
        return 24, 3, "two years in, a quarter out"
    return 8, 2, "eight steps in, two out"


def _window(step: Step, n: int, horizon: int | None, where: str) -> tuple[int, int]:
    """The suggested window, shrunk so that the validation and test splits (15% of rows each) hold a few forecasts
    of ``horizon`` targets and the training split (70%) a few windows of ``input_length + horizon`` rows (a split
    owns targets, not inputs: validation and test inputs read the rows before them)."""
    if step.frequency == "B":
        L, H = 20, 5  # four trading weeks in, one out
    else:
        L, H, _ = _suggested_window(step.seconds)
    room = int(round(0.15 * n))  # rows of the val and test splits at the default fractions
    train = int(round(0.7 * n))
    if horizon is not None:
        H = horizon
    elif H > max(1, room // 4):
        H = max(1, room // 4)
    L = max(H, min(L, train // 2 - H))
    if L < 2 or H > room or L + H > train:
        fix = "use a smaller --horizon" if horizon is not None else "use a longer file"
        raise DataError(
            f"{n} rows are too few: the test split ({room} rows at 15%) must hold {H} forecast steps and the "
            f"training split ({train} rows at 70%) a window of {L} + {H} steps",
            where=where,
            fix=fix,
        )
    return L, H


def _outside_share(x: np.ndarray) -> float:
    """Share of the last 15% of values outside the range of the first 70% (the default splits)."""
    n = len(x)
    train, test = x[: int(round(0.7 * n))], x[int(round(0.85 * n)) :]
    train, test = train[~np.isnan(train)], test[~np.isnan(test)]
    if not len(train) or not len(test):
        return 0.0
    return float(((test < train.min()) | (test > train.max())).mean())


def _transform_for(s: pd.Series) -> str:
    return "log_diff" if (s.dropna() > 0).all() else "diff"


# --------------------------------------------------------------------------- writing


def _value(v) -> str:
    return (
        yaml.safe_dump(v, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False)
        .removesuffix("\n...\n")
        .strip()
    )


def _line(key: str, value, comment: str = "", indent: int = 1) -> str:
    text = f"{'  ' * indent}{key}: {_value(value)}"
    return f"{text:<32} # {comment}" if comment else text


def _head_lines(d: Detected, command: str) -> list[str]:
    """The comment block on top: where the config came from and what the file holds."""
    head = [
        f"# Written by `{command}`: only what differs from the defaults (all keys: rnnforecast config).",
        f"# {d.rows} rows, {_when(d.first)} .. {_when(d.last)}, {d.step.label}.",
    ]
    if d.missing:
        head.append(
            "# Missing values ("
            + ", ".join(f"{c}: {n}" for c, n in d.missing.items())
            + ") are filled by linear interpolation (data.missing)."
        )
    if d.ignored:
        head.append("# Not used: " + "; ".join(f"{c} ({why})" for c, why in d.ignored.items()) + ".")
    return head


def _data_lines(d: Detected, rel: str) -> list[str]:
    """The `data:` section, one commented line per key that differs from the defaults."""
    data = [_line("path", rel, "relative to this file"), _line("target", d.target, d.target_reason)]
    if d.time_column != "date":
        data.append(_line("time_column", d.time_column, "the timestamps"))
    if d.time_unit:
        what = "whole years (1990 is 1990-01-01)" if d.time_unit == "year" else f"{d.time_unit} since 1970"
        data.append(_line("time_unit", d.time_unit, f"the time column counts {what}"))
    if d.series_id:
        data.append(_line("series_id", d.series_id, "names the series (timestamps repeat across series)"))
    data.append(_line("frequency", d.step.frequency, d.step.label))
    if d.zone:
        data.append(f"  # time zone: {d.zone}")
    season = frequencies.season(d.step.frequency)
    data.append(_line("season_length", season.length, f"seasonal-naive baseline: {season.reason}"))
    data += _calendar_lines(d)
    if d.categorical:
        data.append(_line("categorical", d.categorical, "text columns, one-hot encoded as inputs"))
    if d.transform:
        shares = ", ".join(f"{c} {d.trend[c]:.0%}" for c in d.transform)
        data.append(_line("transform", d.transform, f"test values outside the training range: {shares}"))
    if d.time_features:
        why = f"calendar features that fit the step ({d.step.label.split(' (')[0]})"
        data.append(_line("time_features", d.time_features, why))
    if not d.transform:
        data.append(_line("scaling", "window", "each window measured from its last value: levels may move"))
    unit = f"  # units: {{{_value(d.target)}: UNIT}}"
    data.append(f"{unit:<32} # fill in the target's unit (e.g. degC, ppm): tables and plots show it")
    return data


def _calendar_lines(d: Detected) -> list[str]:
    out = []
    if d.step.calendar == "steps":
        out.append(_line("calendar", "steps", "each row is one step: no rows invented for the gaps"))
    elif d.step.gap_rows:
        out.append(f"  # {d.step.gap_rows} missing steps become rows, filled like missing values")
    if d.sort:
        out.append(_line("sort", True, "the file is not in time order"))
    return out


def yaml_text(d: Detected, config_dir: Path, command: str) -> str:
    """The starter config: only keys that differ from the defaults, each with why."""
    rel = os.path.relpath(d.path.resolve(), config_dir.resolve())
    if rel.startswith(os.path.join(os.pardir, os.pardir)):
        rel = str(d.path.resolve())  # far away: an absolute path reads better than ../../
    head = _head_lines(d, command)
    data = _data_lines(d, rel)
    L0, H0, why = (
        _suggested_window(d.step.seconds) if d.step.frequency != "B" else (20, 5, "four trading weeks in, one out")
    )
    if d.horizon_given:  # the suggestion's "one day out" is not what the window holds: say where each number came from
        why = why.split(",")[0]  # "one week in"
        lengthened = " (at least the horizon)" if d.input_length > L0 else ""
        shrunk = " (shortened to fit the file)" if d.input_length < L0 else lengthened
        horizon_why = "steps forecast at once (given with --horizon)"
    else:
        shrunk = "" if (d.input_length, d.horizon) == (L0, H0) else " (shortened to fit the file)"
        horizon_why = "steps forecast at once"
    lines = [*head, _line("name", _name(d.path), indent=0), "data:", *data, "window:"]
    lines.append(_line("input_length", d.input_length, f"steps of history; {why}{shrunk}"))
    lines.append(_line("horizon", d.horizon, horizon_why))
    lines += ["model:", *_model_lines(d)]
    lines += [
        "training:",
        _line("loss", "mae", "train on the error the verdict and tables lead with (docs/accuracy.md)"),
    ]
    lines += [
        "intervals:",
        _line("levels", [80, 95], "prediction bands, conformal, calibrated on the validation split"),
    ]
    return "\n".join(lines) + "\n"


def _model_lines(d: Detected) -> list[str]:
    """The `model:` section: the cell and size to change, and the recipe measured to win (docs/accuracy.md)."""
    r = Recipe.of(d)
    lines = [
        _line("cell", "gru", "gru, lstm or simple_rnn"),
        _line("units", [64], "one layer of 64; more (or a second layer) for long, rich series"),
        _line(
            "residual",
            r.residual,
            ("forecast the difference to same time last season: " if r.residual == "seasonal" else "") + r.residual_why,
        ),
    ]
    if r.segment_length:
        lines.append(_line("segment_length", r.segment_length, r.segment_why))
    return lines


def _when(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%d") if t == t.normalize() else str(t)


def _name(path: Path) -> str:
    stem = path.name.split(".")[0]
    return stem or "experiment"


def init(
    data_path: str,
    output: str = "config.yaml",
    *,
    target: str | None = None,
    horizon: int | None = None,
    time_column: str | None = None,
    force: bool = False,
    time_unit: str | None = None,
) -> str:
    """Detect, write ``output`` (atomically, after it validates) and return the lines to print."""
    from . import artifacts, pipeline

    out = Path(output)
    if out.is_dir():
        raise ConfigError("is a directory", where=output, fix="pass a file name with -o, e.g. -o config.yaml")
    if out.exists() and not force:
        raise ConfigError("already exists", where=output, fix="pass --force to replace it, or -o another file")
    check_destination(out)
    d = detect(Path(data_path), target, horizon, time_column, time_unit)
    command = "rnnforecast init " + shlex.quote(data_path) + (f" --target {target}" if target else "")
    text = yaml_text(d, out.parent, command)
    try:
        cfg = from_dict(yaml.safe_load(text), source=output, base_dir=str(out.parent.resolve()))
        report = pipeline.validate(cfg)
    except RnnForecastError as e:
        raise type(e)(
            f"the config init would write does not validate ({e.message})", where=e.where, fix=e.fix
        ) from None
    try:
        artifacts.write_atomic(out, text)
    except OSError as e:  # a full disk, no permission
        raise RunError(f"cannot write the config ({e.strerror or e})", where=output, fix="pass a writable -o") from None
    hints = [line for line in report.splitlines() if line.startswith("hint:")]
    return "\n".join(
        [
            *summary(d),
            f"wrote {output}; rnnforecast validate {shlex.quote(output)} passes",
            *hints,
            f"next: rnnforecast train {shlex.quote(output)}",
        ]
    )


def check_destination(out: Path) -> None:
    """``init -o``: its folder must exist (no command creates an output's folder), and it never lands inside a
    result (``artifacts.check_output``)."""
    from . import artifacts

    artifacts.check_output(out, "-o", force=True)  # an existing file: refused above unless --force


def summary(d: Detected) -> list[str]:
    parts = [f"{c} {n}" for c, n in d.missing.items()]
    if d.step.gap_rows and d.step.calendar != "steps":  # absent timestamps are missing values too, once rows
        n = d.step.gap_rows
        parts.append(f"{n} timestamp{'s' if n != 1 else ''} absent (added as rows, filled like missing values)")
    missing = "; ".join([", ".join(parts[: len(d.missing)]), *parts[len(d.missing) :]] if d.missing else parts)
    missing = missing or "none"
    return [
        f"data:        {d.path} ({d.rows} rows)",
        f"time:        {d.time_column}, {d.step.label}, {_when(d.first)} .. {_when(d.last)}",
        *([f"time zone:   {d.zone}"] if d.zone else []),
        f"numeric:     {', '.join(d.numeric)}",
        f"categorical: {', '.join(d.categorical) or 'none'}",
        f"missing:     {missing}",
        f"target:      {d.target} ({d.target_reason})",
        f"window:      input_length {d.input_length}, horizon {d.horizon}",
    ]

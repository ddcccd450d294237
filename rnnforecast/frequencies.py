"""Time steps: a series' pandas frequency (calendar offsets first) and the season that frequency implies.

One inference for ``init``, ``validate``, ``train`` and ``predict``: month starts are ``MS`` (not ``31D``),
quarters ``QS-JAN``, weeks ``W-SUN``, complete weekdays ``B``; weekdays with holidays absent are trading days
(``B`` whose rows are steps); fixed steps are ``D``, ``h``, ``15min`` and their multiples.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import TIME_FEATURES

DAY = 86_400
MONTH_DAYS = 365.2425 / 12
GRID_SLACK = 20  # a candidate calendar may add at most this many rows per row read (else it is not the step)
MODE_SAMPLE = 20_000  # the most common step is taken from the first gaps (a mode over millions costs a second)


@dataclass(frozen=True)
class Inferred:
    """What the timestamps of one series say about their step."""

    frequency: str | None  # a pandas offset alias; None when the rows lie on no regular grid
    gap_rows: int  # rows the frequency's calendar has between first and last that the data lacks
    trading_days: bool  # weekdays with some absent (holidays): rows are steps on the B calendar
    common_seconds: float  # the most common gap between rows
    common_share: float  # share of gaps equal to it


@dataclass(frozen=True)
class Season:
    """The seasonal-naive season of a frequency, with why."""

    length: int
    reason: str
    second: int | None = None  # a longer second season (hourly: a week), reported, not used by the baselines


def infer(times) -> Inferred:
    """The step of sorted, distinct ``times`` (at least 3), checked on every row.

    Candidates come from :func:`pandas.infer_freq` (a gapless series) and from the most common gap (a series
    with gaps): months, quarters, years, anchored weeks, business days and fixed steps. The first candidate on
    whose grid every timestamp lies, without inventing more than ``GRID_SLACK`` rows per row, wins.
    """
    t = pd.DatetimeIndex(times)
    nanos = _ns(t)
    steps = np.diff(nanos) / 1e9  # seconds
    steps = steps[steps > 0]
    common = float(pd.Series(steps[:MODE_SAMPLE]).mode().iloc[0]) if len(steps) else 0.0
    share = float((steps == common).mean()) if len(steps) else 0.0
    if _trading_days(t, common, steps):
        absent = len(pd.bdate_range(t[0], t[-1])) - len(t)
        return Inferred("B", absent, absent > 0, common, share)
    for cand in _candidates(t, common, steps):
        gaps = _gap_rows(t, nanos, cand)
        if gaps is not None:
            return Inferred(cand, gaps, False, common, share)
    if common > 0 and (np.mod(steps, common) == 0).all():  # a fixed step with (maybe huge) gaps: the loader says
        return Inferred(alias(common), int((steps // common - 1).sum()), False, common, share)
    return Inferred(None, 0, False, common, share)


def _candidates(t: pd.DatetimeIndex, common: float, steps: np.ndarray):
    """Frequencies to try, in order (a generator: the costly checks run only when the cheap ones failed)."""
    first = _pandas_freq(t[: min(len(t), 2000)])
    if first:
        yield first
    if common <= 0:
        return
    days = common / DAY
    k = round(days / MONTH_DAYS)
    if k >= 1 and abs(days - k * MONTH_DAYS) <= 1.6 * max(1, k / 3) and (t == t.normalize()).all():
        if t.is_month_start.all():
            yield _canonical(t, f"{k}MS")
        elif t.is_month_end.all():
            yield _canonical(t, f"{k}ME")
    weeks, rest = divmod(common, 7 * DAY)
    if weeks >= 1 and not rest and (t.dayofweek == t[0].dayofweek).all():
        yield _canonical(t, f"{int(weeks)}W-{t[0].day_name()[:3].upper()}")
    if (np.mod(steps, common) == 0).all():
        yield alias(common)


def _canonical(t: pd.DatetimeIndex, freq: str) -> str:
    """pandas' own name for ``freq`` (3MS -> QS-JAN, 12MS -> YS-JAN), as a gapless series would get it."""
    return _pandas_freq(pd.date_range(t[0], periods=5, freq=freq)) or freq


def _pandas_freq(t: pd.DatetimeIndex) -> str | None:
    if len(t) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 announces that infer_freq will return an offset
        warnings.simplefilter("ignore")
        f = pd.infer_freq(t)
    return None if f is None else pd.tseries.frequencies.to_offset(f).freqstr


def _gap_rows(t: pd.DatetimeIndex, nanos: np.ndarray, freq: str) -> int | None:
    """Rows of ``freq``'s grid from ``t[0]`` to ``t[-1]`` missing from ``t``; None when ``t`` is not on it."""
    offset = pd.tseries.frequencies.to_offset(freq)
    if grid_rows(t[0], t[-1], offset) > GRID_SLACK * len(t):
        return None
    fixed = int(round(_seconds(offset) * 1e9))
    if fixed > 0 and not isinstance(offset, pd.offsets.BusinessDay):  # h, 15min, D: arithmetic, no grid built
        gaps = np.diff(nanos)
        if (gaps % fixed).any():
            return None
        return int((gaps // fixed - 1).sum())
    grid = pd.date_range(t[0], t[-1], freq=offset)
    if len(grid) == 0 or not t.isin(grid).all():
        return None
    return len(grid) - len(t)


def grid_rows(first: pd.Timestamp, last: pd.Timestamp, offset) -> float:
    """About how many steps of ``offset`` lie from ``first`` to ``last``, computed without building them."""
    try:
        step = ((first + 10 * offset) - first) / 10  # mean step (B, MS and the like vary)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return float("inf")
    step_ns = step.value if hasattr(step, "value") else 0
    return (last - first).value / step_ns + 1 if step_ns > 0 else float("inf")


def _trading_days(t: pd.DatetimeIndex, common: float, steps: np.ndarray) -> bool:
    """Weekdays only, at midnight, one day apart except across weekends (and holidays)."""
    return bool(common == DAY and (t.dayofweek < 5).all() and (t == t.normalize()).all() and (steps == 3 * DAY).any())


def alias(seconds: float) -> str:
    """A fixed step as a pandas alias: 86400 -> D, 7200 -> 2h, 900 -> 15min."""
    for unit, size in (("D", DAY), ("h", 3600), ("min", 60), ("s", 1)):
        n, rest = divmod(int(seconds), size)
        if n and not rest:
            return unit if n == 1 else f"{n}{unit}"
    return f"{int(seconds)}s"


def label(freq: str | None, common_seconds: float = 0.0) -> str:
    """Words for people: monthly (month starts), weekly (Sundays), every 2 hours."""
    if freq is None:
        return f"irregular (most common step {pd.Timedelta(seconds=common_seconds)})"
    off = pd.tseries.frequencies.to_offset(freq)
    n = off.n
    named = {
        pd.offsets.MonthBegin: ("monthly (month starts)", "months"),
        pd.offsets.MonthEnd: ("monthly (month ends)", "months"),
        pd.offsets.QuarterBegin: ("quarterly (quarter starts)", "quarters"),
        pd.offsets.QuarterEnd: ("quarterly (quarter ends)", "quarters"),
        pd.offsets.YearBegin: ("yearly (year starts)", "years"),
        pd.offsets.YearEnd: ("yearly (year ends)", "years"),
        pd.offsets.BusinessDay: ("business days", "business days"),
    }
    for kind, (one, many) in named.items():
        if isinstance(off, kind):
            return one if n == 1 else f"every {n} {many}"
    if isinstance(off, pd.offsets.Week):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=off.weekday or 0)  # a Monday + weekday
        return f"weekly ({day.day_name()}s)" if n == 1 else f"every {n} weeks ({day.day_name()}s)"
    secs = _seconds(off)
    words = {60: "minutely", 3600: "hourly", DAY: "daily"}
    return words.get(secs, f"every {freq}") if secs else freq


def _seconds(off) -> float:
    try:
        return pd.Timedelta(off).total_seconds()
    except (ValueError, TypeError):
        return 0.0


def season(frequency: str) -> Season:
    """The season of ``frequency`` in steps, and why.

    Calendar offsets: months 12, quarters 4, business days 5, weeks 52 (a year), years 1 (none); a multiple
    ``n`` of them repeats after ``base / gcd(base, n)`` steps (2MS: 6; 5MS: 12, i.e. every 5 years). Fixed steps
    under a day: the steps in a day, or in the shortest whole number of days (7h: 24 steps, 7 days); hourly
    ones also report a week (168) as a second season. One day: 7 (a week, 365 second). Several days: the
    steps in a year, ``round(365.25 / n)``: 7D gives 52 like weekly, and 31D (a fixed 31-day step, which
    drifts against calendar months; monthly data is MS or ME) gives 12.
    """
    off = pd.tseries.frequencies.to_offset(frequency)
    n = max(1, int(off.n))
    for kind, base, what in (
        ((pd.offsets.MonthBegin, pd.offsets.MonthEnd), 12, "months a year"),
        ((pd.offsets.QuarterBegin, pd.offsets.QuarterEnd), 4, "quarters a year"),
        ((pd.offsets.BusinessDay,), 5, "business days a week"),
    ):
        if isinstance(off, kind):
            m = base // math.gcd(base, n)
            step = "" if n == 1 else f"; steps of {n}: the phase repeats every {m} steps"
            return Season(m, f"{base} {what}{step}")
    if isinstance(off, (pd.offsets.YearBegin, pd.offsets.YearEnd)):
        return Season(1, "yearly steps: no season within a year (seasonal naive = persistence)")
    if isinstance(off, pd.offsets.Week):
        m = max(1, round(365.25 / (7 * n)))
        return Season(m, "52 weeks a year" if n == 1 else f"steps of {n} weeks: {m} a year")
    return _fixed_season(_seconds(off), frequency)


def _fixed_season(secs: float, frequency: str) -> Season:
    if secs <= 0:
        return Season(1, f"no known season for {frequency!r}; set data.season_length")
    if secs < DAY:
        s = int(round(secs))
        m = DAY // math.gcd(DAY, s)
        days = m * s // DAY
        where = "a day" if days == 1 else f"{days} days"
        second = 7 * m if s >= 3600 and DAY % s == 0 else None
        return Season(m, f"{m} steps of {frequency} in {where}" + (f" ({second} in a week)" if second else ""), second)
    if secs == DAY:
        return Season(7, "7 days a week (365 in a year)", 365)
    days = secs / DAY
    m = max(1, round(365.25 / days))
    note = " (a fixed step, not a calendar month: use MS or ME for months)" if 28 <= days <= 31 else ""
    return Season(m, f"steps of {days:g} days: {m} a year{note}")


def step_seconds(frequency: str) -> float:
    """A step's length in seconds: fixed offsets exactly; calendar ones by their usual length (a business day 1 day,
    a month 365.2425 / 12 days, a quarter 3 months, a year 12); 0 when unknown."""
    off = pd.tseries.frequencies.to_offset(frequency)
    n = max(1, int(off.n))
    for kind, days in (
        ((pd.offsets.BusinessDay,), 1.0),
        ((pd.offsets.MonthBegin, pd.offsets.MonthEnd), MONTH_DAYS),
        ((pd.offsets.QuarterBegin, pd.offsets.QuarterEnd), 3 * MONTH_DAYS),
        ((pd.offsets.YearBegin, pd.offsets.YearEnd), 12 * MONTH_DAYS),
    ):
        if isinstance(off, kind):
            return n * days * DAY
    if isinstance(off, pd.offsets.Week):
        return n * 7.0 * DAY
    return _seconds(off)


def time_features(seconds: float, span: pd.Timedelta) -> list[str]:
    """The calendar features that fit a step of ``seconds`` over ``span`` of data: those whose period is longer than
    the step and seen at least twice (hour of day under a day's step over 2 days or more; day of week up to a day's
    step over 14 days; day of year up to a week's step over two years; month of year for steps of more than a week
    up to a month, over two years). ``data.time_features: auto`` and ``init`` (one rule)."""
    days = span / pd.Timedelta(days=1)
    wanted = {
        "hour_of_day": 0 < seconds < DAY and days >= 2,
        "day_of_week": 0 < seconds <= DAY and days >= 14,
        "day_of_year": 0 < seconds <= 7 * DAY and days >= 2 * 365,
        "month_of_year": 7 * DAY < seconds <= 31 * DAY and days >= 2 * 365,
    }
    return [f for f in TIME_FEATURES if wanted.get(f)]


def _ns(t: pd.DatetimeIndex) -> np.ndarray:
    return t.as_unit("ns").asi8

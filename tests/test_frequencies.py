"""Frequencies and seasons: one inference for init, validate, train and predict; future timestamps on the calendar."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from rnnforecast import frequencies
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame, season_length
from rnnforecast.starter import detect


def _times(start, n, freq, drop=()):
    return pd.date_range(start, periods=n, freq=freq).delete(list(drop))


@pytest.mark.parametrize(
    "times, freq, gaps",
    [
        (_times("1950-01-01", 120, "MS"), "MS", 0),  # El Nino-like month starts
        (_times("1950-01-01", 120, "MS", drop=[5, 6, 50]), "MS", 3),  # months with gaps (no pandas answer)
        (_times("1950-01-31", 60, "ME", drop=[7]), "ME", 1),
        (_times("1990-04-01", 40, "QS-JAN", drop=[3, 4]), "QS-JAN", 2),  # quarters: Apr, Jul, Oct, Jan
        (_times("1900-01-01", 60, "YS", drop=[9]), "YS-JAN", 1),
        (_times("1958-03-30", 300, "W-SUN", drop=range(40, 99)), "W-SUN", 59),  # CO2-like: 59 weeks missing
        (_times("2020-01-01", 500, "h", drop=[3, 4]), "h", 2),
        (_times("2020-01-01", 300, "2h", drop=[3]), "2h", 1),
        (_times("2020-01-01", 300, "15min", drop=[3]), "15min", 1),
        (_times("2020-01-02", 100, "B"), "B", 0),
        (_times("2020-01-01", 40, "D", drop=[9]), "D", 1),
    ],
)
def test_infer_recognises_calendars_with_and_without_gaps(times, freq, gaps):
    found = frequencies.infer(times)
    assert (found.frequency, found.gap_rows, found.trading_days) == (freq, gaps, False)


def test_trading_days_are_steps_and_irregular_times_have_no_frequency():
    trading = frequencies.infer(_times("2020-01-02", 100, "B", drop=[10, 30]))
    assert (trading.frequency, trading.gap_rows, trading.trading_days) == ("B", 2, True)
    odd = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.cumsum([0, 60, 60, 60, 45, 60, 100, 60]), "min")
    found = frequencies.infer(pd.DatetimeIndex(odd))  # 45 min is not a multiple of the common hour
    assert (found.frequency, found.common_seconds, found.common_share) == (None, 3600.0, 5 / 7)


@pytest.mark.parametrize(
    "freq, season",
    [
        ("h", 24),  # 24 hours a day
        ("2h", 12),  # 24 / 2
        ("15min", 96),  # 24 * 4
        ("min", 1440),  # 24 * 60: minutes by the day
        ("7h", 24),  # 24 steps of 7 hours = 7 days, the first whole number of days
        ("D", 7),
        ("7D", 52),  # round(365.25 / 7)
        ("31D", 12),  # round(365.25 / 31): a fixed 31-day step, not a month
        ("B", 5),
        ("W-SUN", 52),
        ("2W-SUN", 26),
        ("MS", 12),
        ("ME", 12),
        ("2MS", 6),  # 12 / gcd(12, 2)
        ("5MS", 12),  # 12 / gcd(12, 5): the month phase comes back after 12 steps of 5 months
        ("QS-JAN", 4),
        ("QE-DEC", 4),
        ("YS-JAN", 1),  # no season within a year
    ],
)
def test_season_from_frequency_with_multiples(freq, season):
    """Caught: the old season_length dropped the digits (7D, 31D, 92D all 7) and gave weekly data 1."""
    assert frequencies.season(freq).length == season
    assert season_length(freq, None) == season and season_length(freq, 9) == 9


def test_hourly_and_daily_report_a_second_season_and_31d_says_it_is_not_a_month():
    assert frequencies.season("h").second == 168 and frequencies.season("D").second == 365
    assert "not a calendar month" in frequencies.season("31D").reason


def _write(path, times, seed=0):
    rng = np.random.default_rng(seed)
    n = len(times)
    y = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / 12) + rng.normal(0, 0.5, n)
    pd.DataFrame({"date": times.strftime("%Y-%m-%d %H:%M:%S"), "y": y.round(3)}).to_csv(path, index=False)


CASES = {  # name -> (times, frequency, season, the 3 timestamps after the last row, by hand)
    "monthly": (_times("1950-01-01", 132, "MS"), "MS", 12, ["1961-01-01", "1961-02-01", "1961-03-01"]),
    "quarterly": (_times("1980-01-01", 120, "QS"), "QS-JAN", 4, ["2010-01-01", "2010-04-01", "2010-07-01"]),
    # 2010-01-03 is a Sunday; 149 weeks later the last row is 2012-11-11, a Sunday
    "weekly": (_times("2010-01-03", 150, "W-SUN"), "W-SUN", 52, ["2012-11-18", "2012-11-25", "2012-12-02"]),
    "hourly": (
        _times("2020-01-01", 400, "h"),
        "h",
        24,
        ["2020-01-17 16:00:00", "2020-01-17 17:00:00", "2020-01-17 18:00:00"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loader_and_init_agree_and_future_timestamps_follow_the_calendar(tmp_path, name):
    times, freq, season, future = CASES[name]
    csv = tmp_path / f"{name}.csv"
    _write(csv, times)
    d = detect(csv, horizon=3)
    assert (d.step.frequency, d.step.calendar) == (freq, "regular")
    cfg = from_dict({"data": {"path": str(csv), "target": "y"}}, source="t", base_dir=str(tmp_path)).data
    frame = load_frame(cfg, csv)
    assert frame.frequency == freq and season_length(frame.frequency, None) == season
    from rnnforecast.windows import target_times

    assert [str(t) for t in target_times(times[-1], 3, freq)] == [str(pd.Timestamp(f)) for f in future]  # by hand above


@pytest.mark.parametrize(
    "last, freq, future",
    [  # by hand, from a calendar: 2017-11-11 is a Saturday, 2017-11-12 a Sunday, 2017-11-10 a Friday
        ("2017-11-11", "B", ["2017-11-13", "2017-11-14", "2017-11-15"]),
        ("2017-11-12", "B", ["2017-11-13", "2017-11-14", "2017-11-15"]),
        ("2017-11-10", "B", ["2017-11-13", "2017-11-14", "2017-11-15"]),
        ("2017-11-10 16:00", "B", ["2017-11-13 16:00", "2017-11-14 16:00", "2017-11-15 16:00"]),
        ("2021-01-15", "ME", ["2021-01-31", "2021-02-28", "2021-03-31"]),
        ("2021-01-31", "ME", ["2021-02-28", "2021-03-31", "2021-04-30"]),
        ("2012-11-14", "W-SUN", ["2012-11-18", "2012-11-25", "2012-12-02"]),  # a Wednesday
        ("2020-01-17 15:30", "h", ["2020-01-17 16:30", "2020-01-17 17:30", "2020-01-17 18:30"]),
    ],
)
def test_future_timestamps_start_at_the_next_calendar_point(last, freq, future):
    """A last row off the calendar (a weekend row in business-day data): the first step is the next calendar point
    after it, none skipped."""
    from rnnforecast.windows import target_times, target_times_of

    want = [pd.Timestamp(f) for f in future]
    assert list(target_times(pd.Timestamp(last), 3, freq)) == want
    assert list(target_times_of(pd.DatetimeIndex([last, last]), 3, freq)) == want * 2


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_init_train_predict_on_calendar_frequencies(tmp_path, name):
    """Caught: monthly data written as 31D with calendar: steps, forecasting 1961-01-01, 02-01, 03-04."""
    times, freq, season, future = CASES[name]
    csv, cfg = tmp_path / f"{name}.csv", tmp_path / "config.yaml"
    _write(csv, times)
    proc = run_cli("init", str(csv), "--horizon", "3", "-o", str(cfg))
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load(cfg.read_text())["data"]
    assert written["frequency"] == freq and written["season_length"] == season and "calendar" not in written
    assert f"season_length: {season}" in cfg.read_text()
    run = tmp_path / "run"
    # a tiny training: a 6-step window, so no segments of init's season (12 for months)
    sets = ["window.input_length=6", "model.segment_length=null", "model.units=[4]", "training.epochs=1"]
    proc = run_cli("train", str(cfg), *sum((["--set", s] for s in sets), []), "--run-dir", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["season_length"] == season  # the seasonal-naive baseline scored with the calendar's season
    maes = {k: v["mae"] for k, v in metrics["test"]["original"]["overall"].items() if k != "model"}
    best = min(maes, key=maes.get)
    assert f"the best baseline, {best} (MAE {maes[best]:.4g})" in proc.stdout  # the verdict line
    proc = run_cli("predict", str(run))
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(io.StringIO(proc.stdout))
    assert list(pd.to_datetime(got["timestamp"]).drop_duplicates()) == [pd.Timestamp(f) for f in future]

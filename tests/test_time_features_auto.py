"""`data.time_features: auto`: the calendar features that fit the step and the span, init's rule, written once
(`frequencies.time_features`); settled into the run's config so a forecast never re-decides. Not the default (none
is: measured a wash, docs/accuracy.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli, write_config
from rnnforecast import frequencies
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame
from rnnforecast.errors import ConfigError, DataError

DAY = 86_400


@pytest.mark.parametrize(
    ("frequency", "days", "expected"),
    [
        ("h", 1.9, []),  # a day's period seen less than twice
        ("h", 3, ["hour_of_day"]),  # two days or more: the hour; a week seen less than twice
        ("h", 14, ["hour_of_day", "day_of_week"]),
        ("30min", 800, ["hour_of_day", "day_of_week", "day_of_year"]),
        ("D", 13, []),
        ("D", 400, ["day_of_week"]),  # a year seen once only
        ("D", 730, ["day_of_week", "day_of_year"]),
        ("B", 730, ["day_of_week", "day_of_year"]),  # a business day counts as a day
        ("W-SUN", 3 * 365, ["day_of_year"]),
        ("MS", 3 * 365, ["month_of_year"]),
        ("QS", 10 * 365, []),  # longer than a month: no calendar feature turns within a step
        ("YS", 50 * 365, []),
        ("2D", 3 * 365, ["day_of_year"]),  # the week turns within two steps: no day of week
    ],
)
def test_the_rule_by_step_and_span(frequency, days, expected):
    seconds = frequencies.step_seconds(frequency)
    assert frequencies.time_features(seconds, pd.Timedelta(days=days)) == expected


def test_step_seconds_of_calendar_offsets():
    # by hand: an hour, a business day, a week, a month of 365.2425 / 12 days, a quarter of three such months
    assert frequencies.step_seconds("h") == 3600
    assert frequencies.step_seconds("15min") == 900
    assert frequencies.step_seconds("B") == DAY
    assert frequencies.step_seconds("W-SUN") == 7 * DAY
    assert frequencies.step_seconds("MS") == pytest.approx(30.436875 * DAY)
    assert frequencies.step_seconds("QE") == pytest.approx(3 * 30.436875 * DAY)


def _hourly(tmp_path, days: int, name: str = "h.csv"):
    n = 24 * days
    t = pd.date_range("2021-03-01", periods=n, freq="h")
    rng = np.random.default_rng(1)
    load = 50 + 10 * np.sin(2 * np.pi * t.hour / 24) + 3 * (t.dayofweek >= 5) + rng.normal(0, 1, n)
    df = pd.DataFrame({"date": t.strftime("%Y-%m-%d %H:%M"), "load": load.round(3), "temp": rng.normal(10, 2, n)})
    df.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def _cfg(path, **data):
    raw = {"path": str(path), "target": "load", "time_features": "auto", **data}
    return from_dict({"data": raw, "window": {"input_length": 48, "horizon": 6}})


def test_auto_adds_the_hour_and_the_weekday_to_an_hourly_file(tmp_path):
    p = _hourly(tmp_path, 21)
    frame = load_frame(_cfg(p).data, p)
    assert frame.time_features == ["hour_of_day", "day_of_week"]
    assert frame.features[-4:] == ["hour_of_day_sin", "hour_of_day_cos", "day_of_week_sin", "day_of_week_cos"]
    # the values, by hand from the timestamps: row 30 is 2021-03-02 06:00, a Tuesday (dayofweek 1)
    row = frame.df.iloc[30]
    assert row["hour_of_day_sin"] == pytest.approx(np.sin(2 * np.pi * 6 / 24))
    assert row["day_of_week_cos"] == pytest.approx(np.cos(2 * np.pi * 1 / 7))


def test_auto_is_none_when_the_inputs_are_listed_or_the_span_is_short(tmp_path):
    p = _hourly(tmp_path, 21)
    assert load_frame(_cfg(p, features=["load", "temp"]).data, p).time_features == []  # the user chose the inputs
    short = _hourly(tmp_path, 1, "short.csv")
    frame = load_frame(_cfg(short).data, short)
    assert frame.time_features == [] and not [c for c in frame.features if c.endswith(("_sin", "_cos"))]
    # an explicit list is kept as written; [] means none, and so does the default (no time_features key)
    assert load_frame(_cfg(p, time_features=["day_of_week"]).data, p).time_features == ["day_of_week"]
    assert load_frame(_cfg(p, time_features=[]).data, p).time_features == []
    default = from_dict({"data": {"path": str(p), "target": "load"}, "window": {"input_length": 48, "horizon": 6}})
    assert default.data.time_features == [] and load_frame(default.data, p).features == ["load", "temp"]


def test_typos_name_the_entry_and_the_word(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.time_features\[0\].*hour_of_dya.*did you mean 'hour_of_day'"):
        _cfg(tmp_path / "x.csv", time_features=["hour_of_dya"])
    with pytest.raises(ConfigError, match=r"data\.time_features.*'aut'.*auto"):
        _cfg(tmp_path / "x.csv", time_features="aut")
    with pytest.raises(
        ConfigError, match=r"data\.time_features: received \[auto\], a list\. Fix: write auto without brackets"
    ):
        _cfg(tmp_path / "x.csv", time_features=["auto"])
    # a word near auto, one entry without brackets, a misspelt entry without brackets: each its own fix
    with pytest.raises(
        ConfigError, match=r"received 'autoo' \(string\) \(did you mean 'auto'\?\)\. Fix: set list or auto"
    ):
        _cfg(tmp_path / "x.csv", time_features="autoo")
    with pytest.raises(
        ConfigError, match=r"received 'day_of_week' \(string\), one entry\. Fix: write it as a list: \[day_of_week\]"
    ):
        _cfg(tmp_path / "x.csv", time_features="day_of_week")
    with pytest.raises(ConfigError, match=r"\(did you mean 'hour_of_day'\?\)\. Fix: write \[hour_of_day\]"):
        _cfg(tmp_path / "x.csv", time_features="hour_of_dy")
    # a repeated entry is named as such (its second sin/cos pair was reported as a column of the file in the way)
    with pytest.raises(ConfigError, match=r"data\.time_features: day_of_week is listed twice in data\.time_features"):
        _cfg(tmp_path / "x.csv", time_features=["hour_of_day", "day_of_week", "day_of_week"])


def test_a_file_column_in_the_way_of_a_calendar_column_is_named_with_both_fixes(tmp_path):
    p = _hourly(tmp_path, 21)
    pd.read_csv(p).assign(hour_of_day_sin=1.0).to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        load_frame(_cfg(p).data, p)
    assert str(e.value).endswith(
        "column hour_of_day_sin: data.time_features (hour_of_day) adds a column 'hour_of_day_sin', but the file "
        "already has a column of that name. Fix: rename that column in the file, or leave hour_of_day out of it."
    )


def test_a_run_keeps_the_settled_list_and_validate_says_why(tmp_path):
    p = _hourly(tmp_path, 21)
    cfg = {
        "name": "auto_calendar",
        "data": {"path": str(p), "target": "load", "time_features": "auto"},
        "window": {"input_length": 48, "horizon": 6},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 64},
        "output": {"plots": False},
    }
    path = write_config(tmp_path, cfg)
    v = run_cli("validate", str(path))
    assert v.returncode == 0, v.stderr
    assert (
        "data.time_features    hour_of_day, day_of_week  (auto: calendar features that fit the hourly step over 21 days)"
        in v.stdout
    )
    run = tmp_path / "run"
    t = run_cli("train", str(path), "--run-dir", str(run), "-q")
    assert t.returncode == 0, t.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["time_features"] == ["hour_of_day", "day_of_week"]  # settled: predict never re-decides
    schema = json.loads((run / "schema.json").read_text())
    assert "hour_of_day_sin" in json.dumps(schema) and "day_of_week_cos" in json.dumps(schema)
    # the forecast's new rows get the same calendar: 6 hourly steps after the last row (2021-03-21 23:00)
    f = run_cli("predict", str(run))
    assert f.returncode == 0, f.stderr
    lines = f.stdout.strip().splitlines()
    assert lines[1].startswith("2021-03-22 00:00") and lines[-1].startswith("2021-03-22 05:00"), f.stdout


@pytest.mark.parametrize(
    ("days", "data", "line"),
    [
        (21, {"features": ["load"]}, "data.time_features    none  (auto: data.features lists the inputs)"),
        (1, {}, "data.time_features    none  (auto: no calendar period fits the hourly step over 23 hours)"),
        (21, {"time_features": ["day_of_week"]}, "data.time_features    day_of_week\n"),  # as written: no why
    ],
)
def test_validate_says_what_auto_chose_and_why(tmp_path, days, data, line):
    p = _hourly(tmp_path, days)
    cfg = {
        "data": {"path": str(p), "target": "load", "time_features": "auto", **data},
        "window": {"input_length": 6, "horizon": 2},
        "model": {"cell": "gru", "units": [4]},
    }
    v = run_cli("validate", str(write_config(tmp_path, cfg)))
    assert v.returncode == 0, v.stderr
    assert line in v.stdout, v.stdout


def test_settings_that_do_nothing_are_said_before_training(tmp_path):
    """validate (and train) name what does nothing for this data: hour_of_day on daily rows (two constant inputs),
    independent channels of one target, a seasonal residual whose season is one step; a calendar that varies, two
    targets and a real season say nothing."""
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    csv = tmp_path / "daily.csv"
    days = pd.date_range("2020-01-01", periods=200, freq="D")
    pd.DataFrame({"date": days, "y": np.sin(np.arange(200) / 5), "z": np.cos(np.arange(200) / 3)}).to_csv(
        csv, index=False
    )
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{path: {csv}, target: y}}\nwindow: {{input_length: 14, horizon: 2}}\n")
    sets = ["data.time_features=[hour_of_day, day_of_week]", "model.channels=independent", "model.residual=seasonal"]
    args = ["validate", str(config), *[x for s in [*sets, "data.season_length=1"] for x in ("--set", s)]]
    out = CliRunner().invoke(cli, args).output
    assert "warning: data.time_features: hour_of_day is the same on every row (the step is 'D')" in out
    assert "day_of_week is the same" not in out  # it varies on daily rows
    assert "note: model.channels: independent with one target is the same model as mixed" in out
    assert "note: model.residual: seasonal with a season of 1 step is persistence" in out
    args = ["validate", str(config), "--set", "data.target=[y, z]", "--set", "data.season_length=7"]
    out = CliRunner().invoke(cli, [*args, *[x for s in sets[1:] for x in ("--set", s)]]).output
    assert "settings that do nothing" not in out, out

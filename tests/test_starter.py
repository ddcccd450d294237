"""`rnnforecast init`: detection on the sample files and a trading-day file, the config it writes, its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import DATA, run_cli
from rnnforecast.cli import cli
from rnnforecast.config import load_config


def _init(*args: str) -> object:
    return CliRunner().invoke(cli, ["init", *args])


def _trading_days(path, n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Business days with a few holidays taken out: a trading calendar."""
    days = pd.bdate_range("2019-01-01", periods=n + 12)
    days = days.delete([20, 75, 140, 200, 260, 330, 390, 420, 470, 500, 540, 580])
    rng = np.random.default_rng(seed)
    price = 50 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)) + np.linspace(0, 1.5, n))  # a trending price
    df = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "price": price, "volume": rng.integers(1000, 5000, n)})
    df.loc[[10, 11, 300], "volume"] = np.nan
    df.to_csv(path, index=False)
    return df


def test_init_weather_detects_daily_categories_and_season(tmp_path):
    out = tmp_path / "weather.yaml"
    result = _init(str(DATA / "weather.csv"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "time:        date, daily, 2012-01-01 .. 2015-12-31" in result.stdout
    assert "numeric:     precipitation, temp_max, temp_min, wind" in result.stdout
    assert "categorical: weather" in result.stdout and "missing:     none" in result.stdout
    assert result.stdout.strip().endswith(f"next: rnnforecast train {out}")
    raw = yaml.safe_load(out.read_text())
    # what differs from the defaults (no time_column: it is "date"), the step and season, the model recipe
    assert raw == {
        "name": "weather",
        "data": {
            "path": str((DATA / "weather.csv").resolve()),
            "target": "temp_max",
            "frequency": "D",
            "season_length": 7,
            "categorical": ["weather"],
            "time_features": ["day_of_week", "day_of_year"],
            "scaling": "window",
        },
        "window": {"input_length": 28, "horizon": 7},
        "model": {"cell": "gru", "units": [64], "residual": "none", "segment_length": 7},
        "training": {"loss": "mae"},
        "intervals": {"levels": [80, 95]},
    }
    text = out.read_text()
    assert text.startswith("# Written by `rnnforecast init") and "# guessed from its name; change with --target" in text
    assert load_config(out).data.target == ["temp_max"]


def test_init_stock_is_trading_days_with_log_returns(tmp_path):
    out = tmp_path / "stock.yaml"
    result = _init(str(DATA / "stock.csv"), "-o", str(out), "--horizon", "3")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(out.read_text())["data"]
    assert data["frequency"] == "B" and data["calendar"] == "steps"
    assert data["target"] == "close"
    # prices trend far outside their training range (about 47% of test values), volume does not
    assert data["transform"] == {"open": "log_diff", "high": "log_diff", "low": "log_diff", "close": "log_diff"}
    assert yaml.safe_load(out.read_text())["window"] == {"input_length": 20, "horizon": 3}
    assert "trading days (279 weekdays absent, e.g. holidays)" in result.stdout


def test_init_generated_trading_days_with_missing_values(tmp_path):
    csv = tmp_path / "prices.csv"
    _trading_days(csv)
    out = tmp_path / "prices.yaml"
    result = _init(str(csv), "--target", "price", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    raw = yaml.safe_load(text)
    assert raw["data"]["path"] == "prices.csv"  # relative to the config's folder
    assert raw["data"]["time_column"] == "day"
    assert raw["data"]["frequency"] == "B" and raw["data"]["calendar"] == "steps"
    assert raw["data"]["target"] == "price" and raw["data"]["transform"] == {"price": "log_diff"}
    assert "# Missing values (volume: 3) are filled by linear interpolation" in text
    assert "missing:     volume 3\n" in result.stdout  # trading days: absent weekdays are no missing values
    assert "trading days (12 weekdays absent" in result.stdout
    # 600 rows: the test split holds 90; a window of 20 + 5 fits
    assert raw["window"] == {"input_length": 20, "horizon": 5}


@pytest.mark.slow
def test_written_configs_train(tmp_path):
    csv = tmp_path / "prices.csv"
    _trading_days(csv)
    for data, target in ((DATA / "weather.csv", None), (DATA / "stock.csv", None), (csv, "price")):
        out = tmp_path / f"{data.stem}.yaml"
        args = ["init", str(data), "-o", str(out)] + (["--target", target] if target else [])
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        train = proc.stdout.strip().splitlines()[-1].removeprefix("next: ").split()
        assert train == ["rnnforecast", "train", str(out)]
        proc = run_cli(
            *train[1:],
            "--set",
            "training.epochs=1",
            "--set",
            "model.units=[8]",
            "--run-dir",
            str(tmp_path / f"run-{data.stem}"),
            "--quiet",
        )
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / f"run-{data.stem}" / "model.keras").exists()


def test_init_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "config.yaml"
    out.write_text("keep me\n")
    result = _init(str(DATA / "weather.csv"), "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr == f"error: {out}: already exists. Fix: pass --force to replace it, or -o another file.\n"
    assert out.read_text() == "keep me\n"
    assert _init(str(DATA / "weather.csv"), "-o", str(out), "--force").exit_code == 0
    assert out.read_text().startswith("# Written by")


def test_init_a_directory_as_data_or_output_is_one_line(tmp_path):
    """Not click's usage block (exit 2): one line naming the directory, exit 1, --force or not, nothing written."""
    folder = tmp_path / "configs"
    folder.mkdir()
    for args in (
        [str(DATA / "weather.csv"), "-o", str(folder)],
        [str(DATA / "weather.csv"), "-o", str(folder), "--force"],
    ):
        result = _init(*args)
        assert result.exit_code == 1, result.output
        assert (
            result.stderr == f"error: {folder}: is a directory. Fix: pass a file name with -o, e.g. -o config.yaml.\n"
        )
    result = _init(str(tmp_path), "-o", str(tmp_path / "c.yaml"))
    assert result.exit_code == 1, result.output
    assert (
        result.stderr == f"error: {tmp_path}: is a directory, not a data file. Fix: give init a CSV or Parquet file.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"] and not list(folder.iterdir())


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Fix:" in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def test_init_ambiguous_time_columns(tmp_path):
    csv = tmp_path / "two.csv"
    pd.DataFrame({"start": ["2020-01-01", "2020-01-02", "2020-01-03"] * 20, "y": np.arange(60.0)}).assign(
        end=lambda d: d["start"]
    ).to_csv(csv, index=False)
    err = _one_line_error(_init(str(csv), "-o", str(tmp_path / "c.yaml")))
    assert "several columns hold timestamps: start, end" in err and "Fix: name the one" in err
    assert "--time-column start" in err
    assert not (tmp_path / "c.yaml").exists()


def test_init_no_time_column_and_no_numeric_column(tmp_path):
    csv = tmp_path / "nodate.csv"
    pd.DataFrame({"date": np.arange(50), "y": np.arange(50.0)}).to_csv(csv, index=False)
    err = _one_line_error(_init(str(csv), "-o", str(tmp_path / "c.yaml")))
    assert "no time column found" in err and "'date' is named like one but its values are not timestamps" in err

    csv = tmp_path / "text.csv"
    pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d"), "kind": ["a", "b"] * 25}
    ).to_csv(csv, index=False)
    err = _one_line_error(_init(str(csv), "-o", str(tmp_path / "c.yaml")))
    assert "no numeric column to forecast (columns: date, kind)" in err
    assert not (tmp_path / "c.yaml").exists()


def test_init_bad_target_names_the_columns(tmp_path):
    err = _one_line_error(_init(str(DATA / "weather.csv"), "--target", "temp_mx", "-o", str(tmp_path / "c.yaml")))
    assert "--target 'temp_mx' is not a column (did you mean 'temp_max'?)" in err
    err = _one_line_error(_init(str(DATA / "weather.csv"), "--target", "weather", "-o", str(tmp_path / "c.yaml")))
    assert "--target 'weather' is not numeric" in err


def test_train_on_a_data_file_answers_with_init(tmp_path):
    for name in ("weather.csv", "x.parquet", "x.tsv"):
        result = CliRunner().invoke(cli, ["train", str(DATA / name) if name == "weather.csv" else name])
        err = _one_line_error(result)
        assert "is a data file, not a config" in err
        assert (
            f"Fix: write a config for it with: rnnforecast init {DATA / name if name == 'weather.csv' else name}" in err
        )
    result = CliRunner().invoke(cli, ["validate", "data.csv"])
    assert "rnnforecast init data.csv" in _one_line_error(result)


def test_init_finds_a_year_column_and_writes_a_complete_config(tmp_path):
    """Sunspots by year: a numeric YEAR column is the time (data.time_unit: year), yearly steps, no season;
    the config has intervals on, season_length with its reason and a units placeholder."""
    years = np.arange(1749, 2024)
    rng = np.random.default_rng(0)
    y = 80 + 60 * np.sin(2 * np.pi * (years - 1749) / 11) + rng.normal(0, 10, len(years))
    pd.DataFrame({"YEAR": years, "SUNSPOTS": y.round(1)}).to_csv(tmp_path / "sun.csv", index=False)
    out = tmp_path / "sun.yaml"
    result = _init(str(tmp_path / "sun.csv"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "time:        YEAR, yearly (year starts), 1749-01-01 .. 2023-01-01" in result.stdout
    raw = yaml.safe_load(out.read_text())
    assert raw["data"]["time_column"] == "YEAR" and raw["data"]["time_unit"] == "year"
    assert raw["data"]["frequency"] == "YS-JAN" and raw["data"]["season_length"] == 1
    assert raw["intervals"] == {"levels": [80, 95]}
    text = out.read_text()
    assert "# units: {SUNSPOTS: UNIT}" in text and "no season within a year" in text


def test_init_time_unit_reads_epoch_seconds(tmp_path):
    t = 1_700_000_000 + 3600 * np.arange(300)
    pd.DataFrame({"t": t, "load": np.random.default_rng(1).normal(size=300).round(3)}).to_csv(
        tmp_path / "e.csv", index=False
    )
    out = tmp_path / "e.yaml"
    without = _init(str(tmp_path / "e.csv"), "-o", str(out))
    assert without.exit_code == 1 and "no time column found" in without.stderr
    result = _init(str(tmp_path / "e.csv"), "--time-column", "t", "--time-unit", "s", "-o", str(out))
    assert result.exit_code == 0, result.output
    raw = yaml.safe_load(out.read_text())["data"]
    assert (raw["time_unit"], raw["frequency"], raw["season_length"]) == ("s", "h", 24)
    # 1_700_000_000 s after 1970 is 2023-11-14 22:13:20 UTC
    assert "2023-11-14 22:13:20 .. 2023-11-27 09:13:20" in result.stdout
    # --time-unit alone: the message says what it was missing and names the one rising number column
    alone = _init(str(tmp_path / "e.csv"), "--time-unit", "s", "-o", str(tmp_path / "f.yaml"))
    assert alone.exit_code == 1 and not (tmp_path / "f.yaml").exists()
    assert "--time-unit s says a number column counts time, and none is named like time" in alone.stderr
    assert "Fix: name it, e.g. --time-column t --time-unit s." in alone.stderr
    # --time-column alone: the number is shown as the file writes it, not as numpy's repr
    col = _init(str(tmp_path / "e.csv"), "--time-column", "t", "-o", str(tmp_path / "g.yaml"))
    assert col.exit_code == 1 and "holds numbers (e.g. 1700000000), which could be years" in col.stderr
    assert "np.int64" not in col.stderr


def test_init_counts_absent_timestamps_as_missing(tmp_path):
    """A daily file with 20 dates absent said "missing: none"; the loader adds them as rows and fills them."""
    days = pd.date_range("2022-01-01", periods=400, freq="D")
    keep = np.ones(400, bool)
    keep[np.random.default_rng(4).choice(np.arange(6, 399), 20, replace=False)] = False  # row 5 stays: its NaN
    y = np.round(10 + np.sin(np.arange(400) * 2 * np.pi / 7), 2)
    y[5] = np.nan
    pd.DataFrame({"date": days[keep], "visits": y[keep]}).to_csv(tmp_path / "v.csv", index=False)
    result = _init(str(tmp_path / "v.csv"), "-o", str(tmp_path / "v.yaml"))
    assert result.exit_code == 0, result.output
    want = "missing:     visits 1; 20 timestamps absent (added as rows, filled like missing values)\n"
    assert want in result.stdout, result.stdout


def test_init_leaves_out_a_column_with_one_value_and_says_so(tmp_path):
    """A constant column (region_code = 7 in every row) carries nothing to learn from; as a feature it only made the
    forecast depend on a value that never varied in training."""
    n = 200
    t = pd.date_range("2022-01-01", periods=n, freq="D")
    rng = np.random.default_rng(2)
    pd.DataFrame(
        {"date": t, "demand": (50 + 5 * np.sin(np.arange(n) / 3) + rng.normal(0, 1, n)).round(1), "region_code": 7}
    ).to_csv(tmp_path / "c.csv", index=False)
    result = _init(str(tmp_path / "c.csv"), "-o", str(tmp_path / "c.yaml"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "c.yaml").read_text()
    assert "# Not used: region_code (one value only)." in text and "numeric:     demand\n" in result.stdout
    assert "region_code" not in str(yaml.safe_load(text)["data"])
    # named as the target it is not dropped in silence: the check every config gets says why it cannot be one
    named = _init(str(tmp_path / "c.csv"), "--target", "region_code", "-o", str(tmp_path / "d.yaml"))
    assert named.exit_code == 1 and "target column 'region_code' is constant (7)" in named.stderr


@pytest.mark.parametrize(
    "values, words, option",
    [
        (['"1,234.5"', '"12,080.25"', '"987.0"'], "thousands separators (e.g. '12,080.25')", "thousands=','"),
        (['"12,5"', '"13,25"', '"9,0"'], "decimal commas (e.g. '13,25')", "decimal=','"),
    ],
)
def test_init_names_numbers_written_with_commas(tmp_path, values, words, option):
    rows = "".join(f"2024-01-{d:02d},{values[d % 3]}\n" for d in range(1, 29))
    (tmp_path / "n.csv").write_text("date,revenue\n" + rows)
    result = _init(str(tmp_path / "n.csv"), "-o", str(tmp_path / "n.yaml"))
    assert result.exit_code == 1 and not (tmp_path / "n.yaml").exists()
    assert f"column 'revenue' writes numbers with {words}" in result.stderr
    assert f"pd.read_csv(path, {option})" in result.stderr


def test_init_says_why_a_column_of_comma_numbers_beside_a_numeric_one_is_not_used(tmp_path):
    rows = "".join(f'2024-01-{d:02d},{d * 1.5},"{d},{d * 7 % 1000:03d}.5"\n' for d in range(1, 29))
    (tmp_path / "m.csv").write_text("date,visits,revenue\n" + rows)
    result = _init(str(tmp_path / "m.csv"), "-o", str(tmp_path / "m.yaml"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "m.yaml").read_text()
    assert "# Not used: revenue (numbers written with thousands separators, e.g. '1,007.5': read them with" in text
    assert "revenue" not in str(yaml.safe_load(text)["data"]) and "visits" in str(yaml.safe_load(text)["data"])


def test_decimal_commas_are_numbers_not_timestamps_and_mixed_thousands_are_named(tmp_path):
    """'60,20' parsed as a timestamp: init said 'several columns hold timestamps: date, eu'. And a column of '8,432'
    beside '10' was 'text with 164 distinct values'."""
    rows = "".join(f'2024-01-{d:02d},{d},"{60 + d},{d:02d}","{"8,432" if d % 2 else "10"}"\n' for d in range(1, 29))
    (tmp_path / "e.csv").write_text("date,y,eu,m\n" + rows)
    result = _init(str(tmp_path / "e.csv"), "--target", "y", "-o", str(tmp_path / "e.yaml"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "e.yaml").read_text()
    assert "eu (numbers written with decimal commas, e.g. '61,01'" in text
    assert "m (numbers written with thousands separators, e.g. '8,432'" in text
    assert "time:        date, daily" in result.stdout


@pytest.mark.parametrize(
    ("args", "input_note", "horizon_note"),
    [
        # the step's suggestion: a week of hours in, a day out, nothing shortened
        ((), "# steps of history; one week in, one day out\n", "# steps forecast at once\n"),
        # --horizon 96: the input is still the week, the horizon is the user's (it used to say "one day out
        # (shortened to fit the file)" beside a horizon of 96 in a file of 2000 rows)
        (("--horizon", "96"), "# steps of history; one week in\n", "# steps forecast at once (given with --horizon)\n"),
        # --horizon 200: the input grows to the horizon (200 > 168)
        (("--horizon", "200"), "# steps of history; one week in (at least the horizon)\n", "(given with --horizon)\n"),
    ],
)
def test_init_window_comments_say_where_each_number_came_from(tmp_path, args, input_note, horizon_note):
    t = pd.date_range("2021-01-01", periods=2000, freq="h")
    y = 10 + np.sin(2 * np.pi * np.arange(2000) / 24) + np.random.default_rng(0).normal(0, 0.3, 2000)
    pd.DataFrame({"time": t.strftime("%Y-%m-%d %H:%M"), "load": y}).to_csv(tmp_path / "h.csv", index=False)
    out = tmp_path / "h.yaml"
    result = _init(str(tmp_path / "h.csv"), "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines(keepends=True)
    window = yaml.safe_load(out.read_text())["window"]
    expected_h = int(args[1]) if args else 24
    assert window == {"input_length": max(168, expected_h), "horizon": expected_h}
    (line_in,) = [x for x in lines if x.lstrip().startswith("input_length:")]
    (line_h,) = [x for x in lines if x.lstrip().startswith("horizon:")]
    assert line_in.endswith(input_note) and line_h.endswith(horizon_note)
    assert "shortened" not in out.read_text()


def test_init_names_the_years_pandas_cannot_hold_and_a_text_cell_of_the_target(tmp_path):
    """Years 2200..2499 in a column named year: the first one past 2262-04-11 with its line (it said 'no time column
    found'); a word in the numeric target: its line and value, as validate says (it said only 'not numeric')."""
    future = tmp_path / "future.csv"
    future.write_text("year,y\n" + "".join(f"{2200 + i},{i % 13}\n" for i in range(300)))
    err = _one_line_error(_init(str(future), "--target", "y", "-o", str(tmp_path / "a.yaml")))
    assert err.startswith(
        f"error: {future}:65: time value 2263-01-01 00:00:00 in column 'year' lies outside"
    )  # 2263: row 64
    text = tmp_path / "text.csv"
    rows = [f"2020-01-{d:02d},{'abc' if d == 20 else d * 1.5},{d}" for d in range(1, 31)]
    text.write_text("date,y,x\n" + "\n".join(rows) + "\n")
    err = _one_line_error(_init(str(text), "--target", "y", "-o", str(tmp_path / "b.yaml")))
    assert (
        err
        == f"error: {text}:21: column 'y' is not numeric: value 'abc'. Fix: correct that cell (or leave it empty: a missing value).\n"
    )
    assert not list(tmp_path.glob("*.yaml"))

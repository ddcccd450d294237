"""The first hour: train's "what now" block, the runs/<name>-latest link, numbers rounded to the data's precision."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, TINY, merge, run_cli, write_config
from rnnforecast import nextsteps
from rnnforecast.cli import cli

# --------------------------------------------------------------------------- rounding


def test_data_decimals_is_the_precision_the_values_are_recorded_with():
    assert nextsteps.data_decimals([12.8, 10.6, 3.0, -1.1]) == 1
    assert nextsteps.data_decimals(np.array([12.8, 10.6, 3.0], dtype=np.float32)) == 1  # float32 noise ignored
    assert nextsteps.data_decimals([1200, 31, 7]) == 0
    assert nextsteps.data_decimals([0.25, 0.5, 1.75]) == 2
    noisy = np.sin(np.arange(200) / 7) + 0.1
    assert nextsteps.data_decimals(noisy) == 6  # the cap
    weather = pd.read_csv(DATA / "weather.csv")
    assert nextsteps.data_decimals(weather["temp_max"]) == 1  # the demo's target: 0.1 °C


def _forecast(p50_shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": ["2016-01-01 00:00:00", "2016-01-02 00:00:00"],
            "step": [1, 2],
            "quantile": ["mean", "mean"],
            "y": [13.469091083732195, 11.922337647997264],
            "y_p10": [7.993353115625972, 5.511096299480166],
            "y_p50": [13.469091083732195 + p50_shift, 11.922337647997264 + p50_shift],
            "y_p90": [18.94482905183842, 18.333578996514362],
        }
    )


def test_the_printed_forecast_drops_what_repeats_and_rounds_to_the_data():
    shown = nextsteps.printable_forecast(_forecast(), ["y"], {"y": 1})
    assert list(shown.columns) == ["timestamp", "step", "y", "y_p10", "y_p90"]  # no quantile=mean, no p50 copy
    assert shown["timestamp"].tolist() == ["2016-01-01", "2016-01-02"]  # daily: dates
    assert shown["y"].tolist() == [13.5, 11.9] and shown["y_p90"].tolist() == [18.9, 18.3]
    # a p50 that differs from the point forecast (a quantile head's mean is not its median) stays
    shown = nextsteps.printable_forecast(_forecast(0.5), ["y"], {"y": 2})
    assert "y_p50" in shown and shown["y_p50"].tolist() == [13.97, 12.42]
    # hourly times keep their time of day
    hourly = _forecast().assign(timestamp=["2016-01-01 00:00:00", "2016-01-01 01:00:00"])
    assert nextsteps.printable_forecast(hourly, ["y"], {"y": 1})["timestamp"].iloc[1] == "2016-01-01 01:00:00"


def test_a_forecast_of_big_numbers_keeps_four_significant_digits_not_the_datas_six():
    big = _forecast().assign(
        y=[123456.789123, 98765.4321], y_p10=[120000.5, 95000.25], y_p50=[0.0, 0.0], y_p90=[130000.1, 100000.9]
    )
    shown = nextsteps.printable_forecast(big, ["y"], {"y": 6})
    assert shown["y"].tolist() == [123457.0, 98765.0]
    # the note says which rule rounded: not "the data's precision" when the data has more decimals than shown
    note = nextsteps.rounding_note(big, ["y"], {"y": 6}, "forecast.csv")
    assert note.startswith("rounded (y to 0 decimals, the data's precision or 4 significant digits, the coarser)")
    small = nextsteps.rounding_note(_forecast(), ["y"], {"y": 1}, "forecast.csv")
    assert small.startswith("rounded (y to 1 decimal, the data's precision)")


def test_big_values_keep_their_recorded_decimals():
    """A millionth of 1e9 is 1000: the float32-noise tolerance alone called 1000000531.25 a whole number."""
    v = 1e9 + np.array([531.25, 17.5, 0.75, 812.0, 3.5])
    assert nextsteps.data_decimals(v) == 2
    assert nextsteps.data_decimals(np.round(v)) == 0
    assert nextsteps.data_decimals([-2.25, -17.5, -0.75]) == 2  # negatives alike


# --------------------------------------------------------------------------- the latest link


def test_latest_link_is_made_replaced_and_never_takes_a_users_name(tmp_path: Path):
    a, b = tmp_path / "demo-20260101-000000", tmp_path / "demo-20260101-000001"
    a.mkdir(), b.mkdir()
    link, note = nextsteps.update_latest(a, "demo")
    assert note is None and link == tmp_path / "demo-latest" and os.readlink(link) == a.name  # relative
    link, note = nextsteps.update_latest(b, "demo")
    assert note is None and os.readlink(link) == b.name and link.resolve() == b.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name, "demo-latest"])  # no temporary

    mine = tmp_path / "mine-latest"  # a user's own file with the link's name
    mine.write_text("my notes")
    link, note = nextsteps.update_latest(b, "mine")
    assert link is None and "not made by rnnforecast" in note and mine.read_text() == "my notes"
    (tmp_path / "dir-latest").mkdir()
    (tmp_path / "dir-latest" / "keep").write_text("x")
    assert nextsteps.update_latest(b, "dir")[0] is None and (tmp_path / "dir-latest" / "keep").read_text() == "x"
    os.symlink("/etc", tmp_path / "elsewhere-latest")  # a user's link to a path: not ours either
    assert nextsteps.update_latest(b, "elsewhere")[0] is None and os.readlink(tmp_path / "elsewhere-latest") == "/etc"


@pytest.fixture
def tiny_demo(tmp_path: Path, monkeypatch) -> Path:
    cfg = yaml.safe_load((CONFIGS / "weather_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(cfg, merge(TINY, {"output": {"runs_dir": "runs"}}))
    monkeypatch.chdir(tmp_path)
    return write_config(tmp_path, cfg)


@pytest.mark.slow
def test_train_ends_with_the_forecast_and_the_next_commands_and_latest_works_everywhere(tiny_demo: Path):
    runner = CliRunner()
    r1 = runner.invoke(cli, ["train", str(tiny_demo), "-q"])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(cli, ["train", str(tiny_demo), "-q"])
    assert r2.exit_code == 0, r2.output
    runs = sorted(p for p in Path("runs").iterdir() if not p.is_symlink())
    assert len(runs) == 2
    link = Path("runs/weather_gru-latest")
    assert os.readlink(link) == runs[1].name  # the newer run

    out = r2.stdout
    block = out[out.index("forecast after the data's last row") :]
    forecast = pd.read_csv(runs[1] / "forecast.csv")
    lines = block.splitlines()
    assert lines[1].split() == [
        "timestamp",
        "step",
        "temp_max",
        "temp_max_p2.5",
        "temp_max_p10",
        "temp_max_p90",
        "temp_max_p97.5",
    ]
    for h in range(len(forecast)):  # the table shows forecast.csv rounded to 0.1 °C, dates without 00:00:00
        cells, row = lines[2 + h].split(), forecast.iloc[h]
        assert cells[:3] == [row["timestamp"], str(h + 1), f"{row['temp_max']:.1f}"], (cells, row)
        assert cells[3:] == [
            f"{row[c]:.1f}" for c in ("temp_max_p2.5", "temp_max_p10", "temp_max_p90", "temp_max_p97.5")
        ]
    assert "quantile" not in block.splitlines()[1] and "temp_max_p50" not in block
    assert f"{runs[1]}/forecast.csv keeps full precision" in block
    assert (
        f"plots      {runs[1]}/plots/ (error_by_horizon.png, forecast.png, forecast_next.png, loss.png, residuals.png)"
        in block
    )
    assert (
        "rnnforecast report runs/weather_gru-latest" in block and "rnnforecast predict runs/weather_gru-latest" in block
    )

    for args in (["predict", str(link)], ["evaluate", str(link)], ["report", str(link)]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, (args, r.output)
    # beside the run the link points to, named after it (not "latest-report.html", which the next run would take)
    assert (runs[1].parent / f"{runs[1].name}-report.html").exists() and not (runs[1] / "report.html").exists()
    printed = pd.read_csv(__import__("io").StringIO(runner.invoke(cli, ["predict", str(link)]).stdout))
    assert list(printed.columns) == [
        "timestamp",
        "step",
        "temp_max",
        *[f"temp_max_p{q}" for q in ("2.5", "10", "90", "97.5")],
    ]
    np.testing.assert_allclose(printed["temp_max"], forecast["temp_max"].round(1), atol=0.051)


@pytest.mark.slow
def test_a_users_file_called_latest_is_never_overwritten(tiny_demo: Path):
    Path("runs").mkdir()
    mine = Path("runs/weather_gru-latest")
    mine.write_text("my own file")
    r = CliRunner().invoke(cli, ["train", str(tiny_demo), "-q"])
    assert r.exit_code == 0, r.output
    assert mine.read_text() == "my own file" and not mine.is_symlink()
    assert "runs/weather_gru-latest exists and was not made by rnnforecast; left as it is" in r.output
    run = next(p for p in Path("runs").iterdir() if p != mine)
    assert f"rnnforecast report {run}" in r.stdout  # the commands name the real run instead


@pytest.mark.slow
def test_no_latest_link_for_an_explicit_run_dir(tiny_demo: Path):
    r = CliRunner().invoke(cli, ["train", str(tiny_demo), "-q", "--run-dir", "here"])
    assert r.exit_code == 0, r.output
    assert not Path("runs").exists() and "rnnforecast report here" in r.stdout and "-latest" not in r.stdout


# --------------------------------------------------------------------------- validate


def test_validate_prints_the_summary_first_and_ends_ready_to_train():
    config = str(CONFIGS / "weather_gru.yaml")
    r = CliRunner().invoke(cli, ["validate", config, "--set", "window.horizon=4"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.rstrip().splitlines()
    assert lines[0] == "# data" and "# resolved config" not in r.stdout
    assert lines[-1] == f"ready to train: rnnforecast train {config} --set window.horizon=4"
    assert "time range: 2012-01-01 .. 2015-12-31" in r.stdout  # daily: dates, no 00:00:00
    assert "train rows       0..1022    (  1023 rows)  2012-01-01 .. 2014-10-19" in r.stdout
    shown = CliRunner().invoke(cli, ["validate", config, "--show-config"]).stdout.rstrip().splitlines()
    assert shown[-1] == f"ready to train: rnnforecast train {config}"
    assert shown.index("# windows") < shown.index("# resolved config") < len(shown) - 1
    assert "  horizon: 3" in shown[shown.index("# resolved config") :]


def test_hourly_times_keep_their_time_of_day(tmp_path: Path):
    from conftest import sine_frame

    csv = tmp_path / "sine.csv"
    sine_frame(200).to_csv(csv, index=False)
    cfg = write_config(tmp_path, merge({"data": {"path": str(csv), "target": "y", "time_column": "time"}}, TINY))
    r = CliRunner().invoke(cli, ["validate", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "time range: 2020-01-01 00:00:00 .. 2020-01-09 07:00:00" in r.stdout


# --------------------------------------------------------------------------- compare, tune, backtest lines


def test_compare_warns_for_each_cell_that_loses_to_persistence():
    from rnnforecast.text import ranked_table

    def cell(mase):
        keys = ("params", "seconds_per_epoch", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase")
        mean = {**dict.fromkeys(keys, 1.0), "test_mase": mase, "test_skill": 0.0}
        return {"mean": mean, "std": dict.fromkeys(mean), "runs": []}

    rec = {
        "n_test_windows": 10,
        "seeds": [42],
        "ranking": ["gru", "lstm", "simple_rnn"],
        "results": {"gru": cell(0.9), "lstm": cell(1.0), "simple_rnn": cell(1.25)},
        "baselines": {"persistence": {"test_mse": 3.0, "test_mae": 1.2, "test_mase": 1.0, "test_skill": 0.0}},
    }
    lines = ranked_table(rec).splitlines()
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        "warning: MASE 1.000 >= 1 on the test split: lstm does no better than repeating the last observed value "
        "(persistence).",
        "warning: MASE 1.250 >= 1 on the test split: simple_rnn does no better than repeating the last observed value "
        "(persistence).",
    ]


@pytest.mark.slow
def test_backtest_epoch_lines_name_their_fold(tmp_path: Path):
    from conftest import sine_frame

    sine_frame(60).to_csv(tmp_path / "s.csv", index=False)
    cfg = {
        "name": "bt",
        "data": {"path": str(tmp_path / "s.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 3, "horizon": 2},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 2, "batch_size": 16, "early_stopping": None},
        "output": {"plots": False},
    }
    r = run_cli("backtest", str(write_config(tmp_path, cfg)), "--folds", "2", "--out", str(tmp_path / "bt"))
    assert r.returncode == 0, r.stderr
    epochs = [line.split("  loss")[0] for line in r.stderr.splitlines() if "epoch " in line and "loss" in line]
    assert epochs == ["fold 0  epoch   1/2", "fold 0  epoch   2/2", "fold 1  epoch   1/2", "fold 1  epoch   2/2"]
    table = r.stdout.splitlines()
    assert table[0].split()[0] == "fold" and [row.split()[0] for row in table[1:3]] == ["0", "1"]  # the same labels


@pytest.mark.slow
def test_tune_lines_name_their_metric(tmp_path: Path):
    from test_tune import tune_config

    r = run_cli(
        "tune", str(tune_config(tmp_path)), "--trials", "1", "--out", str(tmp_path / "t"), "--metric", "val_rmse"
    )
    assert r.returncode == 0, r.stderr
    done = [line for line in r.stderr.splitlines() if line.startswith("trial 0 finished:")]
    assert len(done) == 1 and re.fullmatch(r"trial 0 finished: val_rmse \d+\.\d+", done[0]), r.stderr


# --------------------------------------------------------------------------- the Python API


def test_cli_words_become_python_words():
    from rnnforecast.api import _python_terms

    assert _python_terms("write e.g. --set training.epochs=3") == 'write e.g. overrides=["training.epochs=3"]'
    assert _python_terms("config.yaml: --set window.horizon") == 'config.yaml: overrides=["window.horizon"]'
    assert _python_terms("pass another --run-dir, or --data FILE") == "pass another run_dir, or data FILE"
    assert _python_terms("--resume keeps its name") == "--resume keeps its name"  # no API argument: as it is


def _api_config(tmp_path: Path) -> dict:
    cfg = yaml.safe_load((CONFIGS / "weather_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    return merge(merge(cfg, TINY), {"output": {"plots": False}})


@pytest.mark.slow
def test_the_api_numbers_an_existing_run_dir_and_overwrites_only_its_own_runs(tmp_path: Path, monkeypatch):
    from rnnforecast import api
    from rnnforecast.errors import RunError

    monkeypatch.chdir(tmp_path)
    cfg = _api_config(tmp_path)
    first = api.train(cfg, run_dir="runs/x")
    assert first.run_dir == (tmp_path / "runs/x").resolve()
    model = (first.run_dir / "model.keras").read_bytes()
    second = api.train(cfg, run_dir="runs/x")  # the README snippet, run again
    assert second.run_dir == (tmp_path / "runs/x-2").resolve() and (first.run_dir / "model.keras").read_bytes() == model

    (first.run_dir / "report.html").write_text("made by rnnforecast report")
    again = api.train(cfg, run_dir="runs/x", overwrite=True, overrides=["seed=7"])
    assert again.run_dir == first.run_dir and yaml.safe_load((first.run_dir / "config.yaml").read_text())["seed"] == 7
    assert not (first.run_dir / "report.html").exists()  # the old run is gone, as asked
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["x", "x-2"]  # no hidden leftover

    (first.run_dir / "notes.txt").write_text("mine")
    with pytest.raises(RunError) as e:
        api.train(cfg, run_dir="runs/x", overwrite=True)
    assert "overwrite=True would delete notes.txt" in str(e.value) and "--run-dir" not in str(e.value)
    assert (first.run_dir / "notes.txt").read_text() == "mine" and (first.run_dir / "model.keras").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("a,b\n")
    with pytest.raises(RunError):
        api.train(cfg, run_dir=mine, overwrite=True)
    assert (mine / "data.csv").read_text() == "a,b\n"


@pytest.mark.slow
def test_api_errors_name_arguments_not_cli_options(tmp_path: Path, monkeypatch, weather_run):
    from rnnforecast import api
    from rnnforecast.errors import ConfigError, RunError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError) as e:  # a run directory inside another run
        api.train(_api_config(tmp_path), run_dir=weather_run / "inner")
    assert "run_dir lies inside another run directory" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        api.train(_api_config(tmp_path), overrides=["training.epochs"])
    assert str(e.value) == (
        "overrides: overrides expects KEY=VALUE, received 'training.epochs'. "
        'Fix: write e.g. overrides=["training.epochs=3"].'
    )


def test_printed_commands_paste_into_a_shell_whatever_the_path(tmp_path: Path):
    """A run directory with a space, a quote and a non-ASCII letter: every command train prints ("what now") and
    the resume hint in UNFINISHED.txt split (shlex, as a shell does) into the real paths, and the printed
    evaluate command runs."""
    import shlex

    from rnnforecast import artifacts

    folder = tmp_path / "my runs" / 'ré\'s "q"'
    folder.mkdir(parents=True)
    cfg = merge(yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text()), TINY)
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg["output"] = {"plots": False}
    config = write_config(folder, cfg, "my config.yaml")
    run = folder / "run ü"
    proc = run_cli("train", str(config), "--run-dir", str(run), "--set", "seed=3", cwd=folder)  # run shown relative
    assert proc.returncode == 0, proc.stderr
    commands = {ln.split()[0]: ln.split(None, 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("  ")}
    for key in ("report", "forecast", "score", "look"):
        words = shlex.split(commands[key].removeprefix("in ").split("      writes")[0])
        assert words[0] == "rnnforecast" and words[2] == "run ü", (key, words)
    score = shlex.split(commands["score"])
    assert run_cli(*score[1:], cwd=folder).returncode == 0
    from rnnforecast.cli import _config_path

    named = _config_path(str(config), ("model.units=[4, 4]",))  # as train names it for the resume hint
    partial = artifacts.start(folder / "again ü", named)
    try:
        line = (partial / artifacts.MARKER).read_text().splitlines()[1]
        words = shlex.split(line.removeprefix("Resume it with: "))
        assert words[2:] == [str(config), "--set", "model.units=[4, 4]", "--resume", str(partial)]
    finally:
        artifacts.release(partial)


def test_gaps_in_new_data_do_not_change_the_rounding(weather_run, tmp_path: Path):
    """40 rows of weather.csv (temperatures in tenths) with 6 rows taken out: the interpolated values have more
    decimals, but the printed forecast keeps the data's 1 decimal (it printed 2, as for 4 significant digits)."""
    rows = pd.read_csv(DATA / "weather.csv").tail(40)
    rows.drop(rows.index[[5, 9, 14, 20, 26, 31]]).to_csv(tmp_path / "gaps.csv", index=False)
    proc = run_cli("predict", str(weather_run), "--data", str(tmp_path / "gaps.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "rounded (temp_max to 1 decimal, the data's precision)" in proc.stderr
    values = pd.read_csv(pd.io.common.StringIO(proc.stdout))["temp_max"]
    assert all(re.fullmatch(r"-?\d+\.\d", f"{v}") for v in values)


def test_predict_says_when_the_rows_it_starts_from_were_filled_in(weather_run, tmp_path: Path):
    """Days 3 and 7 from the end (the window's newest but two and its oldest) and day 8 (just before it) missing:
    predict forecasts from interpolated rows and says 2 of 7; gaps before the window say nothing."""
    rows = pd.read_csv(DATA / "weather.csv").tail(40)
    rows.drop(rows.index[[-3, -7, -8]]).to_csv(tmp_path / "recent.csv", index=False)
    proc = run_cli("predict", str(weather_run), "--data", str(tmp_path / "recent.csv"))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"warning: {tmp_path / 'recent.csv'}: 2 of the 7 rows the forecast starts from had no target value and were "
        "filled in (data.missing): the forecast leans on invented values." in proc.stderr
    )
    rows.drop(rows.index[[3, 9]]).to_csv(tmp_path / "older.csv", index=False)
    proc = run_cli("predict", str(weather_run), "--data", str(tmp_path / "older.csv"))
    assert proc.returncode == 0 and "filled in" not in proc.stderr, proc.stderr

"""Forecaster: loaded once, it forecasts and scores what the CLI prints; save/load round trip; damaged runs refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, run_cli
from rnnforecast.errors import RunError
from rnnforecast.forecaster import Forecaster


def _cli_json(*args: str) -> dict:
    r = run_cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _numbers(table: pd.DataFrame) -> dict[str, list]:
    """The table's numeric columns as plain floats (what --json prints)."""
    return {c: [float(v) for v in table[c]] for c in table.columns if c not in ("timestamp", "series", "quantile")}


@pytest.mark.slow
def test_one_load_forecasts_the_own_data_and_new_data_as_predict_json_does(weather_run, tmp_path):
    f = Forecaster.load(weather_run)
    assert f.calibration is not None and f.config.window.horizon == 2  # the weather config's intervals, TINY window
    head = pd.read_csv(DATA / "weather.csv").iloc[:900]  # new data: ends 561 rows before the run's own
    head.to_csv(tmp_path / "head.csv", index=False)
    for data_path, args in ((None, ()), (str(tmp_path / "head.csv"), ("--data", str(tmp_path / "head.csv")))):
        data, _ = f.read_data(data_path)
        table = f.forecast(data)
        printed = pd.DataFrame(_cli_json("predict", str(weather_run), *args)["forecast"])
        assert list(printed.columns) == list(table.columns)
        assert _numbers(printed) == _numbers(table)  # exact: the same float32 numbers
        assert list(pd.to_datetime(printed["timestamp"])) == list(table["timestamp"])
    assert table["timestamp"].iloc[0] == pd.Timestamp(head["date"].iloc[-1]) + pd.Timedelta(days=1)  # daily data


@pytest.mark.slow
def test_score_is_what_evaluate_prints_and_its_mae_is_the_mean_absolute_error(weather_run):
    # a final-fit run (training.final_fit, the default): evaluate on the rows it trained on scores the held-out model
    f = Forecaster.load(weather_run, heldout=True)
    assert f.heldout and (weather_run / "heldout" / "model.keras").exists()
    data, _ = f.read_data()
    ev = f.score(data, "val")
    printed = _cli_json("evaluate", str(weather_run), "--split", "val")
    assert json.loads(json.dumps(_plain(ev.metrics))) == printed["metrics"]
    by_hand = np.mean(np.abs(ev.actual - ev.forecasts["model"][..., 0]))
    assert ev.metrics["original"]["overall"]["model"]["mae"] == pytest.approx(by_hand, rel=1e-12)
    persistence = data.raw[ev.starts + data.input_length - 1, data.target_idx[0]]  # the last input value
    assert np.allclose(ev.forecasts["persistence"][:, :, 0, 0], persistence[:, None])
    inside = ev.metrics["intervals"]["model"]["levels"]["80"]["coverage"]["overall"]
    lo, hi = ev.bands["model"][..., 1], ev.bands["model"][..., -2]  # p10 and p90 of (p2.5, p10, p50, p90, p97.5)
    assert inside == pytest.approx(100 * np.mean((ev.actual >= lo) & (ev.actual <= hi)))


def _plain(obj):
    from rnnforecast.fsio import plain

    return plain(obj)


@pytest.mark.slow
def test_save_then_load_gives_the_same_forecaster(weather_run, tmp_path):
    f = Forecaster.load(weather_run)
    data, _ = f.read_data()
    f.save(tmp_path / "copy")
    g = Forecaster.load(tmp_path / "copy")
    assert (tmp_path / "copy" / "model.keras").read_bytes() == (weather_run / "model.keras").read_bytes()
    assert g.calibration.to_dict() == f.calibration.to_dict()
    assert np.array_equal(g.scaler.scale, f.scaler.scale) and g.schema == f.schema
    pd.testing.assert_frame_equal(g.forecast(data), f.forecast(data))
    # the Keras model saved by Keras (not copied) forecasts the same numbers
    k = Forecaster.load(weather_run, keras=True)
    k.save(tmp_path / "resaved")
    h = Forecaster.load(tmp_path / "resaved")
    assert np.allclose(h.forecast(data)["temp_max"], f.forecast(data)["temp_max"], rtol=1e-5, atol=1e-5)


def test_save_writes_only_a_new_directory(weather_run, tmp_path):
    f = Forecaster.load(weather_run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own config\n")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in weather_run.iterdir())
    for target, words in (
        (mine, "already exists and is not empty"),  # a user's folder: its config.yaml is not replaced
        (weather_run, "is the run this forecaster was loaded from"),
        (weather_run / "copy", "lies inside the run"),  # never into a result, new name or not
        (tmp_path / "copy" / ".." / "mine", "already exists and is not empty"),
    ):
        with pytest.raises(RunError) as e:
            f.save(target)
        assert words in str(e.value), target
    assert (mine / "config.yaml").read_text() == "my own config\n" and [p.name for p in mine.iterdir()] == [
        "config.yaml"
    ]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in weather_run.iterdir()) == before
    (tmp_path / "empty").mkdir()
    assert f.save(tmp_path / "empty") == tmp_path / "empty" and Forecaster.load(tmp_path / "empty").schema == f.schema
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine"]  # no temporary left


@pytest.mark.slow
def test_a_damaged_run_is_refused_with_one_clean_run_error(weather_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(weather_run, run)
    (run / "scaler.json").write_text('{"kind": "standard"')
    with pytest.raises(RunError) as e:
        Forecaster.load(run)
    assert e.value.message == "cannot read the scaler (JSONDecodeError)" and e.value.where.endswith("scaler.json")
    r = run_cli("predict", str(run))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {e.value.one_line()}"]
    shutil.copy(weather_run / "scaler.json", run / "scaler.json")
    (run / "intervals.json").write_text("[]")  # JSON, but not a mapping: was an internal error (AttributeError)
    with pytest.raises(RunError, match=r"cannot read intervals.json \(AttributeError\)"):
        Forecaster.load(run)

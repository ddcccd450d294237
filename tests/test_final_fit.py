"""training.final_fit through the CLI: predict forecasts with a model trained on every row, the held-out scores stay.

A noisy sine of 300 hourly rows; the held-out run trains 3 epochs at most, then the final fit trains again on every
row for the epochs early stopping chose. Checked independently: the final scaler is the mean/std of every row (by
hand), the held-out one of the first 210; predict's forecast is not the held-out model's (the same run directory
with heldout/ put back in place forecasts otherwise) and is, to float32 precision, the forecast of a model trained
here in-process on every row with the same seed and epochs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli, sine_frame, write_config

N = 300


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("final_fit")
    sine_frame(N, seed=3).to_csv(d / "sine.csv", index=False)
    cfg = {
        "name": "sine",
        "seed": 7,
        "data": {"path": str(d / "sine.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 7, "horizon": 2},
        "model": {"cell": "gru", "units": [8]},
        "training": {"epochs": 3, "batch_size": 32},
        "intervals": {"levels": [80]},
        "output": {"plots": False},
    }
    config = write_config(d, cfg)
    run = d / "run"
    result = run_cli("train", str(config), "--run-dir", str(run), "--final-fit", "--quiet")
    assert result.returncode == 0, result.stderr
    return {"dir": d, "config": config, "run": run, "train": result, "cfg": cfg}


@pytest.mark.slow
def test_the_run_says_which_model_forecasts(final_run):
    run, out = final_run["run"], final_run["train"].stdout
    m = json.loads((run / "metrics.json").read_text())
    fm = m["forecast_model"]
    assert fm["model"] == "final" and fm["epochs"] == m["training"]["best_epoch"] and fm["training_rows"] == N
    assert "forecasts come from the final model, trained again on every row (300 rows" in out, out
    assert "intervals keep their held-out calibration" in out
    assert (run / "heldout" / "model.keras").exists() and not (run / "final-checkpoint").exists()
    saved = yaml_config(run)
    assert saved["training"]["final_fit"] is True
    page = final_run["dir"] / "page.html"  # the report says it too, in the answer, before the scores table
    assert run_cli("report", str(run), "-o", str(page)).returncode == 0
    answer = page.read_text().split("<section id='answer'>")[1].split("</section>")[0]
    said = "Forecasts come from the final model, trained again on every row (300 rows, "
    assert said in answer and answer.index(said) < answer.index("<table") and "held-out model&#x27;s" in answer


def yaml_config(run):
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.mark.slow
def test_scalers_by_hand(final_run):
    y = pd.read_csv(final_run["dir"] / "sine.csv")["y"].to_numpy()
    final = json.loads((final_run["run"] / "scaler.json").read_text())
    held = json.loads((final_run["run"] / "heldout" / "scaler.json").read_text())
    np.testing.assert_allclose(final["shift"][0], [y.mean()], rtol=1e-12)
    np.testing.assert_allclose(final["scale"][0], [y.std()], rtol=1e-12)
    np.testing.assert_allclose(held["shift"][0], [y[:210].mean()], rtol=1e-12)
    assert held["shift"] != final["shift"]


@pytest.mark.slow
def test_predict_uses_the_final_model(final_run, tmp_path):
    run = final_run["run"]
    pred = run_cli("predict", str(run), "-o", str(tmp_path / "final.csv"))  # -o: full precision
    assert pred.returncode == 0, pred.stderr
    got = pd.read_csv(tmp_path / "final.csv")
    written = pd.read_csv(run / "forecast.csv")
    np.testing.assert_allclose(got["y"], written["y"], rtol=1e-6)

    # the same run with the held-out model and scaler in place forecasts otherwise
    other = tmp_path / "heldout_run"
    shutil.copytree(run, other)
    for name in ("model.keras", "scaler.json"):
        shutil.copy(run / "heldout" / name, other / name)
    held = run_cli("predict", str(other), "-o", str(tmp_path / "held.csv"))
    assert held.returncode == 0, held.stderr
    held_y = pd.read_csv(tmp_path / "held.csv")["y"].to_numpy()
    assert np.abs(held_y - got["y"].to_numpy()).max() > 1e-3

    # a model trained here on every row, same seed and epochs, forecasts what predict printed
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast import final_fit, pipeline
    from rnnforecast.config import load_config
    from rnnforecast.data import load_source
    from rnnforecast.series import build

    cfg = load_config(str(run / "config.yaml"), ())  # the config as the run settled it (auto keys decided)
    epochs = json.loads((run / "metrics.json").read_text())["training"]["best_epoch"]
    data = build(load_source(cfg), cfg, train_all=True)
    assert [b for b in data.bounds("train")] == [(0, N)]
    model, _, _ = pipeline.fit_model(final_fit.final_config(cfg, epochs), data, tmp_path / "ckpt", quiet=True)
    mine = pipeline.forecast_table(model, data, data.frame.frequency)
    np.testing.assert_allclose(mine["y"].to_numpy(), got["y"].to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_evaluate_rebuilds_the_held_out_scores(final_run):
    run = final_run["run"]
    ev = run_cli("evaluate", str(run), "--json")
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)["metrics"]["original"]["overall"]
    want = json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]
    assert got["persistence"] == want["persistence"]
    assert got["model"]["mse"] == pytest.approx(want["model"]["mse"], rel=1e-6)


def test_a_copy_of_the_runs_file_scores_the_held_out_model(final_run, tmp_path):
    """The final model trained on every row of the file: evaluate --data with a byte-identical copy elsewhere scores
    the held-out model, as the file itself does (the same numbers as metrics.json), not the final one in-sample."""
    run = final_run["run"]
    copy = tmp_path / "elsewhere.csv"
    shutil.copy(final_run["dir"] / "sine.csv", copy)
    want = json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    for data in (final_run["dir"] / "sine.csv", copy):
        ev = run_cli("evaluate", str(run), "--data", str(data), "--json")
        assert ev.returncode == 0, ev.stderr
        got = json.loads(ev.stdout)["metrics"]["original"]["overall"]["model"]
        assert got["mse"] == pytest.approx(want["mse"], rel=1e-6), data
        assert "in-sample" not in ev.stderr


def test_newer_data_with_the_trained_rows_is_scored_with_a_warning(final_run, tmp_path):
    """The file with 40 more hours appended: its test split (the last 15 %: 51 rows) starts 11 rows before the end of
    the trained rows, so the first windows forecast rows the final model saw; evaluate says how many."""
    newer = tmp_path / "newer.csv"
    sine_frame(N + 40, seed=3).to_csv(newer, index=False)  # the same first 300 rows (same seed), 40 new ones
    pd.testing.assert_frame_equal(pd.read_csv(newer).head(N), pd.read_csv(final_run["dir"] / "sine.csv"))
    ev = run_cli("evaluate", str(final_run["run"]), "--data", str(newer), "--json")
    assert ev.returncode == 0, ev.stderr
    n_windows = json.loads(ev.stdout)["n_windows"]
    # test rows [289, 340): windows whose first target row is 289 .. 299 (the last trained row, 2020-01-13 11:00)
    assert f"warning: 11 of {n_windows} scored windows forecast rows up to 2020-01-13 11:00:00" in ev.stderr
    fresh = tmp_path / "fresh.csv"
    frame = sine_frame(N + 40, seed=3).tail(N)
    frame.assign(time=frame["time"] + pd.Timedelta(hours=300)).to_csv(fresh, index=False)  # every row after them
    ev = run_cli("evaluate", str(final_run["run"]), "--data", str(fresh))
    assert ev.returncode == 0 and "in-sample" not in ev.stderr, ev.stderr


def _killed_in_the_final_fit(tmp_path, model: dict, checkpoint: str):
    """A sine run of 1500 rows (3 epochs, final fit on) trained whole into ``whole/`` (its output in whole.log), then
    again, killed with SIGKILL once the final fit's ``checkpoint`` directory committed its first epoch. Returns
    ``(config, run, partial)``: the run not yet finished, its ``.partial`` left by the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sine_frame(1500, seed=5).to_csv(tmp_path / "sine.csv", index=False)
    cfg = {
        "seed": 3,
        "data": {"path": str(tmp_path / "sine.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 7, "horizon": 2},
        "model": {"cell": "gru", "units": [8], **model},
        "training": {"epochs": 3, "batch_size": 8, "final_fit": True, "early_stopping": None},
        "output": {"plots": False},
    }
    config = write_config(tmp_path, cfg)
    whole = run_cli("train", str(config), "--run-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "whole.log").write_text(whole.stdout + whole.stderr)
    run, partial = tmp_path / "killed", tmp_path / "killed.partial"
    cmd = [sys.executable, "-m", "rnnforecast", "train", str(config), "--run-dir", str(run), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = partial / checkpoint / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run finished before {checkpoint} committed an epoch"
    os.kill(proc.pid, signal.SIGKILL)  # after the final fit's first of 3 epochs
    proc.wait()
    assert json.loads(state.read_text())["epoch"] == 0 and not run.exists()
    return config, run, partial


@pytest.mark.slow
def test_kill_9_during_the_final_fit_resumes_to_the_same_run(tmp_path):
    config, run, partial = _killed_in_the_final_fit(tmp_path, {}, "final-checkpoint")

    resumed = run_cli("train", str(config), "--resume", str(partial))
    assert resumed.returncode == 0, resumed.stderr
    # the held-out training had finished (3 of 3); the final fit continues after its committed epoch (index 0)
    assert "final fit: 3 epoch(s) on every row, seed 3\nresuming from epoch 1 of 3" in resumed.stderr, resumed.stderr
    assert (run / "forecast.csv").read_bytes() == (tmp_path / "whole" / "forecast.csv").read_bytes()
    assert (run / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    # the seconds count the epochs trained before the kill (the held-out training's 3 all were; it was 0.0 s)
    timing = json.loads((run / "timing.json").read_text())
    assert len(timing["epoch_seconds"]) == 3 and timing["train_seconds"] >= sum(timing["epoch_seconds"]) > 0
    assert timing["final_fit_seconds"] > 0


@pytest.mark.slow
def test_kill_9_during_an_ensemble_members_final_fit_resumes_to_the_same_run(tmp_path):
    """A seed ensemble of 2: killed after member 2's final fit committed its first epoch (final-checkpoint-1/),
    resumed: the same forecast and metrics as the run never killed, and no checkpoint left."""
    config, run, partial = _killed_in_the_final_fit(tmp_path, {"ensemble": 2}, "final-checkpoint-1")
    whole = (tmp_path / "whole.log").read_text()
    assert "final fit: 3 epoch(s) on every row, member seed 4" in whole
    assert "its 2 members trained again on every row (1500 rows, 3 / 3 epochs)" in whole

    resumed = run_cli("train", str(config), "--resume", str(partial))
    assert resumed.returncode == 0, resumed.stderr
    assert "final fit: 3 epoch(s) on every row, member seed 4\nresuming from epoch 1 of 3" in resumed.stderr
    assert (run / "forecast.csv").read_bytes() == (tmp_path / "whole" / "forecast.csv").read_bytes()
    assert (run / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert not [p.name for p in run.iterdir() if "checkpoint" in p.name]

    # with two workers member 2's final fit runs in a worker process beside member 1's: the same numbers
    two = run_cli("train", str(config), "--run-dir", str(tmp_path / "two"), "--set", "runtime.workers=2")
    assert two.returncode == 0, two.stderr
    assert "final fit of ensemble members 2..2 in 1 worker process(es)" in two.stderr, two.stderr
    assert (tmp_path / "two" / "forecast.csv").read_bytes() == (tmp_path / "whole" / "forecast.csv").read_bytes()
    assert not [p.name for p in (tmp_path / "two").iterdir() if "checkpoint" in p.name]


def test_an_ensemble_without_final_fit_keeps_its_heldout_members(tmp_path):
    sine_frame(300, seed=3).to_csv(tmp_path / "sine.csv", index=False)
    cfg = {
        "seed": 7,
        "data": {"path": str(tmp_path / "sine.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 7, "horizon": 2},
        "model": {"cell": "gru", "units": [8], "ensemble": 2},
        "training": {"epochs": 1, "batch_size": 32, "final_fit": False},
        "output": {"plots": False},
    }
    result = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    assert (run / "members" / "1.keras").is_file() and not (run / "heldout").exists()
    rec = json.loads((run / "metrics.json").read_text())["forecast_model"]
    assert rec == {"model": "held-out", "final_fit": False}

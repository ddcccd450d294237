"""Train, evaluate, predict: shapes, run directories, reloading, and results a broken pipeline cannot fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, ROOT, run_cli
from rnnforecast.cli import cli

BACKENDS = ("jax", "tensorflow")


@pytest.mark.parametrize(
    "model",
    [
        {"cell": "simple_rnn", "units": [4]},
        {"cell": "lstm", "units": [8, 4]},
        {"cell": "gru", "units": [4], "bidirectional": True},
        {"cell": "gru", "units": [4], "reset_after": False, "dropout": 0.1},
        {"cell": "dense", "units": [16, 8]},
    ],
)
def test_every_cell_predicts_all_steps_and_targets(model):
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast.config import ModelConfig
    from rnnforecast.models import build_model

    m = build_model(ModelConfig(**model), input_length=6, n_features=3, horizon=4, n_targets=2, seed=0)
    out = m({"past": np.zeros((5, 6, 3), dtype="float32")})
    assert tuple(out.shape) == (5, 4, 2, 1)  # (batch, horizon, targets, quantiles)


def test_run_directory_is_complete_and_parses(weather_run: Path):
    for name in (
        "model.keras",
        "config.yaml",
        "scaler.json",
        "schema.json",
        "history.csv",
        "metrics.json",
        "timing.json",
        "forecast.csv",
    ):
        assert (weather_run / name).is_file(), name
    assert not (weather_run / "UNFINISHED.txt").exists() and not (weather_run / "checkpoint").exists()
    for png in ("loss.png", "forecast.png", "error_by_horizon.png", "residuals.png"):
        assert (weather_run / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = yaml.safe_load((weather_run / "config.yaml").read_text())
    assert cfg["window"] == {"input_length": 7, "horizon": 2, "stride": 1}
    schema = json.loads((weather_run / "schema.json").read_text())
    assert schema["format_version"] == 1 and schema["frequency"] == "D" and schema["targets"] == ["temp_max"]
    assert schema["categories"]["weather"] == ["drizzle", "fog", "rain", "snow", "sun"]
    assert schema["last_timestamp"] == {"all": "2015-12-31 00:00:00"}
    history = pd.read_csv(weather_run / "history.csv")
    assert list(history["epoch"]) == [1] and {"loss", "val_loss"} <= set(history.columns)
    m = json.loads((weather_run / "metrics.json").read_text())
    overall = m["test"]["original"]["overall"]
    assert set(overall) == {"model", "persistence", "seasonal_naive", "window_mean"}
    assert overall["persistence"]["mase"] == 1.0
    assert overall["model"]["rmse"] == pytest.approx(overall["model"]["mse"] ** 0.5)
    assert len(m["test"]["original"]["per_lead"]["model"]["mse"]) == 2
    assert m["season_length"] == 7 and m["training"]["epochs_run"] == 1 and m["training"]["params"] > 0


def test_persistence_metric_matches_a_hand_computation(weather_run: Path):
    raw = pd.read_csv(ROOT / "data" / "weather.csv")["temp_max"].to_numpy()
    # test split of 1461 rows at 0.7/0.15/0.15: rows 1242..1460; windows of 7 in, 2 out. The split owns targets, not
    # inputs: the first window's targets are rows 1242, 1243 and its inputs the 7 rows before (start 1235)
    lo, hi, L, H = 1242, 1461, 7, 2
    err = [raw[s + L + h] - raw[s + L - 1] for s in range(lo - L, hi - L - H + 1) for h in range(H)]
    m = json.loads((weather_run / "metrics.json").read_text())
    assert m["test"]["original"]["overall"]["persistence"]["mse"] == pytest.approx(np.mean(np.square(err)))


def test_evaluate_rebuilds_the_same_metrics(weather_run: Path):
    result = CliRunner().invoke(cli, ["evaluate", str(weather_run), "--json"])
    assert result.exit_code == 0, result.output
    ev = json.loads(result.stdout)["metrics"]
    saved = json.loads((weather_run / "metrics.json").read_text())["test"]
    assert ev["original"]["overall"]["model"]["mse"] == pytest.approx(
        saved["original"]["overall"]["model"]["mse"], rel=1e-6
    )
    assert ev["normalised"]["overall"]["model"]["mae"] == pytest.approx(
        saved["normalised"]["overall"]["model"]["mae"], rel=1e-6
    )


@pytest.mark.slow
def test_predict_in_a_fresh_process_reproduces_training(weather_run: Path, tmp_path: Path):
    out = tmp_path / "f.csv"
    proc = run_cli("predict", str(weather_run), "--output", str(out), "--plot", str(tmp_path / "f.png"))
    assert proc.returncode == 0, proc.stderr
    fresh, trained = pd.read_csv(out), pd.read_csv(weather_run / "forecast.csv")
    bands = ["temp_max_p2.5", "temp_max_p10", "temp_max_p50", "temp_max_p90", "temp_max_p97.5"]  # the demo's 80/95 %
    assert list(fresh.columns) == ["timestamp", "step", "quantile", "temp_max", *bands]
    np.testing.assert_allclose(fresh[bands], trained[bands], rtol=1e-5)
    assert list(fresh["timestamp"]) == ["2016-01-01", "2016-01-02"]
    np.testing.assert_allclose(fresh["temp_max"], trained["temp_max"], rtol=1e-5)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_smoke_every_shipped_config(config: str, tmp_path: Path):
    """CI smoke: one epoch of every shipped config on its sample data, then evaluate and predict."""
    runner = CliRunner()
    run = tmp_path / "run"
    r = runner.invoke(
        cli, ["train", str(CONFIGS / config), "--set", "training.epochs=1", "--run-dir", str(run), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    assert "run directory:" in r.stdout and "persistence" in r.stdout
    r = runner.invoke(cli, ["evaluate", str(run)])
    assert r.exit_code == 0 and "MASE" in r.stdout, r.output
    r = runner.invoke(cli, ["predict", str(run)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(__import__("io").StringIO(r.stdout))
    horizon = yaml.safe_load((run / "config.yaml").read_text())["window"]["horizon"]
    assert len(table) == horizon and table.iloc[:, -1].notna().all()


# ------------------------------------------------------------------ known answers, on every backend


@pytest.fixture(scope="session")
def scenario_metrics(tmp_path_factory) -> dict[str, dict]:
    """Every scenario of tests/scenarios.py, on both backends, trained in two parallel processes."""
    procs = {}
    for b in BACKENDS:
        out = tmp_path_factory.mktemp(f"scenarios_{b}")
        env = {**os.environ, "KERAS_BACKEND": b}
        procs[b] = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "scenarios.py"), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    results = {}
    for b, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        line = next(x for x in stdout.splitlines() if x.startswith("RESULTS "))
        results[b] = json.loads(line[len("RESULTS ") :])
        assert {v["backend"] for v in results[b].values()} == {b}
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sine_beats_persistence(scenario_metrics, backend):
    m = scenario_metrics[backend]["sine"]
    assert m["mase"] < 0.6 and m["skill"] > 0.5, m


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_leak_control_with_shuffled_increments_does_not_beat_persistence(scenario_metrics, backend):
    m = scenario_metrics[backend]["control"]
    assert m["mase"] > 0.95, m


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_level_shift_fails_without_transform_and_is_fixed_by_one(scenario_metrics, backend):
    r = scenario_metrics[backend]
    assert r["rw_standard"]["mase"] > 5, r["rw_standard"]  # extrapolating z-scores: the failure is real
    for name in ("rw_diff", "rw_log_diff", "rw_window"):
        assert r[name]["mase"] <= 0.95, (name, r[name])


def test_several_series_and_targets_train_evaluate_and_predict(tmp_path: Path):
    """Long format (two tickers) with two targets: metrics per series, one forecast block per series."""
    rng = np.random.default_rng(0)
    t = pd.bdate_range("2020-01-01", periods=150)
    frames = []
    for i, k in enumerate(("AAA", "BBB")):
        level = 50 * (i + 1) + np.cumsum(rng.standard_normal(len(t)))
        frames.append(
            pd.DataFrame({"day": t, "ticker": k, "close": level, "open": level + rng.standard_normal(len(t))})
        )
    csv = tmp_path / "long.csv"
    pd.concat(frames).to_csv(csv, index=False)
    cfg = {
        "name": "multi",
        "data": {
            "path": str(csv),
            "time_column": "day",
            "target": ["close", "open"],
            "series_id": "ticker",
            "frequency": "B",
            "calendar": "steps",
        },
        "window": {"input_length": 5, "horizon": 3},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1},
    }
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    runner = CliRunner()
    r = runner.invoke(cli, ["train", str(path), "--run-dir", str(run), "-q"])
    assert r.exit_code == 0, r.output
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["per_series"]) == {"AAA", "BBB"}
    assert set(m["test"]["original"]["per_target"]) == {"close", "open"}
    schema = json.loads((run / "schema.json").read_text())
    assert schema["series"] == ["AAA", "BBB"] and schema["calendar"] == "steps"
    r = runner.invoke(cli, ["predict", str(run)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert list(table.columns) == ["timestamp", "series", "step", "close", "open"]  # printed: no quantile=mean column
    assert table["series"].tolist() == ["AAA"] * 3 + ["BBB"] * 3
    # the last row is Tuesday 2020-07-28; forecasts follow business days
    assert t[-1] == pd.Timestamp("2020-07-28")
    assert list(table["timestamp"][:3]) == ["2020-07-29", "2020-07-30", "2020-07-31"]
    assert "business days" in r.stderr

"""README claims that had no test, each through the real CLI on one tiny run.

One trained run covers: Parquet input, business days (season 5), date splits, `model.l2`, `training.loss`,
the out-of-range hint, the MASE >= 1 warning of `train` and `evaluate`, and `evaluate --split`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli, write_config

pytestmark = pytest.mark.slow  # one CLI training shared by the module (about 15 s)

N = 260  # business days
VAL_START, TEST_START = "2020-09-01", "2020-10-15"


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory):
    """A rising series as Parquet on business days, a date split, l2 and MAE loss; 1 epoch of a 4-unit GRU.

    The test values lie above every training value (the hint) and persistence is hard to beat (MASE >= 1)."""
    d = tmp_path_factory.mktemp("claims")
    t = pd.bdate_range("2020-01-01", periods=N)
    y = 100 + 0.5 * np.arange(N) + np.random.default_rng(0).normal(0, 0.3, N)
    pd.DataFrame({"day": t, "y": y}).to_parquet(d / "trend.parquet")
    cfg = {
        "name": "claims",
        "data": {
            "path": "trend.parquet",
            "time_column": "day",
            "target": "y",
            "split": {"val_start": VAL_START, "test_start": TEST_START},
            "scaling": "standard",  # the hint is about scalers fitted on training rows (window scaling needs none)
        },
        "window": {"input_length": 7, "horizon": 2},
        "model": {"cell": "gru", "units": [4], "l2": 0.01},
        "training": {"epochs": 1, "batch_size": 64, "loss": "mae"},
        "output": {"plots": False},
    }
    config = write_config(d, cfg)
    run = d / "run"
    train = run_cli("train", str(config), "--run-dir", str(run))
    assert train.returncode == 0, train.stderr
    return {"dir": d, "config": config, "run": run, "train": train, "t": t, "y": y}


def test_parquet_business_days_and_date_splits(trend_run):
    run, t = trend_run["run"], trend_run["t"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["season_length"] == 5  # README: seasonal naive uses 5 for business days
    schema = json.loads((run / "schema.json").read_text())
    assert "B" in json.dumps(schema)  # the inferred step is recorded as business days
    # Date split: the test split starts at TEST_START, the first forecast target; its windows' inputs read
    # the 7 rows before it, so there is one window per first target with both targets inside: rows - 2 + 1.
    n_test_rows = int((t >= pd.Timestamp(TEST_START)).sum())
    assert metrics["n_windows"] == n_test_rows - 2 + 1
    forecast = pd.read_csv(run / "forecast.csv")
    first = pd.to_datetime(forecast.iloc[:, 0]).min()
    assert first >= pd.Timestamp(TEST_START), first


def test_l2_and_loss_reach_the_model(trend_run):
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast import artifacts

    saved = yaml.safe_load((trend_run["run"] / "config.yaml").read_text())
    assert saved["model"]["l2"] == 0.01 and saved["training"]["loss"] == "mae"
    model = artifacts.load_model(trend_run["run"] / "heldout" / "model.keras")  # the model history.csv describes
    gru, head = model.get_layer("gru_0"), model.get_layer("head")
    for reg in (gru.cell.kernel_regularizer, gru.cell.recurrent_regularizer, head.kernel_regularizer):
        assert reg is not None and reg.get_config()["l2"] == pytest.approx(0.01)
    # The loss Keras minimised is MAE plus the l2 penalty of the final weights: val_loss - val_mae = 0.01 * sum(w^2).
    weights = [gru.cell.kernel, gru.cell.recurrent_kernel, head.kernel]
    penalty = 0.01 * sum(float(np.sum(np.asarray(w, dtype=np.float64) ** 2)) for w in weights)
    history = pd.read_csv(trend_run["run"] / "history.csv").iloc[-1]
    assert history["val_loss"] - history["val_mae"] == pytest.approx(penalty, rel=1e-3)
    assert abs(history["val_loss"] - history["val_mse"] - penalty) > 0.1  # not MSE


def test_out_of_range_hint_and_mase_warning_in_train(trend_run):
    err = trend_run["train"].stderr + trend_run["train"].stdout
    assert "hint: 100% of the test values of 'y' lie outside the training range" in err, err
    metrics = json.loads((trend_run["run"] / "metrics.json").read_text())
    mase = metrics["test"]["original"]["overall"]["model"]["mase"]
    assert mase >= 1  # one epoch on a trend: persistence wins
    assert f"warning: MASE {mase:.3f} >= 1 on the test split" in err, err


def test_evaluate_split_and_its_mase_warning(trend_run):
    run = trend_run["run"]
    test = run_cli("evaluate", str(run), "--json")
    val = run_cli("evaluate", str(run), "--split", "val", "--json")
    assert test.returncode == 0 and val.returncode == 0, test.stderr + val.stderr
    on_test, on_val = json.loads(test.stdout)["metrics"], json.loads(val.stdout)["metrics"]  # docs/json.md
    saved = json.loads((run / "metrics.json").read_text())
    t = trend_run["t"]
    n_val_rows = int(((t >= pd.Timestamp(VAL_START)) & (t < pd.Timestamp(TEST_START))).sum())
    assert on_test != on_val
    mase_test = saved["test"]["original"]["overall"]["model"]["mase"]
    assert f"warning: MASE {mase_test:.3f} >= 1 on the test split" in test.stderr
    assert on_val["n_windows"] == n_val_rows - 2 + 1 and on_test["n_windows"] == saved["n_windows"]
    mase_val = on_val["original"]["overall"]["model"]["mase"]
    assert mase_val >= 1 and f"warning: MASE {mase_val:.3f} >= 1 on the val split" in val.stderr, val.stderr
    got, want = on_test["original"]["overall"], saved["test"]["original"]["overall"]
    assert got["persistence"] == want["persistence"]  # evaluate rebuilds the saved numbers
    assert got["model"]["mse"] == pytest.approx(want["model"]["mse"], rel=1e-6)  # float32 predictions: not bit for bit


def test_traceback_flag_and_env_show_the_stack(trend_run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {path: nowhere.csv, target: y}\nwindow: {horizon: 0}\n")
    plain = run_cli("validate", str(bad))
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    (line,) = plain.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Fix:" in line
    for args, env in (
        (("--traceback", "validate", str(bad)), None),
        (("validate", str(bad)), {"RNNFORECAST_TRACEBACK": "1"}),
    ):
        shown = run_cli(*args, env=env)
        assert shown.returncode == 1
        assert "Traceback (most recent call last)" in shown.stderr and line in shown.stderr, shown.stderr

"""Trainings whose numbers must not depend on scheduling or reuse: each test names the planted bug it catches."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, sine_frame, write_config
from rnnforecast.numpy_model import NumpyModel

pytestmark = pytest.mark.slow


def _raw(tmp_path, n=200, **extra) -> dict:
    sine_frame(n).to_csv(tmp_path / "s.csv", index=False)
    return {
        "name": "w",
        "data": {"path": str(tmp_path / "s.csv"), "target": "y", "time_column": "time", "scaling": "standard"},
        "window": {"input_length": 6, "horizon": 2},
        "model": {"cell": "gru", "units": [4], "residual": "none", "segment_length": None},
        "training": {"epochs": 1, "batch_size": 16},
        "output": {"runs_dir": str(tmp_path / "runs"), "plots": False},
        **extra,
    }


def test_refit_none_fold_equals_a_hand_forecast_with_the_first_folds_model_and_scaler(tmp_path):
    """Planted bug: a ``--refit none`` fold rescaling its inputs with a fresh scaler (fitted on its own, longer,
    training split) instead of the scaler the reused model was trained with."""
    path = write_config(tmp_path, _raw(tmp_path))
    out = tmp_path / "bt"
    r = run_cli("backtest", str(path), "--folds", "2", "--refit", "none", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    scaler = json.loads((out / "folds" / "00" / "scaler.json").read_text())
    assert scaler["kind"] == "standard" and scaler["columns"] == ["y"]
    shift, scale = np.asarray(scaler["shift"], float).ravel()[0], np.asarray(scaler["scale"], float).ravel()[0]
    model = NumpyModel.load(out / "folds" / "00" / "model.keras")
    series = pd.read_csv(tmp_path / "s.csv", parse_dates=["time"]).set_index("time")["y"]
    rows = pd.read_csv(out / "predictions.csv", parse_dates=["origin_time", "target_time"])
    fold1 = rows[rows["fold"] == 1]
    origins = fold1["origin_time"].drop_duplicates().to_numpy()
    # by hand: the 6 values up to each origin, standardised with fold 0's scaler, through fold 0's model, inverted
    x = np.stack([series.loc[:o].to_numpy()[-6:] for o in origins])[..., None]  # (B, 6, 1)
    pred = model.predict_on_batch({"past": ((x - shift) / scale).astype("float32")})[..., 0, 0] * scale + shift
    got = fold1.pivot(index="origin_time", columns="lead", values="forecast").loc[origins].to_numpy()  # (B, 2)
    np.testing.assert_allclose(got, pred, rtol=1e-5, atol=1e-5)
    # fold 1's own training split is longer: a fresh scaler would differ, so the check above could fail
    train_end = pd.Timestamp(json.loads((out / "metrics.json").read_text())["plan"]["folds"][1]["val_start"])
    assert abs(series.loc[: train_end - pd.Timedelta("1ns")].mean() - shift) > 1e-4


def test_backtest_with_two_workers_gives_the_numbers_of_one(tmp_path):
    """Planted bugs: ``backtest --workers`` was never run by a test (folds mixed up or scored in completion order
    would pass). Two workers must write the folds and predictions one worker writes."""
    path = write_config(tmp_path, _raw(tmp_path))
    records = {}
    for workers in (1, 2):
        out = tmp_path / f"bt{workers}"
        r = run_cli("backtest", str(path), "--folds", "2", "--workers", str(workers), "--out", str(out), "-q")
        assert r.returncode == 0, r.stderr
        records[workers] = json.loads((out / "metrics.json").read_text())
        records[workers]["rows"] = pd.read_csv(out / "predictions.csv")
    one, two = records[1], records[2]
    assert [f["origin"] for f in one["folds"]] == [f["origin"] for f in two["folds"]]
    for a, b in zip(one["folds"], two["folds"]):
        assert a["original"]["overall"]["model"]["mae"] == pytest.approx(b["original"]["overall"]["model"]["mae"])
    pd.testing.assert_frame_equal(one["rows"], two["rows"], rtol=1e-6)


def test_compare_results_are_keyed_by_run_not_by_completion_order(tmp_path):
    """Planted bug: ``compare --workers`` returning results in completion order. The LSTM (listed first) trains
    far longer than the dense model, so it finishes last; each cell's numbers must still be its own run's."""
    raw = _raw(tmp_path, n=600)
    raw["model"] = {"cell": "lstm", "units": [48]}
    raw["window"] = {"input_length": 24, "horizon": 2}
    raw["training"] = {"epochs": 3, "batch_size": 16}
    path = write_config(tmp_path, raw)
    out = tmp_path / "cmp"
    r = run_cli("compare", str(path), "--cells", "lstm,dense", "--workers", "2", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "compare.json").read_text())
    for cell in ("lstm", "dense"):
        (run,) = record["results"][cell]["runs"]
        assert run["run_dir"].startswith(f"runs/{cell}-"), (cell, run["run_dir"])
        own = json.loads((out / run["run_dir"] / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
        assert record["results"][cell]["mean"]["test_mae"] == pytest.approx(own["mae"])
        assert record["results"][cell]["mean"]["test_mse"] == pytest.approx(own["mse"])


def test_cqr_trained_end_to_end_covers_exactly_k_of_n_validation_windows(tmp_path):
    """Planted bug: ``cqr`` never trained in a test. Trained for real, its correction is the k-th smallest CQR score
    of the n validation windows (k = ceil((n + 1) * 0.8)) per lead, so on those very windows each lead's band holds
    exactly k of n actuals, the k-th on its edge (counted covered on the closed band)."""
    raw = _raw(tmp_path, n=300)
    raw["intervals"] = {"method": "cqr", "levels": [80]}
    path = write_config(tmp_path, raw)
    run = tmp_path / "run"
    r = run_cli("train", str(path), "--run-dir", str(run), "-q")
    assert r.returncode == 0, r.stderr
    saved = json.loads((run / "intervals.json").read_text())
    assert saved["method"] == "cqr"
    r = run_cli("evaluate", str(run), "--split", "val", "--json")
    assert r.returncode == 0, r.stderr
    scored = json.loads(r.stdout)
    n = scored["n_windows"]
    cov = scored["metrics"]["intervals"]["model"]["levels"]["80"]["coverage"]
    k = int(np.ceil((n + 1) * 0.8 - 1e-9))
    assert cov["per_lead"] == pytest.approx([100 * k / n] * 2)

"""--json on train, evaluate, predict, compare and tune: one document on stdout, human text on stderr.

The train run here also checks the progress lines a pipe gets and the TensorBoard logs (output.tensorboard).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import run_cli, write_config
from rnnforecast.cli import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory, weather_config: Path):
    """One `train --json` through the real CLI, stderr a pipe, TensorBoard on."""
    d = tmp_path_factory.mktemp("json_train")
    cfg = yaml.safe_load(weather_config.read_text())
    cfg["output"] = {"tensorboard": True, "plots": False}
    cfg["training"]["epochs"] = 2
    cfg["training"]["early_stopping"] = None
    path = write_config(d, cfg)
    r = run_cli("train", str(path), "--run-dir", str(d / "run"), "--json")
    assert r.returncode == 0, r.stderr
    return d / "run", r


@pytest.mark.slow
def test_train_json_is_one_document_with_split_paths_and_metrics(trained):
    run, r = trained
    doc = json.loads(r.stdout)  # stdout holds nothing else
    assert doc["command"] == "train" and doc["schema_version"] == 1
    assert doc["split"] == "test" and doc["run_dir"] == str(run.resolve())
    saved = json.loads((run / "metrics.json").read_text())
    assert doc["metrics"]["original"]["overall"]["model"]["mse"] == pytest.approx(
        saved["test"]["original"]["overall"]["model"]["mse"]
    )
    assert doc["n_windows"] == saved["n_windows"] and doc["training"]["epochs_run"] == 2
    assert doc["files"]["metrics.json"] == str((run / "metrics.json").resolve())
    assert "run directory:" in r.stderr and "run directory:" not in r.stdout  # the table went to stderr


@pytest.mark.slow
def test_progress_is_one_line_per_epoch_when_stderr_is_not_a_terminal(trained):
    _, r = trained
    lines = r.stderr.splitlines()
    compiling = [i for i, line in enumerate(lines) if line == "compiling the model (first epoch) ..."]
    epochs = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    assert len(compiling) == 1 and len(epochs) == 2 and compiling[0] < epochs[0]
    assert lines[epochs[0]].startswith("epoch   1/2  loss ") and lines[epochs[1]].startswith("epoch   2/2  loss ")
    assert "\r" not in r.stderr and "━" not in r.stderr and "ETA" not in r.stderr  # no bar in a pipe


READ_SCALARS = """
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util
ea = EventAccumulator(sys.argv[1])
ea.Reload()
print(json.dumps({t: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in ea.Tensors(t)]
                  for t in ea.Tags()["tensors"]}))
"""


def _scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of one TensorBoard log folder, read by TensorBoard's own EventAccumulator in a fresh process
    (it imports TensorFlow, which would fix this process's Keras backend)."""
    r = subprocess.run(
        [sys.executable, "-c", READ_SCALARS, str(directory)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return {tag: [tuple(p) for p in points] for tag, points in json.loads(r.stdout).items()}


@pytest.mark.slow
def test_tensorboard_logs_hold_loss_val_loss_lr_and_mae_by_lead(trained):
    run, _ = trained
    tb = run / "tensorboard"
    assert list((tb / "train").glob("events.out.tfevents.*")), sorted(tb.rglob("*"))
    history = pd.read_csv(run / "history.csv")
    train, val, leads = _scalars(tb / "train"), _scalars(tb / "validation"), _scalars(tb / "leads")
    assert [s for s, _ in train["epoch_loss"]] == [0, 1]
    assert [v for _, v in train["epoch_loss"]] == pytest.approx(history["loss"].tolist(), rel=1e-5)
    assert [v for _, v in val["epoch_loss"]] == pytest.approx(history["val_loss"].tolist(), rel=1e-5)
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx([1e-3, 1e-3])
    mae = json.loads((run / "metrics.json").read_text())["val"]["original"]["per_lead"]["model"]["mae"]
    assert leads["val_mae_by_lead"] == [(1, pytest.approx(mae[0], rel=1e-5)), (2, pytest.approx(mae[1], rel=1e-5))]


def test_evaluate_json_names_the_split_and_the_data(weather_run: Path):
    r = CliRunner().invoke(cli, ["evaluate", str(weather_run), "--split", "val", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["command"], doc["split"]) == ("evaluate", "val")
    assert doc["run_dir"] == str(weather_run.resolve()) and doc["data"].endswith("weather.csv")
    saved = json.loads((weather_run / "metrics.json").read_text())["val"]
    assert doc["metrics"]["original"]["overall"]["model"]["mae"] == pytest.approx(
        saved["original"]["overall"]["model"]["mae"], rel=1e-6
    )
    assert "val split, original units" in r.stderr


def test_predict_json_holds_the_forecast_with_timestamps(weather_run: Path, tmp_path: Path):
    out = tmp_path / "f.csv"
    r = CliRunner().invoke(cli, ["predict", str(weather_run), "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "predict" and doc["output"] == str(out)
    # the demo config asks for 80 % and 95 % intervals: their quantile columns follow the point forecast
    assert doc["columns"] == [
        "timestamp",
        "step",
        "quantile",
        "temp_max",
        *[f"temp_max_p{q}" for q in (2.5, 10, 50, 90, 97.5)],
    ]
    assert [row["timestamp"] for row in doc["forecast"]] == ["2016-01-01T00:00:00", "2016-01-02T00:00:00"]
    assert [row["temp_max"] for row in doc["forecast"]] == pytest.approx(pd.read_csv(out)["temp_max"].tolist())


@pytest.mark.slow
def test_compare_json(tmp_path: Path, weather_config: Path):
    r = run_cli("compare", str(weather_config), "--cells", "gru,dense", "--out", str(tmp_path / "c"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    record = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert (doc["command"], doc["split"]) == ("compare", "test")
    assert doc["ranking"] == record["ranking"] and set(doc["results"]) == {"gru", "dense"}
    assert doc["files"]["compare.json"] == str((tmp_path / "c" / "compare.json").resolve())
    assert "comparison directory:" in r.stderr


@pytest.mark.slow
def test_tune_json(tmp_path: Path, weather_config: Path):
    cfg = yaml.safe_load(weather_config.read_text())
    cfg["tune"] = {"training.learning_rate": [0.001, 0.01]}
    path = write_config(tmp_path, cfg)
    r = run_cli("tune", str(path), "--trials", "1", "--out", str(tmp_path / "t"), "--json", "-q", timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    summary = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert (doc["command"], doc["split"], doc["metric"]) == ("tune", "val", "val_mae")
    assert doc["best_params"] == summary["best_params"] and doc["best_value"] == pytest.approx(summary["best_value"])
    assert doc["test_of_best"]["split"] == "test" and doc["test_of_best"]["mae"] == summary["test_of_best"]["mae"]
    assert doc["files"]["best.yaml"] == str((tmp_path / "t" / "best.yaml").resolve())

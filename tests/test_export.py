"""`rnnforecast export`: the ONNX file (onnxruntime) and the SavedModel (TensorFlow) forecast what `predict` does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DATA, TINY, merge, run_cli, sine_frame, write_config
from rnnforecast.config import load_config
from rnnforecast.errors import RunError
from rnnforecast.export import plan_for
from rnnforecast.pipeline import load_data

SAVEDMODEL_RUNNER = r"""
import json, sys
import numpy as np
import tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
(name,) = fn.structured_input_signature[1]
out = fn(**{name: tf.constant(np.load(sys.argv[2]))})
print(json.dumps(np.asarray(next(iter(out.values()))).tolist()))
"""

TIME_X = {  # the x of each time feature, as signature.json documents it
    "hour_of_day": lambda t: t.hour + t.minute / 60,
    "day_of_week": lambda t: t.dayofweek,
    "day_of_month": lambda t: t.day - 1,
    "day_of_year": lambda t: t.dayofyear - 1,
    "month_of_year": lambda t: t.month - 1,
}


def window_from_file(path: Path, sig: dict) -> np.ndarray:
    """The last window of a raw CSV, built from signature.json alone, as a user of the export would."""
    rows = pd.read_csv(path).tail(sig["window_length"])
    t = pd.to_datetime(rows[sig["time_column"]]).dt
    columns = []
    for inp in sig["inputs"]:
        if inp["kind"] == "numeric":
            columns.append(rows[inp["name"]].to_numpy(float))
        elif inp["kind"] == "one_hot":
            columns.append((rows[inp["column"]].astype(str) == inp["value"]).to_numpy(float))
        else:
            base, fn = inp["name"].rsplit("_", 1)
            period = float(re.search(r"2\*pi\*x/([\d.]+)", inp["formula"]).group(1))
            columns.append(getattr(np, fn)(2 * np.pi * np.asarray(TIME_X[base](t), float) / period))
    return np.stack(columns, axis=-1)[None].astype(np.float32)  # (1, W, F)


def predicted(run: Path, targets: list[str]) -> np.ndarray:
    proc = run_cli("predict", str(run), "--json")  # full precision (the printed CSV is rounded to the data's)
    assert proc.returncode == 0, proc.stderr
    return pd.DataFrame(json.loads(proc.stdout)["forecast"])[targets].to_numpy(float)[None]  # (1, H, T)


def run_exported(export_dir: Path, window: np.ndarray, tmp_path: Path) -> np.ndarray:
    sig = json.loads((export_dir / "signature.json").read_text())
    if sig["format"] == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(export_dir / sig["file"]), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].name == sig["input"]
        return session.run(None, {sig["input"]: window})[0]
    np.save(tmp_path / "window.npy", window)
    proc = subprocess.run(
        [sys.executable, "-c", SAVEDMODEL_RUNNER, str(export_dir / sig["file"]), str(tmp_path / "window.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return np.asarray(json.loads(proc.stdout.strip().splitlines()[-1]))


def assert_matches_predict(run: Path, csv: Path, tmp_path: Path, formats=("onnx", "savedmodel")) -> dict:
    sigs = {}
    for fmt in formats:
        out = tmp_path / f"export-{fmt}"
        proc = run_cli("export", str(run), "--format", fmt, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "matches rnnforecast predict" in proc.stdout
        sig = json.loads((out / "signature.json").read_text())
        window = window_from_file(csv, sig)
        assert window.shape == (1, sig["window_length"], len(sig["input_columns"]))
        want = predicted(run, sig["output_columns"])
        got = run_exported(out, window, tmp_path)
        assert got.shape == want.shape == (1, sig["horizon"], len(sig["output_columns"]))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        example = json.loads((out / "example.json").read_text())
        np.testing.assert_allclose(np.asarray(example["window"])[None], window, rtol=1e-6)
        sigs[fmt] = sig
    return sigs


def test_export_weather_onnx_and_savedmodel_match_predict(weather_run, tmp_path):
    sigs = assert_matches_predict(weather_run, DATA / "weather.csv", tmp_path)
    sig = sigs["onnx"]
    assert sig["input_columns"][:4] == ["precipitation", "temp_max", "temp_min", "wind"]
    assert {"name": "weather=rain", "kind": "one_hot", "column": "weather", "value": "rain"} in sig["inputs"]
    assert sig["inputs"][-1]["name"] == "day_of_year_cos" and sig["inputs"][-1]["kind"] == "time_feature"
    assert sig["window_length"] == sig["input_length"] == 7 and sig["horizon"] == 2
    assert sig["output_columns"] == ["temp_max"] and sig["scaling"] == "window" and sig["transform"] == {}  # auto
    assert (tmp_path / "export-savedmodel" / "savedmodel" / "saved_model.pb").exists()


def _train(tmp_path: Path, cfg: dict, name: str) -> Path:
    path = write_config(tmp_path, cfg, f"{name}.yaml")
    run = tmp_path / f"run-{name}"
    proc = run_cli("train", str(path), "--run-dir", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return run


@pytest.mark.slow
def test_export_folds_log_returns_and_window_scaling(tmp_path):
    cfg = yaml.safe_load((DATA.parent / "configs" / "stock_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "stock.csv")
    cfg = merge(merge(cfg, TINY), {"data": {"scaling": "window"}})
    run = _train(tmp_path, cfg, "stock")
    sig = assert_matches_predict(run, DATA / "stock.csv", tmp_path)["savedmodel"]
    # log_diff needs the row before the window: 7 + 1 raw rows in
    assert sig["window_length"] == 8 and sig["transform"] == {"close": "log_diff"} and sig["scaling"] == "window"


@pytest.mark.slow
def test_export_folds_minmax_and_diff_hourly(tmp_path):
    csv = tmp_path / "sine.csv"
    df = sine_frame(600)
    df["y"] += np.linspace(0, 5, len(df))  # a trend for diff to remove
    df["x"] = np.cos(np.arange(len(df)) / 7)
    df.to_csv(csv, index=False)
    cfg = merge(
        {"data": {"path": str(csv), "target": "y", "time_column": "time"}},
        merge(TINY, {"data": {"scaling": "minmax", "transform": {"y": "diff"}, "time_features": ["hour_of_day"]}}),
    )
    run = _train(tmp_path, cfg, "sine")
    sig = assert_matches_predict(run, csv, tmp_path, formats=("onnx",))["onnx"]
    assert sig["input_columns"] == ["y", "x", "hour_of_day_sin", "hour_of_day_cos"] and sig["scaling"] == "minmax"


def test_export_refuses_a_non_empty_directory(weather_run, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    for target, said in (
        (tmp_path / "busy", "already exists and is not empty. Fix: pass -o with a new or empty directory."),
        (weather_run, "is the run directory itself. Fix: pass -o with a new directory."),
    ):
        proc = run_cli("export", str(weather_run), "--format", "onnx", "-o", str(target))
        assert proc.returncode == 1
        assert proc.stderr.strip() == f"error: {target}: {said}"
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in weather_run.iterdir() if p.name.startswith("export")) == []


def test_export_writes_beside_the_run_by_default_and_never_twice(weather_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(weather_run, run)
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    proc = run_cli("export", str(run), "--format", "savedmodel")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "r-export-savedmodel"  # beside the run, named after it
    assert f"exported savedmodel to {out}" in proc.stdout.splitlines()
    assert json.loads((out / "signature.json").read_text())["output_columns"] == ["temp_max"]
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before  # not written in
    again = run_cli("export", str(run), "--format", "savedmodel")  # an export is never replaced: -o another
    assert again.returncode == 1 and "already exists and is not empty" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r-export-savedmodel"]  # no temporary left


def _data(tmp_path: Path, extra: dict):
    csv = tmp_path / "two.csv"
    df = sine_frame(300)
    df["x"] = np.cos(np.arange(len(df)) / 5)
    df.to_csv(csv, index=False)
    cfg = merge({"data": {"path": str(csv), "target": "y", "time_column": "time"}}, merge(TINY, extra))
    return load_data(load_config(write_config(tmp_path, cfg)))


def test_plan_refuses_what_cannot_be_folded(tmp_path):
    with pytest.raises(
        RunError, match=r"cannot fold data.transform of 'y' into the export: it needs the last observed 'y'"
    ):
        plan_for(_data(tmp_path, {"data": {"features": ["x"], "transform": {"y": "diff"}}}), "run")
    with pytest.raises(RunError, match=r"cannot fold data.scaling: window .* Fix: train with 'y' in data.features"):
        plan_for(_data(tmp_path, {"data": {"features": ["x"], "scaling": "window"}}), "run")
    # the target outside the inputs is fine when nothing needs its last value
    p = plan_for(_data(tmp_path, {"data": {"features": ["x"], "scaling": "minmax"}}), "run")
    assert p.inputs == ["x"] and p.target_pos == [-1] and p.skip == 0
    assert p.shift_out[0] == pytest.approx(sine_frame(300)["y"][:210].min())


def test_plan_refuses_one_scaler_per_series(tmp_path):
    csv = tmp_path / "long.csv"
    a, b = sine_frame(300, seed=1), sine_frame(300, seed=2)
    pd.concat([a.assign(site="a"), b.assign(site="b")]).to_csv(csv, index=False)
    cfg = merge({"data": {"path": str(csv), "target": "y", "time_column": "time", "series_id": "site"}}, TINY)
    data = load_data(load_config(write_config(tmp_path, cfg)))
    with pytest.raises(
        RunError, match=r"one scaler per series \(2 series\).*Fix: train with data.scale_per_series: false"
    ):
        plan_for(data, "run")


def test_plan_of_a_framed_run_and_what_it_still_refuses(tmp_path):
    seasonal = {"data": {"scaling": "instance", "season_length": 5}, "model": {"residual": "seasonal"}}
    p = plan_for(_data(tmp_path, seasonal), "run")
    # 7 input rows and the season of 5 before them; steps 1, 2 (rows 12, 13) copy rows 7, 8, one season back
    assert p.window == 12 and p.extra == 5 and p.base_rows == [7, 8]
    independent = {
        "data": {"transform": {"y": "diff"}},
        "model": {"residual": "persistence", "channels": "independent"},
    }
    p = plan_for(_data(tmp_path, independent), "run")
    # 1 + 7 rows (the difference needs the row before); the baseline is the last input row (6 of the 7 transformed)
    assert p.window == 8 and p.base_rows == [6, 6] and p.independent and p.target_pos == [0] and p.other_pos == [1]
    with pytest.raises(
        RunError,
        match=r"cannot fold model.residual: persistence into the export: it needs the last observed 'y', .* "
        r"Fix: train with 'y' in data.features to export",
    ):
        plan_for(
            _data(tmp_path, {"data": {"features": ["x"], "scaling": "standard"}, "model": {"residual": "persistence"}}),
            "run",
        )
    with pytest.raises(
        RunError, match=r"model.residual: seasonal into the export: it needs the observed values of 'y'"
    ):
        plan_for(
            _data(
                tmp_path,
                {
                    "data": {"features": ["x"], "season_length": 5, "scaling": "standard"},
                    "model": {"residual": "seasonal"},
                },
            ),
            "run",
        )
    with pytest.raises(RunError, match=r"cannot fold data.scaling: instance .* Fix: train with 'y' in data.features"):
        plan_for(_data(tmp_path, {"data": {"features": ["x"], "scaling": "instance"}}), "run")


@pytest.mark.slow
def test_export_of_an_instance_scaled_segment_model_matches_predict(tmp_path):
    cfg = yaml.safe_load((DATA.parent / "configs" / "weather_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg.pop("intervals")
    cfg = merge(
        merge(cfg, TINY),
        {"window": {"input_length": 8, "horizon": 3}, "model": {"segment_length": 4}, "data": {"scaling": "instance"}},
    )
    run = _train(tmp_path, cfg, "weather")
    assert_matches_predict(run, DATA / "weather.csv", tmp_path)


@pytest.mark.parametrize("method", ["quantile", "cqr"])
def test_export_of_a_quantile_model_gives_its_quantiles(tmp_path, method):
    """A quantile head (levels 50 and 80: quantiles .1 .25 .5 .75 .9) on log returns with window scaling: the ONNX
    model returns (1, H, T, 5) in original units. With method quantile these are predict's band columns and its
    median predict's forecast, read from predict --json; with cqr the median still is, the bands are corrected
    on validation (not in the network) and the export says so."""
    cfg = yaml.safe_load((DATA.parent / "configs" / "stock_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "stock.csv")
    cfg = merge(merge(cfg, TINY), {"intervals": {"method": method, "levels": [50, 80]}, "data": {"scaling": "window"}})
    cfg["training"]["epochs"] = 2
    run = _train(tmp_path, cfg, "stockq")
    out = tmp_path / "export-onnx"
    proc = run_cli("export", str(run), "--format", "onnx", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    sig = json.loads((out / "signature.json").read_text())
    assert sig["quantiles"] == [0.1, 0.25, 0.5, 0.75, 0.9] and sig["output_shape"] == [None, 2, 1, 5]
    assert "quantiles 0.1, 0.25, 0.5, 0.75, 0.9" in proc.stdout
    window = window_from_file(DATA / "stock.csv", sig)
    got = run_exported(out, window, tmp_path)  # (1, H, T, Q)
    assert got.shape == (1, 2, 1, 5)
    assert np.all(np.diff(got, axis=-1) >= 0)  # never crossing
    bands = predicted(run, ["close_p10", "close_p25", "close", "close_p75", "close_p90"])  # (1, H, 5)
    np.testing.assert_allclose(got[..., 0, 2], bands[..., 2], rtol=1e-4)  # the median is predict's forecast
    if method == "quantile":
        np.testing.assert_allclose(got[:, :, 0, :], bands, rtol=1e-4)
        assert "warning" not in proc.stdout
    else:
        assert np.abs(got[:, :, 0, [0, 1, 3, 4]] - bands[..., [0, 1, 3, 4]]).max() > 1e-6  # the correction moved them
        assert "the CQR corrections of the run's 50%, 80% bands are not in it" in proc.stdout

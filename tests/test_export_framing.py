"""`rnnforecast export` folds the framing (framing.py) in: residual baselines (persistence, seasonal with its
differenced inputs and residual spread) and independent channels, with window or instance scaling and segment
models; each exported file forecasts what `rnnforecast predict --json` does on the run's last window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import merge, run_cli, write_config
from test_export import predicted, run_exported, window_from_file

SEASON = 4
TOL = 1e-5  # the brief's agreement: exported model vs predict --json, relative (and absolute below 1)


def seasonal_csv(path: Path, n: int = 240, seed: int = 7) -> Path:
    """Hourly rows, not degenerate: two targets with a trend, a 4-step cycle and noise; an exogenous input."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cycle = np.array([0.0, 1.0, 0.3, -1.2])[t % SEASON]
    df = pd.DataFrame(
        {
            "time": pd.date_range("2021-03-01", periods=n, freq="h"),
            "y": 5.0 + 0.03 * t + 1.5 * cycle + 0.2 * rng.standard_normal(n),
            "z": 20.0 - 0.01 * t + 0.8 * np.roll(cycle, 1) + 0.1 * rng.standard_normal(n),
            "x": np.sin(t / 5.0) + 0.05 * rng.standard_normal(n),
        }
    )
    df.to_csv(path, index=False)
    return path


def train(tmp_path: Path, csv: Path, extra: dict, name: str) -> Path:
    cfg = {
        "data": {"path": str(csv), "target": "y", "time_column": "time", "season_length": SEASON},
        "window": {"input_length": 8, "horizon": 6},  # H > season: the baseline repeats the last season
        "model": {"cell": "gru", "units": [6]},
        # a large step: the zero-initialised residual head moves off 0, so the network's part of the forecast counts
        "training": {"epochs": 2, "batch_size": 32, "learning_rate": 0.05},
    }
    path = write_config(tmp_path, merge(cfg, extra), f"{name}.yaml")
    run = tmp_path / f"run-{name}"
    proc = run_cli("train", str(path), "--run-dir", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return run


def baseline(csv: Path, sig: dict) -> np.ndarray:
    """``(1, H, T)`` the residual's baseline by hand from the raw file: the last value (persistence) or the value
    one season before each step (seasonal naive); the network's part of a forecast is what differs from it."""
    values = pd.read_csv(csv)[sig["output_columns"]].to_numpy(float)  # (N, T)
    h = np.arange(1, sig["horizon"] + 1)
    back = SEASON * np.ceil(h / SEASON).astype(int) if sig["residual"] == "seasonal" else h
    return values[len(values) - 1 + h - back][None]


def export_matches_predict(run: Path, csv: Path, tmp_path: Path, fmt: str) -> tuple[dict, np.ndarray]:
    """Export through the CLI, run the file (onnxruntime / TensorFlow) on the file's last window built from
    signature.json alone, compare with predict --json; returns the signature and the forecast."""
    out = tmp_path / f"export-{fmt}"
    proc = run_cli("export", str(run), "--format", fmt, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "matches rnnforecast predict" in proc.stdout
    sig = json.loads((out / "signature.json").read_text())
    window = window_from_file(csv, sig)  # (1, W, F)
    want = predicted(run, sig["output_columns"])  # (1, H, T)
    got = run_exported(out, window, tmp_path)
    assert got.shape == want.shape == (1, sig["horizon"], len(sig["output_columns"]))
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
    # the network's part is not negligible: a wrong input fold would show far above the tolerance
    assert np.abs(want - baseline(csv, sig)).max() > 1e-3
    return sig, got


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "fmt"),
    [
        pytest.param(  # the defaults the lead is moving to, on two targets: window, seasonal, independent
            {
                "data": {"scaling": "window", "target": ["y", "z"]},
                "model": {"residual": "seasonal", "channels": "independent"},
            },
            "onnx",
            id="window-seasonal-independent",
        ),
        pytest.param(
            {
                "data": {"scaling": "instance", "target": ["y", "z"]},
                "model": {"residual": "persistence", "channels": "independent", "segment_length": 4},
            },
            "savedmodel",
            id="instance-persistence-independent-segments",
        ),
        pytest.param(
            {"data": {"scaling": "instance"}, "model": {"residual": "seasonal", "segment_length": 4}},
            "onnx",
            id="instance-seasonal-segments",
        ),
    ],
)
def test_export_folds_the_framing(tmp_path, extra, fmt):
    csv = seasonal_csv(tmp_path / "seasonal.csv")
    name = "run"
    run = train(tmp_path, csv, extra, name)
    sig, _ = export_matches_predict(run, csv, tmp_path, fmt)
    seasonal = extra["model"]["residual"] == "seasonal"
    assert sig["window_length"] == 8 + (SEASON if seasonal else 0)
    assert sig["history_rows"] == {"input_length": 8, "season": SEASON if seasonal else 0, "transform": 0}
    assert sig["residual"] == extra["model"]["residual"] and sig["season"] == (SEASON if seasonal else None)
    assert sig["channels"] == extra["model"].get("channels", "mixed")
    assert sig["input_columns"] == ["y", "z", "x"]

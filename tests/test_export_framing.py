"""`rnnforecast export` folds the framing (framing.py) in: residual baselines (persistence, seasonal with its
differenced inputs and residual spread) and independent channels, with window or instance scaling and segment
models; each exported file forecasts what `rnnforecast predict --json` does on the run's last window."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_export import predicted, run_exported, window_from_file

from conftest import merge, run_cli, write_config

SEASON = 4

# Every framing at the fold level, in one TensorFlow process (export's backend): a model of random weights (the
# residual head too, which training starts at 0), the folded Keras model against predict's forecast_table.
FOLD_RUNNER = r"""
import json, sys, time
import numpy as np
from rnnforecast import backend
backend.activate("tensorflow")
backend.quiet_tensorflow_import()
from rnnforecast.config import from_dict
from rnnforecast.export import build_exported, plan_for
from rnnforecast.forecaster import forecast_table
from rnnforecast.models import build_model
from rnnforecast.pipeline import load_data

base, combos = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rng = np.random.default_rng(0)
worst = {}
for norm, residual, channels, segment in combos:
    t0 = time.time()
    cfg = json.loads(json.dumps(base))
    cfg["data"]["scaling"] = norm
    cfg["model"].update({"residual": residual, "channels": channels, "segment_length": segment})
    cfg = from_dict(cfg)
    data = load_data(cfg)
    f = data.framing
    model = build_model(cfg.model, data.input_length, f.network_inputs, data.horizon, f.network_targets, 0,
                        context=len(data.targets) if f.independent else 0)
    for w in model.weights:  # random weights everywhere, the zero residual head too: every input counts
        w.assign(rng.normal(0.0, 0.5, w.shape).astype(w.dtype))
    want = forecast_table(model, data, data.frame.frequency)[data.targets].to_numpy(float)[None]  # (1, H, T)
    p = plan_for(data, "run")
    seg = data.segments[0]
    window = data.raw[seg.hi - p.window : seg.hi][:, data.feature_idx].astype(np.float32)[None]  # (1, W, F)
    got = np.asarray(build_exported(model, p)(window), float)
    key = f"{norm}/{residual}/{channels}/{segment}"
    worst[key] = {"rel": float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))), "window": p.window,
                  "spread": float(np.ptp(want)), "s": round(time.time() - t0, 2)}
print(json.dumps(worst))
"""
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


TRAIN = {
    "window": {"input_length": 8, "horizon": 6},  # H > season: the seasonal baseline repeats the last season
    "model": {"cell": "gru", "units": [6]},
    # a large step: the residual head, which starts at 0, moves off it, so the network's part of a forecast counts
    "training": {"epochs": 2, "batch_size": 32, "learning_rate": 0.05},
}

# Runs through the CLI and both formats, on a pairwise cover of scaling x residual x channels x segments (every pair
# of two options' values in some run; test_the_fold_reproduces_predict_for_every_framing runs the whole product).
TWO = {"target": ["y", "z"]}  # two targets; x is the non-target input
RUNS = {
    # the defaults the lead is moving to; conformal bands: the exported model is the point model
    "window-seasonal-independent": {
        "data": {"scaling": "window", **TWO},
        "model": {"residual": "seasonal", "channels": "independent"},
        "intervals": {"levels": [80], "method": "conformal"},
    },
    "instance-persistence-independent-segments": {
        "data": {"scaling": "instance", **TWO},
        "model": {
            "residual": "persistence",
            "channels": "independent",
            "segment_length": 4,
            "segment_layout": "segrnn",
        },
    },
    "instance-seasonal-mixed-segments": {
        "data": {"scaling": "instance"},  # one target; z and x are inputs only
        "model": {"residual": "seasonal", "segment_length": 4},
    },
    # independent channels without a non-target input; a transform: the window is 8 + 4 + 1 rows
    "standard-seasonal-independent-diff": {
        "data": {"scaling": "standard", "features": ["y", "z"], "transform": {"y": "diff"}, **TWO},
        "model": {"residual": "seasonal", "channels": "independent"},
    },
    # a log target (each value on its own: no row before) beside a differenced input (one row before): 8 + 4 + 1
    "window-seasonal-mixed-log": {
        "data": {"scaling": "window", "transform": {"y": "log", "z": "diff"}},
        "model": {"residual": "seasonal", "segment_length": 4},
    },
    "window-persistence-mixed-segments": {
        "data": {"scaling": "window", **TWO},
        "model": {"residual": "persistence", "segment_length": 4, "channels": "mixed"},  # auto: independent
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``name -> (run, csv)``, each trained on first use, in this process through the CLI (click's runner)."""
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    root = tmp_path_factory.mktemp("framing")
    csv = seasonal_csv(root / "seasonal.csv")
    done: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in done:
            data = {"path": str(csv), "target": "y", "time_column": "time", "season_length": SEASON}
            cfg = merge(merge({"data": data}, TRAIN), RUNS[name])
            path = write_config(root, cfg, f"{name}.yaml")
            result = CliRunner().invoke(cli, ["train", str(path), "--run-dir", str(root / name), "--quiet"])
            assert result.exit_code == 0, result.output
            done[name] = (root / name, csv)
        return done[name]

    return get


def baseline(csv: Path, sig: dict) -> np.ndarray:
    """``(1, H, T)`` the residual's baseline by hand from the raw file: the last value (persistence) or the value
    one season before each step (seasonal naive); the network's part of a forecast is what differs from it."""
    values = pd.read_csv(csv)[sig["output_columns"]].to_numpy(float)  # (N, T)
    h = np.arange(1, sig["horizon"] + 1)
    back = SEASON * np.ceil(h / SEASON).astype(int) if sig["residual"] == "seasonal" else h
    return values[len(values) - 1 + h - back][None]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
@pytest.mark.parametrize("name", list(RUNS))
def test_export_of_a_framed_run_matches_predict(runs, tmp_path, name, fmt):
    """Export through the CLI, run the file (onnxruntime / TensorFlow) on the data's last window built from
    signature.json alone, compare with predict --json."""
    run, csv = runs(name)
    extra = RUNS[name]
    out = tmp_path / f"export-{fmt}"
    proc = run_cli("export", str(run), "--format", fmt, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "matches rnnforecast predict" in proc.stdout
    assert ("the run's 80% conformal bands are not in it" in proc.stdout) == ("intervals" in extra)
    sig = json.loads((out / "signature.json").read_text())
    window = window_from_file(csv, sig)  # (1, W, F)
    want = predicted(run, sig["output_columns"])  # (1, H, T)
    got = run_exported(out, window, tmp_path)
    assert got.shape == want.shape == (1, 6, len(sig["output_columns"]))
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
    # the network's part is not negligible: a wrong input fold would show far above the tolerance
    assert np.abs(want - baseline(csv, sig)).max() > 1e-2

    model = extra["model"]
    seasonal, diff = model["residual"] == "seasonal", "transform" in extra["data"]
    assert sig["window_length"] == 8 + SEASON * seasonal + diff == window.shape[1]
    assert sig["history_rows"] == {"input_length": 8, "season": SEASON * seasonal, "transform": int(diff)}
    assert sig["residual"] == model["residual"] and sig["season"] == (SEASON if seasonal else None)
    assert sig["channels"] == model.get("channels", "mixed")
    assert sig["input_columns"] == extra["data"].get("features", ["y", "z", "x"])
    assert sig["output_columns"] == extra["data"].get("target", ["y"])


@pytest.mark.parametrize("norm", ["standard", "window", "instance"])
def test_the_fold_reproduces_predict_for_every_framing(tmp_path, norm):
    csv = seasonal_csv(tmp_path / "seasonal.csv")
    base = {
        "data": {"path": str(csv), "target": ["y", "z"], "time_column": "time", "season_length": SEASON},
        "window": {"input_length": 8, "horizon": 6},
        "model": {"cell": "gru", "units": [4]},
    }
    combos = list(itertools.product([norm], ["none", "persistence", "seasonal"], ["mixed", "independent"], [None, 4]))
    proc = subprocess.run(
        [sys.executable, "-c", FOLD_RUNNER, json.dumps(base), json.dumps(combos)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(result)
    assert len(result) == 12
    for key, r in result.items():
        assert r["rel"] < TOL, key
        assert r["spread"] > 0.1, key  # a forecast that moves: the check is not of a constant
        assert r["window"] == 8 + (SEASON if "/seasonal/" in key else 0), key

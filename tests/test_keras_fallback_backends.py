"""The Keras path of a trained run on both backends (issue 23 item 7).

``predict`` and ``evaluate`` replay the network in numpy, so a test that runs them under two backends can no longer
fail for a backend reason. Here the Keras path is forced (``Forecaster.load(run, keras=True, backend_name=...)``,
the switch ``inspect`` and ``export`` use) in a fresh process per backend; each process reports which backend Keras
ran on, which backend modules it imported, that the model really is a Keras model, and its forecasts. Forecasts and
test-split scores must agree across backends (1e-5) and with the numpy replay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, TINY, merge, sine_frame, write_config
from rnnforecast.cli import cli

PROBE = r"""
import json, sys
from rnnforecast.forecaster import Forecaster
be, run = sys.argv[1], sys.argv[2]
f = Forecaster.load(run, keras=True, backend_name=be)
data, _ = f.read_data()
table = f.forecast(data)
ev = f.score(data, "test")
import keras
print("PROBE" + json.dumps({
    "backend": keras.backend.backend(),
    "model": type(f.model).__module__ + "." + type(f.model).__name__,
    "is_keras": isinstance(f.model, keras.Model),
    "modules": sorted(m for m in ("jax", "tensorflow") if m in sys.modules),
    "forecast": table["y"].tolist(),
    "p10": table["y_p10"].tolist(),
    "window_forecasts": ev.forecasts["model"][..., 0].ravel().tolist(),
    "mae": ev.metrics["original"]["overall"]["model"]["mae"],
}))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fallback")
    sine_frame(600).to_csv(d / "d.csv", index=False)
    cfg = merge(
        TINY,
        {
            "name": "fallback",
            "seed": 0,
            "data": {"path": "d.csv", "target": "y", "time_column": "time"},
            "model": {"cell": "gru", "units": [6], "activation": "relu"},  # a non-tanh cell: both must agree
            "training": {"final_fit": False},
            "intervals": {"levels": [80]},
            "output": {"plots": False},
        },
    )
    res = CliRunner().invoke(cli, ["train", str(write_config(d, cfg)), "--run-dir", str(d / "run"), "--quiet"])
    assert res.exit_code == 0, res.output
    return d / "run"


def _probe(backend_name: str, run: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend_name, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run(
        [sys.executable, "-c", PROBE, backend_name, str(run)], env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("PROBE")]
    return json.loads(line[len("PROBE") :])


@pytest.mark.slow
def test_the_keras_path_gives_the_same_forecasts_on_jax_and_tensorflow(run):
    got = {be: _probe(be, run) for be in ("jax", "tensorflow")}
    for be, g in got.items():
        assert g["backend"] == be and be in g["modules"], g  # it really ran on that backend
        assert g["is_keras"] and not g["model"].startswith("rnnforecast."), g["model"]  # not the numpy replay
    jax, tf = got["jax"], got["tensorflow"]
    assert len(jax["window_forecasts"]) > 100 and np.std(jax["window_forecasts"]) > 0.1  # not a constant output
    for key in ("forecast", "p10", "window_forecasts"):
        np.testing.assert_allclose(tf[key], jax[key], rtol=1e-5, atol=1e-5, err_msg=key)
    assert tf["mae"] == pytest.approx(jax["mae"], rel=1e-5)

    # and both equal the numpy replay that predict and evaluate use (a third, independent implementation)
    from rnnforecast.forecaster import Forecaster

    f = Forecaster.load(run)
    assert type(f.model).__module__ == "rnnforecast.numpy_model"
    data, _ = f.read_data()
    np.testing.assert_allclose(f.forecast(data)["y"], jax["forecast"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        f.score(data, "test").forecasts["model"][..., 0].ravel(), jax["window_forecasts"], rtol=1e-5, atol=1e-5
    )

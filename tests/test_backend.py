"""The Keras backend: how `auto` resolves, that the config's choice is the one trained on, and that a run
trained on one backend evaluates and predicts on the other with the same numbers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from rnnforecast import backend
from rnnforecast.errors import ConfigError

OTHER = {"jax": "tensorflow", "tensorflow": "jax"}


def test_auto_resolves_to_jax_when_installed(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.resolve("auto") == "jax"


@pytest.mark.parametrize("env", ["tensorflow", "jax"])
def test_keras_backend_environment_variable_overrides_auto(monkeypatch, env):
    monkeypatch.setenv("KERAS_BACKEND", env)
    assert backend.resolve("auto") == env


def test_an_explicit_backend_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backend.resolve("tensorflow") == "tensorflow"


def test_an_unsupported_environment_value_is_ignored_by_auto(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # dropped (issue 8): auto still picks the fastest supported
    assert backend.resolve("auto") == "jax"


def test_switching_backend_after_keras_is_imported_is_refused():
    current = backend.activate("auto")
    import keras

    assert keras.backend.backend() == current
    assert backend.activate(current) == current  # asking again for the same one is fine
    with pytest.raises(ConfigError, match="cannot switch") as e:
        backend.activate(OTHER[current])
    assert e.value.where == "runtime.backend" and "new process" in e.value.fix


def test_metrics_record_backend_and_versions(weather_run: Path):
    import keras

    m = json.loads((weather_run / "metrics.json").read_text())
    assert m["backend"] == keras.backend.backend()
    v = m["versions"]
    assert v["backend"] == m["backend"]
    assert v["keras"] == keras.__version__
    for pkg in ("python", "jax", "jaxlib", "tensorflow", "numpy", "pandas", "rnnforecast"):
        assert v[pkg] and v[pkg][0].isdigit(), (pkg, v)


# ------------------------------------------------------------------ across processes and backends


def _cli(*args: str, backend_env: str | None) -> subprocess.Popen:
    """Start the real CLI in a fresh process on ``backend_env`` (None: no KERAS_BACKEND at all)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend_env:
        env["KERAS_BACKEND"] = backend_env
    return subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _wait(*procs: subprocess.Popen) -> list[str]:
    """Run in parallel (2 cores), then check each exited 0; return their stdouts."""
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{p.args}:\n{err[-3000:]}"
        outs.append(out)
    return outs


@pytest.fixture(scope="module")
def tf_runs(tmp_path_factory, weather_config) -> dict[str, Path]:
    """Two TensorFlow runs trained in parallel: one chosen by KERAS_BACKEND (config says auto), one by the config."""
    d = tmp_path_factory.mktemp("tf_runs")
    runs = {"env": d / "env", "config": d / "config"}
    _wait(
        _cli("train", str(weather_config), "--run-dir", str(runs["env"]), "--quiet", backend_env="tensorflow"),
        # the config's explicit choice must beat a KERAS_BACKEND that says otherwise
        _cli(
            "train",
            str(weather_config),
            "--set",
            "runtime.backend=tensorflow",
            "--run-dir",
            str(runs["config"]),
            "--quiet",
            backend_env="jax",
        ),
    )
    return runs


@pytest.mark.slow
def test_runtime_backend_in_the_config_really_trains_on_tensorflow(tf_runs):
    for run in tf_runs.values():
        m = json.loads((run / "metrics.json").read_text())
        assert m["backend"] == "tensorflow" and m["versions"]["backend"] == "tensorflow", run


@pytest.mark.slow
def test_a_run_predicts_and_evaluates_on_the_other_backend_with_the_same_numbers(weather_run: Path, tf_runs, tmp_path):
    import keras

    runs = {keras.backend.backend(): weather_run, "tensorflow": tf_runs["env"]}
    assert set(runs) == {"jax", "tensorflow"}, "the session's weather_run should be on the default backend, JAX"
    procs = []
    for trained_on, run in runs.items():
        other = OTHER[trained_on]
        out = str(tmp_path / f"{trained_on}.csv")  # -o keeps full precision (the printed table is rounded)
        procs += [
            _cli("predict", str(run), "-o", out, backend_env=other),
            _cli("evaluate", str(run), "--json", backend_env=other),
        ]
    outs = _wait(*procs)
    for i, (trained_on, run) in enumerate(runs.items()):
        predicted, evaluated = (tmp_path / f"{trained_on}.csv").read_text(), json.loads(outs[2 * i + 1])["metrics"]
        saved = json.loads((run / "metrics.json").read_text())
        assert saved["backend"] == trained_on
        fresh, at_training = pd.read_csv(io.StringIO(predicted)), pd.read_csv(run / "forecast.csv")
        assert list(fresh.columns) == list(at_training.columns) and len(fresh) == 2
        assert list(fresh["timestamp"]) == list(at_training["timestamp"])
        pd.testing.assert_series_equal(fresh["temp_max"], at_training["temp_max"], rtol=1e-4, atol=1e-4)
        for section in ("original", "normalised"):
            got = evaluated[section]["overall"]["model"]
            want = saved["test"][section]["overall"]["model"]
            assert got["mse"] == pytest.approx(want["mse"], rel=1e-4), (trained_on, section)
            assert got["mae"] == pytest.approx(want["mae"], rel=1e-4), (trained_on, section)


def test_callback_state_survives_a_checkpoint_round_trip():
    """EarlyStopping/ReduceLROnPlateau state -> JSON -> fresh callbacks; Keras' own reset runs first, then ours."""
    backend.activate("auto")
    import keras
    import numpy as np

    def fresh():
        return (
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=2),
        )

    es, lr = fresh()
    es.wait, es.best, es.best_epoch, es.best_weights = 2, 0.5, 4, [np.ones(2, "float32")]
    lr.wait, lr.best, lr.cooldown_counter = 1, 0.25, 1
    files: dict[str, list] = {}

    def save_best(weights):
        files["best-0005.npz"] = weights
        return "best-0005.npz"

    saved = json.loads(json.dumps(backend.callback_state([es, lr], save_best)))
    assert saved == {
        "early_stopping": {"wait": 2, "best": 0.5, "best_epoch": 4, "best_weights": "best-0005.npz"},
        "reduce_lr": {"wait": 1, "best": 0.25, "cooldown_counter": 1},
    }
    es2, lr2 = fresh()
    backend.restore_callbacks([es2, lr2], saved, files.get)
    es2.on_train_begin()
    lr2.on_train_begin()
    assert (es2.wait, es2.best, es2.best_epoch, lr2.wait, lr2.best, lr2.cooldown_counter) == (2, 0.5, 4, 1, 0.25, 1)
    np.testing.assert_array_equal(es2.best_weights[0], np.ones(2))
    es3, _ = fresh()
    es3.wait = 2
    es3.on_train_begin()  # without restore_callbacks Keras starts over
    assert es3.wait == 0 and es3.best_weights is None

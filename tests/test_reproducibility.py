"""Same config, same seed, same machine: identical metrics.json, on each backend; results trace back to their inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, merge, write_config
from rnnforecast.cli import cli

pytestmark = pytest.mark.slow

EXTRA = {  # dropout and shuffling on, so the seed has something to decide
    "name": "repro",
    "window": {"input_length": 7, "horizon": 2},
    "model": {"units": [8], "dropout": 0.2},
    "training": {"epochs": 2, "batch_size": 64},
    "output": {"plots": False},
}


def _config(directory: Path) -> Path:
    """A tiny weather config on a private copy of the data (so a test may change it)."""
    shutil.copy(DATA / "weather.csv", directory / "weather.csv")
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = "weather.csv"
    return write_config(directory, merge(cfg, EXTRA))


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def jax_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two in-process trainings of one config on the default backend."""
    d = tmp_path_factory.mktemp("repro")
    config = _config(d)
    runs = []
    for name in ("a", "b"):
        r = CliRunner().invoke(cli, ["train", str(config), "--run-dir", str(d / name), "--quiet"])
        assert r.exit_code == 0, r.output
        runs.append(d / name)
    return config, runs[0], runs[1]


def test_same_config_and_seed_give_identical_metrics(jax_runs):
    _, a, b = jax_runs
    assert _metrics(a) == _metrics(b)  # every value, bit for bit
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    assert (a / "forecast.csv").read_text() == (b / "forecast.csv").read_text()


def test_seed_plus_one_gives_different_numbers(jax_runs):
    """The seed really decides something: seed 43 must not reproduce seed 42 (else "identical" proves nothing)."""
    config, a, _ = jax_runs
    other = config.parent / "seed43"
    r = CliRunner().invoke(cli, ["train", str(config), "--set", "seed=43", "--run-dir", str(other), "--quiet"])
    assert r.exit_code == 0, r.output
    m42, m43 = _metrics(a), _metrics(other)
    assert m42["seed"] == 42 and m43["seed"] == 43
    o42, o43 = (m["test"]["original"]["overall"] for m in (m42, m43))
    assert o43["persistence"] == o42["persistence"]  # same data, same windows: only the model changed
    assert o43["model"]["mse"] != o42["model"]["mse"] and o43["model"]["mae"] != o42["model"]["mae"]
    assert (other / "history.csv").read_text() != (a / "history.csv").read_text()


def test_metrics_record_versions_hashes_and_no_timings(jax_runs):
    config, a, _ = jax_runs
    m = _metrics(a)
    versions = m["versions"]
    for key in ("rnnforecast", "keras", "numpy", "pandas", "python", "backend"):
        assert versions.get(key), (key, versions)
    assert versions["backend"] == m["backend"] and versions.get(m["backend"]), versions  # the backend's own version
    assert m["data_sha256"] == hashlib.sha256((config.parent / "weather.csv").read_bytes()).hexdigest()
    from rnnforecast.config import load_config

    kept = load_config(a / "config.yaml")  # the config the run used: the user's, its auto keys settled
    assert m["config_sha256"] == kept.hash()
    autos = ("data.scaling", "model.channels", "model.segment_length", "model.residual")
    assert kept.replace(**dict.fromkeys(autos, "auto")).hash() == load_config(config).hash()  # nothing else differs
    text = json.dumps(m)
    assert "seconds" not in text and "timing" not in text  # timings live in timing.json
    assert json.loads((a / "timing.json").read_text())["train_seconds"] > 0


def test_evaluate_warns_when_the_data_changed_since_training(jax_runs, tmp_path):
    config, a, _ = jax_runs
    run = tmp_path / "run"
    shutil.copytree(a, run)
    r = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert r.exit_code == 0 and "changed since training" not in r.stderr, r.output
    data = config.parent / "weather.csv"
    original = data.read_text()
    try:
        lines = original.splitlines(keepends=True)
        cells = lines[1300].split(",")
        cells[2] = str(float(cells[2]) + 1.0)  # temp_max of one test-split day
        data.write_text("".join(lines[:1300] + [",".join(cells)] + lines[1301:]))
        r = CliRunner().invoke(cli, ["evaluate", str(run)])
    finally:
        data.write_text(original)
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if "changed since training" in line]
    assert len(warning) == 1 and "weather.csv" in warning[0] and "SHA-256" in warning[0], r.stderr


def test_tensorflow_reruns_are_identical_too(tmp_path):
    """TensorFlow needs op determinism (backend.seed_everything enables it); two processes in parallel."""
    config = _config(tmp_path)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "rnnforecast", "train", str(config), "--run-dir", str(tmp_path / name), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    }
    for p in procs.values():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert a["backend"] == "tensorflow" and a["versions"]["backend"] == "tensorflow" and a["versions"].get("tensorflow")
    assert a == b
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()

"""runtime.distribution: data_parallel over two (forced host) devices gives one device's loss curve; TF refuses it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, DATA, TINY, merge, run_cli, write_config

TWO_DEVICES = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def even_config(tmp_path) -> tuple:
    """A tiny weather config whose train and val window counts are even, so two devices drop no window."""
    from rnnforecast.config import load_config
    from rnnforecast.pipeline import load_data

    lines = (DATA / "weather.csv").read_text().splitlines(keepends=True)
    cfg = merge(yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text()), TINY)
    cfg = merge(cfg, {"model": {"units": [4]}, "training": {"epochs": 3}, "output": {"plots": False}})
    for rows in range(300, 320):
        (tmp_path / "w.csv").write_text("".join(lines[: rows + 1]))
        cfg["data"]["path"] = str(tmp_path / "w.csv")
        path = write_config(tmp_path, cfg)
        data = load_data(load_config(path))
        counts = [len(data.starts("train")), len(data.starts("val", stride=1))]
        if all(n % 2 == 0 for n in counts):
            return path, counts
    raise AssertionError("no row count gave even window counts")


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one_device(tmp_path):
    cfg, counts = even_config(tmp_path)
    runs = {}
    for name in ("none", "data_parallel"):
        out = tmp_path / name
        r = run_cli(
            "train",
            str(cfg),
            "--set",
            f"runtime.distribution={name}",
            "--run-dir",
            str(out),
            "--quiet",
            env=TWO_DEVICES,
        )
        assert r.returncode == 0, r.stderr
        runs[name] = out
    devices = {k: json.loads((d / "metrics.json").read_text())["devices"] for k, d in runs.items()}
    assert devices == {"none": 1, "data_parallel": 2}
    one, two = (pd.read_csv(runs[k] / "history.csv") for k in ("none", "data_parallel"))
    assert len(one) == len(two) == 3
    # Same windows, same seed, same order: only the reduction order of the batch mean differs.
    assert two["loss"].to_numpy() == pytest.approx(one["loss"].to_numpy(), rel=1e-4)
    assert two["val_loss"].to_numpy() == pytest.approx(one["val_loss"].to_numpy(), rel=1e-4)


def test_data_parallel_is_refused_on_tensorflow(tmp_path):
    cfg = merge(yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text()), TINY)
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg["runtime"] = {"backend": "tensorflow", "distribution": "data_parallel"}
    r = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 1
    assert "runtime.distribution: data_parallel needs the JAX backend; this run uses 'tensorflow'" in r.stderr
    assert "Fix: set runtime.backend: jax" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()

"""Synthetic scenarios whose answers are known, trained in one process per backend.

Run as ``python tests/scenarios.py OUT_DIR`` (KERAS_BACKEND chooses the backend); prints one JSON
line: scenario -> test metrics of the model (original units, overall).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def sine(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 25) + 0.1 * rng.standard_normal(n)


def ar1_walk(n=2000, seed=1, phi=0.6, mu=0.3, sigma=1.0, start=100.0):
    """Level whose increments are AR(1) with coefficient ``phi`` around drift ``mu``."""
    rng = np.random.default_rng(seed)
    d = np.empty(n)
    d[0] = mu
    for i in range(1, n):
        d[i] = mu + phi * (d[i - 1] - mu) + sigma * rng.standard_normal()
    return start + np.cumsum(d)


def shuffled_sine_walk(n=1200, seed=2):
    """Control: the sine's increments in random order, cumulated. Nothing is predictable beyond the last value."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.permutation(np.diff(sine(n + 1))))


def scenarios() -> dict[str, tuple[np.ndarray, dict]]:
    walk = ar1_walk()
    base_rw = {"window": {"input_length": 10, "horizon": 1}, "model": {"units": [16]}, "training": {"epochs": 25}}
    return {
        "sine": (
            sine(),
            {"window": {"input_length": 25, "horizon": 3}, "model": {"units": [16]}, "training": {"epochs": 12}},
        ),
        "control": (
            shuffled_sine_walk(),
            {"window": {"input_length": 25, "horizon": 1}, "model": {"units": [16]}, "training": {"epochs": 12}},
        ),
        "rw_standard": (walk, {**base_rw, "data": {"scaling": "standard"}}),  # the old default; window is today's
        "rw_diff": (walk, {**base_rw, "data": {"transform": "diff"}}),
        "rw_log_diff": (walk, {**base_rw, "data": {"transform": "log_diff"}}),
        "rw_window": (walk, {**base_rw, "data": {"scaling": "window"}}),
    }


def config_for(name: str, y: np.ndarray, extra: dict, out: Path) -> Path:
    csv = out / f"{name}.csv"
    pd.DataFrame({"time": pd.date_range("2020-01-01", periods=len(y), freq="h"), "y": y}).to_csv(csv, index=False)
    cfg = {
        "name": name,
        "seed": 7,
        "data": {"path": str(csv), "target": "y", "time_column": "time", **extra.get("data", {})},
    }
    for k in ("window", "model", "training"):
        if k in extra:
            cfg[k] = extra[k]
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def main(out: Path, only: list[str] | None = None) -> dict:
    from rnnforecast import pipeline
    from rnnforecast.config import load_config

    results = {}
    for name, (y, extra) in scenarios().items():
        if only and name not in only:
            continue
        path = config_for(name, y, extra, out)
        res = pipeline.train(load_config(path), config_path=str(path), run_dir=str(out / "runs" / name), quiet=True)
        results[name] = {**res.metrics["test"]["original"]["overall"]["model"], "backend": res.metrics["backend"]}
    return results


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print("RESULTS " + json.dumps(main(out, sys.argv[2:] or None)))

"""Measurements that need one Keras backend (or a clean process), run as ``python -m bench.worker TASKS_JSON``.

The backend is chosen by the parent through ``KERAS_BACKEND`` before anything here imports Keras.
Prints ``BENCH_RESULT [result, ...]`` (one JSON result per task) as the last stdout line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from bench.common import MARKER, summary

# --------------------------------------------------------------------------- rnnforecast itself


def task_train(t: dict) -> dict:
    """``rnnforecast train CONFIG --run-dir DIR --quiet``, in this process; epoch times from timing.json."""
    from rnnforecast.cli import cli

    run_dir = Path(t["run_dir"])
    cfg_path = run_dir.parent / f"{run_dir.name}.yaml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(t["config"], sort_keys=False))
    args = ["train", str(cfg_path), "--run-dir", str(run_dir), "--quiet"]
    for item in t.get("set", []):
        args += ["--set", item]
    t0 = time.perf_counter()
    code = cli.main(args=args, prog_name="rnnforecast", standalone_mode=False)
    seconds = time.perf_counter() - t0
    if code not in (None, 0):
        raise RuntimeError(f"rnnforecast train exited {code}")
    timing = json.loads((run_dir / "timing.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = timing["epoch_seconds"]
    return {
        "epoch_seconds": epochs,
        "train_seconds": timing["train_seconds"],
        # every epoch after the first, with what happens between epochs (checkpoint save) included
        "wall_per_epoch": (timing["train_seconds"] - epochs[0]) / (len(epochs) - 1) if len(epochs) > 1 else epochs[0],
        "command_seconds": seconds,
        "backend": metrics["backend"],
        "params": metrics["training"]["params"],
        "run_dir": str(run_dir),
    }


def task_train_peak(t: dict) -> dict:
    """``task_train`` plus this process's peak resident memory (``ru_maxrss``) after it."""
    import resource

    out = task_train(t)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return out


def _arrays(cfg_dict: dict, tmp: Path):
    """The config as rnnforecast reads it, and its train/val windows materialised as numpy arrays."""
    from rnnforecast import pipeline
    from rnnforecast.config import load_config

    cfg_path = tmp / "plain.yaml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
    cfg = load_config(cfg_path)
    data = pipeline.load_data(cfg)
    return cfg, data


class _EpochClock:
    """Seconds from epoch begin to epoch end, as rnnforecast's Progress callback measures them."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t0)

        return Clock()


def task_plain_fit(t: dict) -> dict:
    """The same model, compiled the same way, trained by a plain ``model.fit`` on pre-materialised arrays."""
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast import fit as T
    from rnnforecast.models import build_model

    cfg, data = _arrays(t["config"], Path(t["tmp"]))
    x_tr, y_tr = data.batch(data.starts("train"))  # (N, L, F), (N, H, T)
    x_va, y_va = data.batch(data.starts("val", stride=1))
    T.seed_everything(cfg.seed, cfg.runtime.deterministic)
    model = build_model(
        cfg.model, cfg.window.input_length, len(data.feature_idx), cfg.window.horizon, len(data.target_idx), cfg.seed
    )
    T.compile_model(model, cfg)
    clock = _EpochClock()
    t0 = time.perf_counter()
    model.fit(
        {"past": x_tr},
        y_tr[..., None],
        validation_data=({"past": x_va}, y_va[..., None]),
        batch_size=cfg.training.batch_size,
        epochs=cfg.training.epochs,
        shuffle=True,
        callbacks=[clock],
        verbose=0,
    )
    seconds = time.perf_counter() - t0
    epochs = clock.seconds
    return {
        "epoch_seconds": epochs,
        "fit_seconds": seconds,
        "wall_per_epoch": (seconds - epochs[0]) / (len(epochs) - 1) if len(epochs) > 1 else epochs[0],
        "n_train": len(x_tr),
        "n_val": len(x_va),
        "array_bytes": int(x_tr.nbytes + y_tr.nbytes + x_va.nbytes + y_va.nbytes),
        "backend": backend.resolve("auto"),
    }


def task_throughput(t: dict) -> dict:
    """Windows per second of rnnforecast's input pipeline alone: every training batch of one shuffled epoch."""
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast import fit as T

    cfg, data = _arrays(t["config"], Path(t["tmp"]))
    ds = T.WindowDataset(data, data.starts("train"), cfg.training.batch_size, shuffle=True, seed=cfg.seed)
    rates = []
    for r in range(t["repeats"]):
        ds.set_epoch(r + 1)
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        rates.append(len(ds.starts) / (time.perf_counter() - t0))
    return {
        "windows_per_second": summary(rates),
        "n_windows": int(len(ds.starts)),
        "batch_size": cfg.training.batch_size,
    }


# --------------------------------------------------------------------------- the tutorial's pipeline


def task_tutorial(t: dict) -> dict:
    """TensorFlow's time-series tutorial pipeline: ``timeseries_dataset_from_array`` + a split map, same model.

    As in the tutorial's ``WindowGenerator.make_dataset``: windows of ``input_length + horizon``
    rows, stride 1, shuffled, batched, then split into inputs and labels by a ``map``.
    """
    from rnnforecast import backend

    backend.activate("tensorflow")
    import keras
    import tensorflow as tf

    from rnnforecast import fit as T
    from rnnforecast.models import build_model

    cfg, data = _arrays(t["config"], Path(t["tmp"]))
    L, H = cfg.window.input_length, cfg.window.horizon
    feats = tf.constant(data.feature_idx)
    targs = tf.constant(data.target_idx)

    def split_window(batch):  # (B, L+H, C) -> ({"past": (B, L, F)}, (B, H, T, 1))
        inputs = tf.gather(batch[:, :L, :], feats, axis=2)
        labels = tf.gather(batch[:, L:, :], targs, axis=2)
        return {"past": inputs}, labels[..., None]

    def make_dataset(split: str, shuffle: bool):
        lo, hi = data.segments[0].bounds[split]
        ds = keras.utils.timeseries_dataset_from_array(
            data=data.values[lo:hi],
            targets=None,
            sequence_length=L + H,
            sequence_stride=1,
            shuffle=shuffle,
            batch_size=cfg.training.batch_size,
            seed=cfg.seed,
        )
        return ds.map(split_window)

    keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg.model, L, len(data.feature_idx), H, len(data.target_idx), cfg.seed)
    T.compile_model(model, cfg)
    clock = _EpochClock()
    t0 = time.perf_counter()
    model.fit(
        make_dataset("train", True),
        validation_data=make_dataset("val", False),
        epochs=cfg.training.epochs,
        callbacks=[clock],
        verbose=0,
    )
    seconds = time.perf_counter() - t0
    return {
        "epoch_seconds": clock.seconds,
        "fit_seconds": seconds,
        "backend": keras.backend.backend(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }


# --------------------------------------------------------------------------- memory (no backend)


def _rss() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:  # Linux without psutil
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def task_memory(t: dict) -> dict:
    """Peak RSS increase of one shuffled pass over every window of a float32 series, vs the series' bytes.

    The clock and the memory baseline start once the scaled array exists; the pass does what
    training does each epoch: start indices, a (seed, epoch) permutation, then ``SeriesData.batch``
    per batch.
    """
    import resource
    import threading

    import numpy as np

    from rnnforecast import windows
    from rnnforecast.framing import Framing
    from rnnforecast.series import SeriesData

    rows, F, L, H, B = t["rows"], t["features"], t["input_length"], t["horizon"], t["batch_size"]
    values = np.random.default_rng(0).standard_normal((rows, F), dtype=np.float32)  # (N, F) the scaled series
    data = SeriesData(
        frame=None, raw=None, values=values, columns=[f"c{j}" for j in range(F)], feature_idx=list(range(F)), target_idx=[0],
        transform={}, scaler=None, segments=[], input_length=L, horizon=H, stride=1,
        framing=Framing("none", "none", 1, False, (0,), F),
    )  # fmt: skip
    rss0 = _rss()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    starts = windows.window_starts([(0, rows)], L, H, 1)
    order = starts[np.random.default_rng([0, 1]).permutation(len(starts))]  # as WindowDataset.set_epoch
    checksum = 0.0
    for i in range(0, len(order), B):
        x, y = data.batch(order[i : i + B])  # (B, L, F), (B, H, 1)
        checksum += float(x[0, 0, 0])
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak_rss = max(peak[0], maxrss1 if maxrss1 > maxrss0 else 0)
    increase = max(peak_rss - rss0, 0)
    return {
        "rows": rows,
        "features": F,
        "input_length": L,
        "batch_size": B,
        "series_bytes": int(values.nbytes),
        "windows": int(len(starts)),
        "materialised_bytes": int(len(starts)) * L * F * 4,  # what stacking every input window would take
        "rss_at_start": rss0,
        "peak_rss": peak_rss,
        "peak_increase_bytes": increase,
        "ratio": increase / values.nbytes,
        "pass_seconds": seconds,
        "windows_per_second": len(starts) / seconds,
        "checksum": checksum,
    }


# --------------------------------------------------------------------------- prediction


def task_predict_latency(t: dict) -> dict:
    """Load a run once, then time single forecasts: the first (cold) call and the median of the next ``calls``."""
    from rnnforecast import pipeline

    t0 = time.perf_counter()
    run, model, data, _ = pipeline.open_run_with_data(t["run_dir"])
    load_seconds = time.perf_counter() - t0
    freq = run.schema["frequency"]
    t0 = time.perf_counter()
    table = pipeline.forecast_table(model, data, freq)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(t["calls"]):
        t0 = time.perf_counter()
        again = pipeline.forecast_table(model, data, freq)
        warm.append(time.perf_counter() - t0)
    if not table.equals(again):
        raise RuntimeError("repeated forecasts differ")
    return {"load_seconds": load_seconds, "first_seconds": first, "warm_seconds": summary(warm), "rows": len(table)}


TASKS = {
    "train": task_train,
    "plain_fit": task_plain_fit,
    "throughput": task_throughput,
    "tutorial": task_tutorial,
    "memory": task_memory,
    "predict_latency": task_predict_latency,
    "train_peak": task_train_peak,
}


def main(argv: list[str]) -> None:
    tasks = json.loads(argv[0])
    results = [TASKS[t["kind"]](t) for t in tasks]
    sys.stdout.flush()
    print(MARKER + json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

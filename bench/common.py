"""Shared pieces of the benchmarks: the machine description, medians, synthetic data, worker processes.

Nothing here imports Keras: the driver (bench/run.py) stays backend-free, and every measurement
that needs a backend runs in a worker process (bench/worker.py) started with that backend.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "BENCH_RESULT "  # the worker's last stdout line: MARKER + JSON


# --------------------------------------------------------------------------- the machine


def machine() -> dict:
    """CPU, cores, memory, load and the versions that shape every figure."""
    info = {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpu": "none visible" if not Path("/dev/nvidia0").exists() else "present (not used by these figures)",
    }
    for pkg in ("rnnforecast", "keras", "jax", "jaxlib", "tensorflow", "numpy", "pandas"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    return info


def compile_bytecode() -> str:
    """Write the package's bytecode, as ``pip install`` does at install time.

    Under ``PYTHONDONTWRITEBYTECODE`` (set on the project's machines, and in many Docker images) an editable install
    never caches its bytecode, so every fresh process would compile the package's modules again (about 0.1 s);
    start-up figures then measure the compiler, not what a user waits for.
    """
    import compileall

    compileall.compile_dir(ROOT / "rnnforecast", quiet=1)
    return "compiled before measuring (as pip install does)" + (
        "; PYTHONDONTWRITEBYTECODE is set here" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    )


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load: other work on a shared machine slows every figure alike."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- numbers


def summary(values: list[float]) -> dict:
    """Median (the figure we report) with the spread and the count it came from."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summary() needs at least one value")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def timed_epochs(epoch_seconds: list[float]) -> list[float]:
    """Epoch times without the first epoch, which includes compiling the train and test steps."""
    return list(epoch_seconds[1:]) if len(epoch_seconds) > 1 else list(epoch_seconds)


# --------------------------------------------------------------------------- synthetic data


def write_series(path: Path, rows: int, features: int = 14, seed: int = 0) -> Path:
    """An hourly CSV: target ``y`` with daily and weekly seasons plus AR(1) noise, and ``features - 1`` covariates.

    Every column is a model input (``features`` defaults to all numeric columns), so the model
    sees ``features`` inputs.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    noise = rng.standard_normal(rows)
    ar = np.empty(rows)
    ar[0] = noise[0]
    for i in range(1, rows):  # AR(1), coefficient 0.8: about 0.5 s per million rows
        ar[i] = 0.8 * ar[i - 1] + noise[i]
    y = 10 + 3 * np.sin(2 * np.pi * t / 24) + 1.5 * np.sin(2 * np.pi * t / (24 * 7)) + 0.5 * ar
    cols = {"date": pd.date_range("2000-01-01", periods=rows, freq="h"), "y": y}
    for j in range(1, features):
        phase = rng.uniform(0, 2 * np.pi)
        cols[f"x{j}"] = np.sin(2 * np.pi * t / 24 + phase) + 0.3 * rng.standard_normal(rows) + 0.1 * y
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(cols).to_csv(path, index=False, float_format="%.5f")
    return path


def write_many_series(path: Path, n_series: int, rows: int, seed: int = 0) -> Path:
    """A long-format hourly CSV of ``n_series`` series of ``rows`` rows each: ``id, date, y, x1``; every series
    has its own level, daily phase and AR(1) noise (vectorised over series)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)[None, :]  # (1, R)
    level = rng.uniform(5, 15, (n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    noise = rng.standard_normal((n_series, rows))
    ar = np.empty_like(noise)
    ar[:, 0] = noise[:, 0]
    for i in range(1, rows):
        ar[:, i] = 0.8 * ar[:, i - 1] + noise[:, i]
    y = level + 3 * np.sin(2 * np.pi * t / 24 + phase) + 0.5 * ar  # (S, R)
    x1 = np.sin(2 * np.pi * t / 24 + phase + 1) + 0.3 * rng.standard_normal((n_series, rows))
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"s{i:04d}" for i in range(n_series)], rows),
            "date": np.tile(pd.date_range("2000-01-01", periods=rows, freq="h").astype(str), n_series),
            "y": y.ravel(),
            "x1": x1.ravel(),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.5f")
    return path


def series_config(csv: Path, name: str, **sections: dict) -> dict:
    """The benchmark config: LSTM(32) -> head, 24 steps in, 1 out, batch 32; ``sections`` override it."""
    cfg = {
        "name": name,
        "data": {"path": str(csv), "target": "y", "time_column": "date", "frequency": "h"},
        "window": {"input_length": 24, "horizon": 1},
        "model": {"cell": "lstm", "units": [32]},
        "training": {"epochs": 4, "batch_size": 32, "early_stopping": None},
        "output": {"plots": False},
        "runtime": {"backend": "auto"},
    }
    for key, extra in sections.items():
        cfg[key] = {**cfg.get(key, {}), **extra}
    return cfg


def split_windows(
    rows: int, input_length: int = 24, horizon: int = 1, train: float = 0.7, val: float = 0.15
) -> dict[str, int]:
    """Windows in the train (stride 1) and val splits of one series, as series.split_rows cuts it and
    SeriesData.starts windows it (val windows own their targets; their inputs read the rows before)."""
    a = int(round(rows * train))
    b = a + int(round(rows * val))
    span = input_length + horizon
    return {"train": max(a - span + 1, 0), "val": max(b - a - horizon + 1, 0)}


# --------------------------------------------------------------------------- processes


def worker_env(backend: str | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.update(extra)
    return env


def run_worker(
    tasks: list[dict], backend: str | None = None, env: dict[str, str] | None = None, timeout: float = 3600
) -> list[dict]:
    """Run ``tasks`` in one fresh ``python -m bench.worker`` process; return one result per task."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps(tasks)],
        capture_output=True,
        text=True,
        env={**worker_env(backend), **(env or {})},
        cwd=ROOT,
        timeout=timeout,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"bench worker failed (exit {proc.returncode}) on {[t['kind'] for t in tasks]}:\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len(MARKER) :])


def wall(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 600
) -> tuple[float, subprocess.CompletedProcess]:
    """Wall-clock seconds of one command, and its completed process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or worker_env(), cwd=cwd, timeout=timeout)
    return time.perf_counter() - t0, proc


def cli_command() -> list[str]:
    """The installed ``rnnforecast`` script next to this Python, else ``python -m rnnforecast``."""
    script = Path(sys.executable).with_name("rnnforecast")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rnnforecast"]

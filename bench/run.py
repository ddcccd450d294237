"""Run the benchmark suite: ``python -m bench.run [--quick] [--only NAME[,NAME]]``.

Writes ``bench/results/<YYYY-MM-DD>-<host>.json`` and rewrites the table between the
``bench:start``/``bench:end`` markers in ``docs/benchmarks.md``. Every figure is the median of
several repeats (timed epochs after the compile epoch, or repeated calls); every ratio compares
two figures measured in the same run. ``--quick`` runs tiny sizes in seconds, to keep the
scripts from rotting (tests/test_bench.py), not to measure anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    ROOT,
    cli_command,
    compile_bytecode,
    load_average,
    machine,
    run_worker,
    series_config,
    split_windows,
    summary,
    timed_epochs,
    wall,
    worker_env,
    write_many_series,
    write_series,
)
from bench.report import update_docs

CELLS = ("simple_rnn", "lstm", "gru")
DL_MODULES = ("keras", "jax", "tensorflow")


@dataclass
class Context:
    quick: bool
    tmp: Path
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)
    _csv: dict[int, Path] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def size(self, full, quick):
        return quick if self.quick else full

    def series(self, rows: int) -> Path:
        """The synthetic CSV with ``rows`` rows (written once per run)."""
        with self._lock:
            if rows not in self._csv:
                self._csv[rows] = write_series(self.tmp / "data" / f"series_{rows}.csv", rows)
            return self._csv[rows]

    @property
    def epochs(self) -> int:
        return self.size(4, 2)  # the first is the compile epoch and is not timed


def _epochs_of(results: list[dict]) -> list[float]:
    return [s for r in results for s in timed_epochs(r["epoch_seconds"])]


def _train_task(ctx: Context, cfg: dict, label: str) -> dict:
    return {"kind": "train", "config": cfg, "run_dir": str(ctx.tmp / "runs" / label)}


# --------------------------------------------------------------------------- 1. overhead


def bench_overhead(ctx: Context) -> dict:
    """rnnforecast train vs a plain model.fit on materialised arrays; same model, backend, batch size."""
    rows = ctx.size(70_000, 2_000)
    rounds = ctx.size(5, 1)
    cfg = series_config(ctx.series(rows), "overhead", training={"epochs": ctx.epochs})
    tasks = []
    for r in range(rounds):  # interleaved, in alternating order, so load from other processes hits both alike
        pair = [
            _train_task(ctx, cfg, f"overhead_{r}"),
            {"kind": "plain_fit", "config": cfg, "tmp": str(ctx.tmp / "plain")},
        ]
        tasks += pair if r % 2 == 0 else pair[::-1]
    tasks.append({"kind": "throughput", "config": cfg, "tmp": str(ctx.tmp / "plain"), "repeats": ctx.size(3, 1)})
    res = run_worker(tasks)  # no KERAS_BACKEND: rnnforecast's default (auto)
    ours = [r for r in res if r.get("run_dir")]
    plain = [r for r in res if "fit_seconds" in r]
    pipe = res[-1]
    rnn, ref = summary(_epochs_of(ours)), summary(_epochs_of(plain))
    # each round's pair ran back to back: their ratio cancels slow changes in the machine's load
    paired = [
        statistics.median(timed_epochs(a["epoch_seconds"])) / statistics.median(timed_epochs(b["epoch_seconds"]))
        for a, b in zip(ours, plain)
    ]
    rnn_wall = summary([r["wall_per_epoch"] for r in ours])
    ref_wall = summary([r["wall_per_epoch"] for r in plain])
    n_train, n_val = plain[0]["n_train"], plain[0]["n_val"]
    consumed = (n_train + n_val) / rnn["median"]  # windows per second the model takes in training
    produced = pipe["windows_per_second"]["median"]
    return {
        "rows": rows,
        "features": 14,
        "input_length": 24,
        "batch_size": 32,
        "model": "LSTM(32) -> Dense head",
        "backend": ours[0]["backend"],
        "windows": {"train": n_train, "val": n_val},
        "rnnforecast_epoch_seconds": rnn,
        "plain_fit_epoch_seconds": ref,
        "ratio": rnn["median"] / ref["median"],
        "ratio_per_round": summary(paired),
        "rnnforecast_wall_per_epoch": rnn_wall,
        "plain_fit_wall_per_epoch": ref_wall,
        "ratio_wall": rnn_wall["median"] / ref_wall["median"],
        "materialised_array_bytes": plain[0]["array_bytes"],
        "pipeline_windows_per_second": pipe["windows_per_second"],
        "model_windows_per_second": consumed,
        "throughput_ratio": produced / consumed,
    }


# --------------------------------------------------------------------------- 2b. whole process


def _train_process(ctx: Context, cfg_path: Path, label: str, **env: str) -> dict:
    """Wall seconds of one `rnnforecast train` process, with its timing.json."""
    run_dir = ctx.tmp / "runs" / label
    seconds, proc = wall(
        [*cli_command(), "train", str(cfg_path), "--run-dir", str(run_dir), "--quiet"], env=worker_env(**env)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rnnforecast train failed:\n{proc.stderr[-2000:]}")
    timing = json.loads((run_dir / "timing.json").read_text())
    shutil.rmtree(run_dir, ignore_errors=True)
    ep = timing["epoch_seconds"]
    return {"seconds": seconds, "train_seconds": timing["train_seconds"], "epoch_seconds": ep,
            "compile_seconds": ep[0] - statistics.median(ep[1:]) if len(ep) > 1 else 0.0}  # fmt: skip


def bench_process(ctx: Context) -> dict:
    """Issue 17: the whole `rnnforecast train` process vs the tutorial's `fit` alone; compile cost with and without
    the persistent compilation cache. 100k rows x 8 columns, LSTM(32), input_length 24, batch 32, 3 epochs."""
    import yaml

    rows, epochs, rounds = ctx.size(100_000, 1_500), 3, ctx.size(3, 1)
    csv = write_series(ctx.tmp / "data" / f"process_{rows}.csv", rows, features=8)
    cfg = series_config(csv, "process", training={"epochs": epochs})
    cfg_path = ctx.tmp / "process.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cache = str(ctx.tmp / "jax-cache")
    cold, warm, tf_train, tut = [], [], [], []
    for r in range(rounds):  # a fresh cache folder each round: "cold" compiles everything, "warm" reuses it
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(_train_process(ctx, cfg_path, f"cold_{r}", RNNFORECAST_JAX_CACHE=cache))
        warm.append(_train_process(ctx, cfg_path, f"warm_{r}", RNNFORECAST_JAX_CACHE=cache))
        tf_train.append(_train_process(ctx, cfg_path, f"tf_{r}", KERAS_BACKEND="tensorflow"))
        tut += run_worker(
            [{"kind": "tutorial", "config": cfg, "tmp": str(ctx.tmp / "tut_process")}],
            backend="tensorflow",
            env={"TF_ENABLE_ONEDNN_OPTS": "1"},
        )
    fit_alone = summary([t["fit_seconds"] for t in tut])
    whole = {k: summary([x["seconds"] for x in v]) for k, v in (("cold", cold), ("warm", warm), ("tf", tf_train))}
    return {
        "rows": rows,
        "features": 8,
        "epochs": epochs,
        "tutorial_backend": tut[0]["backend"],
        "tutorial_fit_seconds": fit_alone,
        "train_process_seconds": whole,  # cold: empty compilation cache (JAX); warm: same shapes again; tf: TensorFlow
        "train_seconds": summary([x["train_seconds"] for x in cold]),
        "ratio_cold": fit_alone["median"] / whole["cold"]["median"],  # JAX process vs TF tutorial fit
        "ratio_warm": fit_alone["median"] / whole["warm"]["median"],
        "ratio_same_backend": fit_alone["median"] / whole["tf"]["median"],  # TF process vs TF tutorial fit
        "compile_seconds": {
            "cold": summary([x["compile_seconds"] for x in cold]),
            "warm": summary([x["compile_seconds"] for x in warm]),
        },
    }


# --------------------------------------------------------------------------- 2. tutorial pipeline


def bench_tutorial(ctx: Context) -> dict:
    """rnnforecast's default vs TensorFlow + timeseries_dataset_from_array, per cell."""
    rows = ctx.size(30_000, 1_500)
    cells_run = ctx.size(CELLS, ("lstm",))
    cfgs = {
        c: series_config(ctx.series(rows), f"tutorial_{c}", model={"cell": c}, training={"epochs": ctx.epochs})
        for c in cells_run
    }
    ours = run_worker([_train_task(ctx, cfgs[c], f"tutorial_{c}") for c in cells_run])
    # TensorFlow as the tutorial runs it: oneDNN on (TensorFlow's default on x86; rnnforecast turns it off for determinism)
    tut = run_worker(
        [{"kind": "tutorial", "config": cfgs[c], "tmp": str(ctx.tmp / f"tut_{c}")} for c in cells_run],
        backend="tensorflow",
        env={"TF_ENABLE_ONEDNN_OPTS": "1"},
    )
    cells = {}
    for c, a, b in zip(cells_run, ours, tut):
        mine, theirs = summary(timed_epochs(a["epoch_seconds"])), summary(timed_epochs(b["epoch_seconds"]))
        cells[c] = {
            "rnnforecast_epoch_seconds": mine,
            "tutorial_epoch_seconds": theirs,
            "speedup": theirs["median"] / mine["median"],
        }
    return {
        "rows": rows,
        "windows": split_windows(rows),
        "rnnforecast_backend": ours[0]["backend"],
        "tutorial_backend": tut[0]["backend"],
        "cells": cells,
        "min_speedup": min(v["speedup"] for v in cells.values()),
    }


# --------------------------------------------------------------------------- 3. memory


def bench_memory(ctx: Context) -> dict:
    """Peak RSS increase of one shuffled pass over every window, vs the float32 series' bytes."""
    task = {
        "kind": "memory",
        "rows": ctx.size(5_000_000, 100_000),
        "features": 16,
        "input_length": 168,
        "horizon": 1,
        "batch_size": 32,
    }
    runs = [run_worker([task])[0] for _ in range(ctx.size(3, 1))]  # a fresh process each: a clean baseline
    first = runs[0]
    return {
        **{
            k: first[k]
            for k in ("rows", "features", "input_length", "batch_size", "series_bytes", "windows", "materialised_bytes")
        },
        "peak_increase_bytes": summary([r["peak_increase_bytes"] for r in runs]),
        "ratio": statistics.median(r["ratio"] for r in runs),
        "pass_seconds": summary([r["pass_seconds"] for r in runs]),
        "windows_per_second": summary([r["windows_per_second"] for r in runs]),
    }


# --------------------------------------------------------------------------- 4. scaling


def bench_scaling(ctx: Context) -> dict:
    """Seconds per epoch vs rows (expect linear) and vs units."""
    sizes = ctx.size([10_000, 100_000, 1_000_000], [1_000, 2_000])
    units_rows = ctx.size(100_000, 1_000)
    units = ctx.size([32, 64, 128], [16, 32])
    tasks = [
        _train_task(ctx, series_config(ctx.series(n), f"rows_{n}", training={"epochs": ctx.epochs}), f"rows_{n}")
        for n in sizes
    ]
    tasks += [
        _train_task(
            ctx,
            series_config(ctx.series(units_rows), f"units_{u}", model={"units": [u]}, training={"epochs": ctx.epochs}),
            f"units_{u}",
        )
        for u in units
        if not (u == 32 and units_rows in sizes)
    ]
    res = run_worker(tasks)
    by_rows = {}
    for n, r in zip(sizes, res):
        s = summary(timed_epochs(r["epoch_seconds"]))
        w = split_windows(n)
        by_rows[str(n)] = {
            "epoch_seconds": s,
            "windows": w["train"] + w["val"],
            "us_per_window": 1e6 * s["median"] / (w["train"] + w["val"]),
        }
    by_units = {}
    rest = iter(res[len(sizes) :])
    for u in units:
        r = res[sizes.index(units_rows)] if (u == 32 and units_rows in sizes) else next(rest)
        by_units[str(u)] = {"epoch_seconds": summary(timed_epochs(r["epoch_seconds"])), "params": r["params"]}
    lo, hi = by_rows[str(sizes[0])], by_rows[str(sizes[-1])]
    return {
        "rows": by_rows,
        "units_at_rows": units_rows,
        "units": by_units,
        # seconds per window at the largest size / at the smallest: 1.0 is perfectly linear
        "linearity": hi["us_per_window"] / lo["us_per_window"],
        "backend": res[0]["backend"],
    }


# --------------------------------------------------------------------------- 4b. many series


def bench_many_series(ctx: Context) -> dict:
    """One global model (``data.series_id``) over 10, 100 and 1,000 synthetic series of 1,000 rows: seconds per
    epoch and peak memory, each size in a fresh process so its peak is its own."""
    counts = ctx.size([10, 100, 1_000], [2, 4])
    rows = ctx.size(1_000, 200)
    out: dict = {"rows_per_series": rows, "sizes": {}}
    for n in counts:
        csv = write_many_series(ctx.tmp / "data" / f"many_{n}.csv", n, rows)
        cfg = series_config(
            csv,
            f"many_{n}",
            data={"series_id": "id"},
            model={"units": [16]},
            training={"epochs": ctx.size(3, 2), "batch_size": 256},
        )
        task = {"kind": "train_peak", "config": cfg, "run_dir": str(ctx.tmp / "runs" / f"many_{n}")}
        r = run_worker([task])[0]
        w = split_windows(rows)
        windows = n * (w["train"] + w["val"])
        s = summary(timed_epochs(r["epoch_seconds"]))
        out["sizes"][str(n)] = {
            "windows": windows,
            "epoch_seconds": s,
            "us_per_window": 1e6 * s["median"] / windows,
            "peak_rss_bytes": r["peak_rss_bytes"],
            "csv_bytes": csv.stat().st_size,
        }
        out["backend"] = r["backend"]
    lo, hi = out["sizes"][str(counts[0])], out["sizes"][str(counts[-1])]
    out["linearity"] = hi["us_per_window"] / lo["us_per_window"]  # 1.0: time per epoch grows exactly with windows
    return out


# --------------------------------------------------------------------------- 5. start-up


_PROBE = """
import contextlib, io, json, sys
from rnnforecast.cli import cli
with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(args=sys.argv[1:], prog_name="rnnforecast", standalone_mode=False)
mods = {m: m in sys.modules for m in ("keras", "jax", "tensorflow", "torch", "pandas")}
print("MODULES " + json.dumps({"exit": code or 0, **mods}))
"""


def _modules(*args: str) -> dict:
    """Which heavy modules a command imports, checked in its own process."""
    _, proc = wall([sys.executable, "-c", _PROBE, *args])
    line = next((x for x in proc.stdout.splitlines() if x.startswith("MODULES ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"probe of {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[len("MODULES ") :])


def bench_startup(ctx: Context) -> dict:
    """Wall time of `rnnforecast --help` and `rnnforecast validate`, and what each imports."""
    cli = cli_command()
    config = str(ROOT / "configs" / "weather_lstm.yaml")
    out = {}
    for name, args in {"help": ["--help"], "version": ["--version"], "validate": ["validate", config]}.items():
        times = []
        for _ in range(ctx.size(5, 2)):
            seconds, proc = wall([*cli, *args])
            if proc.returncode != 0:
                raise RuntimeError(f"rnnforecast {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
            times.append(seconds)
        mods = _modules(*args)
        out[name] = {
            "seconds": summary(times),
            "imports": {m: mods[m] for m in (*DL_MODULES, "pandas")},
            "imports_deep_learning": any(mods[m] for m in (*DL_MODULES, "torch")),
        }
    return out


# --------------------------------------------------------------------------- 6. prediction


def bench_prediction(ctx: Context) -> dict:
    """Warm latency of one forecast after loading a run, and `rnnforecast predict RUN` end to end."""
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(ROOT / "data" / "weather.csv")
    cfg["training"] = {**cfg.get("training", {}), "epochs": 1}
    cfg["output"] = {"plots": False}
    run_dir = ctx.tmp / "runs" / "prediction"
    calls = ctx.size(20, 5)
    trained, lat = run_worker(
        [
            {"kind": "train", "config": cfg, "run_dir": str(run_dir)},
            {"kind": "predict_latency", "run_dir": str(run_dir), "calls": calls},
        ]
    )
    # the same command when nothing cached the package's bytecode (an editable install under
    # PYTHONDONTWRITEBYTECODE): a copy of the package without __pycache__, first on the path
    copy = ctx.tmp / "no-bytecode"
    shutil.copytree(ROOT / "rnnforecast", copy / "rnnforecast", ignore=shutil.ignore_patterns("__pycache__"))
    cold_env = worker_env(PYTHONDONTWRITEBYTECODE="1")
    cold_env["PYTHONPATH"] = os.pathsep.join([str(copy), cold_env["PYTHONPATH"]])
    _check_package(cold_env, copy / "rnnforecast")
    commands = {  # interleaved, so a slow moment of a shared machine slows all three alike
        "floor": ([sys.executable, "-c", "import numpy, pandas"], worker_env()),
        "warm": ([*cli_command(), "predict", str(run_dir)], worker_env()),
        "cold": ([*cli_command(), "predict", str(run_dir)], cold_env),
    }
    walls = {k: [] for k in commands}
    for _ in range(ctx.size(7, 1)):
        for k, (cmd, env) in commands.items():
            seconds, proc = wall(cmd, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[-3:])} failed:\n{proc.stderr[-2000:]}")
            walls[k].append(seconds)
    return {
        "config": "configs/weather_lstm.yaml (1 epoch)",
        "backend": trained["backend"],
        "load_seconds": lat["load_seconds"],
        "first_forecast_seconds": lat["first_seconds"],
        "warm_forecast_seconds": lat["warm_seconds"],
        "predict_command_seconds": summary(walls["warm"]),
        "predict_command_seconds_no_bytecode": summary(walls["cold"]),
        "import_numpy_pandas_seconds": summary(walls["floor"]),
        "predict_imports_deep_learning": any(_modules("predict", str(run_dir))[m] for m in DL_MODULES),
    }


def _check_package(env: dict, expect: Path) -> None:
    """The copy of the package a command run with ``env`` imports is ``expect``."""
    probe = "import rnnforecast, sys; sys.stdout.write(rnnforecast.__file__)"
    _, proc = wall([sys.executable, "-P", "-c", probe], env=env)  # -P: not the cwd first, as the script runs
    if Path(proc.stdout).parent != expect:
        raise RuntimeError(f"expected the package from {expect}, got {proc.stdout or proc.stderr[-500:]}")


# --------------------------------------------------------------------------- 7. options


def option_variants(quick: bool) -> list[tuple[str, dict]]:
    if quick:
        return [("default", {}), ("steps_per_execution=8", {"steps_per_execution": 8})]
    return [
        ("default", {}),
        ("jit_compile=true", {"jit_compile": True}),
        ("jit_compile=false", {"jit_compile": False}),
        ("steps_per_execution=8", {"steps_per_execution": 8}),
        ("steps_per_execution=32", {"steps_per_execution": 32}),
        ("batch_size=128", {"batch_size": 128}),
        ("batch_size=128, steps_per_execution=8", {"batch_size": 128, "steps_per_execution": 8}),
    ]


def bench_options(ctx: Context) -> dict:
    """Seconds per epoch under training options, on JAX and TensorFlow (defaults: auto, 1, 32)."""
    rows = ctx.size(30_000, 1_500)
    w = split_windows(rows)
    out = {"rows": rows, "windows": w, "jax": {}, "tensorflow": {}}
    for be in ("jax", "tensorflow"):
        variants = [
            (k, v) for k, v in option_variants(ctx.quick) if not (be == "jax" and v.get("jit_compile") is False)
        ]
        if not ctx.quick:  # the default again at the end: drift in the machine's load shows, and is pooled
            variants.append(variants[0])
        cfgs = [series_config(ctx.series(rows), f"opt_{be}", training={"epochs": ctx.epochs, **v}) for _, v in variants]
        res = run_worker([_train_task(ctx, c, f"opt_{be}_{i}") for i, c in enumerate(cfgs)], backend=be)
        epochs: dict[str, list[float]] = {}
        for (label, _), r in zip(variants, res):
            epochs.setdefault(label, []).extend(timed_epochs(r["epoch_seconds"]))
        for (label, v), r in zip(variants, res):
            s = summary(epochs[label])
            steps = -(-w["train"] // v.get("batch_size", 32))
            out[be][label] = {
                "epoch_seconds": s,
                "ms_per_train_step": 1e3 * s["median"] / steps,
                "backend": r["backend"],
            }
        base = out[be]["default"]["epoch_seconds"]["median"]
        for v in out[be].values():
            v["vs_default"] = v["epoch_seconds"]["median"] / base
    if not ctx.quick:  # JAX without jit runs op by op: time a few steps only, an epoch would take half an hour
        cfg = series_config(ctx.series(1_000), "opt_jax_nojit", training={"epochs": 2, "jit_compile": False})
        r = run_worker([_train_task(ctx, cfg, "opt_jax_nojit")], backend="jax")[0]
        steps = -(-split_windows(1_000)["train"] // 32)
        out["jax"]["jit_compile=false"] = {
            "ms_per_train_step": 1e3 * r["epoch_seconds"][-1] / steps,
            "note": "measured on 1,000 rows (2nd epoch, validation included), not on the options data",
            "backend": r["backend"],
        }
    return out


BENCHMARKS: dict[str, Callable[[Context], dict]] = {
    "overhead": bench_overhead,
    "tutorial": bench_tutorial,
    "process": bench_process,
    "memory": bench_memory,
    "scaling": bench_scaling,
    "many_series": bench_many_series,
    "startup": bench_startup,
    "prediction": bench_prediction,
    "options": bench_options,
}


def run(
    quick: bool = False,
    only: list[str] | None = None,
    results_dir: Path | None = None,
    docs: Path | None = None,
    log=None,
    jobs: int | None = None,
) -> tuple[dict, Path]:
    """Run the chosen benchmarks; write the JSON and (unless ``docs`` is None) the docs table.

    Args:
        jobs: benchmarks run at once. Default 1, so no two measurements share the CPU; --quick
            measures nothing and defaults to 2.
    """
    names = only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"error: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    info = machine()
    info["bytecode"] = compile_bytecode()
    result = {
        "date": dt.date.today().isoformat(),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": "python -m bench.run"
        + (" --quick" if quick else "")
        + (f" --only {','.join(only)}" if only else ""),
        "quick": quick,
        "machine": info,
        "load_average_at_start": load_average(),
        "benchmarks": {},
        "seconds": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="rnnforecast-bench-"))
    ctx = Context(quick=quick, tmp=tmp, **({"log": log} if log else {}))
    jobs = jobs or (2 if quick else 1)

    def one(name: str) -> tuple[dict, float]:
        ctx.log(f"bench: {name} ...")
        t0 = time.perf_counter()
        out = BENCHMARKS[name](ctx)
        seconds = round(time.perf_counter() - t0, 1)
        ctx.log(f"bench: {name} done in {seconds:.0f}s")
        return out, seconds

    t_all = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for name, (out, seconds) in zip(names, pool.map(one, names)):
                result["benchmarks"][name] = out
                result["seconds"][name] = seconds
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["jobs"] = jobs
    result["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    result["load_average_at_end"] = load_average()
    results_dir = results_dir or ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result['date']}-{info['host']}{'-quick' if quick else ''}.json"
    if only and path.exists():  # a partial run updates the day's file instead of replacing it
        old = json.loads(path.read_text())
        old["benchmarks"].update(result["benchmarks"])
        old["seconds"].update({k: v for k, v in result["seconds"].items() if k != "total"})  # total: the full run's
        old.update({k: result[k] for k in ("machine", "load_average_at_end")})
        old.setdefault("reruns", []).append(
            {k: result[k] for k in ("started", "command", "load_average_at_start", "load_average_at_end")}
        )
        result = old
    path.write_text(json.dumps(result, indent=1) + "\n")
    if docs is not None:
        update_docs(docs, result, path)
    return result, path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1-2 repeats: checks the scripts, measures nothing")
    p.add_argument("--only", help=f"comma-separated benchmarks: {', '.join(BENCHMARKS)}")
    p.add_argument("--results", type=Path, help="folder for the JSON (default: bench/results)")
    p.add_argument("--jobs", type=int, help="benchmarks at once (default 1; --quick: 2)")
    p.add_argument(
        "--docs",
        type=Path,
        help="markdown file whose bench table to rewrite (default: docs/benchmarks.md; --quick: none)",
    )
    args = p.parse_args(argv)
    docs = args.docs or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    result, path = run(args.quick, args.only.split(",") if args.only else None, args.results, docs, jobs=args.jobs)
    print(f"results written to {path}" + (f"; table updated in {docs}" if docs else ""))


if __name__ == "__main__":
    main()

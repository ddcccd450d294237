"""Score every model on identical test windows: ``python -m bench.accuracy.run [--quick] [--series A,B]``.

Models: persistence, seasonal naive, the hand-written Keras LSTM(64) (handwritten.py) and
rnnforecast through its real CLI (`rnnforecast train` on a generated plain config, one run per
variant and seed). Every MAE is in the target's original units on the stride-1 test windows of
the task in series.py; the script stops if its own persistence MAE differs from the one
rnnforecast writes to metrics.json, because then the two would not be scoring the same windows.

Writes ``bench/accuracy/results/<date>-<host>[-quick].json`` and, for full runs, the table
between the ``accuracy:start``/``accuracy:end`` markers of docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.accuracy import handwritten, report, tasks
from bench.accuracy.fetch import DATA, STAMP
from bench.accuracy.series import BY_NAME, SERIES, Series
from bench.common import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_VARIANTS = ["lstm:model.cell=lstm", "gru:model.cell=gru"]
QUICK_ROWS = 1200


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (``rnnforecast-NAME``, ``["KEY=VALUE", ...]``) for ``--set``."""
    name, _, sets = text.partition(":")
    overrides = [s for s in sets.split(",") if s]
    bad = [s for s in overrides if "=" not in s]
    if not name or bad:
        raise SystemExit(
            f"error: --variants {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE]. Fix: e.g. gru:model.cell=gru"
        )
    return f"rnnforecast-{name}", overrides


def plain_config(s: Series, csv: Path, seed: int) -> dict:
    """What a user would write: data, window, cell and units; nothing tuned."""
    data = {
        "path": str(csv),
        "target": s.target,
        "features": s.features,
        "frequency": s.frequency,
        "season_length": s.season,
    }
    if s.calendar != "regular":
        data["calendar"] = s.calendar
    return {
        "name": s.name,
        "seed": seed,
        "data": data,
        "window": {"input_length": s.input_length, "horizon": s.horizon},
        "model": {"cell": "lstm", "units": [64]},
        "output": {"plots": False},
    }


def init_config(s: Series, csv: Path, seed: int, cfg_path: Path) -> dict:
    """What a new user trains: the config `rnnforecast init CSV --target T --horizon H` writes, as written (a
    variant named ``init...``; its --set overrides still apply). Its windows may be longer than the task's
    input_length: the test windows (targets) are the same, which the persistence check below confirms."""
    cmd = [sys.executable, "-m", "rnnforecast", "init", str(csv), "--target", s.target, "--horizon", str(s.horizon)]
    proc = subprocess.run([*cmd, "-o", str(cfg_path), "--force"], capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["data"]["path"] = str(csv)
    return {**cfg, "name": s.name, "seed": seed, "output": {"plots": False}}


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("KERAS_BACKEND", None)  # rnnforecast chooses its own (runtime.backend: auto)
    return env


def run_rnnforecast(s: Series, csv: Path, seed: int, overrides: list[str], work: Path, from_init: bool = False) -> dict:
    """One `rnnforecast train` run of the plain config (or of init's, ``from_init``); its test MAE, baseline,
    timing and early-stopping record."""
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.yaml"
    cfg = init_config(s, csv, seed, cfg_path) if from_init else plain_config(s, csv, seed)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run_dir = work / "run"
    cmd = [sys.executable, "-m", "rnnforecast", "train", str(cfg_path), "--run-dir", str(run_dir), "-q"]
    for o in overrides:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    m = json.loads((run_dir / "metrics.json").read_text())
    timing = json.loads((run_dir / "timing.json").read_text())
    overall = m["test"]["original"]["overall"]
    return {
        "mae": overall["model"]["mae"],
        "persistence_mae": overall["persistence"]["mae"],
        "n_windows": m["n_windows"],
        "train_seconds": timing["train_seconds"],
        "best_epoch": m["training"]["best_epoch"],
        "epochs_run": m["training"]["epochs_run"],
        "history": pd.read_csv(run_dir / "history.csv").round(5).to_dict(orient="list"),
        "run_dir": str(run_dir),
    }


def score_series(
    s: Series, csv: Path, seeds: list[int], variants: list[str], work: Path, quick: bool, hand: bool = True
) -> list[dict]:
    frame = pd.read_csv(csv)
    values = frame[s.features].to_numpy(float)  # (N, F)
    target = s.features.index(s.target)
    y = values[:, target]
    lo, hi = tasks.split_bounds(len(values))["test"]
    st = tasks.starts(lo, hi, s.input_length, s.horizon)
    actual = tasks.test_targets(y, st, s.input_length, s.horizon)  # (B, H)
    persistence = tasks.mae(tasks.persistence(y, st, s.input_length, s.horizon), actual)
    seasonal = tasks.mae(tasks.seasonal_naive(y, st, s.input_length, s.horizon, s.season), actual)
    base = {"series": s.name, "n_windows": len(st)}
    rows = [
        {**base, "model": "persistence", "seed": None, "mae": persistence, "train_seconds": 0.0},
        {**base, "model": "seasonal_naive", "seed": None, "mae": seasonal, "train_seconds": 0.0},
    ]
    epochs = 2 if quick else handwritten.MAX_EPOCHS
    for seed in seeds:
        if hand:
            pred, sec, best, ran = handwritten.fit_predict(values, target, s.input_length, s.horizon, seed, epochs)
            rows.append(
                {**base, "model": "hand_lstm", "seed": seed, "mae": tasks.mae(pred, actual), "train_seconds": sec}
                | {"best_epoch": best, "epochs_run": ran}
            )
            _say(rows[-1])
        for v in variants:
            name, overrides = parse_variant(v)
            extra = ["training.epochs=2"] if quick else []
            run_work = work / f"{s.name}-{name}-s{seed}"
            r = run_rnnforecast(
                s, csv, seed, [*extra, *overrides], run_work, from_init=name.startswith("rnnforecast-init")
            )
            _check_same_windows(s, r, persistence, len(st))
            rows.append({**base, "model": name, "seed": seed, "overrides": overrides, **r})
            _say(rows[-1])
    return rows


def _check_same_windows(s: Series, r: dict, persistence: float, n_windows: int) -> None:
    if r["n_windows"] != n_windows or not np.isclose(r["persistence_mae"], persistence, rtol=1e-6, atol=1e-9):
        raise SystemExit(
            f"error: {s.name}: rnnforecast scored {r['n_windows']} windows with persistence MAE "
            f"{r['persistence_mae']!r}, this script {n_windows} windows with {persistence!r}: not the same windows"
        )


def _say(row: dict) -> None:
    extra = f" best epoch {row['best_epoch']}/{row['epochs_run']}" if "best_epoch" in row else ""
    print(
        f"{row['series']:<14} {row['model']:<20} seed {row['seed']}  MAE {row['mae']:.4f}  "
        f"{row['train_seconds']:.1f}s{extra}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default=",".join(s.name for s in SERIES), help="comma-separated series names")
    ap.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 for every trained model")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=DEFAULT_VARIANTS,
        help="rnnforecast runs as NAME:KEY=VALUE[,KEY=VALUE] (--set overrides of the plain config; a NAME starting "
        "with init trains the config `rnnforecast init` writes for the file)",
    )
    ap.add_argument("--quick", action="store_true", help=f"last {QUICK_ROWS} rows, 2 epochs, 1 seed: a smoke test")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite the table in docs/accuracy.md")
    ap.add_argument("--no-hand", action="store_true", help="skip the hand-written LSTM (a sweep of variants only)")
    ap.add_argument("--tag", default="", help="suffix of the results file (parallel runs over disjoint --series)")
    args = ap.parse_args(argv)
    names = [n for n in args.series.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"error: --series: unknown {unknown}. Fix: pick from {', '.join(BY_NAME)}")
    if not STAMP.exists():
        raise SystemExit("error: the benchmark data is not fetched. Fix: python -m bench.accuracy.fetch")
    seeds = list(range(1 if args.quick else args.seeds))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = HERE / "runs" / stamp
    t0 = time.perf_counter()
    rows = []
    for n in names:
        s = BY_NAME[n]
        csv = DATA / s.csv
        if args.quick:
            csv = work / f"{n}-quick.csv"
            csv.parent.mkdir(parents=True, exist_ok=True)
            pd.read_csv(DATA / s.csv).tail(QUICK_ROWS).to_csv(csv, index=False)
        rows += score_series(s, csv, seeds, args.variants, work, args.quick, hand=not args.no_hand)
    result = {
        "command": "python -m bench.accuracy.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "quick": args.quick,
        "seeds": seeds,
        "variants": args.variants,
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    out = (
        HERE
        / "results"
        / f"{dt.date.today().isoformat()}-{socket.gethostname()}{'-quick' if args.quick else ''}{args.tag}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)
    print(report.render(result))
    print(f"results: {out.relative_to(ROOT)}")
    if not args.quick and not args.no_docs:
        report.update_docs(ROOT / "docs" / "accuracy.md", result, out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

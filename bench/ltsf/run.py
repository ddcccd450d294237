"""ETTh1 on the long-horizon papers' protocol: ``python -m bench.ltsf.run --data PATH/ETTh1.csv``.

Trains the shipped configs ``bench/ltsf/etth1_h<H>.yaml`` through the real CLI (``rnnforecast train``),
reads their test scores in z-units from metrics.json (the "normalised" block: errors divided by each
column's training standard deviation), and prints them beside the published SegRNN, PatchTST and DLinear
rows and this run's own persistence and Keras DLinear (reference.py). The bench stops when the package
scored another number of test windows than the protocol's 2881 - H, or when its persistence differs from
the reference's: then the two would not be the same protocol.

ETTh1.csv comes from the ETDataset repository (ETT-small/ETTh1.csv); its sha256 is checked; nothing is
downloaded. Results: ``bench/results/<date>-ltsf.json`` and a table on stdout (docs/accuracy.md keeps it).

``--data PATH/ETTh2.csv`` (the same repository) runs the very same configs, tuned on ETTh1 and unchanged, on
ETTh2: the same columns, dates, splits and protocol, another transformer station. It is the check that the
recipe was not fitted to one dataset; ETTh2's published rows are printed beside it and its results file is
tagged ``-etth2``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.common import machine
from bench.ltsf import reference

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHA256 = {  # of ETT-small/<name>.csv in zhouhaoyi/ETDataset
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
}
HORIZONS = (96, 192, 336, 720)
# MSE / MAE at input 96, the SegRNN README's L=96 table (its own runs with the test loader's drop_last fixed;
# PatchTST and DLinear as that table quotes them from iTransformer, as issue 22 does for ETTh1).
PUBLISHED = {
    "ETTh1": {
        "SegRNN": {96: (0.368, 0.395), 192: (0.408, 0.419), 336: (0.444, 0.440), 720: (0.446, 0.457)},
        "PatchTST": {96: (0.414, 0.419), 192: (0.460, 0.445), 336: (0.501, 0.466), 720: (0.500, 0.488)},
        "DLinear": {96: (0.386, 0.400), 192: (0.437, 0.432), 336: (0.481, 0.459), 720: (0.519, 0.516)},
    },
    "ETTh2": {
        "SegRNN": {96: (0.278, 0.335), 192: (0.359, 0.389), 336: (0.421, 0.436), 720: (0.432, 0.455)},
        "PatchTST": {96: (0.302, 0.348), 192: (0.388, 0.400), 336: (0.426, 0.433), 720: (0.431, 0.446)},
        "DLinear": {96: (0.333, 0.387), 192: (0.477, 0.476), 336: (0.594, 0.541), 720: (0.831, 0.657)},
    },
}


def dataset(data: Path) -> str:
    """``ETTh1`` or ``ETTh2``, by the file's sha256 (its name may be anything)."""
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    for name, sha in SHA256.items():
        if digest == sha:
            return name
    raise SystemExit(
        f"error: {data} has sha256 {digest[:12]}..., neither ETTh1.csv's ({SHA256['ETTh1'][:12]}...) nor "
        f"ETTh2.csv's ({SHA256['ETTh2'][:12]}...). Fix: pass ETT-small/ETTh1.csv of the ETDataset repository"
    )


def prepare(data: Path, work: Path) -> Path:
    """``work/<name>_14400.csv``: the header and rows [0, 14400) of ETTh1.csv or ETTh2.csv."""
    name = dataset(data)
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{name}_14400.csv"
    lines = data.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[: reference.ROWS + 1]))  # header + rows [0, 14400)
    return out


PLAIN_MODEL = {"cell": "gru", "units": [64]}


def plain(cfg: dict) -> dict:
    """The shipped config as a user who names only the cell and units writes it (issue 22's "plain config"):
    its data (without scaling and calendar features), window and split; every model and training key at the package's defaults,
    except the final fit, which the protocol does not score (it only costs time)."""
    data = {k: v for k, v in cfg["data"].items() if k not in ("scaling", "time_features")}  # both auto
    return {**cfg, "data": data, "model": dict(PLAIN_MODEL), "training": {"final_fit": False}}


def train(horizon: int, seed: int, csv: Path, work: Path, overrides: list[str], plain_config: bool = False) -> dict:
    cfg = yaml.safe_load((HERE / f"etth1_h{horizon}.yaml").read_text())
    if plain_config:
        cfg = plain(cfg)
    cfg["data"]["path"] = str(csv)
    cfg["name"] = cfg["name"].replace("etth1", csv.name.split("_")[0].lower())  # etth2_h96 on ETTh2
    cfg["seed"] = seed
    text = yaml.safe_dump(cfg, sort_keys=False)
    # the config's text and the overrides name the run: an edited config trains again instead of reusing a run
    key = hashlib.sha256("\n".join([text, *overrides]).encode()).hexdigest()[:6]
    tag = ("plain-" if plain_config else "") + f"h{horizon}-s{seed}-{key}"
    path = work / f"{cfg['name'].split('_')[0]}_{tag}.yaml"
    path.write_text(text)
    run_dir = work / "runs" / tag
    if not (run_dir / "metrics.json").exists():
        cmd = [sys.executable, "-m", "rnnforecast", "train", str(path), "--run-dir", str(run_dir), "-q"]
        for o in overrides:
            cmd += ["--set", o]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"error: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        seconds = time.perf_counter() - t0
    else:
        seconds = None
    m = json.loads((run_dir / "metrics.json").read_text())
    z = m["test"]["normalised"]["overall"]
    want = 2881 - horizon
    if m["n_windows"] != want:
        raise SystemExit(f"error: {run_dir} scored {m['n_windows']} test windows, the protocol has {want}")
    return {
        "mse": z["model"]["mse"],
        "mae": z["model"]["mae"],
        "persistence_mse": z["persistence"]["mse"],
        "seconds": seconds,
        "train_seconds": m["training"].get("seconds"),
        "epochs": m["training"].get("epochs_run"),
        "run": str(run_dir),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", required=True, type=Path, help="ETT-small/ETTh1.csv (or ETTh2.csv) of the ETDataset repository"
    )
    ap.add_argument("--horizons", default=",".join(map(str, HORIZONS)))
    ap.add_argument("--seeds", default="3", help="N: seeds 0..N-1; or a list, 1,2")
    ap.add_argument("--set", action="append", default=[], help="override for every training (KEY=VALUE)")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "ltsf" / "work")
    ap.add_argument("--no-dlinear", action="store_true", help="skip the same-run DLinear reference")
    ap.add_argument("--tag", default="", help="suffix of the results file (variants: -step, -mse, ...)")
    ap.add_argument(
        "--plain",
        action="store_true",
        help=f"train the plain config (model {PLAIN_MODEL}, every other model/training key at its default)",
    )
    args = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s] if "," in args.seeds else list(range(int(args.seeds)))
    except ValueError:
        seeds = []
    if not seeds:
        ap.error(f"--seeds {args.seeds!r}: give a count of seeds (3: seeds 0, 1, 2) or a list (1,2)")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    csv = prepare(args.data, args.work)
    name = csv.name.split("_")[0]
    print(f"{name}: the shipped configs bench/ltsf/etth1_h<H>.yaml", flush=True)
    rows = []
    for h in map(int, args.horizons.split(",")):
        runs = [train(h, seed, csv, args.work, args.set, args.plain) for seed in seeds]
        pers = reference.persistence(str(csv), h)
        if abs(runs[0]["persistence_mse"] - pers["mse"]) > 1e-6 * pers["mse"]:
            raise SystemExit(f"error: persistence MSE {runs[0]['persistence_mse']:.6f} != reference {pers['mse']:.6f}")
        dl = None if args.no_dlinear else reference.dlinear(str(csv), h, seed=0)
        rows.append({"horizon": h, "runs": runs, "persistence": pers, "dlinear": dl})
        print(_row(rows[-1], PUBLISHED[name]), flush=True)
    other = "" if name == "ETTh1" else f"-{name.lower()}"
    out = ROOT / "bench" / "results" / f"{dt.date.today()}-ltsf{other}{'-plain' if args.plain else ''}{args.tag}.json"
    record = {"machine": machine(), "dataset": name, "plain": args.plain, "overrides": args.set, "rows": rows}
    out.write_text(json.dumps(record, indent=1))
    print(f"results: {out}")


def _row(r: dict, published: dict) -> str:
    h = r["horizon"]
    mse = [x["mse"] for x in r["runs"]]
    mae = [x["mae"] for x in r["runs"]]
    secs = [x["seconds"] for x in r["runs"] if x["seconds"]]
    pub = "  ".join(f"{k} {v[h][0]:.3f}" for k, v in published.items())
    dl = f"  DLinear(here) {r['dlinear']['mse']:.3f}" if r["dlinear"] else ""
    sd = statistics.pstdev(mse) if len(mse) > 1 else 0.0
    took = f"  {statistics.mean(secs):.0f}s/run" if secs else ""
    return (
        f"H={h:<4} rnnforecast MSE {statistics.mean(mse):.3f} ±{sd:.3f} MAE {statistics.mean(mae):.3f} "
        f"({len(mse)} seeds){took} | persistence {r['persistence']['mse']:.3f}{dl} | published: {pub}"
    )


if __name__ == "__main__":
    main()

"""Does training.final_fit forecast better? Measured on the sample data, on rows no model saw.

For each config and seed: hold back the last ``--future`` rows of the data file; train once with ``--final-fit``
on the rest (that run holds both models: the final one in model.keras, the held-out one in heldout/); then score
both, with ``evaluate --data``, on a file of the last ``future / 0.15`` rows whose test split (15 %) is exactly the
held-back rows: every test target is a row neither model trained on, inputs read the rows before, as in a forecast.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m bench.final_fit --config configs/weather_gru.yaml --seeds 42 43
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml


def _cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "rnnforecast", *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"rnnforecast {' '.join(args)} failed:\n{r.stderr}")
    return r


def _mae(run: Path, data: Path) -> float:
    out = json.loads(_cli("evaluate", str(run), "--data", str(data), "--json").stdout)
    return out["metrics"]["original"]["overall"]["model"]["mae"], out["metrics"]["original"]["overall"]


def measure(config: Path, seed: int, future: int, work: Path) -> dict:
    cfg = yaml.safe_load(config.read_text())
    src = (config.parent / cfg["data"]["path"]).resolve()
    df = pd.read_csv(src)
    past, tail = df.iloc[:-future], df.iloc[-round(future / 0.15) :]
    past.to_csv(work / "past.csv", index=False)
    tail.to_csv(work / "tail.csv", index=False)
    cfg["data"]["path"] = str(work / "past.csv")
    cfg["seed"] = seed
    cfg.setdefault("output", {})["plots"] = False
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = work / f"run-{seed}"
    t0 = time.perf_counter()
    _cli("train", str(work / "config.yaml"), "--run-dir", str(run), "--final-fit", "--quiet")
    seconds = time.perf_counter() - t0
    held = work / f"held-{seed}"
    shutil.copytree(run, held)
    for name in ("model.keras", "scaler.json"):
        shutil.copy(run / "heldout" / name, held / name)
    final_mae, scores = _mae(run, work / "tail.csv")
    held_mae, _ = _mae(held, work / "tail.csv")
    m = json.loads((run / "metrics.json").read_text())
    return {
        "config": str(config),
        "seed": seed,
        "future_rows": future,
        "mae_final": final_mae,
        "mae_heldout": held_mae,
        "mae_persistence": scores["persistence"]["mae"],
        "best_epoch": m["training"]["best_epoch"],
        "train_seconds_both": round(seconds, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, action="append", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--future", type=int, default=90, help="rows held back from both models")
    a = p.parse_args()
    for config in a.config:
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as work:
                print(json.dumps(measure(config, seed, a.future, Path(work))), flush=True)


if __name__ == "__main__":
    main()

"""The M4 Hourly benchmark: the competition's Naive and seasonal naive rows reproduced, then rnnforecast scored.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m bench.m4.run                  # baselines, then the shipped config
    PYTHONPATH=. .venv/bin/python -m bench.m4.run --baselines-only           # seconds

The data are the competition's own files (bench/m4/README.md: source commit and SHA-256). rnnforecast reads the
training values as one long CSV (id, time, value; timestamps are hourly from 2000-01-01, M4 gives no dates), trains
the config (``bench/m4/hourly.yaml``), and its forecast.csv (what ``predict`` prints: the 48 hours after each series'
last value) is scored against Hourly-test with the competition's sMAPE, MASE (m = 24) and OWA (Naive2 18.383 / 2.395).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.m4 import score as S

HERE = Path(__file__).parent
SHA256 = {  # of the decompressed files, as taken from Mcompetitions/M4-methods (README.md)
    "Hourly-train": "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f",
    "Hourly-test": "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42",
}


def check_data() -> None:
    import gzip

    for name, want in SHA256.items():
        got = hashlib.sha256(gzip.open(S.DATA / f"{name}.csv.gz").read()).hexdigest()
        if got != want:
            raise SystemExit(f"bench/m4/data/{name}.csv.gz: SHA-256 {got}, expected {want}")


def long_csv(train: dict, path: Path) -> None:
    parts = [
        pd.DataFrame({"id": k, "time": pd.date_range("2000-01-01", periods=len(v), freq="h"), "value": v})
        for k, v in train.items()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(parts).to_csv(path, index=False)


def run_rnnforecast(config: Path, seed: int, work: Path) -> tuple[dict[str, np.ndarray], float, dict]:
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["path"] = str(work / "hourly-long.csv")
    cfg["seed"] = seed
    path = work / f"config-{seed}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = work / f"run-{seed}"
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "rnnforecast", "train", str(path), "--run-dir", str(run), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"training failed:\n{r.stderr}")
    f = pd.read_csv(run / "forecast.csv")
    out = {k: g.sort_values("step")["value"].to_numpy() for k, g in f.groupby("series")}
    return out, seconds, json.loads((run / "metrics.json").read_text())


def table(rows: list[tuple[str, dict]]) -> str:
    lines = ["| method | sMAPE | MASE | OWA | wall s |", "|---|---:|---:|---:|---:|"]
    for name, r in rows:
        cells = [f"{r[k]:.3f}" if k in r else "" for k in ("smape", "mase", "owa")]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {r['seconds']:.0f} |"
            if "seconds" in r
            else f"| {name} | {' | '.join(cells)} | |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=HERE / "hourly.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--baselines-only", action="store_true")
    p.add_argument("--work", type=Path, default=HERE / "work", help="long CSV and runs (git-ignored)")
    a = p.parse_args()
    check_data()
    train, test = S.read("Hourly-train"), S.read("Hourly-test")
    base = S.baselines(train, test)
    for name, got in base.items():  # the competition's published rows, to three decimals
        want = S.PUBLISHED[name]
        ok = all(round(got[k], 3) == want[k] for k in ("smape", "mase"))
        print(
            f"{name}: sMAPE {got['smape']:.3f} MASE {got['mase']:.3f} (published {want['smape']} / {want['mase']})"
            f" {'reproduced' if ok else 'NOT REPRODUCED'}",
            flush=True,
        )
        if not ok:
            raise SystemExit("the scorer does not reproduce the competition's rows")
    rows = [(n, r) for n, r in base.items()]
    rows += [("Naive2 (reference)", {**S.NAIVE2, "owa": 1.0})]
    rows += [(n, r) for n, r in S.PUBLISHED.items() if "owa" in r]
    if not a.baselines_only:
        long_csv(train, a.work / "hourly-long.csv")
        for seed in a.seeds:
            forecasts, seconds, m = run_rnnforecast(a.config, seed, a.work)
            r = S.score(train, test, forecasts) | {"seconds": seconds}
            epochs = m["training"]["best_epoch"], m["training"]["epochs_run"]
            rows.append((f"rnnforecast {a.config.name} seed {seed} (best epoch {epochs[0]}/{epochs[1]})", r))
            print(
                json.dumps({"seed": seed, **r, "forecast_model": m.get("forecast_model", {}).get("model")}), flush=True
            )
    print(table(rows))


if __name__ == "__main__":
    main()

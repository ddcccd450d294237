"""Static vs adaptive conformal bands under drift: ``python -m bench.intervals_drift [--series A,B] [--json OUT]``.

For each series one rnnforecast run is trained (seeded; the accuracy bench's plain config with a quick model:
``lstm`` units [32], at most 8 epochs, no final fit) with ``intervals: {levels: [80, 95]}``. The same trained
model's test windows are then banded twice through the tool's own code (``Forecaster.score``): static split
conformal (calibrated on validation) and adaptive conformal inference (``intervals.adaptive: true``, gamma 0.005).
Series: the six accuracy-bench series (bench/accuracy; ``python -m bench.accuracy.fetch`` writes their CSVs) and
three synthetic hourly ones (season 24, AR(1) noise) whose test split (the last 15 %) is
``stationary`` (a control), ``variance_x2`` (noise sd doubled) or ``level_rise`` (a ramp of 3 noise sds across it).

Prints one Markdown table: series, method, level, coverage % of the test values, mean width of the finite bands,
the share of test values whose adaptive band is unbounded (ACI's level fell to 0 or below), and the test /
validation residual scale ratio that ``train`` checks (``intervals.scale_shift``). docs/accuracy.md keeps it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.fetch import DATA
from bench.accuracy.run import run_rnnforecast
from bench.accuracy.series import BY_NAME, Series

LEVELS = ("80", "95")
QUICK = [
    "model.units=[32]",
    "training.epochs=8",
    "training.final_fit=false",
    "intervals.levels=[80,95]",
    "intervals.adaptive=true",
]
SYNTHETIC = ("stationary", "variance_x2", "level_rise")


def synthetic_frame(kind: str, n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Hourly ``y = 2 sin(2 pi t / 24) + AR(1) noise (phi 0.6, sd 0.5)``; the last 15 % drifts as ``kind`` says."""
    rng = np.random.default_rng(seed)
    e = 0.5 * rng.standard_normal(n)
    noise = np.zeros(n)
    test = np.arange(n) >= int(0.85 * n)
    if kind == "variance_x2":
        e = np.where(test, 2 * e, e)
    for t in range(1, n):
        noise[t] = 0.6 * noise[t - 1] + e[t]
    y = 2 * np.sin(2 * np.pi * np.arange(n) / 24) + noise
    if kind == "level_rise":
        ramp = np.cumsum(test) / test.sum() * 3 * 0.5 / np.sqrt(1 - 0.36)  # 0 -> 3 sd of the noise over the test
        y = y + ramp
    return pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n, freq="h"), "y": y})


def synthetic_series(kind: str) -> Series:
    return Series(
        name=kind,
        package="",
        file="",
        licence="synthetic",
        kind="synthetic",
        frequency="h",
        target="y",
        features=["y"],
        units="",
        input_length=48,
        horizon=6,
        season=24,
        rows=3000,
    )


def band_scores(run_dir: Path) -> list[dict]:
    """The run's test split banded static and adaptive: coverage and mean width per level (target 0), and the
    residual scale ratio."""
    from rnnforecast import intervals as I
    from rnnforecast.forecaster import Forecaster  # after the environment is set

    f = Forecaster.load(run_dir)
    data, _ = f.read_data()
    val = f.score(data, "val")
    rows = []
    for method in ("static", "adaptive"):
        g = dataclasses.replace(f, calibration=dataclasses.replace(f.calibration, adaptive=method == "adaptive"))
        ev = g.score(data, "test", val=val)
        iv = ev.metrics["intervals"]
        ratio = next(iter(iv["residual_scale_ratio"].values()))
        for level, (lo, hi) in zip(LEVELS, I.bound_indices(g.calibration.levels)):
            width = (ev.bands["model"][..., hi] - ev.bands["model"][..., lo])[..., 0]  # (B, H) target 0
            finite = np.isfinite(width)
            rows.append(
                {
                    "method": method,
                    "level": int(level),
                    "coverage": iv["model"]["levels"][level]["coverage"]["overall"],
                    "width": float(width[finite].mean()) if finite.any() else float("inf"),  # finite bands only
                    "infinite": float(100 * (~finite).mean()),  # % of test values whose band is unbounded
                    "scale_ratio": ratio,
                }
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", default=",".join([*BY_NAME, *SYNTHETIC]))
    p.add_argument("--data-dir", type=Path, default=DATA, help="the accuracy bench's CSVs (bench.accuracy.fetch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/rnnforecast-intervals-drift"))
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"# seed {a.seed}; load average {os.getloadavg()[0]:.2f} at start; {time.strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        "| series | method | level | coverage % | mean width (finite bands) | unbounded % | test/val residual scale |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    out = []
    for name in a.series.split(","):
        if name in SYNTHETIC:
            s = synthetic_series(name)
            csv = a.work / "data" / f"{name}.csv"
            csv.parent.mkdir(parents=True, exist_ok=True)
            synthetic_frame(name, seed=a.seed).to_csv(csv, index=False)
        else:
            s, csv = BY_NAME[name], a.data_dir / f"{name}.csv"
            if not csv.exists():
                raise SystemExit(f"error: {csv} not found. Fix: python -m bench.accuracy.fetch, or pass --data-dir")
        done = a.work / name / "run" / "metrics.json"  # a finished run of an earlier call is reused
        run_dir = (
            done.parent if done.exists() else Path(run_rnnforecast(s, csv, a.seed, QUICK, a.work / name)["run_dir"])
        )
        for r in band_scores(run_dir):
            out.append({"series": name, **r})
            print(
                f"| {name} | {r['method']} | {r['level']} | {r['coverage']:.1f} | {r['width']:.4g} | "
                f"{r['infinite']:.1f} | {r['scale_ratio']:.2f} |",
                flush=True,
            )
    if a.json:
        a.json.write_text(json.dumps({"seed": a.seed, "config": QUICK, "rows": out}, indent=1))


if __name__ == "__main__":
    main()

"""The README's measured numbers, measured again: ``python -m bench.readme_numbers [--only weather,stock,backtest]``.

Each number is printed beside the figure the README gives for it:

- ``weather``: the weather demo (``configs/weather_gru.yaml`` as shipped: 30 epochs at most, intervals [80, 95]):
  the model's 80 % / 95 % coverage, widths and 80 % MSIS, persistence's coverage and widths, the test windows
  (README "Prediction intervals").
- ``stock``: ``configs/stock_lstm.yaml`` at 5 epochs: static conformal bands in original units, bands from log-space
  (relative) residuals (calibrated here on the same validation windows with ``intervals.conformal_quantile``) and
  adaptive conformal (``intervals.adaptive: true``, the same trained model rescored through ``Forecaster.score``).
- ``backtest``: ``backtest configs/weather_gru.yaml --folds 4 --set training.epochs=5`` with ``--refit all`` and
  ``--refit none``: wall seconds, MAE over folds (mean ± std, model and persistence), the first fold's 80 %
  coverage (README "backtest").

Wall times depend on the machine and its load: the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

README = {  # the figures README.md gives, as written there
    "weather": {
        "test windows": 217,
        "model 80 % coverage": 79.1,
        "model 80 % width (°C)": 8.40,
        "model 80 % MSIS": 3.17,
        "model 95 % coverage": 93.1,
        "model 95 % width (°C)": 12.73,
        "persistence 80 % coverage": 74.4,
        "persistence 95 % coverage": 95.2,
        "persistence 80 % width (°C)": 8.47,
        "persistence 95 % width (°C)": 14.87,
    },
    "stock": {
        "test windows": 1194,
        "original units 80 % coverage": 63.6,
        "original units 95 % coverage": 85.2,
        "original units 80 % width (USD)": 1.49,
        "original units 95 % width (USD)": 2.56,
        "log space 80 % coverage": 90.2,
        "log space 95 % coverage": 97.7,
        "log space 80 % width (USD)": 3.27,
        "log space 95 % width (USD)": 5.93,
        "adaptive 80 % coverage": 78.4,
        "adaptive 95 % coverage": 94.5,
    },
    "backtest": {
        "refit all seconds": 26,
        "refit none seconds": 10,
        "refit all model MAE mean": 2.70,
        "refit all model MAE std": 0.65,
        "refit none model MAE mean": 2.74,
        "refit none model MAE std": 0.60,
        "persistence MAE mean": 2.96,
        "persistence MAE std": 0.66,
        "first fold 80 % coverage (refit all)": 68,
    },
}


def cli(*args: str, cwd: Path) -> float:
    """Run ``rnnforecast ARGS`` in a fresh process; its wall seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "rnnforecast", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"error: rnnforecast {' '.join(args)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def weather(work: Path) -> dict:
    run = work / "weather"
    if not (run / "metrics.json").exists():
        args = ["--set", "training.final_fit=false"]  # the scores are the held-out model's either way
        cli("train", str(CONFIGS / "weather_gru.yaml"), *args, "--run-dir", str(run), "-q", cwd=work)
    m = json.loads((run / "metrics.json").read_text())
    iv = m["intervals"]
    out = {"test windows": m["n_windows"]}
    for who in ("model", "persistence"):
        for c in ("80", "95"):
            b = iv[who]["levels"][c]
            out[f"{who} {c} % coverage"] = b["coverage"]["overall"]
            out[f"{who} {c} % width (°C)"] = b["width"]["overall"]
    out["model 80 % MSIS"] = iv["model"]["levels"]["80"]["msis"]["overall"]
    return out


def stock(work: Path) -> dict:
    from rnnforecast import intervals as I
    from rnnforecast.forecaster import Forecaster

    run = work / "stock"
    if not (run / "metrics.json").exists():
        sets = ["training.epochs=5", "intervals.levels=[80,95]", "training.final_fit=false"]
        args = [a for s in sets for a in ("--set", s)]
        cli("train", str(CONFIGS / "stock_lstm.yaml"), *args, "--run-dir", str(run), "-q", cwd=work)
    f = Forecaster.load(run)
    data, _ = f.read_data()
    val = f.score(data, "val")
    static = f.score(data, "test", val=val)
    adaptive = dataclasses.replace(f, calibration=dataclasses.replace(f.calibration, adaptive=True))
    adapt = adaptive.score(data, "test", val=val)
    out = {"test windows": static.metrics["n_windows"]}
    for c in ("80", "95"):
        b = static.metrics["intervals"]["model"]["levels"][c]
        out[f"original units {c} % coverage"] = b["coverage"]["overall"]
        out[f"original units {c} % width (USD)"] = b["width"]["overall"]
        out[f"adaptive {c} % coverage"] = adapt.metrics["intervals"]["model"]["levels"][c]["coverage"]["overall"]
    # log-space (relative) residuals: |log y - log f| calibrated per lead on validation, band f * exp(+-q)
    rel_val = np.abs(np.log(val.actual) - np.log(val.forecasts["model"][..., 0]))  # (N, H, T)
    point = static.forecasts["model"][..., 0]  # (B, H, T)
    for c in ("80", "95"):
        q = I.conformal_quantile(rel_val, 1 - float(c) / 100)  # (H, T)
        lo, hi = point * np.exp(-q), point * np.exp(q)
        out[f"log space {c} % coverage"] = float(100 * np.mean((static.actual >= lo) & (static.actual <= hi)))
        out[f"log space {c} % width (USD)"] = float(np.mean(hi - lo))
    return out


def backtest(work: Path) -> dict:
    out = {}
    for refit in ("all", "none"):
        d = work / f"backtest-{refit}"
        seconds = None
        if not (d / "metrics.json").exists():
            args = ["--folds", "4", "--set", "training.epochs=5", "--refit", refit, "--out", str(d), "-q"]
            seconds = cli("backtest", str(CONFIGS / "weather_gru.yaml"), *args, cwd=work)
        m = json.loads((d / "metrics.json").read_text())
        agg = m["aggregate"]
        out[f"refit {refit} seconds"] = seconds if seconds is not None else m["seconds"]
        out[f"refit {refit} model MAE mean"] = agg["scores"]["model"]["mae"]["mean"]
        out[f"refit {refit} model MAE std"] = agg["scores"]["model"]["mae"]["std"]
        if refit == "all":
            out["persistence MAE mean"] = agg["scores"]["persistence"]["mae"]["mean"]
            out["persistence MAE std"] = agg["scores"]["persistence"]["mae"]["std"]
            out["first fold 80 % coverage (refit all)"] = agg["intervals"]["model"]["80"]["coverage"]["per_fold"][0]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="weather,stock,backtest")
    p.add_argument("--work", type=Path, default=Path("/tmp/rnnforecast-readme-numbers"))
    p.add_argument("--json", type=Path, help="also write the measured numbers here")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs")
    measured = {}
    for part in a.only.split(","):
        load = os.getloadavg()[0]
        got = {"weather": weather, "stock": stock, "backtest": backtest}[part](a.work)
        measured[part] = got
        print(f"\n## {part} (load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)")
        print(f"{'number':42} {'README':>10} {'measured':>10}")
        for key, readme in README[part].items():
            v = got.get(key)
            print(f"{key:42} {readme:>10g} {'-' if v is None else format(v, '.4g'):>10}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()

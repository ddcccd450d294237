"""Choose the stock configs' transform by measurement on the validation split.

Trains configs/stock_lstm.yaml once per variant (same seed, same epochs) and writes the table
to docs/stationarity.md. Run: .venv/bin/python scripts/choose_transform.py [--epochs N]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIE = 0.005  # validation MASEs this close (relative) are one seed's noise, not a ranking
VARIANTS = {
    "none + standard": {"data.transform": {}, "data.scaling": "standard"},
    "none + window": {"data.transform": {}, "data.scaling": "window"},
    "diff": {"data.transform": {"close": "diff"}, "data.scaling": "standard"},
    "log_diff": {"data.transform": {"close": "log_diff"}, "data.scaling": "standard"},
    "pct_change": {"data.transform": {"close": "pct_change"}, "data.scaling": "standard"},
    "log + standard": {"data.transform": {"close": "log"}, "data.scaling": "standard"},
    "log + window": {"data.transform": {"close": "log"}, "data.scaling": "window"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "stock_lstm.yaml"))
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()

    from rnnforecast import pipeline
    from rnnforecast.config import load_config

    base = load_config(args.config)
    if args.epochs:
        base = base.replace(**{"training.epochs": args.epochs})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, change in VARIANTS.items():
            cfg = base.replace(**change)
            t0 = time.perf_counter()
            res = pipeline.train(
                cfg,
                config_path=args.config,
                run_dir=str(Path(tmp) / name.replace(" ", "_").replace("+", "")),
                quiet=True,
            )
            val = res.metrics["val"]["original"]["overall"]["model"]
            test = res.metrics["test"]["original"]["overall"]["model"]
            rows.append(
                (
                    name,
                    val["mase"],
                    val["mae"],
                    test["mase"],
                    test["mae"],
                    res.metrics["training"]["best_epoch"],
                    time.perf_counter() - t0,
                )
            )
            print(f"{name:<16} val MASE {val['mase']:.3f}  test MASE {test['mase']:.3f}", flush=True)
    best = min(rows, key=lambda r: r[1])
    lines = [
        "# Choosing the stock transform",
        "",
        f"`scripts/choose_transform.py` trained `{Path(args.config).name}` once per variant (seed {base.seed}, up to "
        f"{base.training.epochs} epochs with early stopping) on `data/stock.csv` (MSFT close, {base.window.input_length} days in, "
        f"{base.window.horizon} out) and ranked the variants on the **validation** split; the test split is shown only for reference.",
        f"Machine: {platform.node()} ({platform.processor() or platform.machine()}), backend {res.metrics['backend']}.",
        "",
        "| variant | val MASE | val MAE (USD) | test MASE | test MAE (USD) | best epoch | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(chosen)**" if r is best else ""
        lines.append(f"| {r[0]}{mark} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]} | {r[6]:.0f} |")
    tied = [r[0] for r in rows if r[1] <= best[1] * (1 + TIE)]
    shipped = "+".join(f"{k}" for k in base.data.transform.values()) or "none"
    lines += [
        "",
        "MASE is the model's MAE divided by the MAE of persistence (repeating the last close) on the same windows: "
        "below 1 beats persistence. On daily prices, expect values close to 1 at best.",
    ]
    if len(tied) > 1:
        lines += [
            "",
            f"Within {TIE:.1%} of the lowest validation MASE, a tie at one seed: {', '.join(tied)}. The stock configs "
            f"use {shipped}" + (", one of them." if any(t.startswith(shipped) for t in tied) else ", not one of them."),
        ]
    (ROOT / "docs" / "stationarity.md").write_text("\n".join(lines) + "\n")
    print(f"chosen: {best[0]}; table written to docs/stationarity.md")


if __name__ == "__main__":
    main()

"""Interval coverage on the accuracy benchmark's series: ``python -m bench.accuracy.coverage [--series A,B]``.

For each series, rnnforecast trains the plain config of run.py (cell lstm, units [64]) with
``intervals: {levels: [80, 95]}``, once with static split-conformal bands and once with adaptive ones
(``intervals.adaptive: true``), and reports the test split's empirical coverage, joint (whole-path)
coverage and mean width of the model's bands and of persistence's, as train wrote them to metrics.json.
Prints a Markdown table (docs/accuracy.md keeps the measured one).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.accuracy.fetch import DATA
from bench.accuracy.run import run_rnnforecast
from bench.accuracy.series import BY_NAME

VARIANTS = {
    "static": ["intervals.levels=[80,95]"],
    "adaptive": ["intervals.levels=[80,95]", "intervals.adaptive=true"],
}


def coverage_rows(name: str, seed: int, work: Path) -> list[str]:
    s = BY_NAME[name]
    rows = []
    for variant, sets in VARIANTS.items():
        done = work / name / variant / "run" / "metrics.json"  # a finished run of an earlier call is reused
        run_dir = (
            done.parent
            if done.exists()
            else Path(run_rnnforecast(s, DATA / f"{name}.csv", seed, sets, work / name / variant)["run_dir"])
        )
        m = json.loads((run_dir / "metrics.json").read_text())
        iv, n_windows = m["intervals"], m["n_windows"]
        for who in ("model", "persistence"):
            if who == "persistence" and variant == "adaptive":
                continue  # persistence bands are static in both runs
            cells = []
            for level in ("80", "95"):
                b = iv[who]["levels"][level]
                width = b["width"]["overall"]  # None: some adaptive bands are infinite (alpha_t <= 0)
                cells += [
                    f"{b['coverage']['overall']:.1f}",
                    f"{b['joint_coverage']['overall']:.1f}",
                    "inf" if width is None else f"{width:.4g}",
                ]
            rows.append(f"| {name} | {who} ({variant}) | {n_windows} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", default="seattle_temps,brent,approval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/rnnforecast-coverage"))
    a = p.parse_args()
    print("| series | bands | test windows | cov 80 % | joint 80 % | width 80 % | cov 95 % | joint 95 % | width 95 % |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.series.split(","):
        for row in coverage_rows(name, a.seed, a.work):
            print(row, flush=True)


if __name__ == "__main__":
    main()

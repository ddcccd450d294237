"""Do two code trees write the same outputs? train, evaluate --output, backtest and compare (in process and with
worker processes) with tiny epochs, once per tree, then every output file compared byte by byte.

A refactoring that must not change a number is checked against the commit before it:

    git -C /work/main archive <base> | tar -x -C /tmp/base    # the tree before
    PYTHONPATH=. .venv/bin/python -m bench.identical --before /tmp/base --after . --out /tmp/identical

Each tree runs with ``PYTHONPATH=<tree>`` in its own directory ``<out>/<before|after>/<config>/``, on the same
config files (``--configs``, default the shipped ``configs/*.yaml`` of ``--after``); the steps that train in
worker processes (an ensemble, a backtest and a comparison with 2 workers) run for the demo config
(``configs/weather_gru.yaml``), or for every config with ``--all-steps``. ``--only before|after`` runs one tree and
``--only none`` compares what two such calls wrote. Compared: every ``.csv``,
``.json``, ``.md`` and ``.yaml`` file both trees wrote, and the printed tables of ``compare`` and ``backtest``. Only
what differs by nature from one run to the next is left out: JSON keys in ``VOLATILE`` (wall-clock seconds, process
ids), the s/epoch column of compare's tables (compare.md, the printed table), durations in printed lines, and the
absolute paths of the two output directories (replaced by ``<out>``); ``timing.json`` (durations only) and the
directory claims (``owner.json``: pid, host, time) are not compared. Model files and plots are not compared (zip
and PNG metadata); the numbers they hold are in metrics.json, forecast.csv and the predictions. Exit 1 when any
file differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# keys whose values differ between two runs of the same code: not numbers the code computes from the data
VOLATILE = {
    "seconds",  # backtest metrics.json: wall-clock seconds of the whole backtest
    "train_seconds",  # metrics.json (training, ensemble) and backtest fold.json: wall-clock training time
    "seconds_per_epoch",  # compare.json: wall-clock
    "pid",  # compare.json: the process that trained each run
}
DEMO = "weather_gru.yaml"
COMPARED = {".csv", ".json", ".md", ".yaml"}
SKIPPED_FILES = {"owner.json", "lock", "timing.json"}  # who holds a directory (pid, host, time); durations only


def commands(config: str, workers: bool) -> list[tuple[str, list[str]]]:
    """(name, rnnforecast arguments) per step; paths are relative to the step's working directory. ``workers``:
    also the steps that train in worker processes (an ensemble, a backtest and a comparison with 2 workers)."""
    tiny = ["--set", "training.epochs=2", "--set", "training.batch_size=64"]
    here = [
        ("train", ["train", config, *tiny, "--run-dir", "run", "-q"]),
        ("evaluate", ["evaluate", "run", "--output", "evaluate.csv"]),
        ("ensemble", ["train", config, *tiny, "--set", "model.ensemble=2", "--run-dir", "ensemble", "-q"]),
        ("backtest", ["backtest", config, *tiny, "--folds", "2", "--out", "backtest", "-q"]),
        ("compare", ["compare", config, *tiny, "--cells", "gru,lstm", "--out", "compare", "-q"]),
    ]
    return here + (worker_steps(config, tiny) if workers else [])


def worker_steps(config: str, tiny: list[str]) -> list[tuple[str, list[str]]]:
    return [
        ("evaluate_val", ["evaluate", "run", "--split", "val", "--output", "evaluate_val.csv"]),
        (
            "ensemble_workers",
            ["train", config, *tiny, "--set", "model.ensemble=3", "--set", "runtime.workers=2", "--run-dir", "ens2"],
        ),
        (
            "backtest_workers",
            ["backtest", config, *tiny, "--folds", "3", "--refit", "every:2", "--workers", "2", "--out", "bt2"],
        ),
        ("compare_workers", ["compare", config, *tiny, "--cells", "gru,dense", "--workers", "2", "--out", "cmp2"]),
    ]


def run_tree(tree: Path, configs: list[Path], out: Path, all_steps: bool = False) -> dict[str, float]:
    """The steps of every config with ``tree``'s code (the worker steps for the demo config, or all with
    ``all_steps``); returns seconds per config."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "PYTHONHASHSEED": "0"}
    took = {}
    for config in configs:
        where = out / config.stem
        where.mkdir(parents=True, exist_ok=False)
        t0 = time.perf_counter()
        for name, args in commands(str(config.resolve()), workers=config.name == DEMO or all_steps):
            r = subprocess.run(
                [sys.executable, "-m", "rnnforecast", *args], cwd=where, env=env, capture_output=True, text=True
            )
            (where / f"{name}.stdout").write_text(r.stdout)
            if r.returncode:
                raise SystemExit(f"{tree}: rnnforecast {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}")
        took[config.stem] = time.perf_counter() - t0
    return took


def _drop_volatile(value):
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def normalised(path: Path, root: Path) -> bytes:
    """The file's bytes; JSON without the ``VOLATILE`` keys; the output directory's absolute path as ``<out>``."""
    data = path.read_bytes().replace(str(root.resolve()).encode(), b"<out>")
    if path.suffix == ".json":
        return json.dumps(_drop_volatile(json.loads(data)), sort_keys=True, indent=1).encode()
    if path.name == "compare.md":  # the s/epoch column (third) is wall-clock
        return re.sub(rb"(?m)^(\| [^|]+ \| \d+ \| )[0-9.]+ \|", rb"\1<t> |", data)
    if path.suffix == ".stdout":  # printed tables: compare's s/epoch column, durations (12.3s, 40 seconds)
        if path.name.startswith("compare"):
            data = re.sub(rb"(?m)^(\S+ +\d+ +)[0-9.]+(?= )", rb"\1<t>", data)
        return re.sub(rb"\d+(\.\d+)?\s*(s/epoch|s\b|seconds)", b"<t>", data)
    return data


def compared_files(root: Path) -> set[Path]:
    picked = set()
    for p in root.rglob("*"):
        if not p.is_file() or p.name in SKIPPED_FILES:
            continue
        if p.suffix in COMPARED or p.name in ("compare.stdout", "compare_workers.stdout", "backtest.stdout"):
            picked.add(p.relative_to(root))
    return picked


def compare_trees(a: Path, b: Path) -> list[str]:
    """One line per difference; the count of identical files last."""
    fa, fb = compared_files(a), compared_files(b)
    lines = [f"only in {a.name}: {p}" for p in sorted(fa - fb)] + [f"only in {b.name}: {p}" for p in sorted(fb - fa)]
    same = 0
    for p in sorted(fa & fb):
        if normalised(a / p, a) == normalised(b / p, b):
            same += 1
        else:
            lines.append(f"differs: {p}")
    kinds = {}
    for p in fa & fb:
        kinds[p.name] = kinds.get(p.name, 0) + 1
    key = ("metrics.json", "forecast.csv", "evaluate.csv", "evaluate_val.csv", "predictions.csv", "compare.json")
    shown = ", ".join(f"{k} x{kinds[k]}" for k in key if k in kinds)
    lines.append(f"{same} of {len(fa & fb)} files identical ({shown}; plus compare.md, history.csv, config.yaml ...)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the code tree before (its rnnforecast/ is imported)")
    ap.add_argument("--after", type=Path, default=Path("."), help="the code tree after")
    ap.add_argument("--configs", type=Path, nargs="*", help="default: <after>/configs/*.yaml")
    ap.add_argument("--out", type=Path, required=True, help="a new directory for both trees' outputs")
    ap.add_argument("--only", choices=("before", "after", "none"), help="run one tree (none: compare what is there)")
    ap.add_argument(
        "--all-steps", action="store_true", help="the worker steps for every config, not the demo config only"
    )
    args = ap.parse_args(argv)
    configs = args.configs or sorted((args.after / "configs").glob("*.yaml"))
    for label, tree in (("before", args.before), ("after", args.after)):
        if args.only in (None, label):
            took = run_tree(tree, configs, args.out / label, args.all_steps)
            print(f"{label} ({tree}): " + ", ".join(f"{k} {v:.0f}s" for k, v in took.items()), flush=True)
    if args.only in ("before", "after"):
        return 0
    lines = compare_trees(args.out / "before", args.out / "after")
    print("\n".join(lines))
    return 1 if any(not line[0].isdigit() for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())

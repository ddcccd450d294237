"""Train the shipped configs with tiny overrides at a base commit and on this tree; compare the outputs byte for byte.

Compared: each run's metrics.json (timing-free: ``versions`` and the ensemble's ``train_seconds`` aside, and only
when they differ), forecast.csv, ``evaluate --output`` and ``evaluate --json``'s metrics, ``predict --output``, and
a backtest's predictions.csv and metrics.json (``seconds`` aside).

    python scripts/same_outputs.py [--base 32b08dd] [--configs configs/weather_lstm.yaml ...] [--out /tmp/same]
        [--set training.final_fit=false ...] [--here-set KEY=VALUE ...]

``--set`` adds overrides to both trees' commands (after the tiny ones); ``--here-set`` to this tree's only, for a
key the base does not know. The default base, 32b08dd, is main just before the Forecaster refactor (i21) was merged:
it already has the split-owns-targets windows and the final fit (``training.final_fit``, default true) of issue 28,
so both trees train the same models. Against eba52c7 (before issue 28) outputs differ legitimately: validation and
test windows read their inputs from the rows before the split, and the final model forecasts; passing
``--here-set training.final_fit=false`` removes the second difference, not the first.

The base commit is checked out with ``git worktree add --detach`` (kept for reruns) and run through PYTHONPATH,
so both trees run in the same virtual environment. Exit 0 when every file matches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["training.epochs=2", "model.units=[8]", "output.plots=false"]
# wall-clock and environment fields, compared only when the rest matches: removed at any depth
VOLATILE = {"metrics.json": ("versions", "train_seconds"), "backtest-metrics.json": ("seconds", "train_seconds")}
# shipped configs with extra overrides, to cover a seed ensemble and a quantile head too
VARIANTS = {
    "weather_gru+ensemble": ("weather_gru", ["model.ensemble=2"]),
    "weather_lstm+cqr": ("weather_lstm", ["intervals.method=cqr"]),
}


def base_tree(commit: str) -> Path:
    tree = Path(f"/tmp/rnnforecast-base-{commit}")
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True)
    return tree


def cli(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, "-m", "rnnforecast", *args], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{tree}: rnnforecast {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return p


def outputs(tree: Path, config: Path, out: Path, backtest: bool, extra: list[str]) -> dict[str, bytes]:
    """Every compared file of one config on one tree, name -> bytes."""
    sets = [a for s in [*TINY, *extra] for a in ("--set", s)]
    run = out / "run"
    cli(tree, "train", str(config), *sets, "--run-dir", str(run), "--quiet")
    got = {name: (run / name).read_bytes() for name in ("metrics.json", "forecast.csv", "schema.json")}
    ev = cli(tree, "evaluate", str(run), "--output", str(out / "evaluate.csv"), "--json")
    got["evaluate.csv"] = (out / "evaluate.csv").read_bytes()
    got["evaluate-metrics.json"] = json.dumps(json.loads(ev.stdout)["metrics"], sort_keys=True).encode()
    cli(tree, "predict", str(run), "--output", str(out / "predict.csv"))
    got["predict.csv"] = (out / "predict.csv").read_bytes()
    if backtest:
        bt = out / "backtest"
        cli(tree, "backtest", str(config), *sets, "--folds", "2", "--out", str(bt), "--quiet")
        got["backtest-predictions.csv"] = (bt / "predictions.csv").read_bytes()
        got["backtest-metrics.json"] = (bt / "metrics.json").read_bytes()
    return got


def _drop(obj, keys: tuple[str, ...]):
    if isinstance(obj, dict):
        return {k: _drop(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_drop(v, keys) for v in obj]
    return obj


def without(data: bytes, keys: tuple[str, ...]) -> bytes:
    return json.dumps(_drop(json.loads(data), keys), sort_keys=True).encode()


def compare(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    lines = []
    for name in a:
        same = a[name] == b[name]
        note = "identical"
        if not same and name in VOLATILE:
            same = without(a[name], VOLATILE[name]) == without(b[name], VOLATILE[name])
            note = f"identical but for {', '.join(VOLATILE[name])}"
        lines.append(f"  {name:26s} {note if same else 'DIFFERENT'} ({len(a[name])} / {len(b[name])} bytes)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="32b08dd", help="the commit to compare with (default: main before i21)")
    ap.add_argument("--configs", nargs="*", default=sorted(str(p) for p in (ROOT / "configs").glob("*.yaml")))
    ap.add_argument(
        "--backtest", nargs="*", default=["weather_lstm", "stock_gru"], help="config names that also backtest"
    )
    ap.add_argument("--out", default="/tmp/same_outputs")
    ap.add_argument("--no-variants", dest="variants", action="store_false", help="only the shipped configs as they are")
    ap.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="an override for both trees"
    )
    ap.add_argument(
        "--here-set", dest="here_sets", action="append", default=[], metavar="KEY=VALUE", help="for this tree only"
    )
    args = ap.parse_args()
    base = base_tree(args.base)
    ok = True
    todo = [(Path(c).stem, Path(c), []) for c in args.configs]
    todo += [(v, ROOT / "configs" / f"{c}.yaml", extra) for v, (c, extra) in VARIANTS.items() if args.variants]
    for name, config, extra in todo:
        print(f"{name}:", flush=True)
        got = {}
        for label, tree in (("base", base), ("here", ROOT)):
            out = Path(args.out) / name / label
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=True)
            out.mkdir(parents=True)
            # one config file for both trees: the run records its path (config_sha256 covers data.path)
            sets = [*extra, *args.sets, *(args.here_sets if label == "here" else [])]
            got[label] = outputs(tree, config.resolve(), out, name in args.backtest, sets)
        lines = compare(got["base"], got["here"])
        ok &= not any("DIFFERENT" in x for x in lines)
        print("\n".join(lines), flush=True)
    print("ALL IDENTICAL" if ok else "SOME OUTPUTS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The accuracy table: per series and on average, MAE, MASE, ratio to the hand-written LSTM, training time."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

START, END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"
REFERENCE = "hand_lstm"


def _by(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["series"], r["model"])].append(r)
    return out


def summarise(rows: list[dict]) -> tuple[list[str], list[str], dict]:
    """``(series, models, {(series, model): stats})``; stats average over seeds."""
    groups = _by(rows)
    series = list(dict.fromkeys(r["series"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    stats = {}
    for s in series:
        p = groups[(s, "persistence")][0]["mae"]
        ref = [r["mae"] for r in groups.get((s, REFERENCE), [])]
        for m in models:
            g = groups.get((s, m))
            if not g:
                continue
            maes = np.array([r["mae"] for r in g])
            stats[(s, m)] = {
                "mae": float(maes.mean()),
                "mae_range": (float(maes.min()), float(maes.max())),
                "mase": float(maes.mean() / p),
                "ratio": float(maes.mean() / np.mean(ref)) if ref else None,
                "seconds": float(np.mean([r["train_seconds"] for r in g])),
                "best_epochs": [r.get("best_epoch") for r in g if r.get("best_epoch") is not None],
                "epochs_run": [r.get("epochs_run") for r in g if r.get("epochs_run") is not None],
                "n": len(g),
            }
    return series, models, stats


def render(result: dict) -> str:
    series, models, stats = summarise(result["rows"])
    lines = [
        "MAE in the target's units on the test windows, mean over seeds (min-max in brackets); MASE = MAE / "
        "persistence MAE; ratio = MAE / hand-written LSTM MAE; train s = seconds in fit, mean per seed; "
        "best/run = epoch early stopping restored / epochs run, per seed.",
        "",
        "| series | model | MAE | MASE | ratio | train s | best/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in series:
        for m in models:
            st = stats.get((s, m))
            if st is None:
                continue
            lo, hi = st["mae_range"]
            spread = f" ({lo:.4g}-{hi:.4g})" if st["n"] > 1 else ""
            ratio = f"{st['ratio']:.3f}" if st["ratio"] is not None else ""
            epochs = " ".join(f"{b}/{r}" for b, r in zip(st["best_epochs"], st["epochs_run"]))
            lines.append(
                f"| {s} | {m} | {st['mae']:.4g}{spread} | {st['mase']:.3f} | {ratio} | {st['seconds']:.1f} | {epochs} |"
            )
    lines += ["", "Average over series:", "", "| model | mean MASE | mean ratio | total train s |", "|---|---|---|---|"]
    for m in models:
        got = [stats[(s, m)] for s in series if (s, m) in stats]
        ratios = [g["ratio"] for g in got if g["ratio"] is not None]
        ratio = f"{np.mean(ratios):.3f}" if len(ratios) == len(series) else ""
        lines.append(
            f"| {m} | {np.mean([g['mase'] for g in got]):.3f} | {ratio} | {sum(g['seconds'] * g['n'] for g in got):.0f} |"
        )
    return "\n".join(lines)


def task_table() -> str:
    """The fixed task of every series, from series.py (the one place it is declared)."""
    from bench.accuracy.series import MAX_ROWS, SERIES

    lines = [
        f"Every series: 70/15/15 chronological split, stride-1 test windows, at most the {MAX_ROWS} most recent rows.",
        "",
        "| series | what | kind | step | rows | target (units) | inputs | input_length | horizon | season | source (file) | licence |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in SERIES:
        step = s.frequency + (" (trading days, calendar: steps)" if s.calendar == "steps" else "")
        lines.append(
            f"| {s.name} | {s.description} | {s.kind} | {step} | {s.rows} | {s.target} ({s.units}) | "
            f"{', '.join(s.features)} | {s.input_length} | {s.horizon} | {s.season} | "
            f"`{s.package}` ({s.file}) | {s.licence} |"
        )
    return "\n".join(lines)


def update_docs(docs: Path, result: dict, json_path: Path) -> None:
    """Replace the text between the markers with the table, the command and the machine."""
    mach = result["machine"]
    body = "\n".join(
        [
            START,
            f"Measured {result['date']} with `nice -n 19 {result['command'].strip()}` "
            f"({result['wall_seconds'] / 60:.1f} min wall) on {mach.get('cpu')}, {mach.get('cores', '?')} cores "
            f"(shared; load {mach.get('load')}), seeds {result['seeds']}. Raw rows: `{json_path}`.",
            "",
            task_table(),
            "",
            render(result),
            END,
        ]
    )
    text = docs.read_text() if docs.exists() else "# Accuracy\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    tmp = docs.with_name(docs.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, docs)


def merge(paths: list[Path]) -> dict:
    """One result from runs over disjoint series (the first run's command, machine and date)."""
    import json

    parts = [json.loads(Path(p).read_text()) for p in paths]
    out = dict(parts[0])
    out["rows"] = [r for p in parts for r in p["rows"]]
    out["command"] = " & ".join(p["command"].strip() for p in parts)
    out["wall_seconds"] = max(p["wall_seconds"] for p in parts)
    return out


if __name__ == "__main__":
    import sys

    # python -m bench.accuracy.report RESULT.json [RESULT.json ...]: rewrite docs/accuracy.md from saved results.
    root = Path(__file__).resolve().parents[2]
    files = [Path(a).resolve() for a in sys.argv[1:]]
    merged = merge(files)
    print(render(merged))
    update_docs(root / "docs" / "accuracy.md", merged, ", ".join(str(f.relative_to(root)) for f in files))

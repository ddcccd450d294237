"""Every table and message the commands print: validate description, score tables, compare tables, inspect summary.

Nothing here computes a result or touches a file: each function turns numbers it is given into text.
Numbers are formatted by :func:`num` only, so ``n/a`` and the digits shown are the same everywhere.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import windows
from .series import SPLITS

if TYPE_CHECKING:  # types only: text must stay importable without Keras
    from .config import Config
    from .pipeline import Evaluation
    from .series import SeriesData


def num(value, spec: str = ".4g", width: int = 0) -> str:
    """One number as text: ``n/a`` for None, whole numbers and strings as they are, else ``format(value, spec)``.

    Args:
        value: a float, int, str, bool or None.
        spec: a format spec for floats, e.g. ``".4g"`` (default) or ``".3f"``.
        width: right-align to this width (0: no padding).
    """
    if value is None:
        text = "n/a"
    elif isinstance(value, (bool, str, int)):
        text = str(value)
    else:
        text = format(value, spec)
    return text.rjust(width) if width else text


# --------------------------------------------------------------------------- validate


def hint_lines(hints: dict[str, float], cfg: Config) -> list[str]:
    """Advice for targets whose test values mostly lie outside the training range (``hints``: target -> share)."""
    lines = []
    for col, share in hints.items():
        if (
            share > 0.2
            and cfg.data.transform.get(col, cfg.data.transform.get("*", "none")) == "none"
            and cfg.data.scaling != "window"
        ):
            lines.append(
                f"hint: {share:.0%} of the test values of {col!r} lie outside the training range; the model will have to "
                f"extrapolate. Consider data.transform: {{{col}: log_diff}} (or diff) or data.scaling: window."
            )
    return lines


def describe(cfg: Config, data: SeriesData, hints: dict[str, float]) -> str:
    """The validate report: config, data, splits, window geometry, batch shapes, stationarity."""
    out = ["# resolved config", cfg.to_yaml().rstrip(), "", "# data"]
    out += _data_lines(cfg, data)
    out += ["", "# splits (chronological; scaler fitted on train only)"]
    out += _split_lines(data)
    out += ["", "# windows"]
    out += _window_lines(cfg, data)
    out += ["", "# stationarity (share of test-split values outside the training split's range)"]
    out += [f"{col:<24} {share:.0%}" for col, share in hints.items()]
    out += hint_lines(hints, cfg)
    return "\n".join(out)


def _data_lines(cfg: Config, data: SeriesData) -> list[str]:
    f, df = data.frame, data.frame.df
    tc = f.time_column
    many = len(f.series) > 1
    first, last = (df[tc].min(), df[tc].max()) if many else (df[tc].iloc[0], df[tc].iloc[-1])
    cal = (
        "rows are steps (no rows invented for gaps)"
        if f.calendar == "steps"
        else f"regular; {f.gap_rows} gap rows added"
    )
    out = [
        f"file:       {f.path}",
        f"rows:       {len(df)} ({len(f.series)} series{': ' + ', '.join(f.series[:8]) if many else ''})",
        f"time range: {first} .. {last}",
        f"frequency:  {f.frequency} ({'given' if cfg.data.frequency else 'inferred'}; {cal})",
        f"targets:    {', '.join(f.targets)}",
        f"features:   {', '.join(f.features)} ({len(f.features)})",
        f"missing values per column (before `missing: {cfg.data.missing}`):",
    ]
    return out + [f"  {col:<24} {n}" for col, n in f.missing_before.items()]


def _split_lines(data: SeriesData) -> list[str]:
    df, tc = data.frame.df, data.frame.time_column
    out = []
    for s in data.segments:
        prefix = f"[{s.series}] " if len(data.segments) > 1 else ""
        for name in SPLITS:
            lo, hi = s.bounds[name]
            t0, t1 = (df[tc].iloc[lo], df[tc].iloc[hi - 1]) if hi > lo else ("-", "-")
            out.append(f"{prefix}{name:<5} rows {lo:>7}..{hi - 1:<7} ({hi - lo:>6} rows)  {t0} .. {t1}")
    return out


def _window_lines(cfg: Config, data: SeriesData) -> list[str]:
    L, H, S = cfg.window.input_length, cfg.window.horizon, cfg.window.stride
    B = cfg.training.batch_size
    x, y = windows.input_rows([0], L)[0], windows.target_rows([0], L, H)[0]  # the first window's rows
    out = [
        f"input_length={L}  horizon={H}  stride={S}",
        f"first window: inputs rows [{x[0]}, {x[-1]}], targets rows [{y[0]}, {y[-1]}]; next window starts at row {S}",
    ]
    out += [f"{name:<5} windows: {len(data.starts(name, stride=S if name == 'train' else 1))}" for name in SPLITS]
    out.append(
        f"batch shapes: past ({B}, {L}, {len(data.feature_idx)}) -> forecast ({B}, {H}, {len(data.target_idx)}, 1)"
        "  # (batch, horizon, targets, quantiles)"
    )
    return out


# --------------------------------------------------------------------------- train / evaluate


def summary_table(ev: Evaluation) -> str:
    """Model and baselines, original units: MSE, RMSE, MAE, MAPE (or sMAPE), MASE, skill."""
    rows = ev.metrics["original"]["overall"]
    pct = "mape" if "mape" in rows["model"] else "smape"
    lines = [f"{'':<16}{'MSE':>12}{'RMSE':>12}{'MAE':>12}{pct.upper():>9}{'MASE':>8}{'skill':>8}"]
    for name, r in rows.items():
        lines.append(
            f"{name:<16}{num(r['mse'], width=12)}{num(r['rmse'], width=12)}{num(r['mae'], width=12)}"
            f"{num(r[pct], '.2f', 9)}{num(r['mase'], '.3f', 8)}{num(r['skill'], '.3f', 8)}"
        )
    return "\n".join(lines)


def interval_lines(ev: Evaluation) -> list[str]:
    """Coverage and width per level beside the score table (model and persistence bands), or nothing."""
    iv = ev.metrics.get("intervals")
    if not iv:
        return []
    how = iv["method"] + (", joint" if iv["joint"] else "") + (", adaptive" if iv["adaptive"] else "")
    lines = [
        "",
        f"intervals ({how}; calibrated on {iv['calibration_windows']} validation windows):",
        f"{'':<16}{'level':>7}{'coverage':>10}{'joint':>8}{'width':>12}{'MSIS':>9}",
    ]
    for name in ("model", "persistence"):
        for level, b in iv[name]["levels"].items():
            msis = b.get("msis", {}).get("overall")
            lines.append(
                f"{name:<16}{level + '%':>7}{num(b['coverage']['overall'], '.1f', 9)}%"
                f"{num(b['joint_coverage']['overall'], '.1f', 7)}%{num(b['width']['overall'], width=12)}"
                f"{num(msis, '.3f', 9)}"
            )
    return lines


def mase_warning(ev: Evaluation) -> str | None:
    """A warning when the model does no better than persistence (MASE >= 1), else None."""
    mase = ev.metrics["original"]["overall"]["model"]["mase"]
    if mase is not None and mase >= 1:
        return (
            f"warning: MASE {mase:.3f} >= 1 on the {ev.split} split: the model does no better than repeating the last "
            "observed value (persistence)."
        )
    return None


def train_summary(ev: Evaluation, record: dict, train_seconds: float, run_dir) -> str:
    """What ``train`` prints when it is done: the test table, the training facts, a MASE warning, the run directory."""
    t = record["training"]
    tail = [
        "",
        f"test split, original units, {ev.metrics['n_windows']} windows:",
        summary_table(ev),
        *interval_lines(ev),
        "",
        f"epochs run {t['epochs_run']}, best epoch {t['best_epoch']}, training time {train_seconds:.1f}s "
        f"({t['params']} parameters, backend {record['backend']})",
    ]
    w = mase_warning(ev)
    if w:
        tail.append(w)
    tail += ev.metrics.get("intervals", {}).get("warnings", [])
    tail.append(f"run directory: {run_dir}")
    return "\n".join(tail)


def evaluation_text(ev: Evaluation, as_json: bool = False) -> str:
    """What ``evaluate`` prints: the score table and MAE by lead time, or the full metrics as JSON."""
    if as_json:
        return json.dumps(ev.metrics, indent=1)
    lines = [f"{ev.split} split, original units, {ev.metrics['n_windows']} windows:", summary_table(ev)]
    lines += interval_lines(ev)
    lead = ev.metrics["original"]["per_lead"]["model"]["mae"]
    if len(lead) > 1:
        lines.append("model MAE by lead time: " + "  ".join(f"t+{i + 1} {num(v)}" for i, v in enumerate(lead)))
    return "\n".join(lines)


# --------------------------------------------------------------------------- compare

COLUMNS = (  # (header, key, format) of the compare table
    ("cell", None, None),
    ("params", "params", ".0f"),
    ("s/epoch", "seconds_per_epoch", ".3g"),
    ("best epoch", "best_epoch", ".3g"),
    ("val MSE", "val_mse", ".4g"),
    ("test MSE", "test_mse", ".4g"),
    ("test MAE", "test_mae", ".4g"),
    ("MASE", "test_mase", ".3f"),
    ("skill", "test_skill", ".3f"),
)


def _mean_std(value, std, spec: str) -> str:
    if value is None:
        return "n/a"
    text = num(float(value), spec)
    return f"{text} ± {num(float(std), '.2g')}" if std is not None else text


def table_rows(record: dict) -> list[list[str]]:
    """Header, then one row per cell (ranked by test MSE), then one per baseline."""
    rows = [[h for h, _, _ in COLUMNS]]
    for cell in record["ranking"]:
        r = record["results"][cell]
        rows.append([cell] + [_mean_std(r["mean"][k], r["std"][k], f) for _, k, f in COLUMNS[1:]])
    for name, b in record["baselines"].items():
        rows.append([f"({name})"] + [_mean_std(b[k], None, f) if k in b else "" for _, k, f in COLUMNS[1:]])
    return rows


def ranked_table(record: dict) -> str:
    """The compare table as aligned plain text, with a title line naming the split and the seeds."""
    rows = table_rows(record)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"test split, original units, {record['n_test_windows']} windows, ranked by test MSE"
        + (f"; mean ± std over seeds {record['seeds']}" if len(record["seeds"]) > 1 else f"; seed {record['seeds'][0]}")
    ]
    for r in rows:
        lines.append("  ".join(v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r)).rstrip())
    return "\n".join(lines)


def markdown(record: dict) -> str:
    """compare.md: the compare table as Markdown with what its numbers mean and where the runs are."""
    rows = table_rows(record)
    seeds = record["seeds"]
    out = [
        f"# Cell comparison: {record['name']}",
        "",
        f"Data `{record['data']}`, target(s) {', '.join(record['targets'])}; {record['epochs']} epoch(s) budget; "
        + (f"seeds {seeds[0]}..{seeds[-1]}, values are mean ± sample std." if len(seeds) > 1 else f"seed {seeds[0]}."),
        f"Test split, {record['n_test_windows']} windows, original units (MSE in units squared), ranked by test MSE. "
        "MASE = model MAE / persistence MAE; skill = 1 - model MSE / persistence MSE. "
        "Rows in parentheses are the naive baselines on the same windows.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    out += [
        "",
        "Runs: " + ", ".join(f"`{r['run_dir']}`" for c in record["cells"] for r in record["results"][c]["runs"]),
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- inspect


def inspect_summary(numbers: dict, split: str = "") -> list[str]:
    """The headline numbers of ``inspect.json`` as text: gradient ratio, then gate saturation per layer."""
    ratio = numbers.get("ratio")
    windows = f"{numbers.get('n_windows')} {split + ' ' if split else ''}windows"
    lines = [
        f"gradient flow, first forecast step, {windows}: "
        f"||d yhat / d x_oldest|| / ||d yhat / d x_newest|| = {num(ratio, '.3g')}"
        + (" (vanishing: the oldest input barely moves the forecast)" if ratio is not None and ratio < 1e-3 else "")
    ]
    for layer in numbers.get("layers", []):
        head = f"{layer['name']} ({layer['cell']}, {layer['units']} units)"
        if not layer.get("saturation"):
            lines.append(f"{head}: no gates")
            continue
        parts = [
            f"{gate.replace('_gate', '')} {sum(s['low']) / len(s['low']):.2f}/{sum(s['high']) / len(s['high']):.2f}"
            for gate, s in layer["saturation"].items()
        ]
        lines.append(f"{head} gate saturation, share < 0.1 / > 0.9 (mean over units): " + "  ".join(parts))
    return lines


def inspect_text(numbers: dict, split: str, directory) -> str:
    """What ``inspect`` prints: the summary lines and where the plots are."""
    return "\n".join([*inspect_summary(numbers, split), f"plots and inspect.json written to {directory}"])


# --------------------------------------------------------------------------- backtest


def backtest_table(record: dict, directory) -> str:
    """What ``backtest`` prints: one row per fold (origin, windows, MAE model vs persistence, MASE, coverage),
    then mean ± std over folds, then the directory."""
    levels = [f"{c:g}" for c in record["levels"]]
    head = f"{'fold':<6}{'origin':<22}{'windows':>8}{'trained':>8}{'MAE':>11}{'persist.':>11}{'MASE':>8}"
    head += "".join(f"{'cov' + c + '%':>9}" for c in levels)
    lines = [head]
    for f in record["folds"]:
        o = f["original"]["overall"]
        cov = [f["intervals"]["model"]["levels"][c]["coverage"]["overall"] for c in levels]
        lines.append(
            f"{f['fold']:<6}{str(f['origin'])[:19]:<22}{f['n_windows']:>8}{'yes' if f['trained'] else 'no':>8}"
            f"{num(o['model']['mae'], width=11)}{num(o['persistence']['mae'], width=11)}{num(o['model']['mase'], '.3f', 8)}"
            + "".join(num(v, ".1f", 9) for v in cov)
        )
    agg = record["aggregate"]
    s, cov = agg["scores"], agg["intervals"]["model"]
    lines += [
        "",
        f"over {len(record['folds'])} folds (mean ± std): MAE {_mean_std(s['model']['mae']['mean'], s['model']['mae']['std'], '.4g')}"
        f", persistence MAE {_mean_std(s['persistence']['mae']['mean'], s['persistence']['mae']['std'], '.4g')}"
        f", MASE {_mean_std(s['model']['mase']['mean'], s['model']['mase']['std'], '.3f')}",
        "coverage: "
        + ", ".join(f"{c}% {_mean_std(cov[c]['coverage']['mean'], cov[c]['coverage']['std'], '.1f')}" for c in levels),
        "model MAE by lead: "
        + "  ".join(f"t+{i + 1} {num(v)}" for i, v in enumerate(s["model"]["mae"]["per_lead"]["mean"])),
        f"{record['trainings']} training(s), {record['seconds']:.1f}s",
        f"backtest directory: {directory}",
    ]
    return "\n".join(lines)

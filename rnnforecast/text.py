"""Every table and message the commands print: validate description, score tables, compare tables, inspect summary.

Nothing here computes a result or touches a file: each function turns numbers it is given into text.
Numbers are formatted by :func:`num` only, so ``n/a`` and the digits shown are the same everywhere.
"""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from . import frequencies, metrics, windows
from .cells import CELLS
from .data import season_length
from .fsio import plain as _plain  # the one JSON convention: NaN and infinity as null
from .records import Scores
from .series import SPLITS, auto_residual

if TYPE_CHECKING:  # types only: text must stay importable without Keras
    from .config import Config
    from .forecaster import Evaluation
    from .series import SeriesData


def say(msg: str = "") -> None:
    """Progress and warnings go to stderr, so stdout holds only the result; no URL credential is printed."""
    if "://" in msg:
        from .masking import mask_secrets

        msg = mask_secrets(msg)
    print(msg, file=sys.stderr, flush=True)


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


AUTO = ".4g"  # the default spec: a column of these gets one fixed number of decimals (see ``column``)
MAX_DECIMALS = 6
PLUS_MINUS = " ± "


def decimals_for(values) -> int:
    """Decimals that show the column's largest magnitude with 4 significant digits, and its smallest non-zero one
    with at least 2 (at most ``MAX_DECIMALS``)."""
    mags = [abs(float(v)) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    mags = [m for m in mags if m > 0 and m != float("inf")]
    if not mags:
        return 0
    decimals = min(max(3 - math.floor(math.log10(max(mags))), 0), MAX_DECIMALS)
    while decimals < MAX_DECIMALS and min(mags) < 10 ** (1 - decimals):
        decimals += 1
    return decimals


def column(values, spec: str = AUTO) -> list[str]:
    """One format for a whole column of numbers, so that right-aligned, their decimal points line up.

    ``spec`` ``".4g"`` (the default) picks a fixed number of decimals from the values (``decimals_for``);
    ``"~.1f"`` is ``.1f`` unless every value is whole; any other spec (``".3f"``) is used as given. Integers stay integers, None is ``n/a`` (like ``num``).
    """
    floats = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    whole = all(v == int(v) for v in floats)
    if spec == AUTO:
        spec = ".0f" if whole else f".{decimals_for(floats)}f"
    elif spec.startswith("~"):  # "~.1f": whole numbers when all are whole (best epoch of one seed), else .1f
        spec = ".0f" if whole else spec[1:]
    return [num(v, spec) for v in values]


def mean_std(value, std) -> tuple:
    """A (mean, std) pair for ``table``: the std only where it says something (not None, not 0)."""
    return (value, None if std is None or std == 0 else std)


def table(header: list[str], rows: list[list], specs: list[str | None]) -> list[str]:
    """An aligned plain-text table: first column left, the others right-aligned with one format per column.

    Args:
        header: the column titles.
        rows: the cells: a str (shown as is), a number, None (``n/a``) or a (mean, std) pair from ``mean_std``,
            shown as ``mean ± std`` with the means' decimals aligned.
        specs: per column a format for ``column`` (None: text column).

    Columns are separated by at least two spaces whatever the widths of the values.
    """
    cols = [column_cells([r[i] for r in rows], specs[i]) for i in range(len(header))]
    widths = [max(len(h), *(len(c) for c in col)) if col else len(h) for h, col in zip(header, cols)]
    lines = [_aligned(header, widths)] + [_aligned([col[j] for col in cols], widths) for j in range(len(rows))]
    return [line.rstrip() for line in lines]


def _aligned(cells: list[str], widths: list[int]) -> str:
    """One line of a table: the first cell left-aligned, the others right-aligned, two spaces apart."""
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def column_cells(values: list, spec: str | None) -> list[str]:
    """Formatted cells of one column; ``mean ± std`` pairs get the means right-aligned and the stds left-aligned."""
    if spec is None:
        return ["" if v is None else str(v) for v in values]
    return _number_cells(values, spec)


def _number_cells(values: list, spec: str) -> list[str]:
    """Cells of a number column: numbers, None (``n/a``), "" (empty) or (mean, std) pairs."""
    pairs = [v if isinstance(v, tuple) else (v, None) for v in values]
    blank = [isinstance(v, str) and not v for v in values]  # "" leaves the cell empty
    means = column([None if b else m for b, (m, _) in zip(blank, pairs)], spec)
    stds = _std_cells([std for _, std in pairs])
    wm, ws = max(map(len, means)), max(map(len, stds))
    return ["" if b else (m.rjust(wm) + s.ljust(ws)) for b, m, s in zip(blank, means, stds)]


def _std_cells(stds: list) -> list[str]:
    """``± std`` of each (mean, std) cell; empty for no std, 0 or one seed (nothing to say)."""
    return [PLUS_MINUS + num(float(s), ".2g") if s else "" for s in stds]


def dates_only(times) -> bool:
    """True when every timestamp is at midnight (daily or coarser data): print dates, not ``00:00:00``."""
    import pandas as pd

    t = times if isinstance(times, pd.Series) else pd.Series(list(times))
    if not pd.api.types.is_datetime64_any_dtype(t):
        t = pd.to_datetime(t, errors="coerce")
        if t.isna().any():  # not all times (steps, text): print as they are
            return False
    t = t.dropna()
    return bool(len(t)) and bool((t == t.dt.normalize()).all())


def time_text(value, dates: bool) -> str:
    """One timestamp as a person reads it: the date alone for daily data, else up to the second."""
    if dates and hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d")
    text = str(value)
    return text[:10] if dates and len(text) >= 10 and text[10:].strip(" T0:") == "" else text


# --------------------------------------------------------------------------- validate


LEVEL_SHIFT = 1.0  # training standard deviations between the test and training means worth a hint


def hint_lines(hints: dict[str, float], cfg: Config, shifts: dict[str, float] | None = None) -> list[str]:
    """Advice for targets whose test values mostly lie outside the training range (``hints``: target -> share)
    or whose test level moved away from training (``shifts``: target -> distance in training std)."""
    lines = []
    per_window = cfg.data.scaling in ("window", "instance")
    moved = {c: d for c, d in (shifts or {}).items() if d > LEVEL_SHIFT and not per_window}
    if moved:
        col, d = max(moved.items(), key=lambda kv: kv[1])
        lines.append(
            f"hint: the test split's mean of {col!r} lies {d:.1f} training standard deviations from the training "
            f"mean ({len(moved)} of {len(shifts)} targets moved > {LEVEL_SHIFT:g}); a model scaled on training "
            "statistics starts from a level it never saw. Consider data.scaling: instance (each window by its own "
            "mean and deviation) or window (relative to the last value)."
        )
    for col, share in hints.items():
        if (
            share > 0.2
            and cfg.data.transform.get(col, cfg.data.transform.get("*", "none")) == "none"
            and not per_window
        ):
            lines.append(
                f"hint: {share:.0%} of the test values of {col!r} lie outside the training range; the model will have to "
                f"extrapolate. Consider data.transform: {{{col}: log_diff}} (or diff) or data.scaling: window."
            )
    return lines


def setup_notes(cfg: Config, data: SeriesData) -> list[str]:
    """Settings that do nothing for this data, said before training (validate and train): independent channels of
    one target, a seasonal residual whose season is one step (persistence), a calendar feature that is the same on
    every row (its two columns constant)."""
    notes = []
    m = cfg.model
    if m.channels == "independent" and len(data.targets) == 1:
        notes.append(
            "note: model.channels: independent with one target is the same model as mixed (one channel). "
            "Fix: list more targets, or leave model.channels at auto."
        )
    if m.segment_layout != "keras" and not isinstance(m.segment_length, int):
        notes.append(
            f"note: model.segment_layout: {m.segment_layout} shapes segment models; this one steps through time "
            "(segment_length: null). Fix: set model.segment_length, or remove model.segment_layout."
        )
    season = season_length(data.frame.frequency, cfg.data.season_length)
    if m.residual == "seasonal" and season <= 1:
        notes.append(
            f"note: model.residual: seasonal with a season of {season} step is persistence (the row before). "
            "Fix: set data.season_length, or model.residual: persistence to say so."
        )
    for name in cfg.data.time_features if isinstance(cfg.data.time_features, list) else []:
        cols = [data.columns.index(f"{name}_{fn}") for fn in ("sin", "cos") if f"{name}_{fn}" in data.columns]
        if len(data.raw) and cols and all(np.ptp(data.raw[:, c]) < 1e-9 for c in cols):
            notes.append(
                f"warning: data.time_features: {name} is the same on every row (the step is "
                f"{data.frame.frequency!r}): it adds two constant inputs. Fix: leave {name} out."
            )
    return notes


def describe(cfg: Config, data: SeriesData, hints: dict[str, float], asked: Config | None = None) -> str:
    """The validate report: data, splits, window geometry, batch shapes, the model's shape (``asked``: the config
    as written, whose ``auto`` values ``cfg`` settled), stationarity (the resolved config is ``resolved_config``,
    printed after it with ``validate --show-config``)."""
    out = ["# data"]
    out += _data_lines(cfg, data)
    out += ["", "# splits (chronological; scaler fitted on train only)"]
    out += _split_lines(data)
    out += ["", "# windows"]
    out += _window_lines(cfg, data)
    out += ["", "# model (auto: decided for this data; write the key to choose yourself)"]
    out += _model_lines(asked or cfg, cfg, data)
    out += ["", "# stationarity (share of test-split values outside the training split's range)"]
    out += [f"{col:<24} {share:.0%}" for col, share in hints.items()]
    out += hint_lines(hints, cfg, data.level_shift())
    notes = setup_notes(cfg, data)
    if notes:
        out += ["", "# settings that do nothing here", *notes]
    out += ["", "# output", f"runs written under: {cfg.runs_path}"]
    return "\n".join(out)


def _model_lines(asked: Config, cfg: Config, data: SeriesData) -> list[str]:
    """One line per shape key: the value a run will use and, for ``auto``, why."""
    m, L = cfg.model, cfg.window.input_length
    season = season_length(data.frame.frequency, cfg.data.season_length)
    segments = (
        f"{m.segment_length} steps ({L // m.segment_length} segments of the {L}-step window)"
        if m.segment_length
        else "none (one step at a time)"
    )
    segment_why = (
        f"one season of {season} steps, the window holds {L / season:g}"
        if m.segment_length
        else f"the {L}-step window is not two or more whole seasons of {season} steps"
        if season >= 2 and CELLS[m.cell].recurrent and not m.bidirectional
        else f"no season of 2 steps or more ({season})"
        if CELLS[m.cell].recurrent and not m.bidirectional
        else "segments need a recurrent cell read forward"
    )
    n = len(cfg.data.target)
    residual_why = "data.transform differences the series"
    if asked.model.residual == "auto" and not cfg.data.differenced:
        maes = auto_residual(data, season)[1]
        p, s = maes.get("persistence"), maes.get("seasonal_naive")
        if s is None:
            residual_why = f"no season of 2 steps or more ({season})"
        else:
            verdict = "at most" if m.residual == "seasonal" else "more than"
            residual_why = (
                f"seasonal naive's MAE {s:.4g} on the training rows is {verdict} {metrics.SHARE_WORDS} {p:.4g}"
            )
    why = {
        "model.residual": residual_why,
        "data.scaling": (
            "each window relative to its last value"
            if cfg.data.scaling == "window"
            else "data.transform differences the series"
            if cfg.data.differenced
            else "a one-step window relative to itself would hold only zeros"
        ),
        "model.channels": f"{n} targets, each its own sequence" if m.channels == "independent" else f"{n} target(s)",
        "model.segment_length": segment_why,
        "data.time_features": _time_features_why(cfg, data),
    }
    rows = [
        ("model", f"{m.cell} {list(m.units)}", None),
        ("data.scaling", cfg.data.scaling, asked.data.scaling),
        ("data.time_features", ", ".join(cfg.data.time_features) or "none", asked.data.time_features),
        ("model.channels", m.channels, asked.model.channels),
        ("model.segment_length", segments, asked.model.segment_length),
        *([("model.segment_layout", m.segment_layout, None)] if m.segment_length else []),
        ("model.residual", m.residual, asked.model.residual),
    ]
    return [f"{key:<21} {value}" + (f"  (auto: {why[key]})" if was == "auto" else "") for key, value, was in rows]


def _time_features_why(cfg: Config, data: SeriesData) -> str:
    """Why ``data.time_features: auto`` settled as it did (:func:`frequencies.time_features`)."""
    if cfg.data.features is not None:
        return "data.features lists the inputs"
    t = data.frame.time_values()
    days = (t.max() - t.min()) / np.timedelta64(1, "D") if len(t) else 0.0
    step = frequencies.label(data.frame.frequency)
    fit = "calendar features that fit" if cfg.data.time_features else "no calendar period fits"
    span = f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"
    return f"{fit} the {step} step over {span}"


def resolved_config(cfg: Config) -> str:
    """``validate --show-config``: every key of the config, defaults filled in, paths made absolute."""
    return "\n".join(["# resolved config", cfg.to_yaml().rstrip()])


def ready_line(config_path: str) -> str:
    """The line ``validate`` ends with when config and data passed every check."""
    return f"ready to train: rnnforecast train {config_path}"


def _data_lines(cfg: Config, data: SeriesData) -> list[str]:
    f, df = data.frame, data.frame.df
    tc = f.time_column
    many = len(f.series) > 1
    first, last = (df[tc].min(), df[tc].max()) if many else (df[tc].iloc[0], df[tc].iloc[-1])
    dates = dates_only(df[tc])  # daily data: 2012-01-01, not 2012-01-01 00:00:00
    cal = (
        "rows are steps (no rows invented for gaps)"
        if f.calendar == "steps"
        else f"regular; {f.gap_rows} gap rows added"
    )
    out = [
        f"file:       {f.path}",
        f"rows:       {len(df)} ({len(f.series)} series{': ' + ', '.join(f.series[:8]) if many else ''})",
        f"time range: {time_text(first, dates)} .. {time_text(last, dates)}",
        *([f"time zone:  {f.zone}"] if f.zone else []),
        f"frequency:  {f.frequency} ({'given' if cfg.data.frequency else 'inferred'}; {cal})",
        f"targets:    {', '.join(f.targets)}",
        f"features:   {', '.join(f.features)} ({len(f.features)})",
        f"missing values per column (before `missing: {cfg.data.missing}`):",
    ]
    return out + [f"  {col:<24} {n}" for col, n in f.missing_before.items()]


def _split_lines(data: SeriesData) -> list[str]:
    df, tc = data.frame.df, data.frame.time_column
    dates, out = dates_only(df[tc]), []
    for s in data.segments:
        prefix = f"[{s.series}] " if len(data.segments) > 1 else ""
        for name in SPLITS:
            lo, hi = s.bounds[name]
            t0, t1 = (
                (time_text(df[tc].iloc[lo], dates), time_text(df[tc].iloc[hi - 1], dates)) if hi > lo else ("-", "-")
            )
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
        f"a split owns targets, not inputs: val and test windows have every target inside their split and read "
        f"their {L} input rows from the rows before it (train windows stay inside the train rows)"
    )
    out.append(
        f"batch shapes: past ({B}, {L}, {len(data.feature_idx)}) -> forecast ({B}, {H}, {len(data.target_idx)}, 1)"
        "  # (batch, horizon, targets, quantiles)"
    )
    return out


# --------------------------------------------------------------------------- train / evaluate


def summary_table(ev: Evaluation) -> str:
    """Model and baselines, original units: MSE, RMSE, MAE, MAPE (or sMAPE), MASE, skill."""
    rows = Scores.of(ev.metrics).overall
    pct = "mape" if "mape" in rows["model"] else "smape"
    keys = ("mse", "rmse", "mae", pct, "mase", "skill")
    header = ["", "MSE", "RMSE", "MAE", pct.upper(), "MASE", "skill"]
    body = [[name] + [r.get(k) for k in keys] for name, r in rows.items()]
    return "\n".join(table(header, body, [None, AUTO, AUTO, AUTO, ".2f", ".3f", ".3f"]))


def interval_lines(ev: Evaluation) -> list[str]:
    """Coverage and width per level beside the score table (model and persistence bands), or nothing."""
    iv = ev.metrics.get("intervals")
    if not iv:
        return []
    how = iv["method"] + (", joint" if iv["joint"] else "") + (", adaptive" if iv["adaptive"] else "")
    body = [
        [name, level + "%", b["coverage"]["overall"], b["joint_coverage"]["overall"], b["width"]["overall"]]
        + [b.get("msis", {}).get("overall")]
        for name in ("model", "persistence")
        for level, b in iv[name]["levels"].items()
    ]
    header = ["", "level", "coverage %", "joint %", "width", "MSIS"]
    return [
        "",
        f"intervals ({how}; calibrated on {iv['calibration_windows']} validation windows):",
        *table(header, body, [None, None, ".1f", ".1f", AUTO, ".3f"]),
    ]


def mase_warning(ev: Evaluation) -> str | None:
    """A warning when the model does no better than persistence (MASE >= 1), else None."""
    return mase_warning_for(Scores.of(ev.metrics).model["mase"], ev.split)


def mase_warning_for(mase, split: str, who: str = "the model") -> str | None:
    """The MASE >= 1 warning (terminal and report.html say the same), or None when ``mase`` is below 1 or unknown."""
    if mase is not None and mase >= 1:
        return (
            f"warning: MASE {mase:.3f} >= 1 on the {split} split: {who} does no better than repeating the last "
            "observed value (persistence)."
        )
    return None


def run_verdict(scored: dict, split: str = "test", who: str = "the model") -> list[str]:
    """:func:`metrics.verdict` of one split's metrics (``ev.metrics``, or ``metrics.json``'s ``test``)."""
    return metrics.verdict(metrics.overall_maes(scored.get("original", {}).get("overall", {})), split, who)


def evidence(scored: dict, split: str = "test") -> list[str]:
    """:func:`metrics.evidence_warnings` of one split's metrics (thin evidence, invented actuals)."""
    return metrics.evidence_warnings(
        scored.get("n_windows", 0),
        scored.get("split_rows", 0),
        scored.get("season_length", 1),
        scored.get("filled_actuals", 0),
        split,
    )


def compare_verdict(record: dict) -> list[str]:
    """compare.json's verdict: the ranked-first cell against the best baseline, and a warning for every cell
    that does no better than a baseline (means over seeds)."""
    ranking = record.get("ranking") or []
    if not ranking:
        return []
    base = {k: b.get("test_mae") for k, b in record.get("baselines", {}).items()}
    seeds = len(record.get("seeds", [])) > 1

    def maes(cell: str) -> dict:
        return {"model": record["results"][cell]["mean"].get("test_mae"), **base}

    def who(cell: str) -> str:
        return cell + (" (mean over seeds)" if seeds else "")

    lines = metrics.verdict(maes(ranking[0]), "test", f"the first-ranked cell, {who(ranking[0])},")
    for cell in ranking[1:]:
        lines += metrics.verdict(maes(cell), "test", who(cell))[1:]
    return lines


def backtest_verdict(record: dict) -> list[str]:
    """A backtest's verdict on the MAE of each forecaster averaged over folds."""
    s = record["aggregate"]["scores"]
    who = f"the model (mean over {len(record['folds'])} folds)"
    return metrics.verdict({k: v["mae"]["mean"] for k, v in s.items()}, "test", who, more=None)  # it is the backtest


def beats_every_baseline(scores: dict, baselines: list[dict], keys=("mse", "mae")) -> bool:
    """True when ``scores`` is lower than every baseline on every one of ``keys`` (a missing number never wins)."""
    for key in keys:
        mine = scores.get(key)
        theirs = [b.get(key) for b in baselines if b.get(key) is not None]
        if mine is None or any(mine >= t for t in theirs):
            return False
    return True


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
        *run_verdict(ev.metrics, ev.split),
    ]
    if t["best_epoch"] == 0:
        tail.append(
            "note: no epoch beat the untrained residual model on validation, so it was kept: the forecasts are its "
            "baseline's (model.residual), the network adds nothing. Fix: more training rows, a longer "
            "window.input_length or another training.learning_rate"
        )
    w = mase_warning(ev)
    if w:
        tail.append(w)
    tail += evidence(ev.metrics, ev.split)
    tail += ev.metrics.get("intervals", {}).get("warnings", [])
    tail.append(f"run directory: {run_dir}")
    return "\n".join(tail)


def evaluation_text(ev: Evaluation) -> str:
    """What ``evaluate`` prints: the score table and MAE by lead time (``evaluation_json`` for --json)."""
    lines = [f"{ev.split} split, original units, {ev.metrics['n_windows']} windows:", summary_table(ev)]
    lines += run_verdict(ev.metrics, ev.split)[:1] + interval_lines(ev)
    lead = Scores.of(ev.metrics).per_lead["model"]["mae"]
    if len(lead) > 1:
        lines.append("model MAE by lead time: " + "  ".join(f"t+{i + 1} {num(v)}" for i, v in enumerate(lead)))
    return "\n".join(lines)


# --------------------------------------------------------------------------- compare

COLUMNS = (  # (header, key, format) of the compare table
    ("cell", None, None),
    ("params", "params", ".0f"),
    ("s/epoch", "seconds_per_epoch", ".3f"),
    ("best epoch", "best_epoch", "~.1f"),
    ("val MSE", "val_mse", AUTO),
    ("test MSE", "test_mse", AUTO),
    ("test MAE", "test_mae", AUTO),
    ("MASE", "test_mase", ".3f"),
    ("skill", "test_skill", ".3f"),
)


def _mean_std(value, std, spec: str) -> str:
    """``mean ± std`` inline in a sentence; the std only when it is known and not 0."""
    if value is None:
        return "n/a"
    text = num(float(value), spec)
    return f"{text}{PLUS_MINUS}{num(float(std), '.2g')}" if std else text


def _stat(value, std):
    return None if value is None else mean_std(float(value), None if std is None else float(std))


def compare_cells(record: dict) -> tuple[list[str], list[list]]:
    """Header and rows of the compare table (one row per cell ranked by test MSE, then one per baseline), values
    unformatted: (mean, std) pairs, None for missing, "" where a baseline has no such number."""
    rows = []
    for cell in record["ranking"]:
        r = record["results"][cell]
        rows.append([cell] + [_stat(r["mean"][k], r["std"][k]) for _, k, _ in COLUMNS[1:]])
    for name, b in record["baselines"].items():
        rows.append([f"({name})"] + [_stat(b[k], None) if k in b else "" for _, k, _ in COLUMNS[1:]])
    return [h for h, _, _ in COLUMNS], rows


def table_rows(record: dict) -> list[list[str]]:
    """The compare table as strings (Markdown, HTML): header, then the rows, one format per column."""
    header, rows = compare_cells(record)
    cols = [column_cells([r[i] for r in rows], spec) for i, (_, _, spec) in enumerate(COLUMNS)]
    return [header] + [[" ".join(col[j].split()) for col in cols] for j in range(len(rows))]


def ranked_table(record: dict) -> str:
    """The compare table as aligned plain text, with a title line naming the split and the seeds."""
    header, rows = compare_cells(record)
    lines = [
        f"test split, original units, {record['n_test_windows']} windows, ranked by test MSE"
        + (f"; mean ± std over seeds {record['seeds']}" if len(record["seeds"]) > 1 else f"; seed {record['seeds'][0]}")
    ]
    lines += table(header, rows, [spec for _, _, spec in COLUMNS])
    lines += compare_warnings(record)
    return "\n".join(lines + compare_verdict(record))


def compare_warnings(record: dict) -> list[str]:
    """One warning per cell that does no better than persistence on the test split (mean MASE >= 1)."""
    out = []
    for cell in record["ranking"]:
        mase = record["results"][cell]["mean"].get("test_mase")
        w = mase_warning_for(mase, "test", who=f"{cell} (mean over seeds)" if len(record["seeds"]) > 1 else cell)
        if w:
            out.append(w)
    return out


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


def gradient_reading(ratio) -> str:
    """What the oldest/newest gradient ratio says, in words (empty when unknown)."""
    if ratio is None or not math.isfinite(ratio):
        return ""
    if ratio < 1e-3:
        return " (vanishing: the oldest input barely moves the forecast)"
    if ratio < 0.1:
        return f" (fading: the oldest input moves the forecast {1 / ratio:.0f}x less than the newest)"
    if ratio <= 10:
        return " (kept: the oldest input moves the forecast about as much as the newest, within 10x)"
    return f" (growing: the oldest input moves the forecast {ratio:.0f}x more than the newest)"


def inspect_summary(numbers: dict, split: str = "") -> list[str]:
    """The headline numbers of ``inspect.json`` as text: gradient ratio, then gate saturation per layer."""
    ratio = numbers.get("ratio")
    windows = f"{numbers.get('n_windows')} {split + ' ' if split else ''}windows"
    lines = [
        f"gradient flow, first forecast step, {windows}: "
        f"||d yhat / d x_oldest|| / ||d yhat / d x_newest|| = {num(ratio, '.3g')}" + gradient_reading(ratio)
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
    header = ["fold", "origin", "windows", "trained", "MAE", "persist.", "MASE", *[f"cov{c}%" for c in levels]]
    dates = dates_only([f["origin"] for f in record["folds"]])
    body = [
        [str(f["fold"]), time_text(str(f["origin"])[:19], dates), f["n_windows"], "yes" if f["trained"] else "no"]
        + [f["original"]["overall"]["model"]["mae"], f["original"]["overall"]["persistence"]["mae"]]
        + [f["original"]["overall"]["model"]["mase"]]
        + [f["intervals"]["model"]["levels"][c]["coverage"]["overall"] for c in levels]
        for f in record["folds"]
    ]
    lines = table(header, body, [None, None, ".0f", None, AUTO, AUTO, ".3f", *[".1f"] * len(levels)])
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
        *backtest_verdict(record),
        f"{record['trainings']} training(s), {record['seconds']:.1f}s",
        f"backtest directory: {directory}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- --json

JSON_SCHEMA_VERSION = 1  # docs/json.md describes every document; bump it when a field changes meaning


def _absolute(path) -> str:
    from pathlib import Path

    return str(Path(path).absolute())


def json_document(command: str, **fields) -> str:
    """The one JSON document a command prints on stdout with ``--json``: ``command``, ``schema_version``, fields."""
    return json.dumps(_plain({"command": command, "schema_version": JSON_SCHEMA_VERSION, **fields}), indent=1)


def files_in(directory) -> dict[str, str]:
    from .artifacts import listing  # the one place that reads the directory

    return listing(directory)


def train_json(record: dict, run_dir, timing: dict) -> str:
    split = record["split"]
    return json_document(
        "train",
        run_dir=_absolute(run_dir),
        split=split,
        n_windows=record["n_windows"],
        metrics=record[split],
        val_metrics=record["val"],
        training=record["training"],
        train_seconds=timing["train_seconds"],
        files=files_in(run_dir),
    )


def evaluation_json(ev: Evaluation, run_dir, predictions=None) -> str:
    return json_document(
        "evaluate",
        run_dir=_absolute(run_dir),
        data=ev.source,
        split=ev.split,
        n_windows=ev.metrics["n_windows"],
        predictions=_absolute(predictions) if predictions else None,
        metrics=ev.metrics,
    )


def forecast_json(table, run_dir, source, output, plot) -> str:
    return json_document(
        "predict",
        run_dir=_absolute(run_dir),
        data=source,
        output=output,
        plot=plot,
        columns=list(table.columns),
        forecast=table.to_dict(orient="records"),
    )


def compare_json(record: dict, directory) -> str:
    return json_document(
        "compare",
        directory=_absolute(directory),
        split="test",
        n_windows=record["n_test_windows"],
        ranking=record["ranking"],
        results=record["results"],
        baselines=record["baselines"],
        files=files_in(directory),
    )


def backtest_json(record: dict, directory) -> str:
    """The backtest's metrics.json (every fold and the aggregate) with the directory and its files."""
    return json_document("backtest", directory=_absolute(directory), split="test", files=files_in(directory), **record)


def tune_json(summary: dict, directory) -> str:
    return json_document(
        "tune",
        directory=_absolute(directory),
        split="val",
        metric=summary.get("metric"),
        best_trial=summary.get("best_trial"),
        best_value=summary.get("best_value"),
        best_params=summary.get("best_params"),
        trials=summary.get("trials"),
        test_of_best={"split": "test", **(summary.get("test_of_best") or {})},
        files=files_in(directory),
    )

"""One self-contained HTML report of a run, comparison, backtest or tune directory: tables, config, data, every PNG embedded.

The page needs nothing but itself: images are base64 data URIs, the CSS is inline, there is no
script and no network access. Every PNG under the directory appears exactly once, captioned.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import html
import json
import os
from pathlib import Path

from . import __version__, artifacts, records
from .errors import RunError
from .plots import MIN_IMPORTANCE_TRIALS
from .text import (
    AUTO,
    backtest_verdict,
    beats_every_baseline,
    column,
    column_cells,
    compare_cells,
    compare_verdict,
    dates_only,
    inspect_summary,
    mase_warning_for,
    num,
    run_verdict,
    time_text,
)
from .text import COLUMNS as COMPARE_COLUMNS

# File name (or glob) -> what the figure shows and how to read it. Unknown PNGs get GENERIC.
CAPTIONS = {
    # train / evaluate (plots/ of a run)
    "loss.png": "Training and validation loss per epoch, in scaled units of the training loss. The dashed line marks the "
    "best epoch, whose weights the run kept. Validation loss rising while training loss keeps falling means overfitting; "
    "both flat and high means the model is not learning.",
    "forecast_next.png": "The forecast past the data's last row (red, dots: the forecast steps) after the last "
    "observations (black), in the data's units, with one shaded interval per level (darker = the lower level). The "
    "numbers are in the forecast table above and, at full precision, in forecast.csv.",
    "forecast.png": "Actual values (black, to the split's last row) on the test split with the lead-1 forecast (blue) "
    "and its interval for each level (shaded; darker = the lower level), and the forecast at the last lead (red); the "
    "right panel zooms into the last windows. A forecast that trails the actual curve by one step is mostly repeating "
    "the last value (compare its MASE with 1).",
    "error_by_horizon.png": "Test MAE for each lead time (1 = the first step after the window), for the model and the "
    "naive baselines, in the data's units. Error normally grows with lead time; the model is useful where its line lies "
    "below persistence.",
    "residuals.png": "Histogram of test errors (forecast - actual) over all lead times, in the data's units. A centre away "
    "from zero is bias; long tails are occasional large misses.",
    # compare (plots/ of a comparison directory)
    "val_loss.png": "Validation loss per epoch of every cell on one axis (scaled units of the training loss); faded lines are "
    "extra seeds. Lower is better; a curve still falling at the last epoch would gain from more epochs.",
    "test_error.png": "Test MSE (left, units squared) and MAE (right, data units) of each cell, in original units, with the "
    "naive baselines as horizontal lines; error bars are the std over seeds when there are several. A bar above the "
    "persistence line means the cell does worse than repeating the last value.",
    "error_by_lead.png": "Test MSE per lead time for each cell (mean over seeds, shaded ± 1 std over seeds when there "
    "are several) with persistence dashed, in the data's units squared. Cells that keep long-range memory tend to gain "
    "most at the later lead times.",
    "forecast_overlay.png": "One panel per cell, shared axes: actual values (black) and the cell's one-step-ahead forecast "
    "on the same stretch of the test split (first seed of each cell), in the data's units, with the cell's MAE over that "
    "stretch. Curves that hug the black line are better; one shifted a step to the right is mostly persistence.",
    "params_vs_error.png": "Parameters of each cell's model (log scale when they span more than 10x) against its test "
    "MSE, with persistence as the dashed line. Down and to the left is better: lower error for fewer parameters.",
    "time_per_epoch.png": "Seconds per training epoch for each cell (median over epochs, the first excluded when there are "
    "others because it includes compilation). Measured on the machine that ran the comparison.",
    # backtest (plots/ of a backtest directory)
    "backtest_error_per_fold.png": "Test MAE of the model and the naive baselines in each fold, in the data's units, "
    "folds by origin. A model line that crosses above persistence in some folds is not reliably better; a trend across "
    "folds shows the error drifting with the season or regime.",
    "backtest_error_by_lead.png": "MAE per lead time, mean over folds, for the model (with a band of one standard "
    "deviation across folds) and the baselines. A wide band means the score depends on where the origin falls: trust "
    "it less.",
    "backtest_forecast.png": "Actual values (black) and the one-step-ahead forecast (blue) over the whole backtested "
    "stretch, with the conformal bands of each level (shaded; wider = higher level) and the fold origins as dotted lines. "
    "Actual values outside the band should be about 100 - level percent of the points.",
    # tune (plots/ of a tune directory)
    "optimization_history.png": "The study's objective (the validation metric named on the y axis, in its units) of "
    "every complete trial by trial number (dots; pruned and failed trials leave gaps), with the best value so far as a "
    "red step line and the best trial labelled. A line that stops falling early says more trials of this search "
    "space will not help; widen the space instead.",
    "param_importances.png": "How much of the objective's variation each searched key explains (optuna's PED-ANOVA "
    "importances over the complete trials, summing to 1; drawn from "
    f"{MIN_IMPORTANCE_TRIALS} complete trials on, as fewer rank noise). Keys near zero can be fixed in the config to "
    "search the others more finely.",
    "param_values.png": "One panel per searched key: the objective of each complete trial (dots) against the value the "
    "trial used (lists such as units [64] as the config writes them; a log axis for ranges spanning more than 10x), "
    "the best trial ringed in red. Good trials bunched at one end of an axis show where to search next.",
    # inspect (inspect/ of a run)
    "hidden_*.png": "Hidden state h of one recurrent layer over one input window: rows are units, columns are steps before "
    "the forecast (oldest left, newest right); red positive, blue negative. A unit that keeps its colour across many steps "
    "carries memory; one that flips every step reacts only to the latest input.",
    "cell_state_*.png": "LSTM cell state c over the same window (units x steps before the forecast). It is the long-term "
    "memory: values that persist or build up across the window are information the cell carries forward.",
    "gates_*.png": "Gate activations per unit (rows) and step (columns) over one window, recomputed from the layer's own "
    "weights (0 = shut, 1 = open). LSTM: input, forget, output gates; GRU: update and reset gates. A forget gate near 1 "
    "keeps the past; an input gate near 1 writes the present.",
    "gate_saturation.png": "Gate saturation over many windows: for each unit, the share of steps its gate is below 0.1 "
    "(shut, blue) and above 0.9 (open, orange). Mostly saturated units act as switches that keep or drop information; "
    "unsaturated units mix it smoothly.",
    "gradient_flow.png": "Norm of the gradient of the first forecast step with respect to the input at each step before "
    "the forecast, averaged over windows, on a log scale (newest step on the right). The title gives the oldest/newest "
    "ratio: a line that falls steeply to the left is a vanishing gradient, the oldest inputs barely influence the forecast.",
    "saliency.png": "Input-gradient saliency: mean |d forecast / d input| for each feature (rows) and step before the "
    "forecast (columns, oldest left). Bright cells are the inputs, and how far back, that drive the forecast.",
}
GENERIC = "A figure written by rnnforecast into this directory; see its title and axis labels for what it shows."

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2230;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:1.5rem 1.25rem 4rem;background:#fff}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:1px solid #dde1e8;padding-bottom:.2rem}
h3{font-size:1.08rem;margin-top:1.4rem}h4{font-size:.98rem;margin:1rem 0 .3rem}
.meta,.note{color:#5a6275;font-size:.9rem}
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0 1rem}
table{border-collapse:collapse;font-size:.88rem}table.wide{font-size:.8rem}table.wide td,table.wide th{padding:.2rem .4rem}
th,td{border:1px solid #dde1e8;padding:.25rem .55rem;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left}thead th{background:#eef1f5}
tr.best td{font-weight:600}
.warning{background:#fff4e5;border-left:4px solid #e8a13a;padding:.5rem .8rem;color:#6b3e00;margin:.6rem 0}
.verdict{background:#eef6ee;border-left:4px solid #4a9a4a;padding:.5rem .8rem;margin:.6rem 0;font-weight:600}
pre{background:#f3f5f8;border:1px solid #dde1e8;padding:.7rem;overflow-x:auto;font-size:.82rem;max-height:28rem}
figure{margin:1.2rem 0 1.8rem}figure img{max-width:100%;height:auto;border:1px solid #e3e6eb}
figcaption{font-size:.88rem;color:#3b4252;margin-top:.35rem}figcaption code{font-size:.82rem;color:#5a6275}
nav ul{columns:2;font-size:.9rem}
"""

SCORE_SPECS = {"mape": ".2f", "smape": ".2f", "mase": ".3f", "skill": ".3f"}  # the others: one AUTO per column
BASELINES = ("persistence", "seasonal_naive", "window_mean")
WIDE = 8  # tables with more columns than this get the smaller font

SCORES = {
    "mse": "MSE",
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE %",
    "smape": "sMAPE %",
    "mase": "MASE",
    "skill": "skill",
}


def write_report(directory: str | Path, output: str | Path | None = None, force: bool = False) -> Path:
    """Render ``directory`` (a run or a comparison) into one HTML file, written atomically.

    Args:
        directory: a finished run directory (``rnnforecast train``) or comparison directory (``rnnforecast compare``).
        output: the HTML file; default ``<directory>-report.html`` beside the directory (``artifacts.annex_path``;
            an earlier report of the same directory there is replaced); another existing file only with ``force``.

    Returns:
        The path written.
    """
    d = Path(directory)
    kind_of(d)  # a damaged or foreign directory is named before any output is checked
    out = page_path(d, Path(output) if output else artifacts.annex_path(d, "-report.html"), force, given=bool(output))
    text = render(d, out, force)
    try:
        artifacts.write_atomic(out, text)
    except OSError as e:
        fix = "choose a writable --output" if output else "pass --output FILE in a writable place"
        raise RunError(f"cannot write the report ({e.strerror})", where=str(out), fix=fix) from None
    return out


def page_path(d: Path, out: Path, force: bool, given: bool) -> Path:
    """``out`` checked as the page of ``d``: a page report wrote of ``d`` before is replaced unasked; any other file
    there only with ``force`` (``artifacts.check_output``: never inside a result, never a directory)."""
    artifacts.check_name(out, "--output")
    if not given and not force and (out.exists() or out.is_symlink()) and not is_report(out, d):
        raise RunError(
            "a file report did not write (or wrote of another directory) is at the page's name",
            where=str(out),
            fix="pass --force to replace it, or --output another file",
        )
    return artifacts.check_output(out, "--output", force=force or (not given and is_report(out, d)))


GENERATOR = "<meta name='generator' content='rnnforecast report'>"


def source_line(d: Path) -> str:
    """The head line naming the directory a page is of: ``is_report`` matches it."""
    return f"<meta name='rnnforecast-of' content='{_e(str(d.resolve()))}'>"


def is_report(path: Path, d: Path) -> bool:
    """Whether ``path`` is a page report wrote of ``d`` (its generator and source lines near the top): the default
    output replaces it. A link, a FIFO or anything but a regular file never is (and is never opened)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(16384)
    except OSError:
        return False
    return GENERATOR.encode() in head and source_line(d).encode() in head


def kind_of(d: Path) -> str:
    """``"run"``, ``"comparison"``, ``"tune"`` or ``"backtest"`` (``records.kind_of``); raises RunError for anything
    else or an unfinished directory."""
    if not d.is_dir():
        raise RunError(
            "directory not found" if not d.exists() else "not a directory",
            where=str(d),
            fix="pass a run or comparison directory",
        )
    if d.name.endswith(artifacts.PARTIAL_SUFFIX) or (d / artifacts.MARKER).exists():
        raise RunError(
            "this directory did not finish; it is not a result",
            where=str(d),
            fix="finish or rerun it, then report on the final directory",
        )
    kind = records.kind_of(d)
    if kind in (None, "run") and (d / records.METRICS).is_file():
        artifacts.open_run(d)  # same completeness and version checks as evaluate (names a missing file)
        return "run"
    if kind in ("comparison", "tune", "backtest"):
        return kind
    raise RunError(
        "neither a run directory (metrics.json), a comparison directory (compare.json) nor a tune directory (tune.json)",
        where=str(d),
        fix="pass a directory written by rnnforecast train, compare, backtest or tune",
    )


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def figures_in(d: Path) -> list[Path]:
    """The PNG images under ``d`` that may be embedded: regular files (no symlinks, also none on the way), whose
    real path lies inside ``d`` and whose first bytes are the PNG signature. Anything else is never read further."""
    root = d.resolve()
    out = []
    for p in sorted(d.rglob("*.png")):
        rel = p.relative_to(d)
        if any((d / Path(*rel.parts[: i + 1])).is_symlink() for i in range(len(rel.parts))):
            continue
        if not p.is_file() or not p.resolve().is_relative_to(root):
            continue
        try:
            with open(p, "rb") as fh:
                if fh.read(len(PNG_MAGIC)) != PNG_MAGIC:
                    continue
        except OSError:
            continue
        out.append(p)
    return out


def render(d: Path, output: Path | None = None, force: bool = False) -> str:
    """The page of ``d``; ``output``: where it will be written (links to per-run pages are relative to it, and
    ``force`` replaces files of other makers at their names too)."""
    kind = kind_of(d)
    pngs = figures_in(d)
    page = _Page(d, pngs)
    if kind == "comparison":
        title = _comparison_sections(page, d, output, force)
    elif kind == "tune":
        title = _tune_sections(page, d)
    elif kind == "backtest":
        title = _backtest_sections(page, d)
    else:
        metrics = _json(d / "metrics.json")
        title = f"Run {d.name}"
        _run_answer_first(page, d, metrics)
    page.leftovers()
    warnings = "".join(
        f"<p class='{'warning' if w.startswith('warning') else 'verdict'}'>{_e(w)}</p>" for w in _warnings(kind, d)
    )
    generated = dt.datetime.now().isoformat(timespec="seconds")
    head = (
        f"<h1>{_e(title)}</h1><p class='meta'>{_e(kind)} directory <code>{_e(str(d.resolve()))}</code>; "
        f"report generated {_e(generated)} by rnnforecast {_e(__version__)}; {len(pngs) - page.elsewhere + page.annexed} figure(s)"
        + (f", {page.elsewhere} more {page.elsewhere_is}" if page.elsewhere else "")
        + ".</p>"
    )
    toc = "<nav><ul>" + "".join(f"<li><a href='#{a}'>{_e(t)}</a></li>" for a, t in page.toc) + "</ul></nav>"
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>{GENERATOR}{source_line(d)}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>\n{head}\n{warnings}{toc}\n"
        + "\n".join(page.parts)
        + "\n</main></body></html>\n"
    )


class _Page:
    """Collects sections and embeds each PNG at most once; ``leftovers`` adds the rest."""

    def __init__(self, root: Path, pngs: list[Path]):
        self.root = root
        self.remaining = {p.resolve(): p for p in pngs}
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.elsewhere = (
            0  # PNGs shown on pages of their own (a comparison's runs) or left in their run (tune's trials)
        )
        self.elsewhere_is = "on the run pages"
        self.annexed = 0  # PNGs from beside the directory (its inspection)

    def section(self, anchor: str, title: str, body: str, level: int = 2) -> None:
        if level == 2:
            self.toc.append((anchor, title))
        self.parts.append(f"<section id='{_e(anchor)}'><h{level}>{_e(title)}</h{level}>\n{body}</section>")

    def figures(self, directory: Path) -> str:
        """Every not-yet-shown PNG directly in ``directory``, captioned, in caption order."""
        mine = [p for k, p in self.remaining.items() if k.parent == directory.resolve()]
        out = []
        for p in sorted(mine, key=_figure_order):
            del self.remaining[p.resolve()]
            out.append(_figure(p, self.root))
        return "\n".join(out)

    def annex_figures(self, directory: Path) -> str:
        """Every PNG of an annex beside the directory (``<run>-inspect``), captioned with the annex's name."""
        pngs = figures_in(directory)
        self.annexed += len(pngs)
        return "\n".join(_figure(p, directory.parent) for p in sorted(pngs, key=_figure_order))

    def figure_of(self, path: Path) -> str:
        """``path`` captioned, when it is one of the page's PNGs not shown yet; else nothing."""
        p = self.remaining.pop(path.resolve(), None)
        return _figure(p, self.root) if p is not None else ""

    def drop(self, directory: Path) -> None:
        """Leave out every PNG under ``directory`` (shown on a page of its own)."""
        top = directory.resolve()
        for k in [k for k in self.remaining if k.is_relative_to(top)]:
            del self.remaining[k]
            self.elsewhere += 1

    def figures_section(self, anchor: str, title: str, directory: Path, level: int = 2) -> None:
        body = self.figures(directory)
        if body:
            self.section(anchor, title, body, level)

    def run_sections(self, run: Path, anchor: str, title: str, level: int, metrics: dict | None = None) -> None:
        metrics = metrics if metrics is not None else _json(run / "metrics.json")
        body = [_metrics_body(metrics, run)]
        sub = level + 1
        plots = self.figures(run / "plots")
        if plots:
            body.append(f"<h{sub}>Training and evaluation plots</h{sub}>\n{plots}")
        inspect_dir = artifacts.inspection_of(run)
        if inspect_dir is not None:
            shown = self.figures(inspect_dir) if inspect_dir.parent == run else self.annex_figures(inspect_dir)
            body.append(
                f"<h{sub}>Inside the cells (rnnforecast inspect)</h{sub}>\n{_inspect_body(inspect_dir)}\n{shown}"
            )
        rest = self.figures(run)
        if rest:
            body.append(f"<h{sub}>Other figures</h{sub}>\n{rest}")
        self.section(anchor, title, "\n".join(body), level)

    def leftovers(self) -> None:
        if not self.remaining:
            return
        out = []
        for p in sorted(self.remaining.values()):
            out.append(_figure(p, self.root))
        self.remaining.clear()
        self.section("other-figures", "Other figures in the directory", "\n".join(out))


def _figure_order(p: Path) -> tuple[int, str]:
    keys = list(CAPTIONS)
    for i, pattern in enumerate(keys):
        if fnmatch.fnmatch(p.name, pattern):
            return i, p.name
    return len(keys), p.name


def caption_for(name: str) -> str:
    for pattern, text in CAPTIONS.items():
        if fnmatch.fnmatch(name, pattern):
            return text
    return GENERIC


def _figure(p: Path, root: Path) -> str:
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    rel = p.relative_to(root).as_posix()
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{_e(rel)}'>"
        f"<figcaption>{_e(caption_for(p.name))} <code>{_e(rel)}</code></figcaption></figure>"
    )


# --------------------------------------------------------------------------- sections


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(
            f"cannot read {path.name} ({type(e).__name__})", where=str(path), fix="the directory is damaged: rerun it"
        ) from None


def _first_run(d: Path, record: dict) -> Path | None:
    for c in record.get("cells", []):
        for r in record["results"][c]["runs"]:
            if (d / r["run_dir"] / "schema.json").exists():
                return d / r["run_dir"]
    return None


def _config_body(d: Path, command: str) -> str:
    p = d / "config.yaml"
    if not p.exists():
        return "<p class='note'>No config.yaml in this directory.</p>"
    return (
        f"<p class='note'>The resolved config (<code>config.yaml</code>); run it again with <code>{_e(command)} "
        f"config.yaml</code>.</p><pre>{_e(p.read_text())}</pre>"
    )


def _schema_body(run: Path, root: Path) -> str:
    s = _json(run / "schema.json")
    series = s.get("series", [])
    transforms = {k: v for k, v in s.get("transform", {}).items() if v != "none"}
    rows = [
        ("rows", s.get("rows")),
        ("time column", s.get("time_column")),
        ("frequency", _frequency_text(s)),
        ("series", _series_text(series)),
        ("last timestamp", "; ".join(f"{k}: {v}" for k, v in s.get("last_timestamp", {}).items())),
        ("targets", ", ".join(s.get("targets", []))),
        (f"features ({len(s.get('features', []))})", ", ".join(s.get("features", []))),
        ("categorical", "; ".join(f"{k}: {', '.join(v)}" for k, v in (s.get("categories") or {}).items()) or "none"),
        ("transforms", ", ".join(f"{k}: {v}" for k, v in transforms.items()) or "none"),
        ("window", f"input_length {s.get('input_length')}, horizon {s.get('horizon')}"),
    ]
    body = "".join(
        f"<tr><th>{_e(k)}</th><td style='text-align:left;white-space:normal'>{_e(str(v))}</td></tr>" for k, v in rows
    )
    rel = (run / "schema.json").relative_to(root).as_posix()
    return f"<p class='note'>From <code>{_e(rel)}</code>.</p><table><tbody>{body}</tbody></table>"


def _frequency_text(schema: dict) -> str:
    """A run's frequency and whether its rows are steps or a regular calendar: ``h (regular calendar)``."""
    calendar = "rows are steps" if schema.get("calendar") == "steps" else "regular calendar"
    return f"{schema.get('frequency')} ({calendar})"


def _series_text(series: list, shown: int = 10) -> str:
    """How many series, and the names of the first ``shown``: ``12: a, b, ... ...``."""
    more = " ..." if len(series) > shown else ""
    return f"{len(series)}: {', '.join(map(str, series[:shown]))}{more}"


def _table(header: list[str], rows: list[list], bold: str | None = None, specs: list[str] | None = None) -> str:
    """An HTML table, one number format per column (``text.column``: decimals line up), the row named ``bold``
    in bold; wide tables scroll inside their own box and use a smaller font.

    Args:
        header: column titles.
        rows: first cell the row's name, then numbers, None, str or (mean, std) pairs.
        bold: the name of the one row to bold (the caller decides it earned it), or None.
        specs: a format per column after the first (default: ``text.AUTO`` for each).
    """
    specs = [None] + (specs or [AUTO] * (len(header) - 1))
    cols = [column_cells([r[i] for r in rows], spec) for i, spec in enumerate(specs)]
    cells = [[" ".join(col[j].split()) for col in cols] for j in range(len(rows))]
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(_row_html(r, bold is not None and r[0] == bold) for r in cells)
    wide = " class='wide'" if len(header) > WIDE else ""
    return f"<div class='scroll'><table{wide}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _row_html(cells: list[str], best: bool) -> str:
    """One table row of formatted ``cells``; the ``best`` row is marked for bold."""
    return ("<tr class='best'>" if best else "<tr>") + "".join(f"<td>{_e(v)}</td>" for v in cells) + "</tr>"


def _winner(block: dict) -> str | None:
    """``"model"`` when it scores below every baseline on MSE and MAE (worth bolding), else None."""
    model = block.get("model")
    others = [block[b] for b in BASELINES if b in block]
    return "model" if model and beats_every_baseline(model, others) else None


def _scores_table(block: dict) -> str:
    """Forecaster -> scores dict as a table (one row per forecaster); the model in bold only if it wins."""
    first = next(iter(block.values()))
    cols = [k for k in SCORES if k in first]
    return _table(
        ["forecaster"] + [SCORES[c] for c in cols],
        [[name] + [s.get(c) for c in cols] for name, s in block.items()],
        bold=_winner(block),
        specs=[SCORE_SPECS.get(c, AUTO) for c in cols],
    )


def _lead_table(block: dict, score: str) -> str:
    n = len(next(iter(block.values()))[score])
    return _table(
        ["forecaster"] + [f"t+{i + 1}" for i in range(n)],
        [[name] + list(s[score]) for name, s in block.items()],
    )


def _warnings(kind: str, d: Path) -> list[str]:
    """The verdict against the best baseline first, then the MASE >= 1 warnings the terminal printed."""
    if kind == "tune":  # the best config's one run on the test split
        kind, d = ("run", d / "best") if (d / "best" / "metrics.json").exists() else ("none", d)
    if kind == "none":
        return []
    if kind == "run":
        m = _json(d / "metrics.json")
        w = mase_warning_for(
            m.get("test", {}).get("original", {}).get("overall", {}).get("model", {}).get("mase"), "test"
        )
        return run_verdict(m.get("test", {})) + ([w] if w else [])
    if kind == "backtest":
        m = _json(d / "metrics.json")
        mase = m["aggregate"]["scores"]["model"].get("mase", {}).get("mean")
        w = mase_warning_for(mase, "test", f"the model (mean over {len(m['folds'])} folds)")
        return backtest_verdict(m) + ([w] if w else [])
    return _comparison_warnings(_json(d / records.COMPARISON))


def _comparison_warnings(record: dict) -> list[str]:
    """The comparison's verdict, and which cells do no better than persistence (test MASE >= 1)."""
    verdict = compare_verdict(record)
    losers = [c for c in record.get("ranking", []) if (record["results"][c]["mean"].get("test_mase") or 0) >= 1]
    if not losers:
        return verdict
    who = ", ".join(f"{c} ({record['results'][c]['mean']['test_mase']:.3f})" for c in losers)
    everyone = len(losers) == len(record["ranking"])
    return verdict + [
        f"warning: MASE >= 1 on the test split for {who}: "
        + ("no cell does" if everyone else "these cells do no")
        + " better than repeating the last observed value (persistence)."
    ]


def _metrics_body(m: dict, run: Path) -> str:
    t = m.get("training", {})
    timing = _json(run / "timing.json") if (run / "timing.json").exists() else {}
    facts = [
        f"{t.get('params', 'n/a')} parameters",
        f"{t.get('epochs_run', 'n/a')} epoch(s) run, best epoch {t.get('best_epoch', 'n/a')}"
        + (" (stopped early)" if t.get("stopped_early") else ""),
        f"seed {m.get('seed')}",
        f"backend {m.get('backend')}",
    ]
    if timing.get("train_seconds") is not None:
        facts.append(f"training time {timing['train_seconds']:.1f} s")
    mase = m.get("test", {}).get("original", {}).get("overall", {}).get("model", {}).get("mase")
    warning = mase_warning_for(mase, "test")
    out = [
        f"<p>{_e('; '.join(facts))}.</p>",
        f"<p class='warning'>{_e(warning)}</p>" if warning else "",
        "<p class='note'>Scores on identical windows for the model and three naive baselines: persistence (repeat the "
        "last value), seasonal naive (repeat the value one season earlier) and window mean. MASE = MAE / persistence "
        "MAE (below 1 beats persistence); skill = 1 - MSE / persistence MSE (above 0 beats persistence). Original "
        "units are the data's; normalised divides by each target's training-split standard deviation.</p>",
    ]
    test = m.get("test", {})
    targets = list(test.get("original", {}).get("per_target", {}))
    for units in ("original", "normalised"):
        if test.get(units):
            out += _test_tables(test[units], units, targets, m.get("n_windows", "?"))
    if m.get("val", {}).get("original"):
        out.append(
            f"<h4>Validation split, original units: overall</h4>{_scores_table(m['val']['original']['overall'])}"
        )
    per_series = m.get("per_series")
    if per_series:
        out.append("<h4>Test, original units: model per series</h4>" + _per_series_table(per_series))
    return "\n".join(out)


def _test_tables(sec: dict, units: str, targets: list[str], n_windows) -> list[str]:
    """The test split's tables in ``units``: overall, per target (when there are several), MSE and MAE by lead."""
    out = [f"<h4>Test split ({n_windows} windows), {units} units: overall</h4>{_scores_table(sec['overall'])}"]
    if len(targets) > 1:
        for target in targets:
            out.append(f"<h4>Test, {units} units: target {_e(target)}</h4>{_scores_table(sec['per_target'][target])}")
    out.append(f"<h4>Test, {units} units: MSE by lead time</h4>{_lead_table(sec['per_lead'], 'mse')}")
    out.append(f"<h4>Test, {units} units: MAE by lead time</h4>{_lead_table(sec['per_lead'], 'mae')}")
    return out


def _per_series_table(per_series: dict) -> str:
    """The model's test scores, one row per series."""
    rows = [[name] + [s["model"].get(k) for k in ("mse", "mae", "mase", "skill")] for name, s in per_series.items()]
    return _table(["series", "MSE", "MAE", "MASE", "skill"], rows, specs=[AUTO, AUTO, ".3f", ".3f"])


# --------------------------------------------------------------------------- a run, answer first


def verdict(metrics: dict) -> str | None:
    """The one-line verdict against the best baseline that the scoring commands print, or None.

    The report's first line is whatever this returns: the rule (which baseline is best, by how much) is
    ``text.run_verdict``'s, the one the scoring commands print.
    """
    lines = run_verdict(metrics.get(metrics.get("split", "test"), {}))
    return lines[0] if lines else None


def headline(metrics: dict) -> str:
    """The headline numbers in one sentence: the model's MAE and MASE on the scored split, beside persistence's MAE."""
    split = metrics.get("split", "test")
    overall = metrics.get(split, {}).get("original", {}).get("overall", {})
    model, persistence = overall.get("model", {}), overall.get("persistence", {})
    maes = column([model.get("mae"), persistence.get("mae")])
    return (
        f"{split.capitalize()} split, {metrics.get('n_windows', '?')} windows, original units: model MAE {maes[0]}, "
        f"persistence MAE {maes[1]}, MASE {num(model.get('mase'), '.3f')} (below 1 beats persistence)."
    )


def _run_answer_first(page: _Page, d: Path, metrics: dict) -> None:
    """A run's page: the answer (verdict, headline scores), the forecast and its fan chart, the intervals, then the
    diagnostics, the data and the config."""
    split = metrics.get("split", "test")
    overall = metrics.get(split, {}).get("original", {}).get("overall")
    lines = [v for v in (verdict(metrics), headline(metrics)) if v]
    body = "".join(
        f"<p><strong>{_e(line)}</strong></p>" if i == 0 else f"<p>{_e(line)}</p>" for i, line in enumerate(lines)
    )
    which = metrics.get("forecast_model") or {}
    if which.get("final_fit") and "training_rows" in which:  # the scores and the forecast come from two models
        from .final_fit import summary_line

        said = summary_line(which, (d / "intervals.json").exists())
        body += f"<p class='note'>{_e(said[0].upper() + said[1:])}.</p>"
    page.section("answer", "Answer", body + (_scores_table(overall) if overall else ""))
    page.section("forecast", "Forecast", _forecast_body(d) + page.figure_of(d / "plots" / "forecast_next.png"))
    intervals = _intervals_body(metrics)
    if intervals:
        page.section("intervals", "Interval coverage and width", intervals)
    page.run_sections(d, "run", "Diagnostics", level=2, metrics=metrics)
    page.section("data", "Data", _schema_body(d, d))
    page.section("config", "Config", _config_body(d, "rnnforecast train"))


def _forecast_body(d: Path) -> str:
    """forecast.csv as a table, rounded for reading (the file keeps full precision)."""
    import pandas as pd

    from .nextsteps import MAX_DATA_DECIMALS, printable_forecast

    path = d / "forecast.csv"
    if not path.exists():
        return "<p class='note'>No forecast.csv in this run.</p>"
    frame = pd.read_csv(path)
    if frame.empty:
        return "<p class='note'>The run has no forecast of its own (its future inputs need rows past the data's end: "
        "<code>rnnforecast predict RUN --data FILE</code>).</p>"
    schema = _json(d / "schema.json")
    targets = schema.get("targets", [])
    decimals = {t: schema.get("decimals", {}).get(t, MAX_DATA_DECIMALS) for t in targets}  # older runs: 4 digits
    table = _forecast_table(printable_forecast(frame, targets, decimals), targets)
    kind = f" ({frame['quantile'].iloc[0]} forecast)" if "quantile" in frame else ""
    note = (
        f"<p class='note'>The next {len(frame)} step(s) after the data's last row{_e(kind)}, rounded to the data's "
        "precision for reading; <code>forecast.csv</code> keeps full precision. <code>_pN</code> columns are quantiles: "
        "p10 and p90 bound the 80% interval, p2.5 and p97.5 the 95% one.</p>"
    )
    return note + table


def _forecast_table(shown, targets: list[str]) -> str:
    """A printable forecast (``nextsteps.printable_forecast``) as a table: each target's columns (the point and its
    ``_pN`` quantiles) in the target's decimals, the other columns as text."""
    owner = {c: t for t in targets for c in shown.columns if c == t or c.startswith(f"{t}_p")}
    header = list(shown.columns)
    specs = [f".{shown.attrs['decimals'][owner[c]]}f" if c in owner else None for c in header[1:]]
    rows = [[str(r[header[0]])] + [r[c] if c in owner else str(r[c]) for c in header[1:]] for _, r in shown.iterrows()]
    return _table(header, rows, specs=specs)


def _intervals_body(metrics: dict) -> str:
    """Coverage and width per level, model and persistence, as ``train`` prints them; empty without intervals."""
    iv = metrics.get("intervals")
    if not iv or "model" not in iv:
        return ""
    rows = [
        [f"{name}, {level}%", b["coverage"]["overall"], b["joint_coverage"]["overall"], b["width"]["overall"]]
        + [b.get("msis", {}).get("overall")]
        for name in ("model", "persistence")
        if name in iv
        for level, b in iv[name]["levels"].items()
    ]
    how = iv["method"] + (", joint" if iv.get("joint") else "") + (", adaptive" if iv.get("adaptive") else "")
    note = (
        f"<p class='note'>{_e(how)} intervals calibrated on {iv.get('calibration_windows')} validation windows. Coverage: "
        "the share of actual values inside the interval (should be near the level); joint: of whole windows with every "
        "step inside; width in the data's units; MSIS: the scaled interval score (lower is better).</p>"
    )
    warnings = "".join(f"<p class='warning'>{_e(w)}</p>" for w in iv.get("warnings", []))
    table = _table(["interval", "coverage %", "joint %", "width", "MSIS"], rows, specs=[".1f", ".1f", AUTO, ".3f"])
    return note + table + warnings


def _run_links(page: _Page, d: Path, record: dict, output: Path | None, force: bool = False) -> str:
    """One line per run of a comparison, linking the run's own report page (written now, beside this page:
    ``cmp-report.html`` -> ``cmp-report-<run>.html``; an earlier page of report's of that run there is replaced).
    Every page's name is checked before any page is written: a refused one leaves none behind."""
    here = (output or artifacts.annex_path(d, "-report.html")).absolute()
    pages = []
    for c in record.get("cells", []):
        for r in record["results"][c]["runs"]:
            run = d / r["run_dir"]
            inside = not run.is_symlink() and run.resolve().is_relative_to(d.resolve())  # compare.json may be edited
            if not inside or not (run / "metrics.json").is_file():
                continue
            target = here.with_name(f"{here.stem}-{artifacts.slug(r['run_dir'])}.html")
            pages.append((c, r, run, page_path(run, target, force, given=False)))
    items = []
    for c, r, run, target in pages:
        write_report(run, target, force=True)  # its name checked above
        page.drop(run)
        href = Path(os.path.relpath(target.absolute(), here.parent)).as_posix()
        mase = r.get("test_mase")
        items.append(
            f"<li><a href='{_e(href)}'>{_e(r['run_dir'])}</a> ({_e(c)}, seed {_e(r['seed'])}"
            + (f", MASE {mase:.3f}" if isinstance(mase, (int, float)) else "")
            + ")</li>"
        )
    return (
        "<p class='note'>Each run's forecast, scores, plots and config are on its own page.</p><ul>"
        + "".join(items)
        + "</ul>"
    )


def _inspect_body(inspect_dir: Path) -> str:
    p = inspect_dir / "inspect.json"
    if not p.exists():
        return ""
    numbers = _json(p)
    items = "".join(f"<li>{_e(line)}</li>" for line in inspect_summary(numbers))
    return (
        f"<p class='note'>From <code>{_e(inspect_dir.name)}/inspect.json</code>; heatmaps show window {_e(numbers.get('window_index'))} "
        f"of {_e(numbers.get('n_windows_total', '?'))}. The gradient ratio compares how strongly the oldest and the newest "
        "input step move the first forecast step: orders of magnitude below 1 is a vanishing gradient.</p>"
        f"<ul>{items}</ul>"
    )


def _backtest_body(record: dict) -> str:
    levels = [f"{c:g}" for c in record["levels"]]
    head = [
        "fold",
        "origin",
        "windows",
        "trained",
        "MAE",
        "persistence MAE",
        "MASE",
        *[f"coverage {c}%" for c in levels],
    ]
    rows = _fold_rows(record, levels)
    lead = _lead_rows(record["aggregate"]["scores"], record["horizon"])
    note = (
        f"<p class='note'>{len(record['folds'])} folds, refit {_e(record['plan']['refit'])}, step {record['plan']['step']}, "
        f"validation {record['plan']['val_length']} steps; {record['trainings']} training(s). Every fold trains on the "
        "rows before its validation stretch only.</p>"
    )
    specs = [None, AUTO, None, AUTO, AUTO, ".3f", *[".1f"] * len(levels)]
    return (
        note
        + _table(head, rows, specs=specs)
        + "<h4>MAE by lead time (mean ± std over folds)</h4>"
        + _table(lead[0], lead[1:])
    )


def _fold_rows(record: dict, levels: list[str]) -> list[list]:
    """A backtest's rows: one per fold (origin, windows, whether it trained, MAE, persistence MAE, MASE, coverage per
    level), then their mean over folds, as the terminal's summary line gives it."""
    rows, dates = [], dates_only([str(f["origin"]) for f in record["folds"]])
    for f in record["folds"]:
        o = f["original"]["overall"]
        cov = [f["intervals"]["model"]["levels"][c]["coverage"]["overall"] for c in levels]
        rows.append(
            [str(f["fold"]), time_text(str(f["origin"]), dates), f["n_windows"], "yes" if f["trained"] else "no"]
            + [o["model"]["mae"], o["persistence"]["mae"], o["model"]["mase"], *cov]
        )
    agg = record["aggregate"]["scores"]
    cov = record["aggregate"].get("intervals", {}).get("model", {})
    rows.append(
        ["mean", "", sum(f["n_windows"] for f in record["folds"]), ""]
        + [agg["model"]["mae"]["mean"], agg["persistence"]["mae"]["mean"], agg["model"]["mase"]["mean"]]
        + [cov.get(c, {}).get("coverage", {}).get("mean") for c in levels]
    )
    return rows


def _lead_rows(agg: dict, horizon: int) -> list[list]:
    """Header then one row per forecaster: its MAE by lead time over folds as (mean, std) pairs (std None for one
    fold)."""
    lead = [["lead", *[f"t+{i + 1}" for i in range(horizon)]]]
    for name, block in agg.items():
        m = block["mae"]["per_lead"]
        lead.append([name, *[(a, b) for a, b in zip(m["mean"], m["std"] or [None] * len(m["mean"]))]])
    return lead


def _comparison_sections(page: _Page, d: Path, output: Path | None, force: bool = False) -> str:
    """The ranking, its plots, links to each run's page, the data and the base config; returns the title."""
    record = _json(d / records.COMPARISON)
    page.section("comparison", "Comparison", _compare_body(record))
    page.figures_section("comparison-plots", "Comparison plots", d / "plots")
    page.section("runs", "Runs (one page each)", _run_links(page, d, record, output, force))
    first = _first_run(d, record)
    if first is not None:
        page.section("data", "Data", _schema_body(first, d))
    page.section("config", "Config (base of every run)", _config_body(d, "rnnforecast compare"))
    return f"Cell comparison: {record.get('name', d.name)}"


def _backtest_sections(page: _Page, d: Path) -> str:
    """The folds' scores, their plots and the config; returns the title."""
    record = _json(d / records.METRICS)
    page.section("backtest", "Backtest", _backtest_body(record))
    page.figures_section("backtest-plots", "Backtest plots", d / "plots")
    page.section("config", "Config", _config_body(d, "rnnforecast backtest"))
    return f"Backtest: {record.get('name', d.name)}"


def _tune_sections(page: _Page, d: Path) -> str:
    """The study in one paragraph, the best config's one run (its forecast), the search plots, every trial, and
    the best config last."""
    record = _json(d / "tune.json")
    page.section("tune", "Study", _tune_note(record))
    best_run = d / "best"
    if (best_run / "forecast.csv").exists():
        body = _forecast_body(best_run) + page.figure_of(best_run / "plots" / "forecast_next.png")
        page.section("forecast", "Forecast of the best config", body)
    if (d / "best" / "metrics.json").exists():
        page.run_sections(d / "best", "best-run", "The best config, trained once (the only run on the test split)", 2)
    absent = [f"{name}: {why}" for name, why in record.get("plots", {}).items() if not why.startswith("plots/")]
    notes = "".join(f"<p class='note'>{_e(line)}</p>" for line in absent)
    body = page.figures(d / "plots")
    if body or notes:
        page.section("tune-plots", "Search plots", body + notes)
    page.drop(d / "trials")  # each trial's own plots: one page of them all was 60 figures for 12 trials
    page.elsewhere_is = "in the trials' own plots/ folders (not embedded)"
    page.section("trials", "Trials", _trials_table(record, d / "trials.csv"))
    best = d / "best.yaml"
    if best.exists():
        page.section(
            "best-config",
            "Best config (best.yaml)",
            f"<p class='note'>A plain config: train it with <code>rnnforecast train best.yaml</code>.</p>"
            f"<pre>{_e(best.read_text())}</pre>",
        )
    return f"Tune: {record.get('study', d.name)}"


def _tune_note(record: dict) -> str:
    metric = record.get("metric", "val_mae")
    test = record.get("test_of_best") or {}
    note = (
        f"{record.get('trials', '?')} trials in study {record.get('study')!r}, scored on the validation split by "
        f"{metric} (lower is better); best trial {record.get('best_trial')} with {metric} "
        f"{num(record.get('best_value'))}. Its config, trained once more and scored on the test split: "
        + ", ".join(f"{k.upper()} {num(v)}" for k, v in test.items())
        + ". Pruned trials stopped early because their validation loss lagged the median; failed trials carry "
        "their error."
    )
    return f"<p class='note'>{_e(note)}</p>"


def _trials_table(record: dict, trials_csv: Path) -> str:
    import csv

    try:
        with open(trials_csv, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as e:
        raise RunError(f"cannot read trials.csv ({e.strerror})", where=str(trials_csv), fix="rerun the tune") from None
    if not rows:
        return "<p class='note'>No trial in trials.csv.</p>"
    keep = [i for i, h in enumerate(rows[0]) if h != "user_attrs_run_dir"]
    head = [rows[0][i].removeprefix("params_").removeprefix("user_attrs_") for i in keep]
    body = [[r[keep[0]], *(_cell(r[i]) if i < len(r) else None for i in keep[1:])] for r in rows[1:]]
    return _table(head, body, str(record.get("best_trial")))


def _cell(v: str):
    """A trials.csv cell for ``_table``: numbers as numbers (one format per column), empty as None, text as is."""
    if v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return v


def _compare_body(record: dict) -> str:
    header, rows = compare_cells(record)
    specs = [spec for _, _, spec in COMPARE_COLUMNS[1:]]
    seeds = record.get("seeds", [])
    note = (
        f"Test split ({record.get('n_test_windows')} windows), original units (MSE in units squared), ranked by test MSE; "
        + (
            f"mean ± sample std over seeds {seeds[0]}..{seeds[-1]}. "
            if len(seeds) > 1
            else f"seed {seeds[0] if seeds else '?'}. "
        )
        + f"Each cell trained for at most {record.get('epochs')} epoch(s) on identical data, windows and seeds; only the cell "
        "differs. s/epoch is the median epoch time (first epoch excluded when possible). Rows in parentheses are naive "
        "baselines on the same windows. MASE below 1 and skill above 0 beat persistence."
    )
    return f"<p class='note'>{_e(note)}</p>" + _table(header, rows, _compare_winner(record), specs)


def _compare_winner(record: dict) -> str | None:
    """The best-ranked cell when its mean test MSE and MAE beat every baseline (worth bolding), else None."""
    if not record.get("ranking"):
        return None
    best = record["ranking"][0]
    keys = ("test_mse", "test_mae")
    if beats_every_baseline(record["results"][best]["mean"], list(record["baselines"].values()), keys):
        return best
    return None


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)

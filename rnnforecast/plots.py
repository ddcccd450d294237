"""Every figure, as a file (matplotlib Agg): a run's plots, the predict view, a comparison's and inspect's.

matplotlib is imported on first use, never at import time, so ``--help`` stays fast. Each figure is
one function that writes one PNG through the one ``_save``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fsio, recurrence, windows
from .cells import CELLS
from .text import gradient_reading

# --------------------------------------------------------------------------- the one style

WIDTH = 10.0  # inches, every figure: at one width a report shows every figure's text at one size
DPI = 110  # 1100 px wide PNGs: sharp at the report's 1000 px column
ACTUAL = "black"
MODEL = "#1f77b4"  # the model's forecast (lead 1) and its interval bands
LAST_LEAD = "#d62728"  # the forecast at the last lead and the forecast past the data
BAND_ALPHA = (0.30, 0.16, 0.08)  # one shade per interval level, the lower level darker
SERIES = {  # forecaster -> line style, in every figure that draws the model beside the naive baselines
    "model": {"color": MODEL, "ls": "-", "lw": 2.2},
    "persistence": {"color": "#6b6b6b", "ls": "--", "lw": 1.3},
    "seasonal_naive": {"color": "#8c564b", "ls": ":", "lw": 1.5},
    "window_mean": {"color": "#b8a100", "ls": "-.", "lw": 1.3},
}
CYCLE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#e377c2", "#8c564b", "#bcbd22"]  # cells, trials
STYLE = {  # matplotlib rcParams every figure is drawn under (``styled``)
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "figure.titlesize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def styled(draw):
    """Draw under ``STYLE``: every figure function carries this decorator (tests/test_figures.py checks it)."""
    import functools

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib
        from cycler import cycler

        _plt()
        with matplotlib.rc_context({**STYLE, "axes.prop_cycle": cycler(color=CYCLE)}):
            return draw(*args, **kwargs)

    wrapper.styled = True
    return wrapper


def figure(nrows: int = 1, ncols: int = 1, height: float = 4.2, **kwargs):
    """The one way to start a figure: ``WIDTH`` wide, constrained layout (titles, labels and legends never overlap
    the axes); ``height`` in inches. Returns ``(fig, axes)`` as ``plt.subplots`` does."""
    kwargs.setdefault("layout", "constrained")
    return _plt().subplots(nrows, ncols, figsize=(WIDTH, height), **kwargs)


def _rotate_dates(ax) -> None:
    """Slanted time labels (``fig.autofmt_xdate`` would fight the constrained layout)."""
    for label in ax.get_xticklabels():
        label.set(rotation=30, ha="right")


def _finish(fig, ax, path: Path) -> None:
    """The usual end of a figure over steps or epochs: whole-number ticks on x, the legend, the file."""
    _integer_ticks(ax.xaxis)
    ax.legend()
    _save(fig, path)


def _integer_ticks(axis) -> None:
    """Ticks only at whole numbers: epochs, lead times, steps and units are never 1.25."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: Path) -> None:
    """Write and close ``fig`` (laid out by its constrained layout engine) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    with fsio.atomic_path(path) as tmp, warnings.catch_warnings():  # same suffix: matplotlib picks PNG from it
        # matplotlib's own advice to matplotlib users (AutoDateLocator "may be necessary to add an interval value")
        # is no line for a person reading train's output: the figure is drawn either way
        warnings.filterwarnings("ignore", category=UserWarning, module="matplotlib")
        warnings.filterwarnings("ignore", message="AutoDateLocator", category=UserWarning)
        fig.savefig(tmp, dpi=DPI)
    _plt().close(fig)


# --------------------------------------------------------------------------- a run


@styled
def loss(history: dict, best_epoch: int, path: Path, loss_name: str = "loss") -> None:
    fig, ax = figure()
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history:
            ax.plot(epochs, history[key], marker="o", ms=3, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    vals = [v for k in ("loss", "val_loss") for v in history.get(k, []) if v == v and v > 0]
    if vals and max(vals) / min(vals) > 30:
        ax.set_yscale("log")
    ax.set(title=f"Training and validation {loss_name} per epoch", xlabel="epoch", ylabel=f"{loss_name} (scaled units)")
    _finish(fig, ax, path)


MAX_SERIES_PANELS = 3  # series drawn per target in forecast.png; the rest are named in the caption
ZOOM_STEPS = 60  # target times in the zoomed column


@dataclass
class ForecastPanel:
    """One (series, target) of a split, windows in time order: ``times``, ``actual``, ``pred`` ``(B, H)``,
    ``bands`` ``(B, H, Q)`` or None."""

    title: str
    times: np.ndarray
    actual: np.ndarray
    pred: np.ndarray
    bands: np.ndarray | None
    unit: str


@styled
def forecast(panels: list[ForecastPanel], path: Path, split: str, levels=(), caption: str = "") -> None:
    """The whole split per series and target: actual, lead-1 and lead-H forecasts (with bands), and a zoom.

    Each row is one panel; the left column spans the split, the right one its last ``ZOOM_STEPS`` target times.
    """
    fig, axes = figure(len(panels), 2, height=3.2 * len(panels) + 0.8, squeeze=False, width_ratios=[3, 1.3])
    for (overview, zoom), panel in zip(axes, panels):
        _forecast_panel(overview, panel, slice(None), levels)
        _forecast_panel(zoom, panel, slice(-min(ZOOM_STEPS, len(panel.times)), None), levels)
        overview.set(title=f"{panel.title}: whole {split} split", ylabel=panel.unit)
        zoom.set(title=f"last {min(ZOOM_STEPS, len(panel.times))} windows")
        for ax in (overview, zoom):
            ax.tick_params(axis="x", labelrotation=30)
        _few_time_ticks(zoom, panel.times)  # the narrow zoom had its dates printed over each other
    # below the panels, not over the data (it hid the first weeks of the actual curve)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 7))
    if caption:
        fig.suptitle(caption, fontsize="medium")
    _save(fig, path)


def _few_time_ticks(ax, times, most: int = 4) -> None:
    """At most ``most`` ticks on a narrow time axis: dates in the concise form, numbers at whole values."""
    from matplotlib import dates, ticker

    if np.issubdtype(np.asarray(times).dtype, np.datetime64):
        locator = dates.AutoDateLocator(minticks=2, maxticks=most)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(most, integer=True))


def _forecast_panel(ax, p: ForecastPanel, keep: slice, levels) -> None:
    """Actual values to the end of the split, the lead-1 forecast with one band per level, the lead-H forecast."""
    from .intervals import bound_indices

    h = p.pred.shape[1]
    t1, th = p.times[keep, 0], p.times[keep, h - 1]
    if p.bands is not None:  # lead 1 only: the bands of two leads on one axis read as one blur
        for k, ((lo, hi), c) in enumerate(zip(bound_indices(levels), levels)):
            ax.fill_between(
                t1,
                p.bands[keep, 0, lo],
                p.bands[keep, 0, hi],
                color=MODEL,
                alpha=BAND_ALPHA[min(k, 2)],
                lw=0,
                label=f"{c:g}% interval",
            )
    # both views end at the last window: its later targets carry the actual curve to the split's last row
    actual_t = np.concatenate([t1, p.times[-1, 1:]])
    actual = np.concatenate([p.actual[keep, 0], p.actual[-1, 1:]])
    ax.plot(actual_t, actual, color=ACTUAL, lw=1.0, label="actual")
    ax.plot(t1, p.pred[keep, 0], color=MODEL, lw=1.0, label="forecast, lead 1")
    if h > 1:
        ax.plot(th, p.pred[keep, h - 1], color=LAST_LEAD, lw=1.0, label=f"forecast, lead {h}")


def forecast_panels(data, ev, max_series: int = MAX_SERIES_PANELS) -> tuple[list[ForecastPanel], str]:
    """The panels of forecast.png (first ``max_series`` series, every target) and a caption naming the rest."""
    panels = []
    names = [s.series for s in data.segments]
    bands = ev.bands.get("model")
    many = len(names) > 1
    for j, target in enumerate(data.targets):
        for i, name in enumerate(names[:max_series]):
            times, actual, pred, q = series_view(data, ev.starts, ev.actual, ev.forecasts["model"], i, j, bands)
            if len(times):
                title = f"{name} – {target}" if many else target
                panels.append(ForecastPanel(title, times, actual, pred, q, f"{target} ({data.frame.unit(target)})"))
    rest = names[max_series:]
    caption = f"not shown: {len(rest)} more series ({', '.join(map(str, rest[:8]))}{', ...' if len(rest) > 8 else ''})"
    return panels, caption if rest else ""


def series_view(data, starts, actual, pred, series: int = 0, target: int = 0, bands=None) -> tuple:
    """One series' windows of one target: ``(times, actual, pred, bands)``, ``(B0, H)`` each (bands ``(B0, H, Q)``).

    Args:
        starts: ``(B,)`` window starts; ``actual``: ``(B, H, T)``; ``pred``: ``(B, H, T, Q)``, original units.
    """
    rows = windows.target_rows(starts, data.input_length, data.horizon)  # (B, H)
    times = data.frame.df[data.frame.time_column].to_numpy()[rows]
    keep = data.series_index(starts) == series
    q = None if bands is None else bands[keep][:, :, target, :]
    return times[keep], actual[keep][..., target], pred[keep][..., target, 0], q


@styled
def error_by_horizon(per_lead: dict, path: Path, units: str = "data units") -> None:
    fig, ax = figure()
    for name, scores in per_lead.items():
        mae = scores["mae"]  # the headline metric of every table
        ax.plot(np.arange(1, len(mae) + 1), mae, marker="o", ms=4, label=name, **SERIES.get(name, {}))
    ax.set(title="Test MAE by lead time", xlabel="lead time (steps ahead)", ylabel=f"MAE ({units})")
    _finish(fig, ax, path)


@styled
def residuals(errors: np.ndarray, target: str, path: Path, unit: str = "data units") -> None:
    fig, ax = figure()
    errors = errors[np.isfinite(errors)]
    ax.hist(errors, bins=50, color=MODEL, alpha=0.8)
    ax.axvline(0, color=ACTUAL, lw=1)
    ax.set(
        title=f"Test errors (forecast - actual), all lead times: mean {errors.mean():.3g}, std {errors.std():.3g}",
        xlabel=f"error in {target} ({unit})",
        ylabel="count",
    )
    _save(fig, path)


def first_series_view(data, starts: np.ndarray, actual: np.ndarray, pred: np.ndarray) -> tuple:
    """The windows of the first series only, first target, first quantile: ``(times, actual, pred)``, each ``(B0, H)``."""
    return series_view(data, starts, actual, pred)[:3]


def run_plots(directory: Path, history: dict, best_epoch: int, ev, data) -> list[Path]:
    """The plots of a run: loss, the split's forecasts (every target, the first series), error by lead, residuals."""
    loss(history, best_epoch, directory / "loss.png")
    target = data.targets[0]
    unit = data.frame.unit(target)
    panels, caption = forecast_panels(data, ev)
    levels = ev.intervals.levels if ev.intervals is not None else ()
    forecast(panels, directory / "forecast.png", ev.split, levels, caption)
    error_by_horizon(ev.metrics["original"]["per_lead"], directory / "error_by_horizon.png", units=unit)
    residuals(
        (ev.forecasts["model"][..., 0, 0] - ev.actual[..., 0]).ravel(), target, directory / "residuals.png", unit=unit
    )
    return sorted(directory.glob("*.png"))


@styled
def predict_plot(
    history_times,
    history: np.ndarray,
    future_times,
    future: np.ndarray,
    target: str,
    path: Path,
    unit: str = "data units",
    bands: np.ndarray | None = None,
    levels=(),
) -> None:
    """History and forecast of one target; ``bands`` ``(H, Q)`` quantiles draw a fan chart (one shade per level)."""
    from .intervals import bound_indices

    fig, ax = figure(height=4.5)
    ax.plot(history_times, history, color=ACTUAL, lw=1.2, label="history")
    if bands is not None:
        for k, ((lo, hi), c) in enumerate(zip(bound_indices(levels), levels)):
            ax.fill_between(
                future_times,
                bands[:, lo],
                bands[:, hi],
                color=LAST_LEAD,
                alpha=BAND_ALPHA[min(k, 2)],
                lw=0,
                label=f"{c:g}% interval",
            )
    ax.plot(future_times, future, color=LAST_LEAD, marker="o", ms=3, lw=1.5, label="forecast")
    ax.axvline(history_times[-1], color="grey", ls=":", lw=1)
    ax.set(title=f"{target}: last observations and forecast", xlabel="time", ylabel=f"{target} ({unit})")
    ax.legend()
    _rotate_dates(ax)
    _save(fig, path)


# --------------------------------------------------------------------------- a comparison of cells


@dataclass
class _Comparison:
    """What every comparison figure shares, read once from ``compare.json``'s record."""

    record: dict
    cells: list[str]
    colors: dict[str, str]
    units: str  # axis units of error values
    seeds_note: str
    several_seeds: bool

    @classmethod
    def of(cls, record: dict, target: str) -> _Comparison:
        seeds = record["seeds"]
        unit = record["target_units"][target]
        return cls(
            record=record,
            cells=record["cells"],
            colors=_colors(record["cells"]),
            units=f"{target}, {unit}" if len(record["targets"]) == 1 else "data units, mean over targets",
            seeds_note=f"mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}",
            several_seeds=len(seeds) > 1,
        )

    def mean(self, cell: str, key: str):
        return self.record["results"][cell]["mean"][key]

    def std(self, cell: str, key: str):
        return self.record["results"][cell]["std"][key]

    @property
    def persistence(self) -> dict | None:
        return self.record["baselines"].get("persistence")


def _colors(cells: list[str]) -> dict[str, str]:
    return {c: CYCLE[i % len(CYCLE)] for i, c in enumerate(cells)}


def compare_plots(directory: Path, record: dict, curves: dict, overlay: dict, forecasts: dict) -> list[Path]:
    """The six comparison plots.

    Args:
        curves: cell -> one validation-loss list per seed.
        overlay: ``starts``, ``times``, ``target`` and ``actual`` (first target, t+1) of the overlay windows.
        forecasts: cell -> ``(len(starts),)`` t+1 forecasts of its first seed, original units.
    """
    view = _Comparison.of(record, overlay["target"])
    val_loss(view, curves, directory / "val_loss.png")
    error_per_cell(view, directory / "test_error.png")
    error_by_lead(view, directory / "error_by_lead.png")
    forecast_overlay(view, overlay, forecasts, directory / "forecast_overlay.png")
    params_vs_error(view, directory / "params_vs_error.png")
    time_per_epoch(view, directory / "time_per_epoch.png")
    return sorted(directory.glob("*.png"))


@styled
def val_loss(view: _Comparison, curves: dict, path: Path) -> None:
    """Validation loss per epoch of every cell; extra seeds faded."""
    fig, ax = figure()
    for cell in view.cells:
        for k, curve in enumerate(curves[cell]):
            ax.plot(
                np.arange(1, len(curve) + 1),
                curve,
                marker="o",
                ms=3,
                color=view.colors[cell],
                alpha=1 if k == 0 else 0.4,
                label=cell if k == 0 else None,
            )
    _integer_ticks(ax.xaxis)
    ax.set(
        title="Validation loss per epoch, all cells",
        xlabel="epoch",
        ylabel=f"validation {view.record['loss']} (scaled units)",
    )
    ax.legend()
    _save(fig, path)


@styled
def error_per_cell(view: _Comparison, path: Path) -> None:
    """Test MSE and MAE bars per cell, the baselines as horizontal lines."""
    fig, axes = figure(1, 2)
    x = np.arange(len(view.cells))
    for ax, key, label in ((axes[0], "test_mse", f"MSE ({view.units}²)"), (axes[1], "test_mae", f"MAE ({view.units})")):
        means = [view.mean(c, key) or np.nan for c in view.cells]
        stds = [view.std(c, key) or 0.0 for c in view.cells]
        colors = [view.colors[c] for c in view.cells]
        ax.bar(x, means, yerr=stds if view.several_seeds else None, capsize=4, color=colors)
        for name, b in view.record["baselines"].items():
            ax.axhline(b[key], label=name, **SERIES.get(name, SERIES["persistence"]))
        ax.set_xticks(x, view.cells)
        ax.set(title=f"Test {key[5:].upper()} per cell ({view.seeds_note})", xlabel="cell", ylabel=label)
        ax.legend()
    _save(fig, path)


@styled
def error_by_lead(view: _Comparison, path: Path) -> None:
    """Test MSE per lead time of every cell, persistence dashed."""
    fig, ax = figure()
    for cell in view.cells:
        mse = np.asarray(view.mean(cell, "test_mse_by_lead"), dtype=float)
        h = np.arange(1, len(mse) + 1)
        ax.plot(h, mse, marker="o", color=view.colors[cell], lw=2, label=cell)
        std = view.std(cell, "test_mse_by_lead")
        if std:  # the ± std over seeds the title promises
            ax.fill_between(h, mse - np.asarray(std), mse + np.asarray(std), color=view.colors[cell], alpha=0.15, lw=0)
    p = view.persistence
    if p:
        lead = p["test_mse_by_lead"]
        ax.plot(np.arange(1, len(lead) + 1), lead, label="persistence", **SERIES["persistence"])
    _integer_ticks(ax.xaxis)
    ax.set(
        title=f"Test MSE by lead time per cell ({view.seeds_note})",
        xlabel="lead time (steps ahead)",
        ylabel=f"MSE ({view.units}²)",
    )
    ax.legend()
    _save(fig, path)


@styled
def forecast_overlay(view: _Comparison, overlay: dict, forecasts: dict, path: Path) -> list[str]:
    """Actual values and each cell's one-step forecast on the same test windows: small multiples, one panel per
    cell with the actual curve in each, shared time and value axes (four curves on one axis are a tangle).

    Returns:
        The panel titles, one per cell in ranking order.
    """
    target = overlay["target"]
    actual = np.asarray(overlay["actual"], dtype=float)
    n = len(view.cells)
    fig, axes = figure(n, 1, height=1.0 + 2.0 * n, sharex=True, sharey=True, squeeze=False)
    titles = []
    for ax, cell in zip(axes[:, 0], view.cells):
        pred = np.asarray(forecasts[cell], dtype=float)
        mae = float(np.nanmean(np.abs(pred - actual)))
        ax.plot(overlay["times"], actual, color=ACTUAL, lw=1.2, label="actual")
        ax.plot(overlay["times"], pred, color=view.colors[cell], lw=1.1, label=f"{cell} (t+1)")
        titles.append(f"{cell}: MAE {mae:.3g} on these windows")
        ax.set_title(titles[-1])
        ax.set_ylabel(f"{target} ({view.record['target_units'][target]})")
        ax.legend(loc="upper right", ncols=2)
    axes[-1, 0].set_xlabel("time")
    fig.suptitle(
        f"{target}: actual (black) and each cell's one-step forecast, first {len(overlay['starts'])} test windows"
    )
    _rotate_dates(axes[-1, 0])
    _save(fig, path)
    return titles


@styled
def params_vs_error(view: _Comparison, path: Path) -> None:
    """Parameters against test MSE per cell; a log x axis when the counts span more than 10x."""
    fig, ax = figure(height=4.5)
    for cell in view.cells:
        params, mse = view.mean(cell, "params"), view.mean(cell, "test_mse")
        ax.errorbar(
            params, mse, yerr=view.std(cell, "test_mse"), fmt="o", ms=8, capsize=4, color=view.colors[cell], label=cell
        )
        ax.annotate(cell, (params, mse), textcoords="offset points", xytext=(6, 6))
    if view.persistence:
        ax.axhline(view.persistence["test_mse"], label="persistence", **SERIES["persistence"])
    params = [view.mean(c, "params") for c in view.cells]
    log = max(params) > 10 * min(params)
    if log:
        _log_x_plain_labels(ax)
    scale = " (log scale)" if log else ""
    ax.set(title="Parameters vs. test MSE", xlabel=f"parameters{scale}", ylabel=f"test MSE ({view.units}²)")
    ax.legend()
    _save(fig, path)


def _log_x_plain_labels(ax) -> None:
    """A log x axis labelled 100, 1000, 10000 rather than 10^2, 10^3, 10^4."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


@styled
def time_per_epoch(view: _Comparison, path: Path) -> None:
    """Median seconds per training epoch of every cell."""
    fig, ax = figure()
    x = np.arange(len(view.cells))
    secs = [view.mean(c, "seconds_per_epoch") or np.nan for c in view.cells]
    errs = [view.std(c, "seconds_per_epoch") or 0.0 for c in view.cells]
    colors = [view.colors[c] for c in view.cells]
    ax.bar(x, secs, yerr=errs if view.several_seeds else None, capsize=4, color=colors)
    ax.set_xticks(x, view.cells)
    ax.set(
        title="Training time per epoch (median, first epoch excluded when possible)",
        xlabel="cell",
        ylabel="seconds per epoch",
    )
    _save(fig, path)


# --------------------------------------------------------------------------- inside a model (inspect)


class TimeAxis:
    """Input steps counted back from the forecast: index 0 (oldest) is -L, index L-1 (newest) is -1."""

    def __init__(self, steps: int, step_seconds: float | None):
        self.steps = steps
        self.ticks = windows.steps_before_forecast(steps)  # (L,)
        self.label = "steps before forecast" + (f" (1 step = {_duration(step_seconds)})" if step_seconds else "")
        self.extent = (-steps - 0.5, -0.5)  # imshow cell edges around the integer ticks


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}"
    return f"{seconds:g} s"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _heatmap(ax, values, time_axis: TimeAxis, ylabel: str, cbar_label: str, **kwargs):
    """values (rows, L) drawn with time on x."""
    rows = values.shape[0]
    image = ax.imshow(
        values,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(*time_axis.extent, -0.5, rows - 0.5),
        **kwargs,
    )
    ax.grid(False)  # grid lines drawn across the cells read as data
    ax.set_xlabel(time_axis.label)
    ax.set_ylabel(ylabel)
    _integer_ticks(ax.xaxis)  # steps are whole
    _integer_ticks(ax.yaxis)  # rows are units or features, never fractions
    ax.figure.colorbar(image, ax=ax).set_label(cbar_label)
    return image


def _unit_label(entry: dict) -> str:
    if entry["bidirectional"]:
        half = entry["units"] // 2
        return f"unit (0-{half - 1} forward, {half}-{entry['units'] - 1} backward)"
    return "unit"


def _layer_height(entry: dict) -> float:
    return max(3.0, min(12.0, 1.5 + 0.15 * entry["units"]))


@styled
def layer_states(entry: dict, out_dir: Path, time_axis: TimeAxis, window_index: int) -> list[str]:
    """Hidden state (and the LSTM cell state) of one layer over one window; ``entry`` arrays are (1, L, U)."""
    name, cell = entry["name"], entry["cell"]
    maps = [("hidden", "hidden state h", "Hidden state")]
    if "cell_state" in CELLS[cell].states:
        maps.append(("cell_state", "cell state c", "Cell state"))
    written = []
    for key, cbar, title in maps:
        values = entry[key][0].T  # (U, L)
        bound = float(np.abs(values).max()) or 1.0
        fig, ax = figure(height=_layer_height(entry))
        _heatmap(ax, values, time_axis, _unit_label(entry), cbar, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(f"{title} of {name} ({cell}), window {window_index}")
        file = f"{key}_{_safe(name)}.png"
        _save(fig, out_dir / file)
        written.append(file)
    return written


@styled
def layer_gates(entry: dict, out_dir: Path, time_axis: TimeAxis, window_index: int) -> list[str]:
    """One heatmap per gate of one layer over one window (none for cells without gates)."""
    name, cell = entry["name"], entry["cell"]
    gates = CELLS[cell].gates
    if not gates:
        return []
    height = _layer_height(entry)
    # constrained layout keeps the figure title, each gate's title and the x labels apart
    fig, axes = figure(len(gates), 1, height=0.6 + height * len(gates) * 0.8, squeeze=False)
    for ax, gate in zip(axes[:, 0], gates):
        label = gate.replace("_", " ")
        _heatmap(
            ax,
            entry[gate][0].T,
            time_axis,
            _unit_label(entry),
            f"{label} (0 shut, 1 open)",
            cmap="viridis",
            vmin=0,
            vmax=1,
        )
        ax.set_title(label.capitalize())
    fig.suptitle(f"Gates of {name} ({cell}), window {window_index}")
    file = f"gates_{_safe(name)}.png"
    _save(fig, out_dir / file)
    return [file]


@styled
def gate_saturation(layers: list[dict], out_dir: Path) -> str:
    """Per layer (row) and gate (column): stacked bars of the fraction of steps each unit spends < 0.1 and > 0.9."""
    gated = [layer for layer in layers if layer["saturation"]]
    n_cols = max(len(layer["saturation"]) for layer in gated)
    fig, axes = figure(len(gated), n_cols, height=0.4 + 3.2 * len(gated), squeeze=False)
    for row, layer in zip(axes, gated):
        for ax, (gate, frac) in zip(row, layer["saturation"].items()):
            _saturation_bars(ax, layer["name"], gate, np.asarray(frac["low"]), np.asarray(frac["high"]))
        for ax in row[len(layer["saturation"]) :]:
            ax.axis("off")
    axes[0, 0].legend(loc="upper right")
    fig.suptitle("Gate saturation over all inspected windows and steps")
    _save(fig, out_dir / "gate_saturation.png")
    return "gate_saturation.png"


def _saturation_bars(ax, layer: str, gate: str, low: np.ndarray, high: np.ndarray) -> None:
    units = np.arange(len(low))
    ax.bar(units, low, color=CYCLE[0], label=f"< {recurrence.LOW} (shut)")
    ax.bar(units, high, bottom=low, color=CYCLE[1], label=f"> {recurrence.HIGH} (open)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{layer}: {gate.replace('_', ' ')}")
    ax.set_xlabel("unit")
    ax.set_ylabel("fraction of window steps")
    _integer_ticks(ax.xaxis)
    if not (low.any() or high.any()):
        ax.text(0.5, 0.5, "no unit saturated", transform=ax.transAxes, ha="center", color="gray")


@styled
def gradient_flow(flow: dict, out_dir: Path, time_axis: TimeAxis, n_windows: int) -> str:
    """Mean input-gradient norm per step before the forecast, on a log axis."""
    norms = np.asarray(flow["norm_per_step"])
    fig, ax = figure()
    ax.plot(time_axis.ticks, np.where(norms > 0, norms, np.nan), marker=".")  # log axis: zeros left out
    ax.set_yscale("log")
    ax.set_xlabel(time_axis.label)
    ax.set_ylabel("mean ||d forecast / d input|| (scaled units)")
    _integer_ticks(ax.xaxis)
    ratio = flow["ratio"]
    ax.set_title(
        f"Gradient flow of the first forecast step ({n_windows} windows)\n"
        f"oldest / newest step = {ratio:.3g}" + gradient_reading(ratio)  # the words inspect prints
    )
    ax.grid(True, which="both")
    _save(fig, out_dir / "gradient_flow.png")
    return "gradient_flow.png"


@styled
def saliency(sal: np.ndarray, feature_names: list[str], out_dir: Path, time_axis: TimeAxis, n_windows: int) -> str:
    """Mean |d forecast / d input| per feature (rows) and step (columns)."""
    n_features = len(feature_names)
    fig, ax = figure(height=max(3.0, min(14.0, 1.5 + 0.3 * n_features)))
    _heatmap(ax, sal.T, time_axis, "feature", "mean |d forecast / d input|", cmap="magma")
    ax.set_yticks(range(n_features), feature_names)
    ax.set_title(f"Saliency of the first forecast step ({n_windows} windows)")
    _save(fig, out_dir / "saliency.png")
    return "saliency.png"


# --------------------------------------------------------------------------- backtest


def backtest_plots(directory: Path, record: dict, predictions, units: dict[str, str]) -> list[Path]:
    """The three plots of a backtest (first target's unit on the axes)."""
    unit = units.get(record["targets"][0], "data units")
    backtest_error_per_fold(record, directory / "backtest_error_per_fold.png", unit)
    backtest_error_by_lead(record, directory / "backtest_error_by_lead.png", unit)
    backtest_forecast(record, predictions, directory / "backtest_forecast.png", unit)
    return sorted(directory.glob("*.png"))


@styled
def backtest_error_per_fold(record: dict, path: Path, unit: str) -> None:
    """MAE of the model and the baselines in each fold (x: the fold's origin)."""
    fig, ax = figure()
    origins = [str(f["origin"])[:10] for f in record["folds"]]
    x = np.arange(len(origins))
    for name, block in record["aggregate"]["scores"].items():
        y = [np.nan if v is None else v for v in block["mae"]["per_fold"]]
        ax.plot(x, y, marker="o", ms=4, label=name, **SERIES.get(name, {}))
    ax.set_xticks(x, origins, rotation=30, ha="right")
    ax.set(title="Backtest: test MAE per fold (all leads and targets)", xlabel="fold origin", ylabel=f"MAE ({unit})")
    ax.legend()
    _save(fig, path)


@styled
def backtest_error_by_lead(record: dict, path: Path, unit: str) -> None:
    """MAE per lead time, mean over folds with a ± 1 std band, model and baselines."""
    fig, ax = figure()
    for name, block in record["aggregate"]["scores"].items():
        lead = block["mae"]["per_lead"]
        mean = np.array([np.nan if v is None else v for v in lead["mean"]])
        std = np.array([0.0 if v is None else v for v in lead["std"]])
        h = np.arange(1, len(mean) + 1)
        ax.plot(h, mean, marker="o", ms=4, label=name, **SERIES.get(name, {}))
        if name == "model":  # one band: four stacked bands hid each other and the legend
            ax.fill_between(h, mean - std, mean + std, color=MODEL, alpha=BAND_ALPHA[1], lw=0, label="model ± 1 std")
    ax.set(
        title=f"Backtest: MAE by lead time, mean over {len(record['folds'])} folds (model ± 1 std)",
        xlabel="lead time (steps ahead)",
        ylabel=f"MAE ({unit})",
    )
    _finish(fig, ax, path)


@styled
def backtest_forecast(record: dict, predictions, path: Path, unit: str) -> None:
    """Actual vs lead-1 forecast over the whole backtested stretch (first series, first target), with each
    level's band and the fold origins as vertical lines."""
    from .intervals import bound_indices, quantile_levels, quantile_name

    fig, ax = figure(height=4.5)
    target = record["targets"][0]
    p = predictions[(predictions["lead"] == 1) & (predictions["target"] == target)]
    several = "series" in p and p["series"].nunique() > 1  # the column is there only for several series
    series = p["series"].iloc[0] if several else ""
    p = (p[p["series"] == series] if several else p).sort_values("target_time")
    t = np.asarray(p["target_time"], dtype="datetime64[ns]")
    qs = quantile_levels(record["levels"])
    for k, ((lo, hi), c) in enumerate(zip(bound_indices(record["levels"]), sorted(record["levels"]))):
        ax.fill_between(
            t,
            p[quantile_name(qs[lo])],
            p[quantile_name(qs[hi])],
            color=MODEL,
            alpha=BAND_ALPHA[min(k, 2)],
            lw=0,
            label=f"{c:g}% band",
        )
    ax.plot(t, p["actual"], color=ACTUAL, lw=1.1, label="actual")
    ax.plot(t, p["forecast"], color=MODEL, lw=1, label="forecast t+1")
    for f in record["folds"]:
        ax.axvline(np.datetime64(str(f["origin"])[:19]), color="grey", lw=0.8, ls=":")
    where = f", series {series}" if several else ""
    ax.set(
        title=f"{target}{where}: backtest, actual vs one-step forecast (dotted lines: fold origins)",
        xlabel="time",
        ylabel=f"{target} ({unit})",
    )
    ax.legend(loc="best")
    _rotate_dates(ax)
    _save(fig, path)


# --------------------------------------------------------------------------- tune (a study's trials)

MIN_IMPORTANCE_TRIALS = 10  # below this many complete trials an importance ranking is noise: not drawn


@dataclass
class TrialPoints:
    """The complete trials of a study by trial number: ``numbers``, ``values`` (the objective) and
    ``params`` (dotted key -> decoded value per trial); ``others``: trials pruned or failed."""

    numbers: list[int]
    values: list[float]
    params: dict[str, list]
    others: int

    @classmethod
    def of(cls, study, decode) -> TrialPoints:
        from optuna.trial import TrialState

        done = sorted(
            (t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE), key=lambda t: t.number
        )
        keys = sorted({k for t in done for k in t.params})
        return cls(
            numbers=[t.number for t in done],
            values=[float(t.value) for t in done],
            params={k: [decode(t.params.get(k)) for t in done] for k in keys},
            others=len(study.trials) - len(done),
        )

    @property
    def varied(self) -> list[str]:
        """The searched keys that took more than one value."""
        return [k for k, vs in self.params.items() if len({repr(v) for v in vs}) > 1]


def metric_label(metric: str, targets: list[str], units: dict[str, str]) -> str:
    """``val_mae`` -> ``validation MAE (temp_max, °C)``: the objective named with its units."""
    name = metric.removeprefix("val_")
    if name == "loss":
        return "validation loss (scaled units)"
    unit = units.get(targets[0], "data units") if len(targets) == 1 else "data units, mean over targets"
    where = f"{targets[0]}, {unit}" if len(targets) == 1 else unit
    suffix = {"mse": f" ({where}²)", "mae": f" ({where})", "rmse": f" ({where})", "mape": " (%)", "smape": " (%)"}
    return f"validation {name.upper()}" + suffix.get(name, " (no unit)")


def value_text(key: str, value) -> str:
    """One searched value as a person reads it: ``units [64]``, ``cell gru``, ``learning_rate 0.0031``."""
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{key.rsplit('.', 1)[-1]} {shown}"


def tune_plots(study, directory: Path, metric: str, targets: list[str], units: dict[str, str], decode) -> dict:
    """The study's figures: optimisation history, parameter importances (from ``MIN_IMPORTANCE_TRIALS`` complete
    trials on) and the objective against each searched key. Returns name -> ``plots/<name>.png`` or why not drawn.

    Args:
        decode: a stored categorical value -> the config value (``tune._decode``: ``json:[64]`` -> ``[64]``).
    """
    points = TrialPoints.of(study, decode)
    label = metric_label(metric, targets, units)
    out = {}
    if not points.numbers:
        why = "not drawn: no trial completed"
        return dict.fromkeys(("optimization_history", "param_importances", "param_values"), why)
    tune_history(points, label, directory / "optimization_history.png")
    out["optimization_history"] = "plots/optimization_history.png"
    out["param_importances"] = _importances_or_why(study, points, label, directory / "param_importances.png")
    if points.params:
        tune_param_values(points, label, directory / "param_values.png")
        out["param_values"] = "plots/param_values.png"
    else:
        out["param_values"] = "not drawn: the search space is empty"
    return out


def _importances_or_why(study, points: TrialPoints, label: str, path: Path) -> str:
    n = len(points.numbers)
    if n < MIN_IMPORTANCE_TRIALS:
        return (
            f"not drawn: {n} complete trial(s); an importance ranking needs at least {MIN_IMPORTANCE_TRIALS} "
            "(run more trials: tune resumes the study)"
        )
    if len(points.varied) < 2:
        return f"not drawn: {len(points.varied)} searched key(s) varied; importances compare two or more"
    import warnings

    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():  # PED-ANOVA is experimental in optuna; it needs no scikit-learn (fANOVA does)
        warnings.simplefilter("ignore")
        importances = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    tune_importances(importances, n, label, path)
    return "plots/param_importances.png"


@styled
def tune_history(points: TrialPoints, label: str, path: Path) -> None:
    """The objective of every complete trial by trial number and the best value so far."""
    fig, ax = figure()
    x = np.asarray(points.numbers)  # the trials table's numbers; pruned and failed ones leave gaps
    best = np.minimum.accumulate(points.values)
    ax.plot(x, points.values, "o", ms=5, color=CYCLE[0], alpha=0.8, label="trial value")
    ax.step(x, best, where="post", color=LAST_LEAD, lw=2, label="best so far")
    i = int(np.argmin(points.values))
    right = x[i] > (x.min() + x.max()) / 2  # the label stays inside the axes
    ax.annotate(
        f"best: trial {points.numbers[i]}, {points.values[i]:.4g}",
        (x[i], points.values[i]),
        textcoords="offset points",
        xytext=(-8 if right else 8, -6),  # under the lowest point: nothing else is drawn there
        ha="right" if right else "left",
        va="top",
    )
    ax.set_ymargin(0.12)  # room for that label
    others = f"; {points.others} pruned or failed not drawn" if points.others else ""
    ax.set(
        title=f"Optimisation history: {len(x)} complete trial(s){others}",
        xlabel="trial number",
        ylabel=f"{label}, lower is better",
    )
    _finish(fig, ax, path)


@styled
def tune_importances(importances: dict, n_trials: int, label: str, path: Path) -> None:
    """optuna's importances (PED-ANOVA, summing to 1) as horizontal bars, the most important on top."""
    keys = list(importances)[::-1]
    fig, ax = figure(height=max(2.5, 1.2 + 0.45 * len(keys)))
    ax.barh(np.arange(len(keys)), [importances[k] for k in keys], color=MODEL)
    ax.set_yticks(np.arange(len(keys)), [k.rsplit(".", 1)[-1] for k in keys])
    for y, k in enumerate(keys):
        ax.annotate(f"{importances[k]:.2f}", (importances[k], y), textcoords="offset points", xytext=(4, -3))
    ax.set_xlim(0, max(1.0, max(importances.values()) * 1.15))
    ax.set(
        title=f"Share of the variation of {label.split(' (')[0]} each key explains ({n_trials} complete trials)",
        xlabel="importance (PED-ANOVA, sums to 1)",
    )
    _save(fig, path)


def _in_order(values: list) -> list:
    """The distinct values, sorted when they compare (``[16]`` before ``[32]``), else in first-seen order."""
    distinct = list({repr(v): v for v in values}.values())
    try:
        return sorted(distinct)
    except TypeError:
        return distinct


def _param_x(ax, key: str, values: list) -> np.ndarray:
    """The x position of each trial's value of ``key`` on ``ax``, the axis set up for them: numbers as they are (on
    a log axis when they span more than a factor of 10), categories by their first-seen order."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        x = np.asarray(values, dtype=float)
        if x.min() > 0 and x.max() > 10 * x.min():
            _log_x_plain_labels(ax)
        return x
    return _category_x(ax, key, values)


def _category_x(ax, key: str, values: list) -> np.ndarray:
    """Categories (cells, unit lists) at 0, 1, ... in first-seen order, labelled as the config writes them."""
    names = [repr(v) for v in _in_order(values)]
    x = np.asarray([names.index(repr(v)) for v in values], dtype=float)
    shown = {repr(v): value_text(key, v).split(" ", 1)[1] for v in values}
    ax.set_xticks(range(len(names)), [shown[n] for n in names], rotation=20 if len(names) > 3 else 0)
    ax.set_xlim(-0.5, len(names) - 0.5)
    return x


@styled
def tune_param_values(points: TrialPoints, label: str, path: Path) -> None:
    """One panel per searched key: the objective of each complete trial against the key's value, best ringed."""
    keys = list(points.params)
    cols = min(len(keys), 3)
    rows = -(-len(keys) // cols)
    fig, axes = figure(rows, cols, height=0.6 + 3.0 * rows, squeeze=False, sharey=True)
    best = int(np.argmin(points.values))
    for ax, key in zip(axes.flat, keys):
        x = _param_x(ax, key, points.params[key])  # (n_trials,)
        ax.scatter(x, points.values, s=28, color=CYCLE[0], alpha=0.75, zorder=3)
        ax.scatter(x[best], points.values[best], s=110, facecolors="none", edgecolors=LAST_LEAD, lw=1.8, zorder=4)
        ax.set(title=key.rsplit(".", 1)[-1], xlabel=key)
    for ax in axes[:, 0]:
        ax.set_ylabel(label)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    fig.suptitle(f"Objective against each searched key: {len(points.numbers)} complete trials, the best ringed")
    _save(fig, path)

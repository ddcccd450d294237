"""Look inside a trained model: hidden states, gates, gate saturation, gradient flow and saliency, as plots and JSON.

Work is bounded: gate saturation, gradient flow and saliency use at most ``MAX_WINDOWS`` windows,
an evenly spaced subsample of the split (first and last window included), so ``inspect`` costs
about the same on a long test split as on a short one. Hidden-state and gate heatmaps show one
window, ``window_index``, counted in the full ``x``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from . import gradients, recurrence
from .cells import CELLS

MAX_WINDOWS = 512  # windows for saturation and gradients: enough for stable means, seconds on a CPU


def subsample(n: int, limit: int = MAX_WINDOWS) -> np.ndarray:
    """At most ``limit`` evenly spaced indices into ``range(n)``, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def inspect_model(
    model,
    x,
    feature_names: list[str],
    out_dir: Path,
    window_index: int = 0,
    step_seconds: float | None = None,
) -> dict:
    """Write the inspection plots and ``inspect.json`` for ``model`` on the windows ``x``.

    Args:
        model: a model from ``rnnforecast.models.build_model`` (any cell, dense included).
        x: numpy array (N, L, F) of real input windows of one split, in model space (scaled).
        feature_names: the F input column names, in model input order.
        out_dir: folder for the files; created if missing.
        window_index: the window drawn in the hidden-state and gate heatmaps. Default 0.
        step_seconds: length of one step in seconds, shown in the time-axis labels; None leaves
            the axis in steps. Default None.

    Returns:
        The content of ``inspect.json``: ``window_index``, ``n_windows`` (used for saturation and
        gradients), ``input_length``, ``features``, ``layers`` (name, cell, units, ``saturation``
        ``{gate: {"low": [U], "high": [U]}}`` with low < 0.1 and high > 0.9), ``norm_per_step`` [L],
        ``ratio``, ``steps_before_forecast`` [L], ``saliency`` [L][F] and ``files`` written.
    """
    import matplotlib

    matplotlib.use("Agg")

    x = np.asarray(x, dtype="float32")  # (N, L, F)
    if x.ndim != 3:
        raise ValueError(f"`x` must be (windows, steps, features). Received shape {x.shape}")
    n, steps, n_features = x.shape
    if n == 0:
        raise ValueError("`x` holds no windows: the split is shorter than input_length + horizon")
    if len(feature_names) != n_features:
        raise ValueError(
            f"`feature_names` must name the {n_features} input features. Received {len(feature_names)}: {feature_names}"
        )
    if not 0 <= window_index < n:
        raise ValueError(f"`window_index` must be in [0, {n - 1}]. Received: window_index={window_index}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = subsample(n)
    sample = x[rows]  # (n_used, L, F)
    time_axis = _TimeAxis(steps, step_seconds)
    files: list[str] = []

    layers = []
    one = recurrence.trace(model, x[window_index : window_index + 1])  # (1, L, U) per layer, for the heatmaps
    many = recurrence.trace(model, sample)
    for mine, entry in zip(one, many):
        files += _plot_layer(mine, out_dir, time_axis, window_index)
        saturation = recurrence.gate_saturation(entry)
        layers.append(
            {
                "name": entry["name"],
                "cell": entry["cell"],
                "units": entry["units"],
                "bidirectional": entry["bidirectional"],
                "saturation": {g: {k: v.tolist() for k, v in s.items()} for g, s in saturation.items()},
            }
        )
    if any(layer["saturation"] for layer in layers):
        files.append(_plot_saturation(layers, out_dir))

    grads = gradients.input_gradients(model, sample)  # (n_used, L, F), first forecast step, first target
    flow = gradients.flow_of(grads)
    sal = gradients.saliency_of(grads)  # (L, F)
    files.append(_plot_gradient_flow(flow, out_dir, time_axis, len(rows)))
    files.append(_plot_saliency(sal, feature_names, out_dir, time_axis, len(rows)))

    result = {
        "window_index": int(window_index),
        "n_windows": int(len(rows)),
        "n_windows_total": int(n),
        "input_length": int(steps),
        "step_seconds": step_seconds,
        "features": list(feature_names),
        "layers": layers,
        "steps_before_forecast": time_axis.ticks.tolist(),
        "norm_per_step": flow["norm_per_step"].tolist(),
        "ratio": _json_float(flow["ratio"]),
        "saliency": sal.tolist(),
        "files": files + ["inspect.json"],
    }
    (out_dir / "inspect.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None  # strict JSON has no inf or nan


class _TimeAxis:
    """Input steps counted back from the forecast: index 0 (oldest) is -L, index L-1 (newest) is -1."""

    def __init__(self, steps: int, step_seconds: float | None):
        self.steps = steps
        self.ticks = np.arange(-steps, 0)  # (L,)
        self.label = "steps before forecast" + (f" (1 step = {_duration(step_seconds)})" if step_seconds else "")
        self.extent = (-steps - 0.5, -0.5)  # imshow cell edges around the integer ticks


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}"
    return f"{seconds:g} s"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _heatmap(ax, values, time_axis: _TimeAxis, ylabel: str, cbar_label: str, **kwargs):
    """values (rows, L) drawn with time on x."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = values.shape[0]
    image = ax.imshow(
        values,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(*time_axis.extent, -0.5, rows - 0.5),
        **kwargs,
    )
    ax.set_xlabel(time_axis.label)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # rows are units or features, never fractions
    plt.colorbar(image, ax=ax).set_label(cbar_label)
    return image


def _unit_label(entry: dict) -> str:
    if entry["bidirectional"]:
        half = entry["units"] // 2
        return f"unit (0-{half - 1} forward, {half}-{entry['units'] - 1} backward)"
    return "unit"


def _plot_layer(entry: dict, out_dir: Path, time_axis: _TimeAxis, window_index: int) -> list[str]:
    """Hidden state, LSTM cell state and gates of one layer for one window (entry arrays are (1, L, U))."""
    import matplotlib.pyplot as plt

    name, cell, units = entry["name"], entry["cell"], entry["units"]
    height = max(3.0, min(12.0, 1.5 + 0.15 * units))
    written = []
    maps = [("hidden", "hidden state h", "Hidden state")]
    if "cell_state" in CELLS[cell].states:
        maps.append(("cell_state", "cell state c", "Cell state"))
    for key, cbar, title in maps:
        values = entry[key][0].T  # (U, L)
        bound = float(np.abs(values).max()) or 1.0
        fig, ax = plt.subplots(figsize=(9, height))
        _heatmap(ax, values, time_axis, _unit_label(entry), cbar, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(f"{title} of {name} ({cell}), window {window_index}")
        file = f"{key}_{_safe(name)}.png"
        _save(fig, out_dir / file)
        written.append(file)

    gates = CELLS[cell].gates
    if gates:
        fig, axes = plt.subplots(len(gates), 1, figsize=(9, height * len(gates) * 0.8), squeeze=False)
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
        written.append(file)
    return written


def _plot_saturation(layers: list[dict], out_dir: Path) -> str:
    """Per layer (row) and gate (column): stacked bars of the fraction of steps each unit spends < 0.1 and > 0.9."""
    import matplotlib.pyplot as plt

    gated = [layer for layer in layers if layer["saturation"]]
    n_cols = max(len(layer["saturation"]) for layer in gated)
    fig, axes = plt.subplots(len(gated), n_cols, figsize=(4.5 * n_cols, 3.2 * len(gated)), squeeze=False)
    for row, layer in zip(axes, gated):
        for ax, (gate, frac) in zip(row, layer["saturation"].items()):
            low, high = np.asarray(frac["low"]), np.asarray(frac["high"])
            units = np.arange(len(low))
            ax.bar(units, low, color="tab:blue", label=f"< {recurrence.LOW} (shut)")
            ax.bar(units, high, bottom=low, color="tab:orange", label=f"> {recurrence.HIGH} (open)")
            ax.set_ylim(0, 1)
            ax.set_title(f"{layer['name']}: {gate.replace('_', ' ')}")
            ax.set_xlabel("unit")
            ax.set_ylabel("fraction of window steps")
            if not (low.any() or high.any()):
                ax.text(0.5, 0.5, "no unit saturated", transform=ax.transAxes, ha="center", color="gray")
        for ax in row[len(layer["saturation"]) :]:
            ax.axis("off")
    axes[0, 0].legend(loc="upper right", fontsize="small")
    fig.suptitle("Gate saturation over all inspected windows and steps")
    _save(fig, out_dir / "gate_saturation.png")
    return "gate_saturation.png"


def _plot_gradient_flow(flow: dict, out_dir: Path, time_axis: _TimeAxis, n_windows: int) -> str:
    import matplotlib.pyplot as plt

    norms = np.asarray(flow["norm_per_step"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(time_axis.ticks, np.where(norms > 0, norms, np.nan), marker=".")  # log axis: zeros left out
    ax.set_yscale("log")
    ax.set_xlabel(time_axis.label)
    ax.set_ylabel("mean ||d forecast / d input|| (scaled units)")
    ratio = flow["ratio"]
    ax.set_title(
        f"Gradient flow of the first forecast step ({n_windows} windows)\n"
        f"oldest / newest step = {ratio:.3g}" + (" (vanishing)" if ratio < 1e-3 else "")
    )
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, out_dir / "gradient_flow.png")
    return "gradient_flow.png"


def _plot_saliency(
    sal: np.ndarray, feature_names: list[str], out_dir: Path, time_axis: _TimeAxis, n_windows: int
) -> str:
    import matplotlib.pyplot as plt

    n_features = len(feature_names)
    fig, ax = plt.subplots(figsize=(9, max(3.0, min(14.0, 1.5 + 0.3 * n_features))))
    _heatmap(ax, sal.T, time_axis, "feature", "mean |d forecast / d input|", cmap="magma")
    ax.set_yticks(range(n_features), feature_names)
    ax.set_title(f"Saliency of the first forecast step ({n_windows} windows)")
    _save(fig, out_dir / "saliency.png")
    return "saliency.png"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

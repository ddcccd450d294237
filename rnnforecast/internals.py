"""Look inside a trained model: hidden states, gates, gate saturation, gradient flow and saliency, as plots and JSON.

Work is bounded: gate saturation, gradient flow and saliency use at most ``MAX_WINDOWS`` windows,
an evenly spaced subsample of the split (first and last window included), so ``inspect`` costs
about the same on a long test split as on a short one. Hidden-state and gate heatmaps show one
window, ``window_index``, counted in the full ``x``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import artifacts, gradients, plots, recurrence

MAX_WINDOWS = 512  # windows for saturation and gradients: enough for stable means, seconds on a CPU


def _segment_flow(grads: np.ndarray, entries: list[dict]) -> dict:
    """For a segment model: the input gradient's norm per segment (over its steps and features, mean over windows,
    oldest first) and each over the newest segment's: how much the forecast still feels each segment."""
    length = next((e["segment_length"] for e in entries if e.get("segment_length")), None)
    if not length:
        return {}
    n = grads.shape[1] // length
    per = grads[:, grads.shape[1] - n * length :].astype(np.float64).reshape(len(grads), n, -1)
    norms = np.linalg.norm(per, axis=-1).mean(axis=0)  # (segments,)
    ratios = [artifacts.finite_or_none(float(v / norms[-1])) if norms[-1] > 0 else None for v in norms]
    return {"segment_length": length, "norm_per_segment": norms.tolist(), "ratio_per_segment": ratios}


def _axis_of(entry: dict, steps_axis, step_seconds: float | None):
    """The time axis of a layer's states: input steps, or segments of a segment model (one tick = S steps)."""
    length = entry.get("segment_length")
    if not length:
        return steps_axis
    axis = plots.TimeAxis(entry["hidden"].shape[1], step_seconds * length if step_seconds else None)
    axis.label = axis.label.replace("steps before forecast", f"segments of {length} steps before forecast")
    return axis


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
    of: dict | None = None,
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
        of: which run the inspection is of, kept in inspect.json (``artifacts.inspection_of`` matches it). Default None.

    Returns:
        The content of ``inspect.json``: ``window_index``, ``n_windows`` (used for saturation and
        gradients), ``input_length``, ``features``, ``layers`` (name, cell, units, ``saturation``
        ``{gate: {"low": [U], "high": [U]}}`` with low < 0.1 and high > 0.9), ``norm_per_step`` [L],
        ``ratio``, ``steps_before_forecast`` [L], ``saliency`` [L][F] and ``files`` written.
    """
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
    time_axis = plots.TimeAxis(steps, step_seconds)
    files: list[str] = []

    layers = []
    one = recurrence.trace(model, x[window_index : window_index + 1])  # (1, L, U) per layer, for the heatmaps
    many = recurrence.trace(model, sample)
    for mine, entry in zip(one, many):
        axis = _axis_of(entry, time_axis, step_seconds)
        files += plots.layer_states(mine, out_dir, axis, window_index)
        files += plots.layer_gates(mine, out_dir, axis, window_index)
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
        files.append(plots.gate_saturation(layers, out_dir))

    grads = gradients.input_gradients(model, sample)  # (n_used, L, F), first forecast step, first target
    flow = gradients.flow_of(grads)
    sal = gradients.saliency_of(grads)  # (L, F)
    files.append(plots.gradient_flow(flow, out_dir, time_axis, len(rows)))
    files.append(plots.saliency(sal, feature_names, out_dir, time_axis, len(rows)))

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
        "ratio": artifacts.finite_or_none(flow["ratio"]),
        "saliency": sal.tolist(),
        "files": files + ["inspect.json"],
        **_segment_flow(grads, many),
        **({"of": of} if of else {}),
    }
    artifacts.write_atomic(out_dir / "inspect.json", json.dumps(result, indent=2) + "\n")
    return result

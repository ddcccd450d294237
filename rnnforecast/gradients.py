"""Gradients of a forecast with respect to its input window, and what they say: gradient flow, saliency.

The gradient of one output ``y[:, target_step, target_index, 0]`` summed over the batch is, for each
window, the gradient with respect to that window's own input: windows do not interact at inference.
"""

from __future__ import annotations

import numpy as np

from . import backend

BATCH = 256  # windows per gradient call: bounds memory on long inputs


def input_gradients(model, x, target_step: int = 0, target_index: int = 0, batch_size: int = BATCH) -> np.ndarray:
    """d y[:, target_step, target_index, 0] / d x for every window.

    Args:
        model: a Keras model with inputs ``{"past": (B, L, F)}`` and output (B, horizon, n_targets, 1).
        x: numpy array (N, L, F) of model inputs (model space: scaled).
        target_step: forecast step, 0 = the first step after the window. Default 0.
        target_index: which target column. Default 0.
        batch_size: windows per backend call. Default 256.

    Returns:
        numpy float32 array (N, L, F).
    """
    x = np.asarray(x, dtype="float32")  # (N, L, F)
    if x.ndim != 3:
        raise ValueError(f"`x` must be (windows, steps, features). Received shape {x.shape}")
    _, horizon, n_targets, _ = model.output.shape
    if not 0 <= target_step < horizon:
        raise ValueError(
            f"`target_step` must be in [0, {horizon - 1}] (the horizon). Received: target_step={target_step}"
        )
    if not 0 <= target_index < n_targets:
        raise ValueError(
            f"`target_index` must be in [0, {n_targets - 1}] (the targets). Received: target_index={target_index}"
        )
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1. Received: batch_size={batch_size}")
    return _in_batches(backend.input_gradient(model, target_step, target_index), x, batch_size)


def _in_batches(grad, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``grad`` over x (N, L, F) in batches of ``batch_size``, the last one padded: one shape, one compilation."""
    if len(x) <= batch_size:
        return grad(x) if len(x) else np.zeros_like(x)
    parts = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        short = batch_size - len(batch)
        if short:  # pad the last batch: one input shape means one XLA compilation under JAX
            batch = np.concatenate([batch, np.zeros((short, *x.shape[1:]), x.dtype)])
        parts.append(grad(batch)[: batch_size - short])
    return np.concatenate(parts, axis=0)


def gradient_flow(model, x, target_step: int = 0, target_index: int = 0) -> dict:
    """How much the forecast still feels each input step.

    Returns:
        ``norm_per_step``: (L,) mean over windows of the L2 norm over features of the input gradient
        at each step (index 0 = oldest, L-1 = newest);
        ``ratio``: ``norm_per_step[0] / norm_per_step[-1]``, i.e. ||d yhat_{t+1} / d x_oldest|| over
        ||d yhat_{t+1} / d x_newest||. Near 0: the oldest input is forgotten (vanishing gradient);
        inf when the newest step has zero gradient and the oldest does not, nan when both are zero.
    """
    return flow_of(input_gradients(model, x, target_step, target_index))


def flow_of(grads: np.ndarray) -> dict:
    """``gradient_flow`` from input gradients (N, L, F) already computed."""
    norms = np.linalg.norm(grads.astype(np.float64), axis=-1).mean(axis=0)  # (L,)
    return {"norm_per_step": norms, "ratio": _ratio(norms[0], norms[-1])}


def _ratio(oldest: float, newest: float) -> float:
    if newest > 0:
        return float(oldest / newest)
    return float("inf") if oldest > 0 else float("nan")


def saliency(model, x, target_step: int = 0, target_index: int = 0) -> np.ndarray:
    """(L, F) mean absolute input gradient over windows: which step of which feature moves the forecast."""
    return saliency_of(input_gradients(model, x, target_step, target_index))


def saliency_of(grads: np.ndarray) -> np.ndarray:
    """``saliency`` from input gradients (N, L, F) already computed."""
    return np.abs(grads.astype(np.float64)).mean(axis=0)  # (L, F)

"""A quantile output head that cannot cross, and the pinball loss that trains it (Keras, imported lazily).

Call these only after :func:`rnnforecast.backend.activate`: Keras fixes its backend at first import.

The head maps features to ``(B, H, T, Q)`` raw values ``r``; with the median at position ``m``::

    q_m     = r_m
    q_{m+k} = r_m + sum_{i=1..k} softplus(r_{m+i})     (upper quantiles)
    q_{m-k} = r_m - sum_{i=1..k} softplus(r_{m-i})     (lower quantiles)

Softplus is positive, so ``q_0 <= ... <= q_{Q-1}`` for any weights: no crossing by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np


def pinball_loss(quantiles: Sequence[float]):
    """A Keras loss: the pinball loss averaged over ``quantiles`` for ``y_pred (B, H, T, Q)``, per step and target
    ``(B, H, T)`` (Keras averages the rest, after any per-window weights of ``Framing.loss_weights``).

    ``y_true`` is ``(B, H, T)`` or ``(B, H, T, 1)`` (it broadcasts over the quantile axis).
    """
    from keras import ops

    qs = np.asarray(quantiles, dtype="float32")

    def pinball(y_true, y_pred):
        q = ops.convert_to_tensor(qs)  # (Q,)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)
        d = ops.cast(y_true, y_pred.dtype) - y_pred  # (B, H, T, Q)
        return ops.mean(ops.maximum(q * d, (q - 1.0) * d), axis=-1)  # (B, H, T)

    pinball.__name__ = "pinball"
    return pinball


@cache
def monotone_layer_class():
    """The ``MonotoneQuantiles`` layer class, registered for saving/loading (defined on first use)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="rnnforecast")
    class MonotoneQuantiles(keras.layers.Layer):
        """``(B, H, T, Q)`` raw values -> non-decreasing quantiles along the last axis (see module doc)."""

        def __init__(self, median_index: int, **kwargs):
            super().__init__(**kwargs)
            self.median_index = int(median_index)

        def call(self, raw):
            m = self.median_index
            median = raw[..., m : m + 1]  # (B, H, T, 1)
            parts = [median]
            if m + 1 < raw.shape[-1]:
                parts.append(median + ops.cumsum(ops.softplus(raw[..., m + 1 :]), axis=-1))
            if m > 0:
                below = ops.flip(ops.softplus(raw[..., :m]), axis=-1)  # nearest the median first
                parts.insert(0, ops.flip(median - ops.cumsum(below, axis=-1), axis=-1))
            return ops.concatenate(parts, axis=-1)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "median_index": self.median_index}

    return MonotoneQuantiles


def custom_objects() -> dict:
    """Pass to ``keras.saving.load_model`` for models with a quantile head."""
    cls = monotone_layer_class()
    return {"rnnforecast>MonotoneQuantiles": cls, "MonotoneQuantiles": cls}


def quantile_head(x, horizon: int, n_targets: int, quantiles: Sequence[float], regularizer=None, name: str = "head"):
    """Dense projection of features ``x (B, U)`` to monotone quantiles ``(B, H, T, Q)``.

    Args:
        quantiles: the quantile levels, ascending, containing 0.5 (``intervals.quantile_levels``).
    """
    import keras

    qs = list(quantiles)
    if 0.5 not in qs or sorted(qs) != qs:
        raise ValueError(f"quantiles must be ascending and contain 0.5. Received: quantiles={qs}")
    n_q = len(qs)
    raw = keras.layers.Dense(horizon * n_targets * n_q, kernel_regularizer=regularizer, name=name)(x)
    raw = keras.layers.Reshape((horizon, n_targets, n_q), name=f"{name}_raw")(raw)  # (B, H, T, Q)
    return monotone_layer_class()(qs.index(0.5), name="forecast")(raw)

"""Model builders: a recurrent stack of a cell from the cell table, or a dense reference.

Inputs are a mapping ``{"past": (B, input_length, n_features)}``, plus ``"future": (B, horizon, n_future)``
(values known at the forecast steps: calendar, holidays) when ``n_future > 0``; the output is
``(B, horizon, n_targets, n_quantiles)`` with ``n_quantiles = 1`` for point forecasts.
Keras is imported inside the functions: this module is imported before the backend is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .cells import CELLS, RECURRENT
from .config import Config, ModelConfig

N_QUANTILES = 1
FUTURE_UNITS = 16  # per-step encoding of the known-future values: a weekday effect is not linear in sin/cos


def cell_layer(name: str):
    """The Keras layer class of a recurrent cell (``CELLS[name].layer``, e.g. ``keras.layers.LSTM``)."""
    import keras

    return getattr(keras.layers, CELLS[name].layer)


def model_quantiles(cfg: Config) -> list[float] | None:
    """The quantile axis a config's model is trained on (methods ``quantile`` and ``cqr``), else None (point model)."""
    if cfg.intervals is None or cfg.intervals.method == "conformal":
        return None
    from .intervals import quantile_levels

    return [float(q) for q in quantile_levels(cfg.intervals.levels)]


def _dense_stack(cfg: ModelConfig, x, seed: int, reg):
    """The dense cell: the window flattened, then one Dense (and Dropout) layer per ``units`` entry."""
    import keras

    x = keras.layers.Flatten(name="flatten")(x)  # (B, L*F)
    for i, units in enumerate(cfg.units):
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"dense_{i}")(x)
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, seed=seed + i, name=f"dropout_{i}")(x)
    return x  # (B, U)


def _recurrent_stack(cfg: ModelConfig, x, seed: int, reg):
    """One recurrent layer per ``units`` entry (bidirectional when asked); the last returns its final state."""
    import keras

    layer_cls = cell_layer(cfg.cell)
    options = {name: getattr(cfg, name) for name in CELLS[cfg.cell].options}  # e.g. GRU's reset_after
    for i, units in enumerate(cfg.units):
        layer = layer_cls(
            units=units,
            activation=cfg.activation,
            dropout=cfg.dropout,
            recurrent_dropout=cfg.recurrent_dropout,
            return_sequences=i < len(cfg.units) - 1,  # (B, L, U) between layers, (B, U) at the end
            kernel_regularizer=reg,
            recurrent_regularizer=reg,
            seed=seed + i,
            name=f"{cfg.cell}_{i}",
            **options,
        )
        if cfg.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{i}")
        x = layer(x)
    return x  # (B, U), (B, 2U) bidirectional


def build_model(
    cfg: ModelConfig,
    input_length: int,
    n_features: int,
    horizon: int,
    n_targets: int,
    seed: int,
    n_future: int = 0,
    quantiles: Sequence[float] | None = None,
    context: int = 0,
):
    """Build (not compile) the model described by ``cfg``; ``n_future`` columns known at the forecast steps.

    ``cfg`` comes from a settled config (:meth:`Config.settled`, which needs the data); a ``ModelConfig`` built
    by hand may leave ``auto`` in it: then the model steps through time (no segments) with no residual head.

    ``quantiles`` (ascending, with 0.5) gives a monotone quantile head on the last axis instead of Q=1.
    ``context``: the last input columns that name the channel (independent channels); a segment model's
    decoder reads them.
    """
    import keras

    reg = keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None
    past = keras.Input(shape=(input_length, n_features), name="past")  # (B, L, F)
    x = past
    if isinstance(cfg.segment_length, int):  # a settled config; an unsettled ``auto`` (no data to decide) steps
        return _segment_model(cfg, past, horizon, n_targets, seed, n_future, quantiles, context, reg)
    x = _recurrent_stack(cfg, x, seed, reg) if CELLS[cfg.cell].recurrent else _dense_stack(cfg, x, seed, reg)
    inputs = {"past": past}
    if n_future:
        inputs["future"] = future = keras.Input(shape=(horizon, n_future), name="future")  # (B, H, Fu)
        z = keras.layers.Dense(FUTURE_UNITS, activation="tanh", name="future_encoding")(future)  # (B, H, 16)
        z = keras.layers.Flatten(name="future_flat")(z)  # (B, H*16)
        x = keras.layers.Concatenate(name="past_and_future")([x, z])
    if quantiles:
        from .quantile_head import quantile_head

        out = quantile_head(x, horizon, n_targets, quantiles, regularizer=reg)  # (B, H, T, Q), never crossing
    else:
        x = keras.layers.Dense(
            horizon * n_targets * N_QUANTILES, kernel_regularizer=reg, kernel_initializer=_head_init(cfg), name="head"
        )(x)
        out = keras.layers.Reshape((horizon, n_targets, N_QUANTILES), name="forecast")(x)  # (B, H, T, Q)
    return keras.Model(inputs=inputs, outputs=out, name=f"rnnforecast_{cfg.cell}")


def _head_init(cfg: ModelConfig) -> str:
    """A residual model starts as its baseline (a zero head: output 0) and learns only what improves on it."""
    return "zeros" if cfg.residual in ("persistence", "seasonal") else "glorot_uniform"


def _layout(cfg: ModelConfig, context: int) -> dict:
    """``model.segment_layout: segrnn``: the layer as SegRNN's reference code builds it (models/SegRNN.py):
    PyTorch's initialisation and, with independent channels, each segment embedded from the channel's values
    alone and the decoder's input [position | channel] halves (segments.py). docs/accuracy.md measures both."""
    if cfg.segment_layout != "segrnn":
        return {}
    return {"init": "torch", **({"encoder_context": False, "decoder_input": "concat"} if context else {})}


def _segment_model(cfg: ModelConfig, past, horizon, n_targets, seed, n_future, quantiles, context, reg):
    """SegRNN (segments.py): segments -> cell -> all output segments at once -> Dense(S*T*Q) per segment."""
    import keras

    from .segments import SegmentSpec, layer_class

    _, steps, n_in = past.shape
    spec = SegmentSpec(
        cell=cfg.cell,
        units=tuple(cfg.units),
        segment_length=cfg.segment_length,
        input_length=steps,
        horizon=horizon,
        n_inputs=n_in,
        context=context,
        activation=cfg.activation,
        reset_after=cfg.reset_after if cfg.cell == "gru" else True,
        **_layout(cfg, context),
    )
    states = layer_class()(spec.__dict__, dropout=cfg.dropout, seed=seed, name="segments")(past)  # (B, M, U)
    inputs = {"past": past}
    n_q = len(quantiles) if quantiles else N_QUANTILES
    s, m = spec.segment_length, spec.n_out
    if n_future:  # the known-future values of each output segment's steps join its decoder state
        inputs["future"] = future = keras.Input(shape=(horizon, n_future), name="future")  # (B, H, Fu)
        z = keras.layers.Dense(FUTURE_UNITS, activation="tanh", name="future_encoding")(future)  # (B, H, 16)
        z = keras.layers.ZeroPadding1D((0, m * s - horizon), name="future_pad")(z)  # (B, M*S, 16)
        z = keras.layers.Reshape((m, s * FUTURE_UNITS), name="future_segments")(z)  # (B, M, S*16)
        states = keras.layers.Concatenate(name="states_and_future")([states, z])
    if quantiles:
        from .quantile_head import quantile_head

        flat = keras.layers.Flatten(name="states_flat")(states)  # (B, M*U)
        out = quantile_head(flat, horizon, n_targets, quantiles, regularizer=reg)
        return keras.Model(inputs=inputs, outputs=out, name=f"rnnforecast_seg_{cfg.cell}")
    kernel_init, bias_init = _head_init(cfg), "zeros"
    if spec.init == "torch" and kernel_init != "zeros":  # nn.Linear's U(-a, a), a = 1/sqrt(fan-in), bias too
        a = 1.0 / math.sqrt(states.shape[-1])
        kernel_init = keras.initializers.RandomUniform(-a, a, seed=seed)
        bias_init = keras.initializers.RandomUniform(-a, a, seed=None if seed is None else seed + 1)
    x = keras.layers.Dense(
        s * n_targets * n_q,
        kernel_regularizer=reg,
        kernel_initializer=kernel_init,
        bias_initializer=bias_init,
        name="head",
    )(states)  # (B, M, S*T*Q)
    x = keras.layers.Reshape((m * s, n_targets * n_q), name="steps")(x)  # (B, M*S, T*Q)
    if m * s != horizon:
        x = keras.layers.Cropping1D((0, m * s - horizon), name="crop")(x)  # (B, H, T*Q)
    out = keras.layers.Reshape((horizon, n_targets, n_q), name="forecast")(x)  # (B, H, T, Q)
    return keras.Model(inputs=inputs, outputs=out, name=f"rnnforecast_seg_{cfg.cell}")


def recurrent_layers(model) -> list:
    """The recurrent layers of a built model, in order (Bidirectional wrappers as they are)."""
    import keras

    kinds = (keras.layers.Bidirectional, *(cell_layer(cell.name) for cell in RECURRENT))
    return [layer for layer in model.layers if isinstance(layer, kinds)]

"""Segment recurrence with parallel multi-step decoding (SegRNN, Lin et al. 2023), written once for Keras and numpy.

The window is cut into N = L // S segments of S = ``model.segment_length`` steps (the oldest L - N*S steps
are dropped), each segment embedded; the cell (SimpleRNN, LSTM or GRU, stacked or not) runs over the N
segments; the decoder starts every output segment from the encoder's last state at once, its input a
learned position embedding (plus a learned embedding of the channel context, the one-hot channel of
``model.channels: independent``), one step of the same cells. For L=6, S=2, H=4::

    x (B, 6, F) -> segments (B, 3, 2F) -> relu(. W_e + b_e) (B, 3, D) -> cell over 3 steps -> h (B, U)
    decoder: [pos_1 + ctx, pos_2 + ctx] (B, 2, D), one step from h -> (B, 2, U) -> head Dense(S*T*Q) per segment

``init``, ``encoder_context`` and ``decoder_input`` select the layout: Keras' (the default above: Glorot and
orthogonal weights, zero biases, the one-hot in every segment's embedding, position + channel embedding) or
SegRNN's reference code's (``model.segment_layout: segrnn``: PyTorch's U(-a, a) initialisation, each segment
embedded from the channel's values alone, the decoder's input [pos_m | ctx] of D/2 + D/2).

With the recurrent steps over N segments instead of L steps, gradients cross S times fewer steps and the
output segments are produced in parallel, without error accumulation. ``forward`` is the one definition:
the Keras layer calls it with ``keras.ops``, the numpy predict path (``numpy_model``) with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

BLOCKS = {"simple_rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class SegmentSpec:
    """The layer's shape. ``units``: one entry per stacked layer; D = ``units[0]`` (segment embedding)."""

    cell: str
    units: tuple[int, ...]
    segment_length: int
    input_length: int
    horizon: int
    n_inputs: int
    context: int = 0  # the last `context` input columns: the channel one-hot, read at the last step
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    encoder_context: bool = True  # the segment embedding reads the context columns too (False: values only, as SegRNN)
    decoder_input: str = "sum"  # "sum": position + context embedding; "concat": [position | context] halves (SegRNN)
    init: str = "keras"  # "keras": Glorot, orthogonal, zero biases; "torch": PyTorch's U(+-1/sqrt(fan_in)), biases too

    @property
    def n_embedded(self) -> int:
        """Input columns a segment's embedding reads (the context's one-hot left out unless ``encoder_context``)."""
        return self.n_inputs if self.encoder_context else self.n_inputs - self.context

    @property
    def concatenated(self) -> bool:
        """The decoder's input is [position | context] (``concat``, with a context and D >= 2), else their sum."""
        return bool(self.context) and self.decoder_input == "concat" and self.units[0] >= 2

    @property
    def halves(self) -> tuple[int, int]:
        """Widths of the decoder input's position and context parts (concatenated: D // 2 and the rest)."""
        d = self.units[0]
        return (d // 2, d - d // 2) if self.concatenated else (d, d)

    @property
    def n_segments(self) -> int:
        return self.input_length // self.segment_length

    @property
    def n_out(self) -> int:
        """Output segments M = ceil(H / S); the head's last M*S - H steps are cropped."""
        return math.ceil(self.horizon / self.segment_length)

    def weight_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every weight, in the order the layer creates (and saves) them."""
        d = self.units[0]
        out = [("embed_kernel", (self.segment_length * self.n_embedded, d)), ("embed_bias", (d,))]
        n_in = d
        for i, u in enumerate(self.units):
            k = BLOCKS[self.cell] * u
            bias = (2, k) if self.cell == "gru" and self.reset_after else (k,)
            out += [(f"kernel_{i}", (n_in, k)), (f"recurrent_kernel_{i}", (u, k)), (f"bias_{i}", bias)]
            n_in = u
        position, context = self.halves
        out.append(("position", (self.n_out, position)))
        if self.context:
            out.append(("context_kernel", (self.context, context)))
        return out


def step(ops, spec: SegmentSpec, xw, h, c, recurrent, recurrent_bias, act, gate):
    """One step of the cell (Keras 3's formulas, ``recurrence.py``): ``xw = x W + b`` ``(..., k*U)``."""
    if spec.cell == "simple_rnn":
        return act(xw + ops.matmul(h, recurrent)), c
    if spec.cell == "lstm":
        i, f, g, o = ops.split(xw + ops.matmul(h, recurrent), 4, axis=-1)
        c = gate(f) * c + gate(i) * act(g)
        return gate(o) * act(c), c
    xz, xr, xh = ops.split(xw, 3, axis=-1)
    u = recurrent.shape[0]
    if spec.reset_after:  # the reset gate multiplies h U + b_rec
        iz, ir, ih = ops.split(ops.matmul(h, recurrent) + recurrent_bias, 3, axis=-1)
        z, r = gate(xz + iz), gate(xr + ir)
        candidate = act(xh + r * ih)
    else:  # the reset gate multiplies h before the product
        iz, ir = ops.split(ops.matmul(h, recurrent[:, : 2 * u]), 2, axis=-1)
        z, r = gate(xz + iz), gate(xr + ir)
        candidate = act(xh + ops.matmul(r * h, recurrent[:, 2 * u :]))
    return z * h + (1.0 - z) * candidate, c


def _biases(spec: SegmentSpec, bias):
    """(input bias, recurrent bias or None) of one layer."""
    if spec.cell == "gru" and spec.reset_after:
        return bias[0], bias[1]
    return bias, None


def forward(ops, spec: SegmentSpec, w: dict, x, act, gate, relu, states: list | None = None):
    """Decoder states ``(B, M, U_last)`` of windows ``x (B, L, F)``; ``w`` maps ``weight_shapes`` names to arrays.

    ``states``, when a list, receives each layer's encoder hidden states ``(B, N, U)`` (inspect).
    """
    s, n = spec.segment_length, spec.n_segments
    skip = spec.input_length - n * s
    seg = ops.reshape(x[:, skip:, : spec.n_embedded], (-1, n, s * spec.n_embedded))  # (B, N, S*F)
    seq = relu(ops.matmul(seg, w["embed_kernel"]) + w["embed_bias"])  # (B, N, D)
    zero = seq[:, :1, :1] * 0.0  # (B, 1, 1): broadcasts the initial states and the decoder input over the batch
    finals = []
    for i, u in enumerate(spec.units):
        in_bias, rec_bias = _biases(spec, w[f"bias_{i}"])
        xw = ops.matmul(seq, w[f"kernel_{i}"]) + in_bias  # (B, N, k*U)
        h = c = zero[:, 0] + ops.zeros((u,), dtype=seq.dtype)  # (B, U)
        outs = []
        for t in range(n):
            h, c = step(ops, spec, xw[:, t], h, c, w[f"recurrent_kernel_{i}"], rec_bias, act, gate)
            outs.append(h)
        seq = ops.stack(outs, axis=1)  # (B, N, U)
        finals.append((h, c))
        if states is not None:
            states.append(seq)
    dec = None  # the previous decoder layer's output (B, M, U)
    for i, (h, c) in enumerate(finals):  # one step of every layer, all M output segments at once
        in_bias, rec_bias = _biases(spec, w[f"bias_{i}"])
        if i == 0:
            xw = _decoder_input_product(ops, spec, w, x, w["kernel_0"], in_bias)  # (B or 1, M, k*U)
        else:
            xw = ops.matmul(dec, w[f"kernel_{i}"]) + in_bias  # (B, M, k*U)
        dec, _ = step(ops, spec, xw, h[:, None, :], c[:, None, :], w[f"recurrent_kernel_{i}"], rec_bias, act, gate)
    return dec  # (B, M, U_last)


def _decoder_input_product(ops, spec: SegmentSpec, w: dict, x, kernel, bias):
    """``d W + b`` of the first decoder layer, ``(B or 1, M, k*U)``, for its input ``d (B, M, D)``.

    ``d`` is the positions ``P (M, D)`` plus (``sum``) or beside (``concat``: ``[P | c]``) the window's context
    embedding ``c (B, 1, D)``, so ``d W = P W + c W`` (``concat``: ``P W_top + c W_bottom``): the positions' product
    is taken once, not once per window, and the context's once per window, not per output segment. The same sums as
    the product of the assembled ``d``, with M + B rows through the layer's widest matrix instead of B*M.
    """
    pos = ops.matmul(w["position"], kernel[: spec.halves[0]] if spec.concatenated else kernel) + bias  # (M, k*U)
    if not spec.context:
        return pos[None]
    ctx = ops.matmul(x[:, -1, spec.n_inputs - spec.context :], w["context_kernel"])[:, None, :]  # (B, 1, D or D-D//2)
    return pos[None] + ops.matmul(ctx, kernel[spec.halves[0] :] if spec.concatenated else kernel)


class NumpyOps:
    """The few ``keras.ops`` functions ``forward`` uses, in numpy (float64)."""

    matmul = staticmethod(np.matmul)
    reshape = staticmethod(np.reshape)
    stack = staticmethod(np.stack)
    concatenate = staticmethod(np.concatenate)
    zeros = staticmethod(np.zeros)

    @staticmethod
    def split(x, n, axis=-1):
        if axis != -1 or x.shape[-1] % n:
            return np.split(x, n, axis=axis)  # (which refuses blocks of unequal size)
        k = x.shape[-1] // n  # the last axis in n equal blocks, as views (np.split's checks cost more than a step)
        return [x[..., i * k : (i + 1) * k] for i in range(n)]


def embed_segments(spec: SegmentSpec, w: dict, x: np.ndarray) -> np.ndarray:
    """The encoder's input in numpy: ``(B, N, D)`` embedded segments of ``x (B, L, F)`` (as ``forward``)."""
    s, n = spec.segment_length, spec.n_segments
    seg = np.asarray(x, np.float64)[:, spec.input_length - n * s :, : spec.n_embedded]
    seg = seg.reshape(len(x), n, s * spec.n_embedded)
    return np.maximum(seg @ w["embed_kernel"] + w["embed_bias"], 0.0)


def numpy_forward(spec: SegmentSpec, w: dict, x: np.ndarray, states: list | None = None) -> np.ndarray:
    """``forward`` in float64 numpy: the Keras-free predict path and inspect."""
    from .recurrence import activation_fn

    act, gate = activation_fn(spec.activation), activation_fn(spec.recurrent_activation)
    return forward(NumpyOps, spec, w, np.asarray(x, np.float64), act, gate, activation_fn("relu"), states)


def _initializer(keras, spec: SegmentSpec, name: str, shape: tuple, seed: int):
    """Keras' recurrent defaults (orthogonal recurrent kernels, zero biases); positions ~ N(0, 1) as SegRNN's.

    ``init: torch``: PyTorch's ``nn.Linear`` and ``nn.GRU`` defaults, U(-a, a) with a = 1/sqrt(fan-in) for
    weights and biases (a cell's fan-in: its units), the channel embedding ~ N(0, 1) as SegRNN's."""
    if spec.init == "torch":
        if name in ("position", "context_kernel"):
            return keras.initializers.RandomNormal(stddev=1.0, seed=seed)
        fan_in = spec.segment_length * spec.n_embedded if name.startswith("embed") else shape[-1] // BLOCKS[spec.cell]
        a = 1.0 / math.sqrt(fan_in)
        return keras.initializers.RandomUniform(-a, a, seed=seed)
    if name.startswith("recurrent_kernel"):
        return keras.initializers.Orthogonal(seed=seed)
    if name.startswith("bias") or name == "embed_bias":
        return "zeros"
    if name == "position":
        return keras.initializers.RandomNormal(stddev=1.0, seed=seed)
    return keras.initializers.GlorotUniform(seed=seed)


@cache
def layer_class():
    """The ``SegmentRecurrence`` Keras layer, registered for saving and loading (defined on first use)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="rnnforecast")
    class SegmentRecurrence(keras.layers.Layer):
        """``(B, L, F)`` windows -> decoder states ``(B, M, U)`` (module doc); dropout on the output in training."""

        def __init__(self, spec: dict, dropout: float = 0.0, seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.spec = SegmentSpec(**{**spec, "units": tuple(spec["units"])})
            self.dropout = float(dropout)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed) if self.dropout else None

        def build(self, input_shape):
            seed = self.seed or 0
            self.named = {  # creation order = saved order (numpy_model reads them by position)
                name: self.add_weight(
                    name=name, shape=shape, initializer=_initializer(keras, self.spec, name, shape, seed + k)
                )
                for k, (name, shape) in enumerate(self.spec.weight_shapes())
            }
            self.built = True

        def call(self, x, training=False):
            w = {name: self.named[name] for name, _ in self.spec.weight_shapes()}
            act = keras.activations.get(self.spec.activation)
            gate = keras.activations.get(self.spec.recurrent_activation)
            out = forward(ops, self.spec, w, x, act, gate, keras.activations.relu)
            if training and self.dropout:
                out = keras.random.dropout(out, self.dropout, seed=self.seed_generator)
            return out

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.spec.n_out, self.spec.units[-1])

        def get_config(self):
            spec = {**self.spec.__dict__, "units": list(self.spec.units)}
            return {**super().get_config(), "spec": spec, "dropout": self.dropout, "seed": self.seed}

    return SegmentRecurrence


def custom_objects() -> dict:
    cls = layer_class()
    return {"rnnforecast>SegmentRecurrence": cls, "SegmentRecurrence": cls}

"""Recompute every recurrent layer's internals (hidden state, cell state, gates) in numpy from its own weights.

Keras returns only a layer's output; to look inside a cell we replay its step function here, one
family per function, with the formulas of Keras 3 (``keras/src/layers/rnn/{simple_rnn,lstm,gru}.py``)
at inference (no dropout). Column blocks of ``kernel``, ``recurrent_kernel`` and ``bias`` (``cells.Cell.blocks``):

    LSTM  [i | f | c | o]     c_t = f * c_{t-1} + i * act(x W_c + h_{t-1} U_c + b_c),  h_t = o * act(c_t)
    GRU   [z | r | h]         h_t = z * h_{t-1} + (1 - z) * act(candidate)   (z weights the *old* state)

GRU ``reset_after=True`` keeps two biases, shape (2, 3U): row 0 is added to ``x W``, row 1 to
``h U``, and the reset gate multiplies ``h U + b_rec``; with ``reset_after=False`` (bias (3U,)) it
multiplies ``h`` before the product. Gates use ``recurrent_activation`` (sigmoid by default).
Computation is in float64, so a trace is a reference for Keras' float32 to about 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import CELLS, RECURRENT, Cell
from .models import cell_layer, recurrent_layers

# Thresholds for a saturated gate: nearly shut (< LOW) or nearly open (> HIGH).
LOW = 0.1
HIGH = 0.9


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow for large |a|


_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda a: np.clip(a / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda a: np.maximum(a, 0.0),
    "linear": lambda a: a,
    "elu": lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0.0))),
    "selu": lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(np.minimum(a, 0.0))),
    "softsign": lambda a: a / (1.0 + np.abs(a)),
}


def activation_fn(fn):
    """The numpy twin of a Keras activation (a function, a name, or None for linear)."""
    name = "linear" if fn is None else (fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn)))
    if name not in _ACTIVATIONS:
        raise ValueError(f"no numpy version of activation {name!r}; supported: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def cell_of(layer) -> Cell:
    """The table entry of a Keras recurrent layer (not a Bidirectional wrapper)."""
    for cell in RECURRENT:
        if isinstance(layer, cell_layer(cell.name)):
            return cell
    kinds = ", ".join(cell.layer for cell in RECURRENT)
    raise ValueError(f"not a {kinds} layer: {layer.name!r} ({type(layer).__name__})")


def _blocks(cell: Cell, z: np.ndarray) -> dict[str, np.ndarray]:
    """Split (N, k*U) pre-activations into the cell's k column blocks, by name."""
    k = z.shape[-1] // len(cell.blocks)  # slices, not np.split: this runs per step of every forecast
    return {name: z[..., i * k : (i + 1) * k] for i, name in enumerate(cell.blocks)}


def _weights(layer, bias_shape: tuple[int, ...]):
    cell = layer.cell
    kernel = np.asarray(_numpy(cell.kernel), dtype=np.float64)  # (F, k*U)
    recurrent = np.asarray(_numpy(cell.recurrent_kernel), dtype=np.float64)  # (U, k*U)
    bias = np.asarray(_numpy(cell.bias), dtype=np.float64) if cell.use_bias else np.zeros(bias_shape)
    return kernel, recurrent, bias


def _numpy(variable):
    if isinstance(variable, np.ndarray):  # an ArrayLayer's weights: no Keras needed
        return variable
    import keras

    return keras.ops.convert_to_numpy(variable)


def _outputs(cell: Cell, n: int, steps: int, units: int) -> dict[str, np.ndarray]:
    """Empty (N, L, U) arrays for every state and gate the cell records, states first."""
    return {key: np.empty((n, steps, units)) for key in (*cell.states, *cell.gates)}


def simple_rnn(layer, x):
    """Replay a SimpleRNN layer: x (N, L, F) -> dict of (N, L, U) arrays."""
    units = layer.cell.units
    kernel, recurrent, bias = _weights(layer, (units,))
    act = activation_fn(layer.cell.activation)
    n, steps, _ = x.shape
    xw = x @ kernel + bias  # (N, L, U): the input projection does not depend on the state
    h = np.zeros((n, units))
    out = _outputs(CELLS["simple_rnn"], n, steps, units)
    for t in range(steps):
        h = act(xw[:, t] + h @ recurrent)
        out["hidden"][:, t] = h
    return out


def lstm(layer, x):
    """Replay an LSTM layer: x (N, L, F) -> dict of (N, L, U) arrays."""
    cell = CELLS["lstm"]
    units = layer.cell.units
    kernel, recurrent, bias = _weights(layer, (4 * units,))
    act = activation_fn(layer.cell.activation)
    gate = activation_fn(layer.cell.recurrent_activation)
    n, steps, _ = x.shape
    xw = x @ kernel + bias  # (N, L, 4U)
    h = np.zeros((n, units))
    c = np.zeros((n, units))
    out = _outputs(cell, n, steps, units)
    for t in range(steps):
        z = _blocks(cell, xw[:, t] + h @ recurrent)  # (N, U) each, column order [i, f, c, o]
        values = {name: gate(z[name]) for name in cell.gates}
        c = values["forget_gate"] * c + values["input_gate"] * act(z["candidate"])
        h = values["output_gate"] * act(c)
        values.update(hidden=h, cell_state=c)
        for key, value in values.items():
            out[key][:, t] = value
    return out


def gru(layer, x):
    """Replay a GRU layer: x (N, L, F) -> dict of (N, L, U) arrays."""
    cell = CELLS["gru"]
    units = layer.cell.units
    reset_after = layer.cell.reset_after
    kernel, recurrent, bias = _weights(layer, (2, 3 * units) if reset_after else (3 * units,))
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * units))
    act = activation_fn(layer.cell.activation)
    gate = activation_fn(layer.cell.recurrent_activation)
    n, steps, _ = x.shape
    xw = x @ kernel + input_bias  # (N, L, 3U) in column order [z, r, h]
    h = np.zeros((n, units))
    out = _outputs(cell, n, steps, units)
    for t in range(steps):
        xs = _blocks(cell, xw[:, t])  # (N, U) each
        if reset_after:  # the reset gate multiplies h U + b_rec
            inner = _blocks(cell, h @ recurrent + recurrent_bias)
        else:  # the reset gate multiplies h before the product
            inner = _blocks(cell, h @ recurrent)
        z = gate(xs["update_gate"] + inner["update_gate"])
        r = gate(xs["reset_gate"] + inner["reset_gate"])
        if reset_after:
            candidate = act(xs["candidate"] + r * inner["candidate"])
        else:
            candidate = act(xs["candidate"] + (r * h) @ recurrent[:, 2 * units :])
        h = z * h + (1.0 - z) * candidate
        out["hidden"][:, t] = h
        out["update_gate"][:, t] = z
        out["reset_gate"][:, t] = r
    return out


@dataclass(frozen=True)
class ArrayCell:
    """A recurrent cell's weights as numpy arrays, under the attribute names of a Keras cell.

    The step functions read a layer through these attributes only, so the same formulas replay a
    live Keras layer (``inspect``) and weights read from a ``model.keras`` file without Keras
    (``numpy_model``).
    """

    units: int
    kernel: np.ndarray  # (F, k*U)
    recurrent_kernel: np.ndarray  # (U, k*U)
    bias: np.ndarray | None  # (k*U,); GRU with reset_after (2, 3U); None without bias
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True  # GRU only

    @property
    def use_bias(self) -> bool:
        return self.bias is not None


@dataclass(frozen=True)
class ArrayLayer:
    """A unidirectional recurrent layer for ``replay``: its cell and its direction."""

    cell: ArrayCell
    go_backwards: bool = False


def replay(cell: str, layer, x) -> dict:
    """Replay one unidirectional layer of ``cell`` (``simple_rnn`` | ``lstm`` | ``gru``) over x (N, L, F).

    ``layer`` is a Keras layer or an ``ArrayLayer``; a go_backwards layer reads x reversed.
    """
    if layer.go_backwards:
        x = x[:, ::-1]
    return globals()[CELLS[cell].recurrence](layer, x)


def merge_directions(fwd: dict, bwd: dict) -> tuple[dict, np.ndarray]:
    """Join the two directions of a bidirectional layer (``merge_mode="concat"``).

    Returns ``(merged, last)``: every array aligned in time and concatenated on the unit axis
    ([forward units | backward units]), and what Keras returns without sequences (N, 2U).
    """
    # step s of bwd has read x[L-1-s], so flip it back into time order
    merged = {key: np.concatenate([fwd[key], bwd[key][:, ::-1]], axis=-1) for key in fwd}
    last = np.concatenate([fwd["hidden"][:, -1], bwd["hidden"][:, -1]], axis=-1)
    return merged, last


def _run(layer, x):
    """Replay one (unidirectional) Keras layer over x (N, L, F)."""
    return replay(cell_of(layer).name, layer, x)


def _bidirectional(layer, x):
    """Both directions, aligned in time and concatenated on the unit axis: [forward units | backward units]."""
    if layer.merge_mode != "concat":
        raise ValueError(
            f"inspect supports bidirectional layers with merge_mode='concat' only. "
            f"Received: merge_mode={layer.merge_mode!r} on layer {layer.name!r}"
        )
    return merge_directions(_run(layer.forward_layer, x), _run(layer.backward_layer, x))


def trace(model, x) -> list[dict]:
    """Recompute the internals of every recurrent layer of ``model`` on the windows ``x``.

    Args:
        model: a model from ``rnnforecast.models.build_model`` (recurrent layers directly stacked
            on the ``past`` input; dropout inside the cells is ignored, as at inference).
        x: numpy array (N, L, F) of model inputs, or the mapping ``{"past": x}``.

    Returns:
        One dict per recurrent layer, in order, with ``name``, ``cell``, ``units``, ``bidirectional``,
        ``hidden`` (N, L, U), ``output`` (what the layer returns to Keras: ``hidden`` for
        ``return_sequences``, else the final state (N, U)); LSTM adds ``cell_state``, ``input_gate``,
        ``forget_gate``, ``output_gate`` and GRU adds ``update_gate``, ``reset_gate``, all (N, L, U).
        Bidirectional layers have U = 2 * units: forward units first, then backward units, both in
        time order; their final output joins the forward state at step L-1 with the backward state
        at step 0.
    """
    import keras

    if isinstance(x, dict):
        x = x["past"]
    seq = np.asarray(x, dtype=np.float64)  # (N, L, F)
    if seq.ndim != 3:
        raise ValueError(f"`x` must be (windows, steps, features). Received shape {seq.shape}")
    segment_layers = [layer for layer in model.layers if type(layer).__name__ == "SegmentRecurrence"]
    if segment_layers:
        return trace_segments(segment_layers[0], seq)
    entries = []
    for layer in recurrent_layers(model):
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        if bidirectional:
            internals, last = _bidirectional(layer, seq)
        else:
            internals = _run(layer, seq)
            last = internals["hidden"][:, -1]
        hidden = internals["hidden"]  # (N, L, U)
        entries.append(
            {
                "name": layer.name,
                "cell": cell_of(layer.forward_layer if bidirectional else layer).name,
                "units": hidden.shape[-1],
                "bidirectional": bidirectional,
                **internals,
                "output": hidden if layer.return_sequences else last,
            }
        )
        seq = hidden  # the next layer reads the full sequence (B, L, U)
    return entries


def trace_segments(layer, x: np.ndarray) -> list[dict]:
    """``trace`` of a segment model (segments.py): each encoder layer replayed over the N embedded segments with
    this module's step functions (from a zero state, as the encoder starts), so states and gates are (N, segments, U).
    Entries carry ``segment_length``: one time step of theirs is that many input steps."""
    from .segments import embed_segments

    spec = layer.spec
    w = {name: np.asarray(_numpy(v), dtype=np.float64) for name, v in layer.named.items()}
    seq = embed_segments(spec, w, x)  # (N, segments, D)
    entries = []
    for i, units in enumerate(spec.units):
        cell = ArrayCell(
            units, w[f"kernel_{i}"], w[f"recurrent_kernel_{i}"], w[f"bias_{i}"],
            spec.activation, spec.recurrent_activation, spec.reset_after,
        )  # fmt: skip
        internals = replay(spec.cell, ArrayLayer(cell), seq)
        seq = internals["hidden"]
        entries.append(
            {
                "name": f"{layer.name}_{i}",
                "cell": spec.cell,
                "units": units,
                "bidirectional": False,
                **internals,
                "output": seq[:, -1],
                "segment_length": spec.segment_length,
            }
        )
    return entries


def gate_saturation(entry: dict, low: float = LOW, high: float = HIGH) -> dict[str, dict[str, np.ndarray]]:
    """Per gate, the fraction of (window, step) pairs where each unit's gate is < ``low`` or > ``high``.

    Returns ``{gate: {"low": (U,), "high": (U,)}}``; empty for SimpleRNN, which has no gates.
    A gate stuck near 0 or 1 passes (or blocks) everything: a forget gate mostly > 0.9 is what lets
    an LSTM carry information across many steps.
    """
    out = {}
    for gate in CELLS[entry["cell"]].gates:
        values = entry[gate]  # (N, L, U)
        out[gate] = {"low": (values < low).mean(axis=(0, 1)), "high": (values > high).mean(axis=(0, 1))}
    return out

"""Run a saved model in numpy: ``model.keras`` read without Keras, Keras kept for what numpy does not replay.

A ``.keras`` file is a zip of ``config.json`` (the layer graph) and ``model.weights.h5`` (one HDF5
group per layer, its ``vars`` group named after the layer). The models ``models.build_model``
writes are plain chains::

    past (B, L, F) -> [SimpleRNN | LSTM | GRU | Bidirectional(...)] x n -> Dense head -> Reshape (B, H, T, Q)
    past (B, L, F) -> Flatten -> [Dense, Dropout] x n -> Dense head -> Reshape (B, H, T, Q)

``load_predictor`` replays such a chain with ``recurrence``'s step functions in float64 (equal to
Keras' float32 forecast to about 1e-6) and imports no keras, jax or tensorflow: ``predict`` starts
in a fraction of a second instead of about 3 s. Any other graph, layer, option or dtype goes to
Keras (``artifacts.load_model``), which also reports damaged and unsafe files.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import recurrence
from .errors import RunError

CELLS = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}  # Keras class -> recurrence cell
BLOCKS = {"simple_rnn": 1, "lstm": 4, "gru": 3}  # column blocks of kernel, recurrent kernel and bias
IDENTITY = ("Dropout",)  # layers that pass their input through at inference


class Unsupported(Exception):
    """The file holds something this module does not replay (Keras will)."""


@dataclass
class NumpyModel:
    """A model read from ``model.keras``, with Keras' ``predict_on_batch`` interface.

    Args:
        path: the ``.keras`` file it was read from (named in errors).
        input_shape: ``(L, F)`` of one window.
        output_shape: ``(H, T, Q)`` of one forecast.
        layers: functions applied in order to a (B, ...) float64 array.
    """

    path: Path
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: list[Callable[[np.ndarray], np.ndarray]]

    def predict_on_batch(self, inputs) -> np.ndarray:
        """``{"past": (B, L, F)}`` (or the array itself) -> float32 forecasts ``(B, H, T, Q)``."""
        x = np.asarray(inputs["past"] if isinstance(inputs, dict) else inputs, dtype=np.float64)
        if x.ndim != 3 or x.shape[1:] != self.input_shape:
            raise RunError(
                f"the model takes windows of shape (batch, {', '.join(map(str, self.input_shape))}); "
                f"received {x.shape}",
                where=str(self.path),
                fix="forecast with the run this model was trained in",
            )
        for layer in self.layers:
            x = layer(x)
        return x.astype(np.float32)  # what Keras returns

    @classmethod
    def load(cls, path: str | Path) -> NumpyModel:
        """Read ``path``; raise ``Unsupported`` for anything but a plain chain of known layers."""
        path = Path(path)
        try:
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
                weights = z.read("model.weights.h5")
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise Unsupported(f"cannot read the archive ({type(e).__name__})") from None
        import h5py  # about 20 ms to import: only on this path

        try:
            with h5py.File(io.BytesIO(weights), "r") as h5:
                return cls._from(path, config, h5)
        except (KeyError, TypeError, ValueError, OSError, AttributeError) as e:
            raise Unsupported(f"unexpected config or weights ({type(e).__name__}: {e})") from None

    @classmethod
    def _from(cls, path: Path, config: dict, h5) -> NumpyModel:
        if config.get("class_name") != "Functional":
            raise Unsupported(f"model class {config.get('class_name')!r}")
        graph = config["config"]
        specs = graph["layers"]
        _check_ends(graph, specs)
        groups = {g["vars"].attrs["name"]: g for g in h5["layers"].values() if "vars" in g}
        shape = _input_shape(specs[0])
        input_shape, layers = shape, []
        for prev, spec in zip(specs, specs[1:]):
            if _inbound(spec) != prev["name"]:
                raise Unsupported(f"layer {spec['name']!r} is not fed by the layer before it")
            _check_layer(spec)
            build = BUILDERS.get(spec["class_name"])
            if build is None:
                raise Unsupported(f"layer class {spec['class_name']!r}")
            fn, shape = build(spec["config"], groups.get(spec["name"]), shape)
            layers.append(fn)
        return cls(path, input_shape, shape, layers)


@dataclass
class Ensemble:
    """The members of a seed ensemble (``model.ensemble``) behind one ``predict_on_batch``.

    Args:
        members: ``NumpyModel`` or Keras models with the same input and output shapes; member 0 is the
            run's ``model.keras``.
    """

    members: list

    def predict_on_batch(self, inputs) -> np.ndarray:
        """The members' forecasts combined by :func:`combine`, float32 ``(B, H, T, Q)``."""
        return combine([np.asarray(m.predict_on_batch(inputs)) for m in self.members])

    def count_params(self) -> int:
        return sum(int(m.count_params()) for m in self.members)

    @property
    def numpy(self) -> bool:
        return all(isinstance(m, NumpyModel) for m in self.members)


def combine(outputs: list[np.ndarray]) -> np.ndarray:
    """Members' forecasts ``[(B, H, T, Q)] * N`` -> one: the mean of point forecasts (Q = 1); for quantile
    outputs the median of each quantile, so one member's wild tail does not move the band."""
    stacked = np.stack(outputs).astype(np.float64)  # (N, B, H, T, Q)
    out = np.median(stacked, axis=0) if stacked.shape[-1] > 1 else stacked.mean(axis=0)
    return out.astype(np.float32)


def load_predictor(path: str | Path, schema: dict | None = None, keras: bool = False):
    """The model in ``path``, as something with ``predict_on_batch({"past": x}) -> (B, H, T, Q)``.

    A ``NumpyModel`` when every layer is one this module replays, else (or with ``keras``) the Keras
    model, loaded in safe mode. With the run's ``schema``, a model whose shapes differ from the
    run's (a ``model.keras`` from another run) is a ``RunError`` that names the file.
    """
    path = Path(path)
    try:
        if keras:
            raise Unsupported("the Keras model was asked for")
        model = NumpyModel.load(path)
        shapes = model.input_shape, model.output_shape
    except Unsupported:
        from .artifacts import load_model

        model = load_model(path)
        shapes = _keras_shapes(model)
    if schema is not None:
        check_shapes(path, *shapes, schema)
    return model


def check_shapes(path: Path, input_shape: tuple, output_shape: tuple, schema: dict) -> None:
    """The model's window and forecast shapes must be the ones the run's ``schema.json`` describes."""
    network = schema.get("network") or {}  # independent channels: one sequence per target (framing.py)
    want_in = (schema["input_length"], network.get("inputs", len(schema["features"])))
    want_out = (schema["horizon"], network.get("targets", len(schema["targets"])), schema.get("n_quantiles", 1))
    if tuple(input_shape) != want_in or tuple(output_shape) != want_out:
        raise RunError(
            f"the model reads {_steps(input_shape, 'features')} and forecasts {_outputs(output_shape)}, "
            f"but the run's schema.json says {_steps(want_in, 'features')} -> {_outputs(want_out)}",
            where=str(path),
            fix="this model.keras comes from another run: copy the whole run directory, or train again",
        )


def predict_windows(model, data, starts: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model-space forecasts ``(B, H, T, Q)`` for the given windows, batch by batch.

    ``model`` is a ``NumpyModel`` or a Keras model. For Keras, ``predict_on_batch`` runs the
    compiled predict step: under JAX an eager ``model(x)`` re-traces and compiles the recurrent
    scan on every call (8 s instead of 0.1 s for 10,000 windows, docs/benchmarks.md). The last
    batch is padded to ``batch_size`` so one shape compiles once.
    """
    starts = np.asarray(starts, dtype=np.int64)
    out = []
    for i in range(0, len(starts), batch_size):
        idx = starts[i : i + batch_size]
        n = len(idx)
        if n < batch_size and not (isinstance(model, NumpyModel) or getattr(model, "numpy", False)):
            # Keras: one padded shape compiles once per process (and is then found in the compilation
            # cache): the test split, the validation split and the one-window forecast share it
            idx = np.concatenate([idx, np.repeat(idx[-1:], batch_size - n)])
        out.append(data.unfold(model.predict_on_batch(data.model_inputs(idx)))[:n])
    if not out:
        return np.zeros((0, data.horizon, len(data.target_idx), 1), dtype=np.float32)
    return np.concatenate(out)


# --------------------------------------------------------------------------- reading the graph


def _outputs(shape: tuple) -> str:
    """``(H, T, Q)`` in words: a quantile model's Q quantiles are named, so a member from a quantile run says so."""
    if len(shape) != 3:
        return _steps(shape, "targets")
    kind = f" x {shape[2]} quantiles (a quantile model)" if shape[2] > 1 else " (a point model)"
    return _steps(shape, "targets") + kind


def _steps(shape: tuple, what: str) -> str:
    return f"{shape[0]} steps x {shape[1]} {what}" if len(shape) >= 2 else f"shape {tuple(shape)}"


def _check_ends(graph: dict, specs: list[dict]) -> None:
    """One input named ``past`` at the start, one output at the end."""
    inputs, outputs = graph.get("input_layers"), graph.get("output_layers")
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    if isinstance(outputs, list) and outputs and not isinstance(outputs[0], list):
        outputs = [outputs]
    if len(specs) < 2 or inputs != [["past", 0, 0]] or specs[0]["name"] != "past":
        raise Unsupported(f"inputs {graph.get('input_layers')!r}")
    if outputs != [[specs[-1]["name"], 0, 0]]:
        raise Unsupported(f"outputs {graph.get('output_layers')!r}")


def _input_shape(spec: dict) -> tuple[int, int]:
    shape = spec["config"].get("batch_shape")
    if spec["class_name"] != "InputLayer" or spec["config"].get("dtype", "float32") != "float32":
        raise Unsupported("the first layer is not a float32 InputLayer")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) for n in shape[1:])):
        raise Unsupported(f"input batch_shape {shape!r}")
    return tuple(shape[1:])


def _inbound(spec: dict) -> str:
    """The one layer that feeds ``spec`` (with no mask, state or other extra argument)."""
    nodes = spec.get("inbound_nodes") or []
    if len(nodes) != 1 or len(nodes[0].get("args", [])) != 1:
        raise Unsupported(f"layer {spec['name']!r} has several inputs or calls")
    arg = nodes[0]["args"][0]
    if not isinstance(arg, dict) or arg.get("class_name") != "__keras_tensor__":
        raise Unsupported(f"layer {spec['name']!r} is not called on one tensor")
    extra = {k: v for k, v in (nodes[0].get("kwargs") or {}).items() if v not in (None, False)}
    if extra:
        raise Unsupported(f"layer {spec['name']!r} is called with {sorted(extra)}")
    return arg["config"]["keras_history"][0]


OWN_LAYERS = ("rnnforecast>SegmentRecurrence",)  # rnnforecast's layers this module replays (segments.py)


def _check_layer(spec: dict) -> None:
    """A built-in Keras layer (or one of OWN_LAYERS) computing in float32 (no mixed precision)."""
    own = spec.get("registered_name") in OWN_LAYERS
    if not own and (spec.get("module") != "keras.layers" or spec.get("registered_name") is not None):
        raise Unsupported(f"layer {spec['name']!r} is not a built-in Keras layer")
    dtype = spec["config"].get("dtype", "float32")
    name = dtype["config"]["name"] if isinstance(dtype, dict) else dtype
    if name != "float32":
        raise Unsupported(f"layer {spec['name']!r} computes in {name!r}")


def _activation(name) -> Callable:
    if not isinstance(name, str):
        raise Unsupported(f"activation {name!r}")
    try:
        return recurrence.activation_fn(name)
    except ValueError as e:
        raise Unsupported(str(e)) from None


def _array(group, key: str, shape: tuple[int, ...]) -> np.ndarray:
    value = np.asarray(group["vars"][key], dtype=np.float64)
    if value.shape != shape:
        raise Unsupported(f"weight {group.name}/vars/{key} has shape {value.shape}, expected {shape}")
    return value


# --------------------------------------------------------------------------- layers


def _cell(config: dict, class_name: str, group, n_in: int) -> tuple[str, recurrence.ArrayLayer]:
    """One unidirectional recurrent layer: its cell name and weights."""
    cell = CELLS.get(class_name)
    if cell is None:
        raise Unsupported(f"recurrent layer class {class_name!r}")
    if config.get("stateful") or config.get("return_state"):
        raise Unsupported(f"layer {config.get('name')!r} is stateful or returns its state")
    units, k = config["units"], BLOCKS[cell]
    reset_after = bool(config.get("reset_after", True)) if cell == "gru" else False
    cell_group = group["cell"]
    bias = None
    if config.get("use_bias", True):
        bias = _array(cell_group, "2", (2, k * units) if reset_after else (k * units,))
    weights = recurrence.ArrayCell(
        units=units,
        kernel=_array(cell_group, "0", (n_in, k * units)),
        recurrent_kernel=_array(cell_group, "1", (units, k * units)),
        bias=bias,
        activation=config.get("activation", "tanh"),
        recurrent_activation=config.get("recurrent_activation", "sigmoid"),
        reset_after=reset_after,
    )
    _activation(weights.activation)
    if cell != "simple_rnn":
        _activation(weights.recurrent_activation)
    return cell, recurrence.ArrayLayer(weights, go_backwards=bool(config.get("go_backwards", False)))


def _sequence_input(config: dict, shape: tuple) -> tuple[int, int]:
    if len(shape) != 2:
        raise Unsupported(f"layer {config.get('name')!r} receives shape {shape}, not (steps, features)")
    return shape


def _recurrent_builder(class_name: str):
    def build(config: dict, group, shape: tuple):
        steps, n_in = _sequence_input(config, shape)
        cell, layer = _cell(config, class_name, group, n_in)
        sequences = bool(config.get("return_sequences", False))

        def run(x):  # (B, L, F) -> (B, L, U) or (B, U)
            hidden = recurrence.replay(cell, layer, x)["hidden"]
            return hidden if sequences else hidden[:, -1]

        units = layer.cell.units
        return run, ((steps, units) if sequences else (units,))

    return build


def _bidirectional(config: dict, group, shape: tuple):
    steps, n_in = _sequence_input(config, shape)
    if config.get("merge_mode", "concat") != "concat":
        raise Unsupported(f"bidirectional merge_mode {config.get('merge_mode')!r}")
    forward = config["layer"]
    backward = config.get("backward_layer")
    if backward is None:  # what Keras does: the forward layer's config, reading the other way
        backward = {
            **forward,
            "config": {**forward["config"], "go_backwards": not forward["config"].get("go_backwards")},
        }
    for spec in (forward, backward):
        _check_layer({"name": config.get("name"), **spec})  # built-in, float32
    fcell, flayer = _cell(forward["config"], forward["class_name"], group["forward_layer"], n_in)
    bcell, blayer = _cell(backward["config"], backward["class_name"], group["backward_layer"], n_in)
    sequences = bool(forward["config"].get("return_sequences", False))
    if bool(backward["config"].get("return_sequences", False)) != sequences:
        raise Unsupported("the two directions differ in return_sequences")

    def run(x):  # (B, L, F) -> (B, L, 2U) or (B, 2U)
        merged, last = recurrence.merge_directions(
            recurrence.replay(fcell, flayer, x), recurrence.replay(bcell, blayer, x)
        )
        return merged["hidden"] if sequences else last

    units = flayer.cell.units + blayer.cell.units
    return run, ((steps, units) if sequences else (units,))


def _dense(config: dict, group, shape: tuple):
    units = config["units"]
    kernel = _array(group, "0", (shape[-1], units))
    bias = _array(group, "1", (units,)) if config.get("use_bias", True) else np.zeros(units)
    act = _activation(config.get("activation", "linear"))
    return (lambda x: act(x @ kernel + bias)), (*shape[:-1], units)


def _flatten(config: dict, group, shape: tuple):
    if config.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"Flatten data_format {config.get('data_format')!r}")
    size = int(np.prod(shape))
    return (lambda x: x.reshape(len(x), size)), (size,)


def _reshape(config: dict, group, shape: tuple):
    target = tuple(config["target_shape"])
    if not all(isinstance(n, int) and n > 0 for n in target) or np.prod(target) != np.prod(shape):
        raise Unsupported(f"Reshape {shape} -> {target}")
    return (lambda x: x.reshape(len(x), *target)), target


def _cropping(config: dict, group, shape: tuple):
    lo, hi = config.get("cropping", (1, 1))
    steps = shape[0] - lo - hi
    if len(shape) != 2 or steps < 1:
        raise Unsupported(f"Cropping1D {config.get('cropping')} of {shape}")
    return (lambda x: x[:, lo : lo + steps]), (steps, shape[1])


def _segments(config: dict, group, shape: tuple):
    from .segments import SegmentSpec, numpy_forward

    spec = SegmentSpec(**{**config["spec"], "units": tuple(config["spec"]["units"])})
    if tuple(shape) != (spec.input_length, spec.n_inputs):
        raise Unsupported(f"segment layer built for {(spec.input_length, spec.n_inputs)}, receives {shape}")
    for name in (spec.activation, spec.recurrent_activation):
        _activation(name)
    w = {name: _array(group, str(k), want) for k, (name, want) in enumerate(spec.weight_shapes())}
    return (lambda x: numpy_forward(spec, w, x)), (spec.n_out, spec.units[-1])


def _identity(config: dict, group, shape: tuple):
    return (lambda x: x), shape


BUILDERS = {
    **{name: _recurrent_builder(name) for name in CELLS},
    "Bidirectional": _bidirectional,
    "Dense": _dense,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Cropping1D": _cropping,
    "SegmentRecurrence": _segments,
    **{name: _identity for name in IDENTITY},
}


def _keras_shapes(model) -> tuple[tuple, tuple]:
    """Shapes of the ``past`` window input and of the output (a model may also take a ``future`` input)."""
    inputs = model.inputs
    if isinstance(inputs, dict):
        past = inputs["past"]
    else:
        past = next((t for t in inputs if str(getattr(t, "name", "")).startswith("past")), inputs[0])
    outputs = model.outputs
    outputs = list(outputs.values()) if isinstance(outputs, dict) else list(outputs)
    return tuple(past.shape[1:]), tuple(outputs[0].shape[1:])

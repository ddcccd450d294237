"""recurrence.trace recomputes each recurrent layer from its weights; Keras' own outputs are the reference."""

from __future__ import annotations

import numpy as np
import pytest

from rnnforecast import recurrence
from rnnforecast.cells import CELLS
from rnnforecast.config import ModelConfig
from rnnforecast.models import build_model

L, F, ATOL = 7, 3, 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:model settings .* leave the cuDNN:UserWarning")  # intended here


def _model(cell, units, **kwargs):
    from rnnforecast import backend

    backend.activate("auto")  # choose the backend before Keras is imported, as every other test does
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(cell=cell, units=units, **kwargs), L, F, horizon=2, n_targets=1, seed=0)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # random biases too: the default zero biases would hide bias-handling bugs
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.normal(size=(5, L, F)).astype("float32")  # (N, L, F)
    return model, x


def _keras_outputs(model, layer_names, x):
    """What Keras itself returns from the named layers, in one call (one compilation under JAX)."""
    import keras

    sub = keras.Model(model.inputs, {name: model.get_layer(name).output for name in layer_names})
    outputs = sub({"past": x}, training=False)
    return [keras.ops.convert_to_numpy(outputs[name]) for name in layer_names]


CASES = [
    ("simple_rnn", {}),
    ("simple_rnn", {"activation": "relu"}),
    ("lstm", {}),
    ("lstm", {"activation": "softsign"}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
]


@pytest.mark.parametrize("units", [[4], [4, 3]], ids=["one_layer", "two_layers"])
@pytest.mark.parametrize(
    "cell,kwargs", CASES, ids=[f"{c}-{'-'.join(map(str, k.values())) or 'default'}" for c, k in CASES]
)
def test_trace_matches_keras(cell, kwargs, units):
    model, x = _model(cell, units, **kwargs)
    entries = recurrence.trace(model, x)
    assert [e["name"] for e in entries] == [f"{cell}_{i}" for i in range(len(units))]
    expected = _keras_outputs(model, [e["name"] for e in entries], x)
    np.testing.assert_allclose(entries[-1]["hidden"][:, -1], expected[-1], atol=ATOL)  # (N, U)
    if len(units) == 2:  # the first layer returns its full sequence (N, L, U)
        np.testing.assert_allclose(entries[0]["hidden"], expected[0], atol=ATOL)
    for entry, u in zip(entries, units):
        assert entry["cell"] == cell and entry["units"] == u
        for key in ("hidden", *CELLS[cell].gates) + (("cell_state",) if cell == "lstm" else ()):
            assert entry[key].shape == (len(x), L, u), key


def test_bidirectional_matches_keras():
    model, x = _model("lstm", [4, 3], bidirectional=True)
    first, last = recurrence.trace(model, x)
    assert first["units"] == 8 and first["bidirectional"]
    expected = _keras_outputs(model, ["bidirectional_0", "bidirectional_1"], x)
    np.testing.assert_allclose(first["hidden"], expected[0], atol=ATOL)  # (N, L, 2U) in time order
    np.testing.assert_allclose(last["output"], expected[1], atol=ATOL)  # forward at L-1, backward at 0


def test_gates_lie_in_unit_interval_and_lstm_cell_state_is_consistent():
    model, x = _model("lstm", [4])
    (entry,) = recurrence.trace(model, x)
    for gate in CELLS["lstm"].gates:
        assert ((entry[gate] > 0) & (entry[gate] < 1)).all()
    np.testing.assert_allclose(entry["hidden"], entry["output_gate"] * np.tanh(entry["cell_state"]), atol=1e-12)


def test_gate_saturation_counts_fractions_per_unit():
    gate = np.array([[[0.05, 0.5], [0.95, 0.5]], [[0.05, 0.99], [0.5, 0.0]]])  # (N=2, L=2, U=2)
    entry = {"cell": "gru", "update_gate": gate, "reset_gate": np.full((2, 2, 2), 0.5)}
    sat = recurrence.gate_saturation(entry)
    np.testing.assert_allclose(sat["update_gate"]["low"], [0.5, 0.25])
    np.testing.assert_allclose(sat["update_gate"]["high"], [0.25, 0.25])
    np.testing.assert_allclose(sat["reset_gate"]["low"], [0, 0])
    assert recurrence.gate_saturation({"cell": "simple_rnn"}) == {}


def test_unknown_activation_names_the_supported_ones():
    with pytest.raises(ValueError, match="supported: tanh"):
        recurrence.activation_fn("gelu")

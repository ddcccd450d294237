"""Every gate that recurrence and inspect label is the gate Keras computes under that name.

The reference here is written from Keras' documented weight layout alone, never from ``cells.py``
or ``recurrence.py``: ``kernel``, ``recurrent_kernel`` and ``bias`` are column blocks in the order
LSTM ``[i | f | c | o]`` and GRU ``[z | r | h]`` (``keras/src/layers/rnn/{lstm,gru}.py``), GRU
``reset_after=True`` has a bias of shape (2, 3U) (input bias, recurrent bias). Each block gets its
own bias offset, so the gates differ in level and a swapped label cannot go unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnforecast import recurrence
from rnnforecast.config import ModelConfig
from rnnforecast.internals import inspect_model
from rnnforecast.models import build_model

N, L, F, U = 6, 5, 3, 4
ATOL = 1e-5
# Bias offset per column block: LSTM i, f, c, o and GRU z, r, h sit at clearly different levels.
OFFSETS = {"lstm": (-3.0, 3.0, 0.0, 0.0), "gru": (2.0, -2.0, 0.0)}
pytestmark = pytest.mark.filterwarnings("ignore:model settings .* leave the cuDNN:UserWarning")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _model(cell, **kwargs):
    """A one-layer model with random weights and per-block bias offsets; returns (model, x, W, Uk, b) in float64."""
    from rnnforecast import backend

    backend.activate("auto")  # before the first Keras import, as the CLI does
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(cell=cell, units=[U], **kwargs), L, F, horizon=1, n_targets=1, seed=0)
    layer = model.get_layer(f"{cell}_0")
    rng = np.random.default_rng(3)
    kernel, recurrent, bias = (rng.normal(0, 0.6, w.shape) for w in layer.get_weights())
    bias = bias + np.repeat(OFFSETS[cell], U)  # broadcasts over GRU's (2, 3U) bias too
    layer.set_weights([w.astype("float32") for w in (kernel, recurrent, bias)])
    w = [np.asarray(v, dtype=np.float64) for v in layer.get_weights()]  # what Keras really holds (float32)
    x = rng.normal(size=(N, L, F))  # (N, L, F)
    return model, x.astype("float32"), *w


def _cols(a, k):
    """Column block k (0-based) of a (..., n*U) array."""
    return a[..., k * U : (k + 1) * U]


def lstm_reference(x, kernel, recurrent, bias):
    h = np.zeros((len(x), U))
    c = np.zeros((len(x), U))
    out = {k: [] for k in ("input_gate", "forget_gate", "output_gate", "cell_state", "hidden")}
    for t in range(x.shape[1]):
        z = x[:, t].astype(np.float64) @ kernel + h @ recurrent + bias  # (N, 4U) = [i | f | c | o]
        i, f, o = sigmoid(_cols(z, 0)), sigmoid(_cols(z, 1)), sigmoid(_cols(z, 3))
        c = f * c + i * np.tanh(_cols(z, 2))
        h = o * np.tanh(c)
        for key, value in zip(out, (i, f, o, c, h)):
            out[key].append(value)
    return {k: np.stack(v, axis=1) for k, v in out.items()}  # (N, L, U) each


def gru_reference(x, kernel, recurrent, bias, reset_after):
    h = np.zeros((len(x), U))
    out = {k: [] for k in ("update_gate", "reset_gate", "hidden")}
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * U))
    for t in range(x.shape[1]):
        xw = x[:, t].astype(np.float64) @ kernel + b_in  # (N, 3U) = [z | r | h]
        hu = h @ recurrent + b_rec
        z = sigmoid(_cols(xw, 0) + _cols(hu, 0))
        r = sigmoid(_cols(xw, 1) + _cols(hu, 1))
        if reset_after:
            cand = np.tanh(_cols(xw, 2) + r * _cols(hu, 2))
        else:
            cand = np.tanh(_cols(xw, 2) + (r * h) @ _cols(recurrent, 2))
        h = z * h + (1.0 - z) * cand
        for key, value in zip(out, (z, r, h)):
            out[key].append(value)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


CASES = [("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]


def _reference(cell, kwargs, x, w):
    return lstm_reference(x, *w) if cell == "lstm" else gru_reference(x, *w, kwargs["reset_after"])


@pytest.mark.parametrize("cell,kwargs", CASES, ids=["lstm", "gru-reset_after", "gru-reset_before"])
def test_trace_labels_every_gate_as_keras_computes_it(cell, kwargs):
    model, x, *w = _model(cell, **kwargs)
    ref = _reference(cell, kwargs, x, w)
    (entry,) = recurrence.trace(model, x)
    for key, expected in ref.items():
        np.testing.assert_allclose(entry[key], expected, atol=ATOL, err_msg=key)
    # The offsets make the gates distinguishable: a swap of two labels would move each mean by > 0.2.
    means = {k: ref[k].mean() for k in ref if k.endswith("_gate")}
    assert min(np.diff(sorted(means.values()))) > 0.2, means


@pytest.mark.parametrize("cell,kwargs", CASES[:2], ids=["lstm", "gru"])
def test_inspect_saturation_is_per_correctly_named_gate(cell, kwargs, tmp_path):
    """What inspect writes (and prints) per gate name is the saturation of the gate Keras computes."""
    model, x, *w = _model(cell, **kwargs)
    ref = _reference(cell, kwargs, x, w)
    result = inspect_model(model, x, [f"x{j}" for j in range(F)], tmp_path)
    (layer,) = result["layers"]
    assert set(layer["saturation"]) == {k for k in ref if k.endswith("_gate")}
    for gate, sat in layer["saturation"].items():
        np.testing.assert_allclose(sat["low"], (ref[gate] < 0.1).mean(axis=(0, 1)), err_msg=gate)
        np.testing.assert_allclose(sat["high"], (ref[gate] > 0.9).mean(axis=(0, 1)), err_msg=gate)

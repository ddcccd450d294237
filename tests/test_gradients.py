"""Input gradients against a hand-derived chain rule, and the long-range gradient-flow ratio on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnforecast import gradients
from rnnforecast.config import ModelConfig
from rnnforecast.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def test_simple_rnn_gradient_matches_the_chain_rule():
    """One tanh unit: h_t = tanh(w_in . x_t + w_rec h_{t-1} + b), y = w_head[s] h_L + b_head[s].

    d y / d x_k = w_head[s] * (1 - h_k^2) * w_in * prod_{t>k} w_rec (1 - h_t^2)
    """
    steps, n_features, step = 6, 2, 1
    model = build_model(ModelConfig(cell="simple_rnn", units=[1]), steps, n_features, horizon=2, n_targets=1, seed=0)
    w_in, w_rec, b = np.array([0.7, -0.4]), 0.9, 0.1
    w_head = np.array([1.3, -0.6])
    model.get_layer("simple_rnn_0").set_weights([w_in.reshape(2, 1), np.array([[w_rec]]), np.array([b])])
    model.get_layer("head").set_weights([w_head.reshape(1, 2), np.array([0.05, 0.2])])
    x = np.random.default_rng(0).normal(size=(3, steps, n_features))  # (N, L, F)

    h = np.zeros((len(x), steps))
    prev = np.zeros(len(x))
    for t in range(steps):
        prev = h[:, t] = np.tanh(x[:, t] @ w_in + w_rec * prev + b)
    expected = np.empty_like(x)
    for k in range(steps):
        chain = (1 - h[:, k] ** 2) * np.prod(w_rec * (1 - h[:, k + 1 :] ** 2), axis=1)  # d h_L / d a_k  (N,)
        expected[:, k] = w_head[step] * chain[:, None] * w_in[None, :]

    got = gradients.input_gradients(model, x.astype("float32"), target_step=step)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)

    flow = gradients.gradient_flow(model, x.astype("float32"), target_step=step)
    norms = np.linalg.norm(expected, axis=-1).mean(axis=0)
    np.testing.assert_allclose(flow["norm_per_step"], norms, rtol=1e-4)
    assert flow["ratio"] == pytest.approx(norms[0] / norms[-1], rel=1e-4)
    np.testing.assert_allclose(
        gradients.saliency(model, x.astype("float32"), step), np.abs(expected).mean(0), rtol=1e-4
    )


def test_target_arguments_are_checked():
    model = build_model(ModelConfig(cell="gru", units=[2]), 4, 1, horizon=2, n_targets=1, seed=0)
    x = np.zeros((2, 4, 1), "float32")
    with pytest.raises(
        ValueError, match=r"`target_step` must be in \[0, 1\] \(the horizon\)\. Received: target_step=2"
    ):
        gradients.input_gradients(model, x, target_step=2)
    with pytest.raises(
        ValueError, match=r"`target_index` must be in \[0, 0\] \(the targets\)\. Received: target_index=1"
    ):
        gradients.input_gradients(model, x, target_index=1)


def test_batches_give_the_same_gradients_as_one_call():
    model = build_model(ModelConfig(cell="lstm", units=[3]), 5, 2, horizon=1, n_targets=1, seed=0)
    x = np.random.default_rng(1).normal(size=(7, 5, 2)).astype("float32")
    whole = gradients.input_gradients(model, x)
    np.testing.assert_allclose(gradients.input_gradients(model, x, batch_size=3), whole, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gradients.input_gradients(model, x[4:5]), whole[4:5], rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- long-range dependency

# The target is the oldest input of the window, LAG = 44 steps before the last one. The 44 later inputs are
# distractors with twice the spread: an LSTM's input gate can shut them out of its cell state, a SimpleRNN
# takes every input through the same weights. With all inputs N(0, 1) a 16-unit SimpleRNN often learns to
# latch the first value (it meets a zero state) into saturated units, and then its gradient does not vanish.
# How the seed was chosen (issue 12): seed 6 was picked together with these settings, and the test rests on it.
# Measured pass rate of this test's two conditions on other seeds (JAX, CPU, 2026-11, tests/test_gradients.py's
# long_range_ratios with LONG["seed"] = s; about 25 s per seed): seeds 0, 1, 2, 4, 6 pass (LSTM loss < 0.003,
# ratio 292..662 vs SimpleRNN 0.0006..0.14); seeds 3, 5, 7 fail because the LSTM has not learned the lag within
# 80 epochs (loss 0.45..0.77, ratio 0.9..8.4). So 5 of 8 seeds: the claim "an LSTM keeps the gradient flowing"
# holds when it has learned the task, and 80 epochs do not guarantee that; a sweep of seeds is too slow for CI.
LONG = dict(input_length=45, windows=3000, epochs=80, batch_size=32, learning_rate=5e-3, distractor_scale=2.0, seed=6)
LAG = LONG["input_length"] - 1


def _long_range_data(seed: int, windows: int, input_length: int, distractor_scale: float):
    x = np.random.default_rng(seed).normal(size=(windows, input_length, 1)).astype("float32")  # (N, L, 1)
    k = input_length - 1 - LAG  # the step to remember (0: the oldest)
    x[:, k + 1 :] *= distractor_scale
    y = x[:, k, 0].reshape(-1, 1, 1, 1)  # (N, horizon=1, targets=1, 1)
    return x, y


def _numpy_init(model, seed: int) -> None:
    """Keras' default initialisers (glorot kernel, orthogonal recurrent kernel, LSTM forget bias 1), drawn in
    numpy: the same starting weights on every backend, whose own random streams differ."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for i, w in enumerate(layer.get_weights()):
            if w.ndim == 2 and (i == 0 or layer.name == "head"):
                limit = np.sqrt(6 / sum(w.shape))
                new.append(rng.uniform(-limit, limit, w.shape))
            elif w.ndim == 2:  # recurrent kernel (U, k*U): orthonormal rows
                q, r = np.linalg.qr(rng.normal(size=w.shape[::-1]))
                new.append((q * np.sign(np.diag(r))).T)
            else:
                bias = np.zeros(w.shape)
                if layer.name.startswith("lstm"):
                    units = w.shape[0] // 4
                    bias[units : 2 * units] = 1.0  # unit_forget_bias, column order [i, f, c, o]
                new.append(bias)
        layer.set_weights([w.astype("float32") for w in new])


def long_range_ratios() -> dict:
    """Train a SimpleRNN and an LSTM on the long-range task; their gradient-flow ratios and final losses."""
    import keras

    p = LONG
    x, y = _long_range_data(p["seed"], p["windows"], p["input_length"], p["distractor_scale"])
    out = {"backend": keras.backend.backend()}
    for cell in ("simple_rnn", "lstm"):
        keras.utils.set_random_seed(p["seed"])
        model = build_model(ModelConfig(cell=cell, units=[16]), p["input_length"], 1, 1, 1, seed=p["seed"])
        _numpy_init(model, p["seed"] + 1)
        # XLA: TensorFlow on CPU trains these cells about 2x faster with it (JAX always compiles)
        model.compile(optimizer=keras.optimizers.Adam(p["learning_rate"]), loss="mse", jit_compile=True)
        history = model.fit(
            {"past": x}, y, epochs=p["epochs"], batch_size=p["batch_size"], shuffle=False, verbose=0
        )  # iid windows: no shuffle needed, and none keeps both backends on the same batches
        flow = gradients.gradient_flow(model, x[:256])
        out[cell] = {"ratio": flow["ratio"], "loss": history.history["loss"][-1]}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_lstm_keeps_gradient_flowing_where_simple_rnn_loses_it(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, __file__], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    rnn, lstm = result["simple_rnn"], result["lstm"]
    print(f"{backend}: ratio simple_rnn={rnn['ratio']:.3g} lstm={lstm['ratio']:.3g}")
    assert lstm["loss"] < 0.1, f"the LSTM did not learn to carry the value across the window: {result}"
    assert lstm["ratio"] >= 100 * rnn["ratio"], result


if __name__ == "__main__":  # the slow test runs this file in a fresh process per backend
    from rnnforecast import backend as _backend

    _backend.activate(os.environ.get("KERAS_BACKEND", "auto"))
    print(json.dumps(long_range_ratios()))

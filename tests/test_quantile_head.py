"""quantile_head: quantiles never cross, the pinball loss matches numpy, and the trained median matches a point model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnforecast import backend
from rnnforecast import intervals as iv

backend.activate("auto")


def _head_model(units: int, n_features: int, horizon: int, n_targets: int, qs, seed: int):
    import keras

    from rnnforecast import quantile_head

    keras.utils.set_random_seed(seed)
    x_in = keras.Input(shape=(n_features,))
    return keras.Model(x_in, quantile_head.quantile_head(x_in, horizon, n_targets, qs))


@pytest.fixture(scope="module")
def head():
    return _head_model(6, 6, 3, 2, list(iv.quantile_levels([50, 80, 95])), seed=0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0))
def test_quantiles_never_cross_for_random_weights(head, seed, scale):
    rng = np.random.default_rng(seed)
    for layer in head.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.normal(0, scale, size=(16, 6)).astype("float32")
    q = np.asarray(head.predict(x, verbose=0))  # (B, H, T, Q)
    assert q.shape == (16, 3, 2, 7)
    assert (np.diff(q, axis=-1) >= 0).all()


def test_monotone_layer_by_hand():
    import keras

    from rnnforecast import quantile_head

    layer = quantile_head.monotone_layer_class()(median_index=1)
    raw = np.array([[[[0.0, 2.0, np.log(np.e - 1)]]]], dtype="float32")  # softplus(0) = ln 2, softplus(ln(e-1)) = 1
    out = keras.ops.convert_to_numpy(layer(raw))
    np.testing.assert_allclose(out[0, 0, 0], [2 - np.log(2), 2.0, 3.0], rtol=1e-6)
    assert layer.get_config()["median_index"] == 1


def test_pinball_loss_matches_numpy():
    import keras

    from rnnforecast import quantile_head

    qs = [0.1, 0.5, 0.9]
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 2, 1)).astype("float32")
    f = rng.normal(size=(4, 2, 1, 3)).astype("float32")
    loss = keras.ops.convert_to_numpy(quantile_head.pinball_loss(qs)(y, f))
    expected = np.mean(np.stack([iv.pinball(y, f[..., k], q) for k, q in enumerate(qs)], -1), axis=-1)  # (B, H, T)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    loss4 = keras.ops.convert_to_numpy(quantile_head.pinball_loss(qs)(y[..., None], f))  # (B, H, T, 1) works too
    np.testing.assert_allclose(loss4, expected, rtol=1e-5)


def test_saved_model_round_trip(tmp_path, head):
    import keras

    from rnnforecast import quantile_head

    path = tmp_path / "q.keras"
    head.save(path)
    back = keras.saving.load_model(path, custom_objects=quantile_head.custom_objects())
    x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    np.testing.assert_allclose(back.predict(x, verbose=0), head.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.slow
def test_median_of_pinball_model_equals_point_model_on_deterministic_series():
    """A noiseless sine: the pinball-trained median and an MSE-trained point model both find the next values."""
    import keras

    from rnnforecast import quantile_head

    lag, horizon = 6, 2
    t = np.arange(600)
    y = np.sin(2 * np.pi * t / 24).astype("float32")
    starts = np.arange(len(y) - lag - horizon)
    x = y[starts[:, None] + np.arange(lag)]  # (B, L)
    target = y[starts[:, None] + lag + np.arange(horizon)][..., None]  # (B, H, 1)
    qs = list(iv.quantile_levels([80]))

    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(lag,))
    hidden = keras.layers.Dense(16, activation="tanh")(inp)
    q_model = keras.Model(inp, quantile_head.quantile_head(hidden, horizon, 1, qs))
    q_model.compile(optimizer=keras.optimizers.Adam(0.01), loss=quantile_head.pinball_loss(qs))
    q_model.fit(x, target, epochs=150, batch_size=64, verbose=0, shuffle=False)

    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(lag,))
    hidden = keras.layers.Dense(16, activation="tanh")(inp)
    point = keras.layers.Reshape((horizon, 1))(keras.layers.Dense(horizon)(hidden))
    p_model = keras.Model(inp, point)
    p_model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    p_model.fit(x, target, epochs=150, batch_size=64, verbose=0, shuffle=False)

    q = q_model.predict(x, verbose=0)  # (B, H, 1, 3)
    p = p_model.predict(x, verbose=0)  # (B, H, 1)
    median = q[..., 1]
    assert np.abs(median - target).mean() < 0.02  # measured 0.0045 (sine amplitude 1)
    assert np.abs(median - p).mean() < 0.02  # measured 0.0045
    assert (np.diff(q, axis=-1) >= 0).all()
    # Without noise the band collapses toward the median: the 80% band is narrow.
    assert (q[..., 2] - q[..., 0]).mean() < 0.1  # measured 0.021

"""The reference model: a Keras LSTM(64) written the TensorFlow-tutorial way, in about forty lines.

z-score on the training split, last hidden state -> Dense(H), Adam 1e-3, MSE, early stopping
(patience 5, best weights restored), batch 32. Nothing tuned.
"""

from __future__ import annotations

import os
import time

import numpy as np

from bench.accuracy import tasks

MAX_EPOCHS = 20  # the tutorial's MAX_EPOCHS; rnnforecast's default training.epochs is 20 too


def fit_predict(values: np.ndarray, target: int, input_length: int, horizon: int, seed: int, epochs: int = MAX_EPOCHS):
    """Train on the train split, early-stop on val, forecast every test window.

    Returns ``(forecast (B, H) in original units, train seconds, best epoch, epochs run)``.
    """
    # The backend rnnforecast picks by default (runtime.backend: auto -> jax when installed): same kernels, fair times.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    keras.utils.set_random_seed(seed)
    b = tasks.split_bounds(len(values))
    lo, hi = b["train"]
    mean, std = values[lo:hi].mean(axis=0), values[lo:hi].std(axis=0)
    z = ((values - mean) / std).astype("float32")  # (N, F)
    data = {
        k: tasks.windows(
            z, tasks.starts(*b[k], input_length, horizon, lookback=k != "train"), input_length, horizon, target
        )
        for k in b
    }

    model = keras.Sequential(
        [
            keras.Input((input_length, values.shape[1])),
            keras.layers.LSTM(64),  # return_sequences=False: the last hidden state
            keras.layers.Dense(horizon),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(
        *data["train"], validation_data=data["val"], epochs=epochs, batch_size=32, callbacks=[stop], verbose=0
    )
    seconds = time.perf_counter() - t0
    pred = model.predict(data["test"][0], batch_size=256, verbose=0)  # (B, H), z units
    val_loss = hist.history["val_loss"]
    return pred * std[target] + mean[target], seconds, int(np.argmin(val_loss)) + 1, len(val_loss)

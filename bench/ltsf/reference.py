"""Same-run references on the exact long-horizon protocol: persistence and DLinear (Zeng et al. 2023) in Keras.

Written from the paper's description, not from rnnforecast: z-score every column with the mean and
(population) standard deviation of rows [0, 8640); a window of L=96 rows forecasts the next H rows; a
window belongs to the split of its first target (train targets before row 8640, validation in
[8640, 11520), test in [11520, 14400)); every test window is scored (2881 - H), no batch dropped; MSE
and MAE in z-units over windows x steps x channels.

DLinear: a moving average (kernel 25, the series' ends repeated) splits each input channel into trend
and remainder; one linear map over time each (shared by the channels), summed. Trained as the paper's
ETTh1 script: Adam, learning rate 0.005 halved every epoch, batch 32, MSE, at most 10 epochs, early
stopping on validation MSE with patience 3 and the best weights kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROWS, TRAIN_END, VAL_END = 14400, 8640, 11520
L = 96


def load_z(csv: str) -> np.ndarray:
    """``(14400, 7)`` z-scored values, statistics from the training rows only."""
    df = pd.read_csv(csv).iloc[:ROWS]
    x = df.drop(columns=["date"]).to_numpy(np.float64)
    mean, std = x[:TRAIN_END].mean(axis=0), x[:TRAIN_END].std(axis=0)
    return (x - mean) / std


def starts(split: str, horizon: int) -> np.ndarray:
    """Window start rows whose first target lies in ``split``."""
    first, last = {"train": (L, TRAIN_END), "val": (TRAIN_END, VAL_END), "test": (VAL_END, ROWS)}[split]
    # first target row t = s + L must be in [first, last) and the last target t + H - 1 < last
    return np.arange(first - L, last - L - horizon + 1)


def windows(z: np.ndarray, s: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    x = z[s[:, None] + np.arange(L)]  # (B, L, C)
    y = z[s[:, None] + L + np.arange(horizon)]  # (B, H, C)
    return x.astype(np.float32), y.astype(np.float32)


def scores(pred: np.ndarray, y: np.ndarray) -> dict:
    err = pred.astype(np.float64) - y
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "windows": int(len(y))}


def persistence(csv: str, horizon: int) -> dict:
    z = load_z(csv)
    x, y = windows(z, starts("test", horizon), horizon)
    return scores(np.repeat(x[:, -1:, :], horizon, axis=1), y)


def dlinear(csv: str, horizon: int, seed: int) -> dict:
    import keras

    keras.utils.set_random_seed(seed)
    z = load_z(csv)
    data = {k: windows(z, starts(k, horizon), horizon) for k in ("train", "val", "test")}
    model = _dlinear_model(keras, data["train"][0].shape[-1], horizon)
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="mse")
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.005 * 0.5**epoch)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model.fit(
        *data["train"],
        validation_data=data["val"],
        epochs=10,
        batch_size=32,
        shuffle=True,
        callbacks=[halve, stop],
        verbose=0,
    )
    x, y = data["test"]
    return scores(model.predict(x, batch_size=512, verbose=0), y)


def _dlinear_model(keras, channels: int, horizon: int, kernel: int = 25):
    x = keras.Input((L, channels))  # (B, L, C)
    pad = (kernel - 1) // 2
    padded = keras.layers.Concatenate(axis=1)(
        [keras.ops.repeat(x[:, :1], pad, axis=1), x, keras.ops.repeat(x[:, -1:], pad, axis=1)]
    )
    trend = keras.layers.AveragePooling1D(kernel, strides=1, padding="valid")(padded)  # (B, L, C)
    season = x - trend
    over_time = keras.layers.Permute((2, 1))  # (B, C, L): a Dense maps the L steps of each channel
    out = keras.layers.Dense(horizon)(over_time(season)) + keras.layers.Dense(horizon)(over_time(trend))
    return keras.Model(x, keras.layers.Permute((2, 1))(out))  # (B, H, C)

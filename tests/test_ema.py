"""training.ema: the weights' exponential moving average (Polyak averaging through Keras' ``use_ema``).

Checked independently of Keras' averaging: one batch per epoch, so the weights after each epoch are the
weights after each optimizer step; a callback records them (the trained weights: the average is swapped
out again before later callbacks run), and the average is computed here by hand, a_1 = w_1,
a_k = m a_(k-1) + (1 - m) w_k. The model fit returns holds a_K (no early stopping) or a_best (early
stopping restores the best epoch's averaged weights), and every epoch's val loss is the loss of a_k.
A run killed by SIGKILL and resumed ends with the weights of an uninterrupted one (the average travels
in the checkpoint's optimizer state).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import kill_9_after, run_cli, sine_frame, write_config

MOMENTUM = 0.6
EPOCHS = 6


def _cfg(tmp_path, **training):
    sine_frame(400, seed=3, noise=0.3).to_csv(tmp_path / "sine.csv", index=False)
    return {
        "data": {"path": str(tmp_path / "sine.csv"), "time_column": "time", "target": "y", "scaling": "standard"},
        "window": {"input_length": 12, "horizon": 3},
        "model": {"cell": "gru", "units": [6], "segment_length": None, "residual": "none"},
        "training": {
            "epochs": EPOCHS,
            "batch_size": 4096,  # one batch, one optimizer step per epoch
            "learning_rate": 0.05,
            "ema": MOMENTUM,
            "early_stopping": None,
            "final_fit": False,
            **training,
        },
        "output": {"plots": False},
    }


def _trained(tmp_path, **training):
    """(fit result, the trained weights after every epoch, the model, the validation windows)."""
    import keras

    from rnnforecast import fit as T
    from rnnforecast import pipeline
    from rnnforecast.config import load_config
    from rnnforecast.data import load_source
    from rnnforecast.series import build

    cfg = load_config(str(write_config(tmp_path, _cfg(tmp_path, **training))), ())
    data = build(load_source(cfg), cfg)
    seen: list[list[np.ndarray]] = []

    class Record(keras.callbacks.Callback):  # runs after the average is swapped out again: the trained weights
        def on_epoch_end(self, epoch, logs=None):
            seen.append([np.array(w) for w in self.model.trainable_weights])

    model, fit, _ = pipeline.fit_model(cfg, data, tmp_path / "ckpt", quiet=True, callbacks=[Record()])
    val = T.WindowDataset(data, data.starts("val", stride=1), cfg.training.batch_size)
    return fit, seen, model, val


def _by_hand(seen: list[list[np.ndarray]], momentum: float) -> list[list[np.ndarray]]:
    out = [seen[0]]
    for w in seen[1:]:
        out.append([momentum * a + (1 - momentum) * x for a, x in zip(out[-1], w)])
    return out


def test_the_model_holds_the_average_of_its_epochs_weights_by_hand(tmp_path):
    fit, seen, model, val = _trained(tmp_path)
    assert len(seen) == EPOCHS and fit.epochs_run == EPOCHS
    averaged = _by_hand(seen, MOMENTUM)
    final = [np.array(w) for w in model.trainable_weights]
    for got, want in zip(final, averaged[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # not degenerate: the average is far from the last trained weights (a model that kept them fails above)
    assert max(np.abs(a - b).max() for a, b in zip(averaged[-1], seen[-1])) > 1e-2
    # every epoch's val loss is the averaged weights' loss, not the trained weights'
    for k in (0, 2, EPOCHS - 1):
        _set(model, averaged[k])
        got = model.evaluate(val, verbose=0, return_dict=True)["loss"]
        assert got == pytest.approx(fit.history["val_loss"][k], rel=1e-5)
        if k:  # a_1 = w_1: from the second epoch on, the trained weights score otherwise
            _set(model, seen[k])
            raw = model.evaluate(val, verbose=0, return_dict=True)["loss"]
            assert raw != pytest.approx(fit.history["val_loss"][k], rel=1e-3)


def _set(model, weights):
    for v, w in zip(model.trainable_weights, weights):
        v.assign(w)


def test_early_stopping_keeps_the_best_epochs_averaged_weights(tmp_path):
    fit, seen, model, _ = _trained(tmp_path, early_stopping={"patience": EPOCHS})
    averaged = _by_hand(seen, MOMENTUM)
    best = int(np.argmin(fit.history["val_loss"]))
    assert fit.best_epoch == best + 1
    for got, want in zip(model.trainable_weights, averaged[best]):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "value,words",
    [(1.0, "must be <= 0.9999"), (0, "must be > 0"), (-0.5, "must be > 0"), ("high", "training.ema")],
)
def test_a_bad_momentum_is_one_line(tmp_path, value, words):
    cfg = _cfg(tmp_path, ema=value)
    done = run_cli("validate", str(write_config(tmp_path, cfg)))
    assert done.returncode != 0
    assert words in done.stderr and "training.ema" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_config_help_lists_ema():
    done = run_cli("config")
    assert done.returncode == 0
    training = done.stdout[done.stdout.index("\ntraining:") : done.stdout.index("\noutput:")]
    assert "\n  ema: null  # momentum of an exponential moving average of the weights" in training


@pytest.mark.slow
def test_kill_9_and_resume_keep_the_average(tmp_path):
    """SIGKILL after the third epoch's checkpoint, then --resume: the forecast and scores equal an uninterrupted
    run's (a resumed run that restarted the average from its trained weights would not)."""
    cfg = _cfg(tmp_path, epochs=8, batch_size=64, learning_rate=0.01, ema=0.9)
    config = write_config(tmp_path, cfg)
    whole = tmp_path / "whole"
    done = run_cli("train", str(config), "--run-dir", str(whole), "-q")
    assert done.returncode == 0, done.stderr
    run, partial = tmp_path / "run", tmp_path / "run.partial"
    log = open(tmp_path / "kill.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", "train", str(config), "-q", "--run-dir", str(run)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    killed_at = kill_9_after(proc, partial, 2)
    assert 2 <= killed_at < 7 and not run.exists()
    resumed = run_cli("train", str(config), "-q", "--resume", str(partial))
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((whole / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    b = json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    assert b["mae"] == pytest.approx(a["mae"], rel=1e-6)
    fa, fb = pd.read_csv(whole / "forecast.csv"), pd.read_csv(run / "forecast.csv")
    np.testing.assert_allclose(fb["y"].to_numpy(), fa["y"].to_numpy(), rtol=1e-6)

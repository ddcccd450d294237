"""Training: a PyDataset over the one scaled array, seeded and resumable, with a guard against NaN losses.

Imported lazily (it imports Keras); call ``backend.activate`` first.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras  # noqa: E402  (the backend is chosen before this module is imported)
import numpy as np

from .config import Config
from .errors import TrainingError
from .series import SeriesData


class WindowDataset(keras.utils.PyDataset):
    """Batches gathered from ``SeriesData.values`` by index arithmetic; shuffled by (seed, epoch).

    Only the ``(n_windows,)`` start indices are held; each ``__getitem__`` copies one batch.
    """

    def __init__(self, data: SeriesData, starts: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data = data
        self.starts = np.asarray(starts, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._order = self.starts

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.shuffle:
            self._order = self.starts[np.random.default_rng([self.seed, epoch]).permutation(len(self.starts))]

    def __len__(self) -> int:
        return math.ceil(len(self.starts) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        x, y = self.data.batch(idx)  # (B, L, F), (B, H, T)
        return {"past": x}, y[..., None]  # targets carry the quantile axis: (B, H, T, 1)


def seed_everything(seed: int, deterministic: bool) -> None:
    from .backend import quiet_tensorflow_import

    quiet_tensorflow_import()  # model.save imports it later anyway; now, quietly
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
    else:
        # keras.utils.set_random_seed also seeds TensorFlow, importing it (about 2 s) for nothing
        # under JAX; set Keras' own global seed the way it does.
        try:
            from keras.src.backend.common import global_state
            from keras.src.random import seed_generator

            global_state.set_global_attribute("global_random_seed", seed)
            global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
        except ImportError:  # private API moved: fall back to the public call
            keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def compile_model(model, cfg: Config) -> None:
    t = cfg.training
    opt_cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[
        t.optimizer
    ]
    optimizer = opt_cls(learning_rate=t.learning_rate, clipnorm=t.clipnorm)
    loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber()}[t.loss]
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=["mse", "mae"] if t.loss != "mse" else ["mae"],
        jit_compile=t.jit_compile,
        steps_per_execution=t.steps_per_execution,
    )


# --------------------------------------------------------------------------- callbacks


class EpochSetter(keras.callbacks.Callback):
    def __init__(self, dataset: WindowDataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


class Progress(keras.callbacks.Callback):
    """One line per epoch: losses, learning rate, seconds."""

    def __init__(self, epochs: int, quiet: bool, stream=sys.stderr):
        super().__init__()
        self.epochs, self.quiet, self.stream = epochs, quiet, stream
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        dt = time.perf_counter() - self._t0
        self.epoch_seconds.append(dt)
        if not self.quiet:
            logs = logs or {}
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            print(
                f"epoch {epoch + 1:>3}/{self.epochs}  loss {logs.get('loss', float('nan')):.5f}  "
                f"val_loss {logs.get('val_loss', float('nan')):.5f}  lr {lr:.2g}  {dt:.1f}s",
                file=self.stream,
                flush=True,
            )


class NanGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss and put back the weights of the last good epoch."""

    def __init__(self):
        super().__init__()
        self.failed_epoch: int | None = None
        self._good = None

    def on_train_begin(self, logs=None):
        self._good = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            self.failed_epoch = self._epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.failed_epoch is None and all(math.isfinite(float(v)) for v in (logs or {}).values()):
            self._good = self.model.get_weights()
        elif self.failed_epoch is None:
            self.failed_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.failed_epoch is not None and self._good is not None:
            self.model.set_weights(self._good)


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C sets a flag and training stops at the next batch with KeyboardInterrupt.

    A signal landing inside Keras is not safe: ``pythonify_logs`` wraps the wait for the JAX step
    in a bare ``except:``, which swallowed the KeyboardInterrupt and let the run finish as if
    nothing happened. A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        super().__init__()
        self.requested = False

    def request(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _check(self, *args, **kwargs):
        if self.requested:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_begin = _check


class Checkpoint(keras.callbacks.Callback):
    """After every epoch: full model (with optimizer state), history, callback and RNG state.

    Files carry the epoch in their name (``model-0003.keras``, ``best-0003.npz``) and
    ``state.json`` names them; replacing ``state.json`` is the one atomic commit, so a kill at
    any instant leaves either the previous epoch's checkpoint or this one, never a mix.
    """

    def __init__(self, directory: Path, state: TrainState, callbacks: list):
        super().__init__()
        self.directory = directory
        self.state = state
        self.callbacks = callbacks

    def on_epoch_end(self, epoch, logs=None):
        if getattr(self.model, "stop_training", False) and any(
            isinstance(c, NanGuard) and c.failed_epoch is not None for c in self.callbacks
        ):
            return
        self.state.record(epoch, logs or {})
        self.directory.mkdir(parents=True, exist_ok=True)
        tag = f"{epoch + 1:04d}"
        model_name = f"model-{tag}.keras"
        self.model.save(self.directory / model_name)
        keep = {model_name, "state.json"}
        extra = {}
        for cb in self.callbacks:
            if isinstance(cb, keras.callbacks.EarlyStopping):
                extra["early_stopping"] = {
                    "wait": cb.wait,
                    "best": _f(cb.best),
                    "best_epoch": cb.best_epoch,
                    "best_weights": None,
                }
                if cb.best_weights is not None:
                    best_name = f"best-{tag}.npz"
                    _save_weights_list(cb.best_weights, self.directory / best_name)
                    extra["early_stopping"]["best_weights"] = best_name
                    keep.add(best_name)
            if isinstance(cb, keras.callbacks.ReduceLROnPlateau):
                extra["reduce_lr"] = {"wait": cb.wait, "best": _f(cb.best), "cooldown_counter": cb.cooldown_counter}
        state = {
            **self.state.to_json(),
            "model": model_name,
            "stopped": bool(self.model.stop_training),
            "callbacks": extra,
            "rng": rng_state(self.model),
        }
        tmp = self.directory / "state.tmp.json"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.directory / "state.json")  # the commit point
        for old in self.directory.iterdir():
            if old.name not in keep:
                old.unlink(missing_ok=True)


def _f(v) -> float | None:
    return None if v is None else float(v)


def _seed_states(model) -> list:
    """The dropout layers' seed-generator states: model.save leaves them out, so a resumed run
    would draw the first epoch's dropout masks again without them."""
    return [v for v in model.non_trainable_variables if v.name == "seed_generator_state"]


def rng_state(model) -> list[list[int]]:
    return [np.asarray(keras.ops.convert_to_numpy(v)).ravel().tolist() for v in _seed_states(model)]


def set_rng_state(model, saved: list[list[int]]) -> None:
    states = _seed_states(model)
    if len(states) != len(saved):
        raise TrainingError(
            f"the checkpoint holds {len(saved)} random-generator states, the model has {len(states)}",
            where="checkpoint/state.json",
            fix="resume with the same config, or start a new training",
        )
    for v, values in zip(states, saved):
        v.assign(np.asarray(values, dtype=v.dtype).reshape(v.shape))


def _save_weights_list(weights: list, path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, *weights)


def _load_weights_list(path: Path) -> list:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


@dataclass
class TrainState:
    """What a run has done so far: per-epoch history and the last completed epoch."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: int = -1  # last completed epoch (0-based)
    seconds: list[float] = field(default_factory=list)

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch = epoch
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "history": self.history}


@dataclass
class FitResult:
    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int  # 1-based
    epoch_seconds: list[float]
    stopped_early: bool
    nan_epoch: int | None


def fit(
    model,
    data: SeriesData,
    cfg: Config,
    checkpoint_dir: Path,
    *,
    quiet: bool = False,
    resume_state: dict | None = None,
) -> FitResult:
    """Train ``model`` (compiled, or restored from a checkpoint) on the train split, validating on val."""
    t = cfg.training
    train_ds = WindowDataset(data, data.starts("train"), t.batch_size, shuffle=t.shuffle, seed=cfg.seed)
    val_ds = WindowDataset(data, data.starts("val", stride=1), t.batch_size)
    state = TrainState()
    callbacks: list = [EpochSetter(train_ds)]
    if t.early_stopping is not None:
        es = keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=t.early_stopping.patience,
            min_delta=t.early_stopping.min_delta,
            restore_best_weights=True,
        )
        callbacks.append(es)
    if t.reduce_lr_on_plateau is not None:
        r = t.reduce_lr_on_plateau
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=r.factor, patience=r.patience, min_lr=r.min_lr)
        )
    nan_guard = NanGuard()
    progress = Progress(t.epochs, quiet)
    callbacks += [nan_guard, progress]
    callbacks.append(Checkpoint(checkpoint_dir, state, callbacks))

    initial_epoch = 0
    if resume_state is not None:
        initial_epoch = resume_state["epoch"] + 1
        state.history = {k: list(v) for k, v in resume_state["history"].items()}
        state.epoch = resume_state["epoch"]
        _restore_callbacks(callbacks, resume_state.get("callbacks", {}), checkpoint_dir, initial_epoch)
        if "rng" in resume_state:
            set_rng_state(model, resume_state["rng"])

    finished = resume_state is not None and (resume_state.get("stopped") or initial_epoch >= t.epochs)
    if finished:  # killed after the last epoch: do what EarlyStopping.on_train_end would have done
        best = (resume_state.get("callbacks", {}).get("early_stopping") or {}).get("best_weights")
        if best and (checkpoint_dir / best).exists():
            model.set_weights(_load_weights_list(checkpoint_dir / best))
    else:
        interrupt = StopOnInterrupt()
        callbacks.append(interrupt)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, interrupt.request) if main else None
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=t.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,  # the dataset shuffles itself, by (seed, epoch)
            )
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
    val_loss = state.history.get("val_loss", [])
    best_epoch = int(np.nanargmin(val_loss)) + 1 if val_loss and not np.all(np.isnan(val_loss)) else len(val_loss)
    stopped = len(val_loss) < t.epochs and nan_guard.failed_epoch is None
    if nan_guard.failed_epoch is not None:
        kept = (
            f"the weights of the last good epoch ({state.epoch + 1}) are kept in {checkpoint_dir}"
            if state.epoch >= 0
            else "no epoch finished with a finite loss, so no weights were kept"
        )
        raise TrainingError(
            f"the loss became NaN or infinite in epoch {nan_guard.failed_epoch + 1}; training stopped and {kept}",
            where="training",
            fix="lower training.learning_rate (e.g. by 10x) or set training.clipnorm: 1.0",
        )
    return FitResult(model, state.history, len(val_loss), best_epoch, progress.epoch_seconds, stopped, None)


def _restore_callbacks(callbacks: list, saved: dict, checkpoint_dir: Path, initial_epoch: int) -> None:
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping) and "early_stopping" in saved:
            s = saved["early_stopping"]
            cb._resume = s  # applied after Keras resets state in on_train_begin

            def on_train_begin(logs=None, cb=cb):
                keras.callbacks.EarlyStopping.on_train_begin(cb, logs)
                cb.wait, cb.best, cb.best_epoch = cb._resume["wait"], cb._resume["best"], cb._resume["best_epoch"]
                best = cb._resume.get("best_weights")
                if best and (checkpoint_dir / best).exists():
                    cb.best_weights = _load_weights_list(checkpoint_dir / best)

            cb.on_train_begin = on_train_begin
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau) and "reduce_lr" in saved:
            s = saved["reduce_lr"]

            def on_train_begin(logs=None, cb=cb, s=s):
                keras.callbacks.ReduceLROnPlateau.on_train_begin(cb, logs)
                cb.wait, cb.best, cb.cooldown_counter = s["wait"], s["best"], s["cooldown_counter"]

            cb.on_train_begin = on_train_begin

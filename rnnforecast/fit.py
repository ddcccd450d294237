"""Training: a PyDataset over the one scaled array, seeded and resumable, with a guard against NaN losses.

Imported lazily (it imports Keras); call ``backend.activate`` first.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import artifacts, backend
from .backend import seed_everything  # noqa: F401  (re-exported: pipeline and bench call train.seed_everything)
from .config import Config, TrainingConfig
from .errors import ConfigError, Terminated, TrainingError
from .models import model_quantiles
from .quantile_head import pinball_loss
from .series import SeriesData

keras = backend.import_keras()  # the backend is chosen before this module is imported
# NaN check every this many batch ends: reading the loss waits for the device (about 0.2 ms a time
# on JAX, 3 s of a 10 s fit when done every batch); the loss is a running mean, so a NaN stays.
NAN_CHECK_EVERY = 32


class WindowDataset(keras.utils.PyDataset):
    """Batches gathered from ``SeriesData.values`` by index arithmetic; shuffled by (seed, epoch).

    Only the ``(n_windows,)`` start indices are held; each ``__getitem__`` copies one batch.
    """

    def __init__(
        self,
        data: SeriesData,
        starts: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        split: int = 1,
        weight_power: int | None = None,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data = data
        self.weight_power = weight_power  # with instance scaling: windows weighted by their scale (RevIN's loss)
        starts = np.asarray(starts, dtype=np.int64)
        # Data parallel over `split` devices: every batch must divide evenly, so the last few windows that
        # would leave a ragged last batch are dropped (at most split - 1; none with one device).
        self.starts = starts[: len(starts) - len(starts) % split]
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
        inputs, y = self.data.model_batch(idx)  # {"past": (B, L, F)[, "future": (B, H, Fu)]}, (B, H, T)
        w = self.data.loss_weights(idx, self.weight_power) if self.weight_power else None
        if w is None:
            return inputs, y[..., None]  # targets carry the quantile axis: (B, H, T, 1)
        return inputs, y[..., None], w


def weight_power(cfg: Config) -> int:
    """How a window's scale weighs its errors in the loss (``Framing.loss_weights``): squared errors (mse, huber)
    by ``scale**2``, absolute ones (mae, the pinball loss of a quantile head) by ``scale``."""
    return 1 if model_quantiles(cfg) or cfg.training.loss == "mae" else 2


def compile_model(model, cfg: Config) -> None:
    t = cfg.training
    opt_cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[
        t.optimizer
    ]
    averaged = {"use_ema": True, "ema_momentum": t.ema} if t.ema is not None else {}
    optimizer = opt_cls(learning_rate=t.learning_rate, clipnorm=t.clipnorm, **averaged)
    quantiles = model_quantiles(cfg)
    if quantiles:  # a quantile head learns every quantile at once from the pinball loss
        loss, scores = pinball_loss(quantiles), []
    else:
        loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber()}[t.loss]
        scores = ["mse", "mae"] if t.loss != "mse" else ["mae"]
    if cfg.data.scaling == "instance":
        # The batches carry loss weights (Framing.loss_weights), so the loss is in the scaler's units; a side score
        # would be in each window's own units (a flat window's errors divided by ~0: MSEs of thousands), or, weighted
        # by Keras, a weighted mean (divided by the sum of the weights), neither of which means anything here.
        scores = []
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=scores,
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


_EPOCH_LABEL = contextvars.ContextVar("epoch_label", default="")  # "fold 3": which training an epoch line is of


@contextlib.contextmanager
def epoch_label(label: str):
    """Prefix the progress lines of the trainings inside with ``label`` (a backtest's fold)."""
    token = _EPOCH_LABEL.set(label)
    try:
        yield
    finally:
        _EPOCH_LABEL.reset(token)


class Progress(keras.callbacks.Callback):
    """One line per epoch: losses, learning rate, seconds; a line before the first epoch, which compiles the model.

    It never listens to batch ends: a callback that does makes Keras convert the logs after every batch.
    """

    def __init__(self, epochs: int, quiet: bool, stream=None):
        super().__init__()
        self.epochs, self.quiet, self.stream = epochs, quiet, stream or sys.stderr
        self.epoch_seconds: list[float] = []
        self.label = _EPOCH_LABEL.get() + "  " if _EPOCH_LABEL.get() else ""

    def on_train_begin(self, logs=None):
        if not self.quiet:
            print(f"{self.label}compiling the model (first epoch) ...", file=self.stream, flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        dt = time.perf_counter() - self._t0
        self.epoch_seconds.append(dt)
        if not self.quiet:
            logs = logs or {}
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            took = f"{dt:.2f}s" if dt < 10 else f"{dt:.0f}s"  # sub-second epochs are common on small data
            print(
                f"{self.label}epoch {epoch + 1:>3}/{self.epochs}  loss {logs.get('loss', float('nan')):.5f}  "
                f"val_loss {logs.get('val_loss', float('nan')):.5f}  lr {lr:.2g}  {took}",
                file=self.stream,
                flush=True,
            )


class ProgressBar(Progress):
    """``Progress`` plus Keras' own ``Progbar`` per epoch (batches done, ETA, loss), for a terminal on stderr."""

    def __init__(self, epochs: int, steps: int, stream=None):
        super().__init__(epochs, quiet=False, stream=stream)
        self.steps = steps

    def _on_stream(self):
        return contextlib.redirect_stdout(self.stream)  # Progbar writes to sys.stdout, which holds only results

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        with self._on_stream():
            self._bar = keras.utils.Progbar(self.steps, unit_name="batch")

    def on_train_batch_end(self, batch, logs=None):
        with self._on_stream():
            self._bar.update(batch + 1, values=[("loss", float((logs or {}).get("loss", float("nan"))))])


def progress_callback(epochs: int, steps: int, quiet: bool, stream=None) -> Progress:
    """A bar per epoch when ``stream`` (stderr) is a terminal, else one line per epoch."""
    stream = stream or sys.stderr
    if not quiet and getattr(stream, "isatty", lambda: False)():
        return ProgressBar(epochs, steps, stream)
    return Progress(epochs, quiet, stream)


def tensorboard_callback(log_dir: Path):
    """Keras' TensorBoard callback (loss, val_loss, learning rate per epoch) writing into ``log_dir``."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "output.tensorboard is true, but the tensorboard package is not installed",
            where="output.tensorboard",
            fix="pip install 'rnnforecast[tensorboard]', or set output.tensorboard: false",
        )
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)


def log_lead_scores(log_dir: Path, metrics: dict) -> None:
    """The validation split's model MAE by lead time (original units) as the scalar ``val_mae_by_lead``, step = lead."""
    import tensorflow as tf

    with tf.summary.create_file_writer(str(log_dir / "leads")).as_default():
        for lead, mae in enumerate(metrics["original"]["per_lead"]["model"]["mae"], 1):
            if mae is not None:
                tf.summary.scalar("val_mae_by_lead", float(mae), step=lead)


class NanGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss and put back the weights of the last good epoch."""

    def __init__(self):
        super().__init__()
        self.failed_epoch: int | None = None
        self._good = None

    def on_train_begin(self, logs=None):
        self._good = self.model.get_weights()

    def check(self, logs) -> None:
        """Called by ``LeanCallbacks`` every ``NAN_CHECK_EVERY`` batches with Keras' raw batch logs."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(keras.ops.convert_to_numpy(loss))):
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
    """Ctrl-C sets a flag and training stops at the next batch end with KeyboardInterrupt.

    A signal landing inside Keras is not safe: ``pythonify_logs`` wraps the wait for the JAX step
    in a bare ``except:``, which swallowed the KeyboardInterrupt and let the run finish as if
    nothing happened. A second Ctrl-C interrupts at once. SIGTERM is handled the same way and raises
    ``Terminated`` (a KeyboardInterrupt), so the run keeps its checkpoint and says how to resume.
    """

    def __init__(self):
        super().__init__()
        self.requested = None  # the signal number received, if any

    def request(self, signum, frame):
        first, self.requested = self.requested, signum
        if first is not None:
            self.check()

    def check(self, *args, **kwargs):
        if self.requested == signal.SIGTERM:
            raise Terminated
        if self.requested is not None:
            raise KeyboardInterrupt

    on_epoch_begin = check


class LeanCallbacks(keras.callbacks.CallbackList):
    """Keras' callback list minus the per-batch log conversion; Ctrl-C and NaN checks stay per batch.

    Keras converts every batch's logs to Python floats before calling any batch hook, which waits
    for the device each step (3 s of a 10 s fit, issue 17). None of our callbacks, nor Keras'
    EarlyStopping and ReduceLROnPlateau, use batch hooks: at a batch end this list only checks the
    Ctrl-C flag (an attribute read) and, every ``NAN_CHECK_EVERY`` batch ends, the running loss.
    With ``steps_per_execution`` S, Keras calls the batch hooks every S batches.
    """

    def __init__(self, callbacks: list, model, interrupt: StopOnInterrupt, nan_guard: NanGuard, **params):
        super().__init__([*callbacks, interrupt], add_history=True, model=model, **params)
        self.interrupt, self.nan_guard = interrupt, nan_guard
        self._ends = 0

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        self.interrupt.check()
        self._ends += 1
        if self._ends % NAN_CHECK_EVERY == 0:
            self.nan_guard.check(logs)

    def on_test_batch_end(self, batch, logs=None):
        self.interrupt.check()


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

        def save_best(weights: list) -> str:  # EarlyStopping's best weights, kept beside this epoch's model
            name = f"best-{tag}.npz"
            _save_weights_list(weights, self.directory / name)
            keep.add(name)
            return name

        state = {
            **self.state.to_json(),
            "model": model_name,
            "stopped": bool(self.model.stop_training),
            "callbacks": backend.callback_state(self.callbacks, save_best),
            "rng": backend.rng_state(self.model),
        }
        artifacts.write_atomic(self.directory / "state.json", json.dumps(state))  # the commit point
        for old in self.directory.iterdir():
            if old.name not in keep:
                old.unlink(missing_ok=True)


def _save_weights_list(weights: list, path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, *weights)


def _weights_loader(directory: Path):
    """``load(name)``: the weights list saved as ``directory/name``, or None when there is none."""

    def load(name: str | None) -> list | None:
        if not name or not (directory / name).exists():
            return None
        with np.load(directory / name) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]

    return load


@dataclass
class TrainState:
    """What a run has done so far: per-epoch history and the last completed epoch."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: int = -1  # last completed epoch (0-based)
    seconds: list[float] = field(default_factory=list)  # each completed epoch's, also those before a resume
    start_loss: float | None = None  # val loss of the untrained residual model (its baseline), when measured

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch = epoch
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "history": self.history, "start_loss": self.start_loss, "seconds": self.seconds}


@dataclass
class FitResult:
    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int  # 1-based; 0: no epoch beat the untrained residual model (its baseline), which is kept
    epoch_seconds: list[float]  # every epoch's, those trained before a resume too
    stopped_early: bool
    start_loss: float | None = None  # val loss of the untrained residual model, when measured (best_epoch 0: kept)
    earlier_seconds: float = 0.0  # the epochs trained before a resume (their seconds are in epoch_seconds)


def fit(
    model,
    data: SeriesData,
    cfg: Config,
    checkpoint_dir: Path,
    *,
    quiet: bool = False,
    resume_state: dict | None = None,
    extra_callbacks: list | tuple = (),
) -> FitResult:
    """Train ``model`` (compiled, or restored from a checkpoint) on the train split, validating on val."""
    t = cfg.training
    split = backend.batch_split()
    power = weight_power(cfg)
    train_ds = WindowDataset(
        data, data.starts("train"), t.batch_size, shuffle=t.shuffle, seed=cfg.seed, split=split, weight_power=power
    )
    val_ds = WindowDataset(data, data.starts("val", stride=1), t.batch_size, split=split, weight_power=power)
    state = TrainState()
    if resume_state is None and _guards_baseline(cfg):
        state.start_loss = float(model.evaluate(val_ds, verbose=0, return_dict=True)["loss"])
    start = (state.start_loss, model.get_weights()) if state.start_loss is not None else None
    nan_guard, progress = NanGuard(), progress_callback(t.epochs, len(train_ds), quiet)
    callbacks: list = [EpochSetter(train_ds), *_averaged(t, _keras_callbacks(t, start)), nan_guard, progress]
    callbacks.append(Checkpoint(checkpoint_dir, state, callbacks))
    if cfg.output.tensorboard:
        callbacks.append(tensorboard_callback(checkpoint_dir.parent / "tensorboard"))
    load_weights = _weights_loader(checkpoint_dir)
    callbacks += list(extra_callbacks)  # e.g. tune's pruning callback, after the epoch is recorded

    initial_epoch = 0
    if resume_state is not None:
        initial_epoch = _resume(model, state, callbacks, resume_state, load_weights)
    earlier = sum(state.seconds)
    progress.epoch_seconds = state.seconds  # one list: Progress appends each epoch's, the checkpoint saves them
    if _finished(resume_state, initial_epoch, t.epochs):
        _restore_best_weights(model, resume_state, load_weights)
    else:
        _fit_until_interrupted(model, train_ds, val_ds, t.epochs, initial_epoch, callbacks)
    if nan_guard.failed_epoch is not None:
        raise _nan_error(nan_guard.failed_epoch, state.epoch, checkpoint_dir)
    val_loss = state.history.get("val_loss", [])
    stopped = len(val_loss) < t.epochs
    best = _best_epoch(val_loss, state.start_loss)
    return FitResult(model, state.history, len(val_loss), best, state.seconds, stopped, state.start_loss, earlier)


def _finished(resume_state: dict | None, initial_epoch: int, epochs: int) -> bool:
    """Whether a resumed run had already stopped early or completed its last epoch when it was killed."""
    return resume_state is not None and bool(resume_state.get("stopped") or initial_epoch >= epochs)


def _restore_best_weights(model, resume_state: dict, load_weights) -> None:
    """Killed after the last epoch: do what EarlyStopping.on_train_end would have done (restore the best weights
    its saved state names, when there are any)."""
    best = load_weights((resume_state.get("callbacks", {}).get("early_stopping") or {}).get("best_weights"))
    if best is not None:
        model.set_weights(best)


def _guards_baseline(cfg: Config) -> bool:
    """A residual model starts as its baseline (zero head); with early stopping, that start is the first
    candidate: no epoch is kept unless it beats the baseline on validation."""
    return cfg.model.residual != "none" and cfg.training.early_stopping is not None


class EarlyStoppingFromStart(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping whose first candidate is the model before training (``start``: its val loss and
    weights; best epoch -1 when it is kept). On resume the saved state replaces this start, as for Keras'."""

    def __init__(self, start: tuple[float, list], **kwargs):
        super().__init__(**kwargs)
        self.start = start

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best, self.best_weights = self.start
        self.best_epoch = -1


def _keras_callbacks(t: TrainingConfig, start: tuple[float, list] | None = None) -> list:
    """Keras' own callbacks the config asks for: early stopping (from the untrained model when ``start`` is
    given: its val loss and weights), learning-rate reduction."""
    out = []
    if t.early_stopping is not None:
        es = t.early_stopping
        kwargs = dict(monitor="val_loss", patience=es.patience, min_delta=es.min_delta, restore_best_weights=True)
        out.append(EarlyStoppingFromStart(start, **kwargs) if start else keras.callbacks.EarlyStopping(**kwargs))
    if t.reduce_lr_on_plateau is not None:
        r = t.reduce_lr_on_plateau
        out.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=r.factor, patience=r.patience, min_lr=r.min_lr)
        )
    if t.lr_schedule != "constant":
        out.append(keras.callbacks.LearningRateScheduler(lambda epoch, _lr: scheduled_rate(t, epoch)))
    return out


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """``training.ema``: the optimizer keeps a moving average of the weights (Keras' ``use_ema``); this callback
    puts it into the model for validation (Keras' swap around ``evaluate``) and, at every epoch end, for the
    callbacks between it and its ``back`` partner (early stopping keeps the averaged weights as its best).
    ``back`` puts the trained weights back before the checkpoint, so a checkpoint holds the trained weights
    in the model and the average in the optimizer, as during training, and ``fit``'s last step (Keras'
    ``finalize_variable_values``) leaves the average in the model when no best weights are restored."""

    def __init__(self):
        super().__init__(swap_on_epoch=False)
        self.back = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self.on_test_end())

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()

    def on_train_end(self, logs=None):
        # Keras' finalize_variable_values assigned each average's array to its model variable: one JAX array
        # under two variables, deleted under both when a later step donates one (measured: save_model failed)
        for v in self.model.trainable_variables:
            v.assign(keras.ops.convert_to_numpy(v))


def _averaged(t: TrainingConfig, callbacks: list) -> list:
    """``callbacks`` between the two halves of ``AveragedWeights`` when the config averages the weights."""
    if t.ema is None:
        return callbacks
    swap = AveragedWeights()
    return [swap, *callbacks, swap.back]


def scheduled_rate(t: TrainingConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): linear warm-up over ``warmup_epochs`` from ``warmup_start`` times
    the rate (default 1 / (warmup_epochs + 1): equal steps), then
    - cosine: a half cosine from ``learning_rate`` towards 0 over the remaining epochs;
    - step: ``learning_rate`` for ``lr_decay_after`` epochs, then times ``lr_decay`` every epoch: the "type3" of
      the long-horizon repositories (PatchTST's: four epochs at the full rate, then x0.9 per epoch, which
      ``lr_decay_after: 4`` gives; SegRNN's copy of it decays x0.8).
    A function of the epoch alone, so a resumed run continues the same schedule."""
    w, n = t.warmup_epochs, t.epochs
    if epoch < w:
        start = 1.0 / (w + 1) if t.warmup_start is None else t.warmup_start
        return t.learning_rate * (start + (1.0 - start) * epoch / w)
    if t.lr_schedule == "step":
        return t.learning_rate * t.lr_decay ** max(0, epoch - w - t.lr_decay_after + 1)
    return t.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (epoch - w) / max(1, n - w)))


def _resume(model, state: TrainState, callbacks: list, resume_state: dict, load_weights) -> int:
    """Put a checkpoint's history, callback and RNG state back; returns the epoch to start from."""
    state.history = {k: list(v) for k, v in resume_state["history"].items()}
    state.epoch = resume_state["epoch"]
    state.start_loss = resume_state.get("start_loss")
    state.seconds = [float(x) for x in resume_state.get("seconds", [])]  # none from a checkpoint made before them
    backend.restore_callbacks(callbacks, resume_state.get("callbacks", {}), load_weights)
    if "rng" in resume_state:
        backend.set_rng_state(model, resume_state["rng"])
    return state.epoch + 1


def _fit_until_interrupted(model, train_ds, val_ds, epochs: int, initial_epoch: int, callbacks: list) -> None:
    """``model.fit`` with Ctrl-C turned into a clean stop at the next batch (see ``StopOnInterrupt``)."""
    interrupt = StopOnInterrupt()
    nan_guard = next(c for c in callbacks if isinstance(c, NanGuard))
    lean = LeanCallbacks(callbacks, model, interrupt, nan_guard, verbose=0, epochs=epochs, steps=len(train_ds))
    main = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if main else ()
    previous = {sig: signal.signal(sig, interrupt.request) for sig in signals}
    try:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=lean,
            verbose=0,
            shuffle=False,  # the dataset shuffles itself, by (seed, epoch)
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _best_epoch(val_loss: list[float], start_loss: float | None = None) -> int:
    """1-based epoch of the lowest validation loss; 0 when none is below ``start_loss`` (the untrained
    residual model's); the last epoch when none is finite."""
    if val_loss and not np.all(np.isnan(val_loss)):
        if start_loss is not None and not np.nanmin(val_loss) < start_loss:
            return 0
        return int(np.nanargmin(val_loss)) + 1
    return 0 if start_loss is not None else len(val_loss)


def _nan_error(failed_epoch: int, last_good: int, checkpoint_dir: Path) -> TrainingError:
    kept = (
        f"the weights of the last good epoch ({last_good + 1}) are kept in {checkpoint_dir}"
        if last_good >= 0
        else "no epoch finished with a finite loss, so no weights were kept"
    )
    return TrainingError(
        f"the loss became NaN or infinite in epoch {failed_epoch + 1}; training stopped and {kept}",
        where="training",
        fix="lower training.learning_rate (e.g. by 10x) or set training.clipnorm: 1.0",
    )

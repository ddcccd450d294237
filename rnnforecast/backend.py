"""Everything backend- and Keras-internals-specific: choosing the backend before Keras is first imported,
seeding and determinism, and the training state Keras keeps in places a checkpoint cannot see.

Keras is imported inside the functions: this module is imported before the backend is chosen.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import random
import sys
from collections.abc import Callable

import numpy as np

from .errors import ConfigError, TrainingError

SUPPORTED = ("jax", "tensorflow")
# Measured on this project's CPU machines (docs/benchmarks.md): JAX trains the RNN cells
# 2.5-4x faster per epoch than TensorFlow. Without JAX installed, TensorFlow is the fallback.
PREFERENCE = ("jax", "tensorflow")


def resolve(requested: str = "auto") -> str:
    """``auto`` -> the fastest installed backend; ``KERAS_BACKEND`` in the environment wins over auto."""
    if requested == "auto":
        env = os.environ.get("KERAS_BACKEND")
        if env in SUPPORTED:
            return env
        for name in PREFERENCE:
            if importlib.util.find_spec(name if name != "tensorflow" else "tensorflow") is not None:
                return name
        return "tensorflow"
    return requested


def activate(requested: str = "auto") -> str:
    """Set the backend for this process. Keras fixes it at first import, so a late change is refused."""
    name = resolve(requested)
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != name:
            raise ConfigError(
                f"Keras is already running on {current!r} in this process; cannot switch to {name!r}",
                where="runtime.backend",
                fix=f"run in a new process, or set KERAS_BACKEND={name} before starting",
            )
        return name
    if importlib.util.find_spec(name) is None:
        raise ConfigError(
            f"backend {name!r} is not installed",
            where="runtime.backend",
            fix=f"pip install {name}, or set runtime.backend: auto",
        )
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN reorders float sums: results would vary
    return name


def quiet_tensorflow_import() -> None:
    """Import TensorFlow (if installed) with its C++ start-up lines sent to /dev/null (export uses TensorFlow;
    its absl logger prints before any log level applies)."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Import Keras for the active backend without what it would import for nothing; returns the module.

    Measured in a whole `rnnforecast train` (docs/benchmarks.md, issue 17):
    - matplotlib.pyplot (0.5 s): Keras' image-gallery helper imports it at import time when it is
      installed. It is hidden during Keras' import only; ``plots`` imports it normally later.
    - TensorFlow under JAX (2-3 s): ``model.save`` asks ``tf.available`` to test whether a config
      value is a ``tf.TensorShape``, which imports TensorFlow. No value can be a TensorFlow object
      while TensorFlow is not imported, so serialisation is told it is available only once imported.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    hidden = [m for m in ("matplotlib", "matplotlib.pyplot") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # makes `import matplotlib.pyplot` raise ImportError; Keras then skips it
    try:
        import keras
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    if keras.backend.backend() != "tensorflow":
        _tensorflow_only_when_imported()
    if keras.backend.backend() == "jax":
        enable_compilation_cache()
    return keras


CACHE_ENV = "RNNFORECAST_JAX_CACHE"  # a folder, or 0/off/false to turn the cache off


def compilation_cache_dir() -> str | None:
    """Where JAX keeps compiled programs between processes: ``$RNNFORECAST_JAX_CACHE``, else
    ``$XDG_CACHE_HOME/rnnforecast/jax`` (``~/.cache/rnnforecast/jax``); None when turned off."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in ("0", "off", "false", "no"):
        return None
    if env:
        return os.path.expanduser(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rnnforecast", "jax")


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache; returns its folder (None: off or not writable).

    A run compiles about 30 programs (weight initialisers, the train step for the full and the
    last partial batch, the test and predict steps: 2-4 s on 2 cores). A later run with the same
    shapes (compare, tune, backtest, a rerun) loads them instead. Entries are keyed by the program,
    the shapes and the JAX/XLA versions, so a hit runs the same executable: same numbers.
    """
    folder = compilation_cache_dir()
    if folder is None:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:  # read-only home: run without the cache
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    # the defaults skip programs that compile in under 1 s: that is every program here
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


class _ImportedTensorFlow:
    """Keras' lazy ``tensorflow`` module, ``available`` only when something else has imported it."""

    def __init__(self, lazy):
        self._lazy = lazy

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules and self._lazy.available

    def __getattr__(self, name):
        return getattr(self._lazy, name)


def _tensorflow_only_when_imported() -> None:
    try:
        from keras.src.saving import serialization_lib
    except ImportError:  # private API moved: model.save imports TensorFlow, slower but correct
        return
    if not isinstance(serialization_lib.tf, _ImportedTensorFlow):
        serialization_lib.tf = _ImportedTensorFlow(serialization_lib.tf)


def versions() -> dict[str, str]:
    """Versions of everything that shapes a result, for metrics.json."""
    from importlib import metadata  # 7 ms: only training records versions

    out = {"python": platform.python_version()}
    for pkg in ("rnnforecast", "keras", "tensorflow", "jax", "jaxlib", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    if "keras" in sys.modules:
        import keras

        out["backend"] = keras.backend.backend()
    return out


# --------------------------------------------------------------------------- one model, several devices


def check_distribution(name: str, backend_name: str) -> None:
    """Refuse a distribution the backend cannot run (before anything is written)."""
    if name != "none" and backend_name != "jax":
        raise ConfigError(
            f"runtime.distribution: {name} needs the JAX backend; this run uses {backend_name!r}",
            where="runtime.distribution",
            fix="set runtime.backend: jax, or runtime.distribution: none",
        )


def distribute(name: str, batch_size: int) -> None:
    """Set Keras' distribution for the models built next: ``data_parallel`` replicates the model on every visible
    device and splits each batch over them (``keras.distribution.DataParallel``, JAX only). Call before building."""
    keras = import_keras()
    if name == "none":
        if keras.distribution.distribution() is not None:
            keras.distribution.set_distribution(None)
        return
    check_distribution(name, keras.backend.backend())
    devices = keras.distribution.list_devices()
    if batch_size % len(devices):
        raise ConfigError(
            f"data_parallel splits each batch over {len(devices)} devices, so training.batch_size must be a "
            f"multiple of {len(devices)}. Received: batch_size={batch_size}",
            where="training.batch_size",
            fix=f"set training.batch_size to a multiple of {len(devices)}",
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))


def batch_split() -> int:
    """Over how many devices each batch is split (1 without a distribution)."""
    import keras

    dist = keras.distribution.distribution()
    return int(dist.device_mesh.devices.size) if dist is not None else 1


# --------------------------------------------------------------------------- seeding and determinism


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, numpy and Keras; with ``deterministic`` under TensorFlow, make its ops deterministic too.

    Call after ``activate``.
    """
    keras = import_keras()
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() != "tensorflow":
        _seed_keras(seed)
        return
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _seed_keras(seed: int) -> None:
    """Keras' own global seed, set the way ``keras.utils.set_random_seed`` sets it.

    That public call also seeds TensorFlow, importing it (about 2 s) for nothing under JAX.
    """
    import keras

    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
    except ImportError:  # private API moved: fall back to the public call
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def _seed_states(model) -> list:
    """The dropout layers' seed-generator states: model.save leaves them out, so a resumed run
    would draw the first epoch's dropout masks again without them."""
    return [v for v in model.non_trainable_variables if v.name == "seed_generator_state"]


def rng_state(model) -> list[list[int]]:
    """The model's random-generator states, as JSON lists."""
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(v)).ravel().tolist() for v in _seed_states(model)]


def set_rng_state(model, saved: list[list[int]]) -> None:
    """Put back what ``rng_state`` returned."""
    states = _seed_states(model)
    if len(states) != len(saved):
        raise TrainingError(
            f"the checkpoint holds {len(saved)} random-generator states, the model has {len(states)}",
            where="checkpoint/state.json",
            fix="resume with the same config, or start a new training",
        )
    for v, values in zip(states, saved):
        v.assign(np.asarray(values, dtype=v.dtype).reshape(v.shape))


# --------------------------------------------------------------------------- callback state


def callback_state(callbacks: list, save_best: Callable[[list], str]) -> dict:
    """What Keras' ``EarlyStopping`` and ``ReduceLROnPlateau`` among ``callbacks`` carry between epochs.

    Args:
        callbacks: the callbacks of a running ``fit``.
        save_best: stores EarlyStopping's best weights (a list of arrays) and returns the file name.

    Returns:
        ``{"early_stopping": {...}, "reduce_lr": {...}}``, each key only when that callback is used.
    """
    import keras

    out = {}
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            best_weights = None if cb.best_weights is None else save_best(cb.best_weights)
            out["early_stopping"] = {
                "wait": cb.wait,
                "best": _float(cb.best),
                "best_epoch": cb.best_epoch,
                "best_weights": best_weights,
            }
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau):
            out["reduce_lr"] = {"wait": cb.wait, "best": _float(cb.best), "cooldown_counter": cb.cooldown_counter}
    return out


def _float(v) -> float | None:
    return None if v is None else float(v)


def restore_callbacks(callbacks: list, saved: dict, load_best: Callable[[str | None], list | None]) -> None:
    """Put ``callback_state``'s output back into fresh callbacks before ``fit`` resumes.

    Keras resets the state in ``on_train_begin``, so the saved state is applied right after it.
    ``load_best(name)`` returns the weights saved under ``name``, or None.
    """
    import keras

    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping) and "early_stopping" in saved:
            _after_train_begin(
                cb, keras.callbacks.EarlyStopping, _early_stopping_setter(saved["early_stopping"], load_best)
            )
        if isinstance(cb, keras.callbacks.ReduceLROnPlateau) and "reduce_lr" in saved:
            _after_train_begin(cb, keras.callbacks.ReduceLROnPlateau, _reduce_lr_setter(saved["reduce_lr"]))


def _after_train_begin(cb, cls, apply: Callable) -> None:
    def on_train_begin(logs=None):
        cls.on_train_begin(cb, logs)
        apply(cb)

    cb.on_train_begin = on_train_begin


def _early_stopping_setter(s: dict, load_best: Callable[[str | None], list | None]) -> Callable:
    def apply(cb):
        cb.wait, cb.best, cb.best_epoch = s["wait"], s["best"], s["best_epoch"]
        weights = load_best(s.get("best_weights"))
        if weights is not None:
            cb.best_weights = weights

    return apply


def _reduce_lr_setter(s: dict) -> Callable:
    def apply(cb):
        cb.wait, cb.best, cb.cooldown_counter = s["wait"], s["best"], s["cooldown_counter"]

    return apply


# --------------------------------------------------------------------------- gradients


def input_gradient(model, step: int, index: int) -> Callable[[np.ndarray], np.ndarray]:
    """``grad(x)``: d sum(y[:, step, index, 0]) / d x for a batch x (B, L, F), as numpy, on the active backend."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        return _jax_grad(model, step, index)
    if name == "tensorflow":
        return _tf_grad(model, step, index)
    raise ValueError(f"input gradients support the jax and tensorflow backends. Received: backend={name!r}")


def _jax_grad(model, step: int, index: int):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def output_sum(x):  # stateless: reads the weights passed in, never mutates the model
        y, _ = model.stateless_call(trainable, non_trainable, {"past": x}, training=False)
        return y[:, step, index, 0].sum()

    grad = jax.jit(jax.grad(output_sum))
    return lambda x: np.asarray(grad(x))


def _tf_grad(model, step: int, index: int):
    import tensorflow as tf

    def grad(x):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model({"past": x}, training=False)
            total = tf.reduce_sum(y[:, step, index, 0])
        return tape.gradient(total, x).numpy()

    return grad

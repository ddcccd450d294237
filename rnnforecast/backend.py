"""Choose the Keras backend before Keras is first imported; the one place that knows backends exist."""

from __future__ import annotations

import importlib.util
import os
import sys

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
    from .errors import ConfigError

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
    """Import TensorFlow (if installed) with its C++ start-up lines sent to /dev/null.

    Keras' model (de)serialisation imports TensorFlow when it is installed, even under JAX;
    its absl logger then prints lines before any log level applies.
    """
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


def versions() -> dict[str, str]:
    """Versions of everything that shapes a result, for metrics.json."""
    import platform
    from importlib import metadata

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

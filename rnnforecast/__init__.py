"""rnnforecast: recurrent-network forecasting of time series from one YAML file.

The Python API (``from rnnforecast import Config, train, predict, evaluate, load_run``) loads on first
use: importing the package imports neither Keras nor pandas, so the CLI's --help stays instant.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

_API = {  # name -> module that defines it
    "Config": "config",
    "train": "api",
    "evaluate": "api",
    "predict": "api",
    "load_run": "api",
    "Run": "api",
    "Training": "api",
    "Evaluation": "api",
    "Forecast": "api",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'rnnforecast' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    """Importing the submodule ``rnnforecast.train`` must not replace the API's ``train`` on the package.

    Inside the package, import that module by name (``from .train import fit``), never ``from . import train``.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the submodule stays in sys.modules; the package's name is the API's
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""rnnforecast: recurrent-network forecasting of time series from one YAML file.

The Python API (``from rnnforecast import Config, train, predict, evaluate, load_run``) loads on first
use: importing the package imports neither Keras nor pandas, so the CLI's --help stays instant.
"""

__version__ = "0.1.0"

_API = ("Config", "train", "evaluate", "predict", "load_run", "Run", "Training", "Evaluation", "Forecast")
_ERRORS = ("RnnForecastError", "ConfigError", "DataError", "RunError", "TrainingError", "Interrupted")
__all__ = ["__version__", *_API, *_ERRORS]


def __getattr__(name: str):
    if name == "Config":  # config.py needs PyYAML only
        from .config import Config as value
    elif name in _ERRORS:  # every error the API raises derives from RnnForecastError
        from . import errors

        value = getattr(errors, name)
    elif name in _API:  # api.py loads pandas (and Keras when a call trains)
        from . import api

        value = getattr(api, name)
    else:
        raise AttributeError(f"module 'rnnforecast' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | set(_ERRORS))

"""rnnforecast: recurrent-network forecasting of time series from one YAML file."""

__version__ = "0.1.0"

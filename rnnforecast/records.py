"""What a run directory holds, named once: its file names and typed views of schema.json and metrics.json.

README, "What a run directory holds", describes each file.
"""

from __future__ import annotations

MODEL = "model.keras"  # member 0 of a seed ensemble; the others are members/<i>.keras
CONFIG = "config.yaml"  # the resolved config
SCALER = "scaler.json"
SCHEMA = "schema.json"  # what new data must look like
METRICS = "metrics.json"
TIMING = "timing.json"
HISTORY = "history.csv"
FORECAST = "forecast.csv"  # the forecast past the end of the training data
INTERVALS = "intervals.json"  # the interval calibration, when the config asks for intervals
REQUIRED = (MODEL, CONFIG, SCALER, SCHEMA, METRICS)  # a run without one of these is refused

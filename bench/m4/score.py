"""M4 Hourly data and scores, exactly as the competition computes them (M4-methods, ML_benchmarks.py / the M4 guide).

sMAPE = mean over series of ``200/h * sum |y - f| / (|y| + |f|)``; MASE = mean over series of the forecast's MAE
divided by the in-sample MAE of the seasonal naive forecast (``m = 24``: ``mean |y_t - y_{t-m}|`` over the training
values); OWA = mean of sMAPE and MASE, each relative to Naive2's (18.383 and 2.395 on Hourly).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
H, M = 48, 24  # horizon and season of M4 Hourly
NAIVE2 = {"smape": 18.383, "mase": 2.395}  # the competition's Naive2 on Hourly (OWA denominators)
PUBLISHED = {  # M4 Hourly rows of the competition's results table (Makridakis et al. 2020, Table 4 and appendix)
    "Naive (naive1)": {"smape": 43.003, "mase": 11.608},
    "Seasonal naive": {"smape": 13.912, "mase": 1.193},
    "M4 RNN benchmark": {"owa": 1.036},
    "ES-RNN (Smyl, winner)": {"owa": 0.440},
}


def read(name: str) -> dict[str, np.ndarray]:
    """``{series id: values}`` of ``Hourly-train`` or ``Hourly-test`` (the wide CSV, padded with empty cells)."""
    out = {}
    with gzip.open(DATA / f"{name}.csv.gz", "rt") as fh:
        next(fh)  # "V1","V2",...
        for line in fh:
            cells = line.rstrip("\n").split(",")
            sid = cells[0].strip('"')
            out[sid] = np.array([float(c.strip('"')) for c in cells[1:] if c.strip('"') not in ("", "NA")])
    return out


def naive(y: np.ndarray, h: int = H) -> np.ndarray:
    return np.full(h, y[-1])


def seasonal_naive(y: np.ndarray, h: int = H, m: int = M) -> np.ndarray:
    """Step ``k`` (0-based) repeats ``y[n - m + k % m]``: the last observed season, over and over."""
    return np.array([y[len(y) - m + k % m] for k in range(h)])


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))


def mase(insample: np.ndarray, actual: np.ndarray, forecast: np.ndarray, m: int = M) -> float:
    scale = np.mean(np.abs(insample[m:] - insample[:-m]))
    return float(np.mean(np.abs(actual - forecast)) / scale)


def score(train: dict, test: dict, forecasts: dict[str, np.ndarray]) -> dict:
    """Mean sMAPE, MASE and OWA over every series of ``test`` (a missing forecast is an error, not a skip)."""
    s = [smape(test[k], forecasts[k]) for k in test]
    q = [mase(train[k], test[k], forecasts[k]) for k in test]
    out = {"smape": float(np.mean(s)), "mase": float(np.mean(q))}
    out["owa"] = 0.5 * (out["smape"] / NAIVE2["smape"] + out["mase"] / NAIVE2["mase"])
    assert all(math.isfinite(v) for v in out.values())
    return out


def baselines(train: dict, test: dict) -> dict[str, dict]:
    return {
        "Naive (naive1)": score(train, test, {k: naive(v) for k, v in train.items()}),
        "Seasonal naive": score(train, test, {k: seasonal_naive(v) for k, v in train.items()}),
    }

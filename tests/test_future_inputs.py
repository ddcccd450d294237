"""Known-future inputs: calendar features of the forecast steps and columns declared in data.future."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, write_config

WEEKEND = np.array([0, 0, 0, 0, 0, 1, 1], dtype=float)  # the effect of the weekday of the forecast step


def weekday_frame(n: int = 700, seed: int = 0) -> pd.DataFrame:
    """Daily series that is 1 on weekends, 0 otherwise, plus noise: one past value cannot tell the weekday."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2020-01-06", periods=n, freq="D")
    y = WEEKEND[time.dayofweek] + 0.05 * rng.standard_normal(n)
    holiday = (rng.random(n) < 0.1).astype(float)  # known in advance, lifts the value by 2
    return pd.DataFrame({"date": time, "y": y + 2 * holiday, "holiday": holiday})


def config(csv, **data) -> dict:
    return {
        "seed": 1,
        # standard scaling: a one-step window relative to its last value would hold only zeros
        "data": {"path": str(csv), "target": "y", "features": ["y"], "frequency": "D", "scaling": "standard", **data},
        "window": {"input_length": 1, "horizon": 3},
        # no residual: a seasonal one (auto's choice on a weekly pattern) would give both models the weekday
        "model": {"cell": "gru", "units": [8], "residual": "none"},
        "training": {"epochs": 12, "batch_size": 16, "learning_rate": 0.01, "loss": "mse"},  # as measured below
        "output": {"plots": False},
    }


def train_mae(tmp_path, name: str, cfg: dict) -> float:
    run = tmp_path / name
    proc = run_cli("train", str(write_config(tmp_path, cfg, f"{name}.yaml")), "--run-dir", str(run), "-q")
    assert proc.returncode == 0, proc.stderr
    return json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]["mae"]


@pytest.mark.slow
def test_weekday_of_the_forecast_step_is_learned_only_with_future_calendar_inputs(tmp_path):
    csv = tmp_path / "weekday.csv"
    weekday_frame().drop(columns="holiday").assign(y=lambda d: d.y.clip(upper=1.5)).to_csv(csv, index=False)
    without = train_mae(tmp_path, "without", config(csv))
    with_future = train_mae(tmp_path, "with", config(csv, time_features=["day_of_week"], future_time_features=True))
    # measured: 0.26 with, 0.50 without (12 epochs; more epochs bring "with" towards the noise, 0.04)
    assert without - with_future > 0.15, (with_future, without)


def test_data_future_column_must_be_supplied_for_the_horizon_rows(tmp_path):
    frame = weekday_frame(400)
    csv = tmp_path / "holiday.csv"
    frame.to_csv(csv, index=False)
    cfg = config(
        csv, features=["y", "holiday"], future=["holiday"], time_features=["day_of_week"], future_time_features=True
    )
    cfg["training"]["epochs"] = 1
    train_mae(tmp_path, "run", cfg)

    proc = run_cli("predict", str(tmp_path / "run"), "--data", str(csv))
    assert proc.returncode != 0
    assert "must end with horizon=3 rows whose target is empty" in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr

    future = pd.DataFrame(
        {"date": pd.date_range(frame.date.iloc[-1], periods=4, freq="D")[1:], "y": np.nan, "holiday": [0, 1, 0]}
    )
    with_horizon = tmp_path / "with_horizon.csv"
    pd.concat([frame, future]).to_csv(with_horizon, index=False)
    out = tmp_path / "forecast.csv"
    proc = run_cli("predict", str(tmp_path / "run"), "--data", str(with_horizon), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(pd.to_datetime(table.timestamp)) == list(future.date)

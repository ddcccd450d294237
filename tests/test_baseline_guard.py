"""A residual model's early stopping starts from the untrained model (its baseline): an epoch is kept only when
it beats the baseline on validation; otherwise the run forecasts the baseline, says so, and the final fit keeps it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import write_config
from rnnforecast.cli import cli

PATTERN = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]  # one week, repeated: seasonal naive is exact


def _config(tmp_path, values, **training) -> object:
    n = len(values)
    frame = pd.DataFrame({"day": pd.date_range("2021-01-04", periods=n, freq="D"), "y": values})
    frame.to_csv(tmp_path / "weekly.csv", index=False)
    cfg = {
        "data": {
            "path": str(tmp_path / "weekly.csv"),
            "target": "y",
            "time_column": "day",
            "season_length": 7,
            "scaling": "standard",  # the hand computations below scale by the training rows' mean and deviation
        },
        "window": {"input_length": 14, "horizon": 7},
        "model": {"cell": "gru", "units": [4], "residual": "seasonal", "segment_length": None},
        "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.05, "early_stopping": {"patience": 2}}
        | training,
        "output": {"plots": False},
    }
    return write_config(tmp_path, cfg)


def _train(cfg, run_dir):
    result = CliRunner().invoke(cli, ["train", str(cfg), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_a_network_that_cannot_beat_an_exact_baseline_keeps_it(tmp_path):
    """Every week identical: the seasonal residual's targets are exactly 0, the untrained model's val loss is 0 and
    no trained epoch can be below it. The run keeps the untrained model (best epoch 0), forecasts the next week
    exactly (the pattern, worked out by hand from the row count), says so, and the final fit trains 0 epochs."""
    n = 7 * 30 + 3  # 213 rows: the last row is PATTERN[2], so the next week starts at PATTERN[3]
    values = [PATTERN[i % 7] for i in range(n)]
    out, m = _train(_config(tmp_path, values), tmp_path / "run")
    assert m["training"]["best_epoch"] == 0
    assert m["training"]["untrained_val_loss"] == 0.0
    assert m["training"]["epochs_run"] >= 1  # it did train, and no epoch won
    assert "no epoch beat the untrained residual model" in out
    assert m["forecast_model"]["epochs"] == 0  # the final fit kept the untrained model too
    forecast = pd.read_csv(tmp_path / "run" / "forecast.csv")
    expected = [PATTERN[(n + h) % 7] for h in range(7)]
    np.testing.assert_allclose(forecast["y"].to_numpy(), expected, rtol=1e-6)
    # the model scores exactly what seasonal naive scores on the test windows
    overall = m["test"]["original"]["overall"]
    assert overall["model"]["mae"] == pytest.approx(overall["seasonal_naive"]["mae"], abs=1e-5)
    assert overall["model"]["mae"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.slow
def test_a_network_that_beats_its_baseline_keeps_its_best_epoch(tmp_path):
    """The same weeks on a rising line (0.5 a day): seasonal naive is 3.5 low at every lead, a constant the
    network learns at once. The best epoch is a trained one and its val loss is below the untrained model's."""
    n = 7 * 30 + 3
    values = [PATTERN[i % 7] + 0.5 * i for i in range(n)]
    _, m = _train(_config(tmp_path, values, learning_rate=0.01), tmp_path / "run")
    t = m["training"]
    assert t["best_epoch"] >= 1
    assert t["best_val_loss"] < t["untrained_val_loss"]
    overall = m["test"]["original"]["overall"]
    assert overall["seasonal_naive"]["mae"] == pytest.approx(3.5, abs=1e-9)  # by hand: 7 days x 0.5
    assert overall["model"]["mae"] < overall["seasonal_naive"]["mae"]


def test_best_epoch_counts_the_untrained_start():
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast.fit import _best_epoch

    assert _best_epoch([0.5, 0.4, 0.45], None) == 2
    assert _best_epoch([0.5, 0.4, 0.45], 0.3) == 0  # no epoch below the start: the start is kept
    assert _best_epoch([0.5, 0.4, 0.45], 0.4) == 0  # equal is not better
    assert _best_epoch([0.5, 0.39, 0.45], 0.4) == 2
    assert _best_epoch([float("nan"), 0.39], 0.4) == 2


def test_the_residual_scale_is_the_rms_of_the_training_residuals_by_hand(tmp_path):
    """Standard scaling, seasonal residual: the network's target is (y - seasonal naive) / (train std * r), with r
    the root mean square of (y[t] - y[t - 7]) / std over every training target row; computed here from the
    CSV with pandas, not through the package's windows."""
    from rnnforecast import series
    from rnnforecast.config import load_config
    from rnnforecast.data import load_source

    rng = np.random.default_rng(5)
    n = 7 * 40
    values = [PATTERN[i % 7] + 0.3 * rng.standard_normal() + 0.01 * i for i in range(n)]
    cfg = load_config(_config(tmp_path, values))
    data = series.build(load_source(cfg), cfg)
    r = data.scaler.residual_scale
    y = pd.Series(values)
    train_hi = int(round(0.7 * n))  # the default split
    std = y.iloc[:train_hi].std(ddof=0)
    # training windows: start s in [0, train_hi - 14 - 7]; their targets are rows s+14 .. s+20, lead h copies row - 7
    rows = [s + 14 + h for s in range(0, train_hi - 21 + 1) for h in range(7)]
    resid = (y.to_numpy()[rows] - y.to_numpy()[np.array(rows) - 7]) / std
    assert r.shape == (1,) and r[0] == pytest.approx(np.sqrt(np.mean(resid**2)), rel=1e-6)
    # the framed targets are those residuals divided by r
    starts = data.starts("train")[:3]
    _, target = data.batch(starts)
    expected = y.to_numpy()[starts[:, None] + 14 + np.arange(7)] - y.to_numpy()[starts[:, None] + 7 + np.arange(7)]
    np.testing.assert_allclose(target[..., 0], expected / std / r[0], rtol=1e-4, atol=1e-5)
    # and inverting them gives back the actuals
    back = data.invert(starts, target[..., None])[..., 0, 0]
    np.testing.assert_allclose(back, y.to_numpy()[starts[:, None] + 14 + np.arange(7)], rtol=1e-5)


def test_a_damaged_residual_scale_is_refused_in_one_line(tmp_path):
    from rnnforecast.errors import RunError
    from rnnforecast.scaling import Scaler

    path = tmp_path / "scaler.json"
    base = {"kind": "standard", "columns": ["y"], "groups": ["*"], "shift": [[1.0]], "scale": [[2.0]]}
    for bad in ([0.0], [-1.0], [1.0, 2.0], ["x"]):
        path.write_text(json.dumps({**base, "residual_scale": bad}))
        with pytest.raises(RunError) as e:
            Scaler.load(path)
        assert str(path) in str(e.value) or e.value.where == str(path)
    path.write_text(json.dumps({**base, "residual_scale": [0.5]}))
    assert Scaler.load(path).residual_scale.tolist() == [0.5]
    path.write_text(json.dumps(base))  # a run from before: no residual scale, targets as trained then
    assert Scaler.load(path).residual_scale is None


def test_a_seasonal_residual_model_reads_seasonal_differences_by_hand(tmp_path):
    """Inputs of a seasonal residual model: the target column as y[t] - y[t - 7] over the window's rows, divided
    by the training std and the residual scale (rows before the series start are not read: clamped to it)."""
    from rnnforecast import series
    from rnnforecast.config import load_config
    from rnnforecast.data import load_source

    rng = np.random.default_rng(8)
    n = 7 * 40
    values = np.array([PATTERN[i % 7] + 0.3 * rng.standard_normal() + 0.02 * i for i in range(n)])
    cfg = load_config(_config(tmp_path, values))
    data = series.build(load_source(cfg), cfg)
    std = values[: int(round(0.7 * n))].std()
    r = data.scaler.residual_scale[0]
    starts = np.array([0, 3, 100])
    x, _ = data.batch(starts)  # (B, 14, 1)
    for b, s in enumerate(starts):
        rows = np.arange(s, s + 14)
        lag = np.maximum(rows - 7, 0)
        np.testing.assert_allclose(x[b, :, 0], (values[rows] - values[lag]) / std / r, rtol=1e-4, atol=1e-6)
    assert x[0, 0, 0] == 0  # the series starts here: row 0 has no week before it and is compared with itself


@pytest.mark.slow
def test_predict_needs_a_season_before_the_window_and_then_equals_the_run(tmp_path):
    """A seasonal residual run reads input_length + season rows: given exactly those (the file's tail), predict
    gives the run's own forecast.csv; one row fewer is refused in one line that names the season."""
    rng = np.random.default_rng(2)
    n = 7 * 30
    values = [PATTERN[i % 7] + 0.3 * rng.standard_normal() for i in range(n)]
    cfg = _config(tmp_path, values, final_fit=False)
    _train(cfg, tmp_path / "run")
    frame = pd.read_csv(tmp_path / "weekly.csv")
    frame.tail(14 + 7).to_csv(tmp_path / "tail.csv", index=False)
    frame.tail(14 + 6).to_csv(tmp_path / "short.csv", index=False)
    out = tmp_path / "p.csv"
    ok = CliRunner().invoke(
        cli, ["predict", str(tmp_path / "run"), "--data", str(tmp_path / "tail.csv"), "-o", str(out)]
    )
    assert ok.exit_code == 0, ok.output
    got = pd.read_csv(out)["y"].to_numpy()
    np.testing.assert_allclose(got, pd.read_csv(tmp_path / "run" / "forecast.csv")["y"].to_numpy(), rtol=1e-6)
    bad = CliRunner().invoke(cli, ["predict", str(tmp_path / "run"), "--data", str(tmp_path / "short.csv")])
    assert bad.exit_code != 0
    assert "20 rows, fewer than input_length=14 + season 7 (model.residual: seasonal)" in bad.output
    assert "Traceback" not in bad.output

"""Intervals through the real pipeline: config, conformal coverage on AR(1) noise, quantile head, every prediction out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, TINY, merge, sine_frame, write_config
from rnnforecast import intervals as iv
from rnnforecast.cli import cli
from rnnforecast.config import default_config_yaml, load_config
from rnnforecast.errors import ConfigError


def _train(config: Path, run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["train", str(config), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output


def _ar1_frame(n: int, phi: float = 0.7, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return pd.DataFrame({"time": pd.date_range("2000-01-01", periods=n, freq="h"), "y": x})


def _config(tmp_path: Path, data: str, extra: dict) -> Path:
    base = {"name": "iv", "data": {"path": data, "target": "y", "time_column": "time"}, "seed": 0}
    return write_config(tmp_path, merge(merge(base, TINY), extra))


# --------------------------------------------------------------------------- config


def test_intervals_config_defaults_and_checks(tmp_path):
    (tmp_path / "d.csv").write_text("time,y\n")
    path = _config(tmp_path, "d.csv", {"intervals": {}})
    cfg = load_config(path)
    assert cfg.intervals.levels == [80.0, 95.0] and cfg.intervals.method == "conformal"
    assert "intervals" not in load_config(_config(tmp_path, "d.csv", {})).to_dict()  # absent stays absent
    for bad, message in [
        ({"levels": [80, 100]}, "intervals.levels: levels must be percentages strictly between 0 and 100"),
        ({"levels": [95, 80]}, "intervals.levels: levels must be sorted and unique"),
        ({"method": "bootstrap"}, "intervals.method"),
        ({"method": "quantile", "adaptive": True}, "intervals.adaptive: adaptive applies to method conformal"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(_config(tmp_path, "d.csv", {"intervals": bad}))
    listing = default_config_yaml()
    assert "intervals: null" in listing and '#   method: "conformal"' in listing


# --------------------------------------------------------------------------- conformal coverage


@pytest.mark.slow
def test_conformal_coverage_on_ar1_within_4_points(tmp_path):
    """AR(1), Gaussian innovations: 80 % and 95 % bands cover the test split within 4 points, per lead."""
    _ar1_frame(12000).to_csv(tmp_path / "ar1.csv", index=False)
    cfg = _config(
        tmp_path,
        "ar1.csv",
        {
            "data": {"split": {"train": 0.4, "val": 0.3, "test": 0.3}},
            "window": {"input_length": 5, "horizon": 2},
            "model": {"cell": "gru", "units": [4]},
            "training": {"batch_size": 256},
            "intervals": {"levels": [80, 95]},
            "output": {"plots": False},
        },
    )
    _train(cfg, tmp_path / "run")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["n_windows"] > 3000
    for level in ("80", "95"):
        block = m["intervals"]["model"]["levels"][level]
        for cov in [block["coverage"]["overall"], *block["coverage"]["per_lead"]]:
            assert abs(cov - float(level)) <= 4, (level, cov)
        assert abs(m["intervals"]["persistence"]["levels"][level]["coverage"]["overall"] - float(level)) <= 4
    # Unit innovations: no 1-step 95 % band can be much narrower than 2 * 1.96 (a 1-epoch model is wider).
    assert m["intervals"]["model"]["levels"]["95"]["width"]["per_lead"][0] > 3.6
    # Persistence's 1-step error has sd sqrt(2 (1 - phi) / (1 - phi^2)) = 1.085: width 2 * 1.96 * 1.085 = 4.25.
    widths = m["intervals"]["persistence"]["levels"]["95"]["width"]["per_lead"]
    assert 3.95 < widths[0] < 4.55 and widths[1] > widths[0]
    cal = json.loads((tmp_path / "run" / "intervals.json").read_text())
    assert cal["method"] == "conformal" and cal["model"]["n"] == m["intervals"]["calibration_windows"]


# --------------------------------------------------------------------------- quantile head


@pytest.fixture(scope="module")
def sine_runs(tmp_path_factory):
    """A point model and a quantile-head model on the same deterministic sine (dense cell, a few seconds)."""
    d = tmp_path_factory.mktemp("sine")
    sine_frame(n=900, noise=0.0).to_csv(d / "sine.csv", index=False)
    common = {
        "window": {"input_length": 25, "horizon": 2},
        "model": {"cell": "dense", "units": [16]},
        "training": {"epochs": 40, "batch_size": 32, "learning_rate": 0.01, "early_stopping": None},
        "output": {"plots": False},
    }
    runs = {}
    for name, extra in {"point": {}, "quantile": {"intervals": {"levels": [80], "method": "quantile"}}}.items():
        (d / name).mkdir()
        cfg = _config(d / name, str(d / "sine.csv"), merge(common, extra))
        _train(cfg, d / name / "run")
        runs[name] = d / name / "run"
    return runs


@pytest.mark.slow
def test_quantile_median_matches_point_model_on_deterministic_series(sine_runs, tmp_path):
    tables = {}
    for name, run in sine_runs.items():
        out = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(cli, ["evaluate", str(run), "--output", str(out)])
        assert result.exit_code == 0, result.output
        tables[name] = pd.read_csv(out)
    point, quant = tables["point"], tables["quantile"]
    assert list(quant.columns[-3:]) == ["p10", "p50", "p90"]
    np.testing.assert_allclose(quant["p50"], quant["forecast"])  # the median is the point forecast
    assert np.abs(quant["forecast"] - point["forecast"]).mean() < 0.05  # amplitude 1
    assert np.abs(point["forecast"] - point["actual"]).mean() < 0.05
    point_run = sine_runs["point"]  # no intervals section: no intervals file, no band columns, no metrics key
    assert not (point_run / "intervals.json").exists()
    assert "intervals" not in json.loads((point_run / "metrics.json").read_text())
    assert list(pd.read_csv(point_run / "forecast.csv").columns) == ["timestamp", "step", "quantile", "y"]
    schema = json.loads((sine_runs["quantile"] / "schema.json").read_text())
    assert schema["n_quantiles"] == 3 and schema["quantiles"] == ["p10", "p50", "p90"]


@pytest.mark.slow
def test_quantiles_never_cross_in_predict_output(sine_runs, tmp_path):
    out = tmp_path / "forecast.csv"
    result = CliRunner().invoke(
        cli, ["predict", str(sine_runs["quantile"]), "--output", str(out), "--plot", str(tmp_path / "fan.png")]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    cols = [iv.quantile_column("y", q) for q in iv.quantile_levels([80])]
    assert list(table.columns) == ["timestamp", "step", "quantile", "y", *cols]
    q = table[cols].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    np.testing.assert_allclose(table["y"], table["y_p50"])
    assert (tmp_path / "fan.png").stat().st_size > 0


# --------------------------------------------------------------------------- every prediction out


@pytest.fixture(scope="module")
def weather_interval_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("wiv")
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(merge(cfg, TINY), {"intervals": {"levels": [80, 95], "joint": True}})
    _train(write_config(d, cfg), d / "run")
    return d / "run"


def test_evaluate_output_rows_reproduce_metrics(weather_interval_run, tmp_path):
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(cli, ["evaluate", str(weather_interval_run), "--split", "test", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out, parse_dates=["origin_time", "target_time"])
    m = json.loads((weather_interval_run / "metrics.json").read_text())
    h = TINY["window"]["horizon"]
    assert len(rows) == m["n_windows"] * h  # one target: one row per window and lead
    assert list(rows.columns) == [
        "target", "origin_time", "target_time", "lead", "actual", "filled", "forecast", "p2.5", "p10", "p50", "p90", "p97.5"
    ]  # fmt: skip
    assert (rows["target_time"] - rows["origin_time"] == pd.to_timedelta(rows["lead"], unit="D")).all()
    err = (rows["forecast"] - rows["actual"]).abs()
    np.testing.assert_allclose(err.mean(), m["test"]["original"]["overall"]["model"]["mae"], rtol=1e-6)  # float32 model
    per_lead = err.groupby(rows["lead"]).mean().to_numpy()
    np.testing.assert_allclose(per_lead, m["test"]["original"]["per_lead"]["model"]["mae"], rtol=1e-6)
    for level, (lo, hi) in {"80": ("p10", "p90"), "95": ("p2.5", "p97.5")}.items():
        block = m["intervals"]["model"]["levels"][level]
        inside = (rows["actual"] >= rows[lo]) & (rows["actual"] <= rows[hi])
        assert 100 * inside.mean() == pytest.approx(block["coverage"]["overall"], abs=1e-9)
        path = inside.groupby(rows["origin_time"]).all()
        assert 100 * path.mean() == pytest.approx(block["joint_coverage"]["overall"], abs=1e-9)
        assert (rows[hi] - rows[lo]).mean() == pytest.approx(block["width"]["overall"], rel=1e-9)
    assert m["intervals"]["joint"] is True


def test_demo_config_run_has_bands(weather_run):
    """The demo config (and so conftest's weather run) asks for 80 % and 95 % intervals."""
    m = json.loads((weather_run / "metrics.json").read_text())
    table = pd.read_csv(weather_run / "forecast.csv")
    assert set(m["intervals"]["model"]["levels"]) == {"80", "95"}
    assert (weather_run / "intervals.json").exists()
    assert list(table.columns)[3:] == [
        "temp_max",
        *[iv.quantile_column("temp_max", q) for q in iv.quantile_levels([80, 95])],
    ]

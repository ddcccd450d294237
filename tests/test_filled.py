"""Rows the tool invented by gap filling are never scored as actuals; thin evidence is said, pointing to backtest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from rnnforecast import intervals, metrics
from rnnforecast.cli import cli


def test_masked_actuals_are_left_out_of_point_scores_by_hand():
    actual = np.array([[1.0, 2.0], [3.0, 50.0]])[..., None]  # (B=2, H=2, T=1); 50 was interpolated
    f = {
        "model": np.array([[2.0, 2.0], [1.0, 0.0]])[..., None, None],  # errors 1, 0, 2, (50)
        "persistence": np.array([[0.0, 0.0], [3.0, 3.0]])[..., None, None],  # errors 1, 2, 0, (47)
    }
    scored = np.array([[True, True], [True, False]])[..., None]
    m = metrics.evaluate_forecasts(actual, f, ["y"], np.array([1.0]), scored)["original"]
    assert m["overall"]["model"]["mae"] == pytest.approx(1.0)  # (1 + 0 + 2) / 3
    assert m["overall"]["model"]["mse"] == pytest.approx(5 / 3)  # (1 + 0 + 4) / 3
    assert m["overall"]["model"]["mase"] == pytest.approx(1.0)  # persistence (1 + 2 + 0) / 3 = 1
    assert m["per_lead"]["model"]["mae"] == pytest.approx([1.5, 0.0])  # lead 2 keeps only the first window
    unmasked = metrics.evaluate_forecasts(actual, f, ["y"], np.array([1.0]))["original"]
    assert unmasked["overall"]["model"]["mae"] == pytest.approx(53 / 4)


def test_masked_actuals_are_left_out_of_interval_scores_by_hand():
    y = np.array([[1.0, 5.0, 2.0]])[..., None]  # (B=1, H=3, T=1); 5.0 invented, outside the band
    lo, hi = np.zeros((1, 3, 1)), np.full((1, 3, 1), 3.0)
    q = np.stack([lo, (lo + hi) / 2, hi], axis=-1)  # p10, p50, p90 of an 80 % band
    scored = np.array([[True, False, True]])[..., None]
    out = intervals.interval_metrics(y, q, [80.0], ["y"], scored=scored)["levels"]["80"]
    assert out["coverage"]["overall"] == pytest.approx(100.0)  # both observed values inside
    assert out["joint_coverage"]["overall"] == pytest.approx(100.0)
    assert out["interval_score"]["overall"] == pytest.approx(3.0)  # width 3, no observed miss
    plain = intervals.interval_metrics(y, q, [80.0], ["y"])["levels"]["80"]
    assert plain["coverage"]["overall"] == pytest.approx(200 / 3)
    assert plain["interval_score"]["overall"] == pytest.approx(3 + (2 / 0.2) * 2 / 3)  # the miss by 2, over 3


def test_thin_evidence_warnings_by_hand():
    assert metrics.evidence_warnings(120, 200, 12, 0) == []
    (w,) = metrics.evidence_warnings(10, 18, 12, 0)  # a 120-row monthly file: 10 test windows
    assert "10 windows (fewer than 30)" in w and "rnnforecast backtest" in w and "season" not in w
    (w,) = metrics.evidence_warnings(40, 10, 12, 0)
    assert "10 rows, shorter than one season (12 steps)" in w
    (note,) = metrics.evidence_warnings(40, 50, 12, 3)
    assert note.startswith("note: 3 test actual value(s) were invented by gap filling")


@pytest.mark.slow
def test_evaluate_masks_and_flags_invented_weeks(tmp_path):
    """A weekly file with 6 weeks missing in its test split: those rows are flagged in evaluate --output and left out
    of the metrics (MAE from the unflagged rows); the thin test split gets its warning."""
    rng = np.random.default_rng(3)
    times = pd.date_range("2010-01-03", periods=260, freq="W-SUN")
    y = 300 + 0.05 * np.arange(260) + 3 * np.sin(2 * np.pi * np.arange(260) / 52) + rng.normal(0, 0.3, 260)
    gone = list(range(232, 238))  # inside the last 15 % (rows 221..259 of the regular grid)
    df = pd.DataFrame({"date": times.strftime("%Y-%m-%d"), "co2": y.round(3)}).drop(index=gone)
    df.to_csv(tmp_path / "co2.csv", index=False)
    cfg = {
        "data": {"path": "co2.csv", "target": "co2"},
        "window": {"input_length": 8, "horizon": 3},
        "model": {"units": [4]},
        "training": {"epochs": 1},
        "intervals": {"levels": [80]},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "c.yaml"), "--run-dir", str(run), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "invented by gap filling" in r.stdout and "thin evidence" in r.stdout
    assert "verdict: on the test split the model " in r.stdout
    out = tmp_path / "p.csv"
    r = CliRunner().invoke(cli, ["evaluate", str(run), "--output", str(out)])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(out, parse_dates=["target_time"])
    invented = set(times[gone])
    assert (rows["filled"] == rows["target_time"].isin(invented)).all() and rows["filled"].any()
    real = rows[~rows["filled"]]
    mae = json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]["mae"]
    assert (real["forecast"] - real["actual"]).abs().mean() == pytest.approx(mae, rel=1e-6)
    assert (rows["forecast"] - rows["actual"]).abs().mean() != pytest.approx(mae, rel=1e-6)
    assert "invented by gap filling" in r.stderr and "rnnforecast backtest" in r.stderr

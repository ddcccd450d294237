"""The verdict: the model against its best baseline by MAE in original units, one rule for every scoring command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_report import _compare_record

from rnnforecast import metrics, text
from rnnforecast.cli import cli

MAES = {"persistence": 1.2, "seasonal_naive": 1.0, "window_mean": 2.0}


def test_verdict_when_the_model_beats_every_baseline():
    lines = metrics.verdict({"model": 0.8, **MAES})
    # best baseline: seasonal naive, MAE 1.0; (1.0 - 0.8) / 1.0 = 20.0 % lower
    assert lines == [
        "verdict: on the test split the model beats the best baseline, seasonal_naive (MAE 1): MAE 0.8 is 20.0 % lower"
    ]


def test_verdict_when_the_model_loses_names_every_baseline_it_loses_to():
    lines = metrics.verdict({"model": 1.1, **MAES}, "val")
    # (1.1 - 1.0) / 1.0 = 10.0 % higher; it still beats persistence (1.2) and the window mean (2.0)
    assert lines[0] == (
        "verdict: on the val split the model loses to the best baseline, seasonal_naive (MAE 1): MAE 1.1 is 10.0 % higher"
    )
    assert lines[1].startswith("warning: the model (MAE 1.1) does no better than seasonal_naive (MAE 1) on the val")
    lines = metrics.verdict({"model": 1.25, **MAES})
    assert "than seasonal_naive (MAE 1), persistence (MAE 1.2) on the test split" in lines[1]
    assert "window_mean" not in lines[1] and "25.0 % higher" in lines[0]


def test_a_tie_is_a_loss_and_no_mae_is_said():
    lines = metrics.verdict({"model": 1.0, **MAES})
    assert lines[0] == "verdict: on the test split the model ties with the best baseline, seasonal_naive (MAE 1)"
    assert lines[1].startswith("warning:")
    assert metrics.verdict({"model": None, **MAES}) == ["verdict: no MAE to compare on the test split"]


def test_a_difference_in_float32_noise_is_a_tie_not_a_win():
    """A run that kept its untrained residual model (the seasonal baseline itself) scored MAE 2.9458263 against the
    baseline's 2.9458264 and was said to "beat" it "0.0 % lower"; another run of the same kind "lost". Within one part
    in a million the two are one number: a tie, with the warning; one part in 100,000 apart is still a result."""
    base = {"persistence": 3.5, "seasonal_naive": 2.9458264, "window_mean": 4.0}
    for mine in (2.9458263, 2.9458265):
        lines = metrics.verdict({"model": mine, **base})
        assert (
            lines[0] == "verdict: on the test split the model ties with the best baseline, seasonal_naive (MAE 2.946)"
        )
        assert lines[1].startswith("warning: the model (MAE 2.946) does no better than seasonal_naive (MAE 2.946)")
    win = metrics.verdict({"model": 2.9458264 * (1 - 1e-5), **base})
    # 1e-5 relative = 0.001 %: said with one significant digit, not rounded to "0.0 % lower"
    assert " beats " in win[0] and win[0].endswith("is 0.001 % lower") and len(win) == 1
    lose = metrics.verdict({"model": 2.9458264 * (1 + 1e-5), **base})
    assert " loses to " in lose[0] and lose[0].endswith("is 0.001 % higher") and lose[1].startswith("warning:")
    # from 0.1 % on, one decimal: (1.0 - 0.9987) / 1.0 = 0.13 % -> "0.1 %"; 0.0004 / 1.0 = 0.04 % -> "0.04 %"
    assert metrics.verdict({"model": 0.9987, **MAES})[0].endswith("is 0.1 % lower")
    assert metrics.verdict({"model": 0.9996, **MAES})[0].endswith("is 0.04 % lower")


def test_hourly_model_with_a_good_mase_loses_to_same_hour_yesterday():
    """The issue's hourly case: MASE well below 1 (beats persistence) while seasonal naive is better still."""
    actual = np.array([[10.0, 12.0], [20.0, 18.0]])[..., None]  # (B=2, H=2, T=1)
    f = {
        "model": np.array([[11.0, 13.0], [19.0, 20.0]])[..., None, None],  # errors 1, 1, 1, 2: MAE 1.25
        "persistence": np.array([[5.0, 5.0], [25.0, 25.0]])[..., None, None],  # errors 5, 7, 5, 7: MAE 6
        "seasonal_naive": np.array([[10.5, 12.0], [20.0, 18.5]])[..., None, None],  # 0.5, 0, 0, 0.5: MAE 0.25
        "window_mean": np.array([[15.0, 15.0], [15.0, 15.0]])[..., None, None],  # 5, 3, 5, 3: MAE 4
    }
    out = metrics.evaluate_forecasts(actual, f, ["y"], np.array([1.0]))
    assert out["original"]["overall"]["model"]["mase"] == pytest.approx(1.25 / 6)
    lines = text.run_verdict(out)
    # (1.25 - 0.25) / 0.25 = 400.0 % higher
    assert lines[0].endswith("loses to the best baseline, seasonal_naive (MAE 0.25): MAE 1.25 is 400.0 % higher")
    assert "seasonal_naive (MAE 0.25) on the test split" in lines[1] and "persistence" not in lines[1]


def test_compare_verdict_and_the_report_warning_say_what_is_true(tmp_path):
    """Caught: the compare report said "these cells do better than repeating the last observed value" for cells
    with MASE >= 1 (the opposite of the truth)."""
    from rnnforecast.report import _warnings

    record = _compare_record(2.0, 1.0)  # gru MAE 1.0 (MASE 0.833), lstm MAE 1.5 (MASE 1.25); persistence MAE 1.2
    (tmp_path / "compare.json").write_text(json.dumps(record))
    lines = _warnings("compare", tmp_path)
    # (1.2 - 1.0) / 1.2 = 16.7 % lower
    assert lines[0] == (
        "verdict: on the test split the first-ranked cell, gru, beats the best baseline, persistence (MAE 1.2): "
        "MAE 1 is 16.7 % lower"
    )
    assert lines[1].startswith("warning: lstm (MAE 1.5) does no better than persistence (MAE 1.2)")
    assert lines[2] == (
        "warning: MASE >= 1 on the test split for lstm (1.250): these cells do no better than repeating the last "
        "observed value (persistence)."
    )
    assert text.compare_verdict(record) == lines[:2]  # compare's terminal table ends with the same lines
    assert text.ranked_table(record).endswith("\n".join(lines[:2]))


def test_backtest_verdict_uses_the_mean_mae_over_folds():
    def block(mae):
        return {"mae": {"mean": mae, "std": None}}

    record = {
        "aggregate": {"scores": {"model": block(2.0), "persistence": block(1.6), "seasonal_naive": block(2.5)}},
        "folds": [{}, {}, {}],
    }
    lines = text.backtest_verdict(record)
    # (2.0 - 1.6) / 1.6 = 25.0 % higher
    assert lines[0] == (
        "verdict: on the test split the model (mean over 3 folds) loses to the best baseline, persistence (MAE 1.6): "
        "MAE 2 is 25.0 % higher"
    )
    assert lines[1].startswith("warning: the model (mean over 3 folds) (MAE 2) does no better than persistence")
    assert lines[1].endswith("a naive forecast is at least as good here")  # no "(see backtest ...)" in a backtest


def test_evaluate_and_report_print_the_verdict_of_the_run(weather_run, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(weather_run)])
    assert result.exit_code == 0, result.output
    overall = json.loads((weather_run / "metrics.json").read_text())["test"]["original"]["overall"]
    base = {k: v["mae"] for k, v in overall.items() if k != "model"}
    best = min(base, key=base.get)
    mine = overall["model"]["mae"]
    how = "beats" if mine < base[best] else "loses to"
    expected = f"verdict: on the test split the model {how} the best baseline, {best} (MAE {base[best]:.4g})"
    assert sum(line.startswith(expected) for line in result.stdout.splitlines()) == 1
    assert ("does no better than" in result.stderr) == (mine >= min(base.values()))
    out = tmp_path / "r.html"
    assert CliRunner().invoke(cli, ["report", str(weather_run), "--output", str(out)]).exit_code == 0
    html = out.read_text()
    assert html.index("<p class='verdict'>verdict: on the test split") < html.index("<nav>")

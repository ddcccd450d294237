"""Baselines and metrics against a hand computation on a 10-point series."""

import numpy as np
import pytest

from rnnforecast import metrics

Y = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 8.0, 7.0, 9.0, 10.0])[:, None]  # (10, 1)


def test_baselines_by_hand():
    # input_length 3, horizon 2: windows start at 0..5; take starts 0 and 4.
    starts = np.array([0, 4])
    f = metrics.baseline_forecasts(Y, starts, input_length=3, horizon=2, season=2, series_lo=np.zeros(2, int))
    # persistence repeats the last input: rows 2 and 6 -> 4 and 8
    assert f["persistence"][..., 0, 0].tolist() == [[4, 4], [8, 8]]
    # seasonal naive, m=2: step h repeats row t+h-2*ceil(h/2): h=1 -> t-1, h=2 -> t
    assert f["seasonal_naive"][..., 0, 0].tolist() == [[2, 4], [6, 8]]
    # window mean: mean(1,2,4)=7/3 and mean(5,6,8)=19/3
    assert f["window_mean"][..., 0, 0] == pytest.approx(np.array([[7 / 3] * 2, [19 / 3] * 2]))


def test_metrics_by_hand():
    actual = np.array([[3.0, 5.0], [7.0, 9.0]])[..., None]  # rows 3,4 and 7,8
    model = np.array([[3.5, 4.0], [7.0, 10.0]])[..., None, None]
    persistence = np.array([[4.0, 4.0], [8.0, 8.0]])[..., None, None]
    out = metrics.evaluate_forecasts(actual, {"model": model, "persistence": persistence}, ["y"], np.array([2.0]))
    m = out["original"]["overall"]["model"]
    errors = np.array([0.5, -1.0, 0.0, 1.0])
    assert m["mse"] == pytest.approx(np.mean(errors**2))  # 0.5625
    assert m["mae"] == pytest.approx(0.625)
    assert m["rmse"] == pytest.approx(0.75)
    assert m["mape"] == pytest.approx(100 * np.mean([0.5 / 3, 1 / 5, 0, 1 / 9]))
    p_mae = np.mean([1, 1, 1, 1])
    p_mse = 1.0
    assert m["mase"] == pytest.approx(0.625 / p_mae)
    assert m["skill"] == pytest.approx(1 - 0.5625 / p_mse)
    assert out["original"]["overall"]["persistence"]["mase"] == pytest.approx(1.0)
    # per lead time: lead 1 errors 0.5, 0 ; lead 2 errors -1, 1
    assert out["original"]["per_lead"]["model"]["mse"] == pytest.approx([0.125, 1.0])
    # normalised units divide values by the training std (2): MSE by 4, MASE unchanged
    n = out["normalised"]["overall"]["model"]
    assert n["mse"] == pytest.approx(0.5625 / 4) and n["mase"] == pytest.approx(m["mase"])


def test_smape_when_values_cross_zero():
    actual = np.array([[-1.0, 1.0]])[..., None]
    f = {"model": np.array([[-1.0, 0.0]])[..., None, None], "persistence": np.zeros((1, 2, 1, 1))}
    out = metrics.evaluate_forecasts(actual, f, ["y"], np.ones(1))
    m = out["original"]["overall"]["model"]
    assert "smape" in m and "mape" not in m
    assert m["smape"] == pytest.approx(100 * np.mean([0.0, 2 * 1 / (1 + 0)]))


def test_smape_counts_float_noise_around_an_actual_zero_as_zero():
    """Actual (20, 0, 10): a forecast of 2e-7 where the actual is 0 is persistence's 0 to float32 precision and
    scores the same sMAPE term (0/0 = 0), not 200 %; a real miss at 0 (0.5) still scores 200 %."""
    actual = np.array([[20.0, 0.0, 10.0]])[..., None]  # (1, 3, 1)
    exact = np.array([[22.0, 0.0, 10.0]])[..., None, None]
    noisy = np.array([[22.0, 2.07e-7, 10.0]])[..., None, None]
    miss = np.array([[22.0, 0.5, 10.0]])[..., None, None]
    f = {"model": noisy, "exact": exact, "miss": miss, "persistence": np.zeros((1, 3, 1, 1)) + 20.0}
    m = metrics.evaluate_forecasts(actual, f, ["y"], np.ones(1))["original"]["overall"]
    want = 100 * np.mean([2 * 2 / 42, 0.0, 0.0])  # by hand: only the first step misses
    assert m["model"]["smape"] == pytest.approx(want) and m["exact"]["smape"] == pytest.approx(want)
    assert m["miss"]["smape"] == pytest.approx(100 * np.mean([2 * 2 / 42, 2.0, 0.0]))
    per = metrics.evaluate_forecasts(actual, f, ["y"], np.ones(1))["original"]["per_target"]["y"]["model"]
    assert per["smape"] == pytest.approx(want)


def test_seasonal_naive_with_horizon_longer_than_the_season_reads_only_the_past():
    """Planted bug caught: seasonal naive copying row ``t + h - m`` (one season back only), which for h > m reads
    rows after the last input (future values) and scores an impossible baseline."""
    y = np.array([10.0, 11.0, 13.0, 16.0, 20.0, 25.0, 31.0, 38.0, 46.0, 55.0, 65.0, 76.0])[:, None]
    f = metrics.baseline_forecasts(y, np.array([0, 1]), input_length=4, horizon=7, season=3, series_lo=np.zeros(2, int))
    # window 0: last input row 3; step h copies row 3 + h - 3*ceil(h/3): 1,2,3,1,2,3,1 -> 11,13,16,11,13,16,11
    # window 1: last input row 4: rows 2,3,4,2,3,4,2 -> 13,16,20,13,16,20,13
    assert f["seasonal_naive"][..., 0, 0].tolist() == [[11, 13, 16, 11, 13, 16, 11], [13, 16, 20, 13, 16, 20, 13]]

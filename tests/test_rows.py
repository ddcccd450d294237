"""One window, the same rows everywhere: every consumer of window rows agrees with windows.py.

The series are built so that a value names its row: series "a" holds 0..39 in rows 0..39 and
series "b" holds 100..139 in rows 40..79. With input_length 3 and horizon 2, the test split of "a" is
rows 30..39 and owns targets, not inputs: its first window starts at row 27, inputs rows 27, 28, 29
(validation rows, known at forecast time) and targets rows 30, 31.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnforecast import metrics, plots, series, windows
from rnnforecast.compare import _overlay_axis
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame

L, H, N = 3, 2, 40


def _data(tmp_path, scaling="standard"):
    times = pd.date_range("2020-01-01", periods=N, freq="h")
    df = pd.concat(
        [
            pd.DataFrame({"time": times, "site": "a", "y": np.arange(N, dtype=float)}),
            pd.DataFrame({"time": times, "site": "b", "y": 100.0 + np.arange(N)}),
        ]
    )
    path = tmp_path / "two_series.csv"
    df.to_csv(path, index=False)
    cfg = from_dict(
        {
            "data": {
                "path": str(path),
                "target": "y",
                "time_column": "time",
                "series_id": "site",
                "scaling": scaling,
                "split": {"train": 0.5, "val": 0.25, "test": 0.25},
            },
            "window": {"input_length": L, "horizon": H},
            "model": {"residual": "none"},  # targets are the rows' own scaled values
        }
    )
    return series.build(load_frame(cfg.data, path), cfg)


def test_the_rows_themselves():
    starts = np.array([30, 75])
    assert windows.input_rows(starts, L).tolist() == [[30, 31, 32], [75, 76, 77]]
    assert windows.target_rows(starts, L, H).tolist() == [[33, 34], [78, 79]]
    assert windows.last_input_rows(starts, L).tolist() == [32, 77]
    assert windows.forecast_start(40, L) == 37  # the window whose inputs end at row 39
    assert windows.input_rows(np.array([windows.forecast_start(40, L)]), L).tolist() == [[37, 38, 39]]
    assert windows.history_rows(0, 40, 5).tolist() == [35, 36, 37, 38, 39]
    assert windows.steps_before_forecast(L).tolist() == [-3, -2, -1]
    # season 2: step 1 copies row 31 (two back from target row 33), step 2 copies row 32 (two back from 34)
    assert windows.seasonal_rows(np.array([30]), L, H, 2, np.array([0])).tolist() == [[31, 32]]
    assert windows.seasonal_rows(np.array([0]), L, H, 5, np.array([0])).tolist() == [[0, 0]]  # never before the series


def test_series_data_reads_the_window_rows(tmp_path):
    data = _data(tmp_path)
    starts = data.starts("test")
    assert starts.tolist() == [27, 28, 29, 30, 31, 32, 33, 34, 35, 67, 68, 69, 70, 71, 72, 73, 74, 75]
    x_rows, y_rows = windows.input_rows(starts, L), windows.target_rows(starts, L, H)
    assert data.actual(starts)[:2, :, 0].tolist() == [[30.0, 31.0], [31.0, 32.0]]  # values name their rows
    np.testing.assert_array_equal(data.actual(starts), data.raw[y_rows][..., data.target_idx])
    np.testing.assert_array_equal(data.inputs(starts), data.values[x_rows][..., data.feature_idx])
    x, y = data.batch(starts)
    np.testing.assert_array_equal(x, data.inputs(starts))
    np.testing.assert_array_equal(y, data.values[y_rows][..., data.target_idx])


def test_window_relative_inputs_are_measured_from_the_last_input_row(tmp_path):
    data = _data(tmp_path, scaling="window")
    starts = data.starts("test")
    x_rows = windows.input_rows(starts, L)
    last = data.values[windows.last_input_rows(starts, L)]  # (B, C)
    expected = data.values[x_rows][..., data.feature_idx] - last[:, None, data.feature_idx]
    np.testing.assert_array_equal(data.inputs(starts), expected)
    np.testing.assert_array_equal(data.batch(starts)[0], expected)
    assert np.all(data.inputs(starts)[:, -1] == 0)  # the newest input is the origin


def test_baselines_read_the_window_rows(tmp_path):
    data = _data(tmp_path)
    starts = data.starts("test")
    raw_t = data.raw[:, data.target_idx]
    series_lo = np.array([s.lo for s in data.segments])[data.series_index(starts)]
    f = metrics.baseline_forecasts(raw_t, starts, L, H, 2, series_lo)
    last = windows.last_input_rows(starts, L)
    np.testing.assert_array_equal(f["persistence"][:, 0, :, 0], raw_t[last])
    np.testing.assert_array_equal(f["persistence"][:, 1, :, 0], raw_t[last])
    mean = raw_t[windows.input_rows(starts, L)].mean(axis=1)
    np.testing.assert_array_equal(f["window_mean"][:, 0, :, 0], mean)
    np.testing.assert_array_equal(f["seasonal_naive"][..., 0], raw_t[windows.seasonal_rows(starts, L, H, 2, series_lo)])
    assert f["persistence"][0, :, 0, 0].tolist() == [29.0, 29.0]  # start 27: last input row 29
    assert f["window_mean"][0, 0, 0, 0] == pytest.approx(28.0)  # mean of rows 27, 28, 29
    assert f["seasonal_naive"][0, :, 0, 0].tolist() == [28.0, 29.0]


def test_plotted_forecast_view_shows_the_target_rows_of_the_first_series(tmp_path):
    data = _data(tmp_path)
    starts = data.starts("test")
    actual = data.actual(starts)
    pred = actual[..., None] + 0.5  # (B, H, T, Q): any forecast, told apart from the actual values
    times, shown, forecast = plots.first_series_view(data, starts, actual, pred)
    first = starts[data.series_index(starts) == 0]  # series "a" only
    rows = windows.target_rows(first, L, H)
    assert first.tolist() == [27, 28, 29, 30, 31, 32, 33, 34, 35]
    np.testing.assert_array_equal(shown, data.raw[rows, data.target_idx[0]])
    np.testing.assert_array_equal(forecast, data.raw[rows, data.target_idx[0]] + 0.5)
    np.testing.assert_array_equal(pd.DatetimeIndex(times.ravel()), data.timestamps(rows.ravel()))
    assert pd.Timestamp(times[0, 0]) == pd.Timestamp("2020-01-02 06:00")  # row 30 is hour 30


def test_compare_overlay_uses_the_first_target_row(tmp_path):
    data = _data(tmp_path)
    overlay = _overlay_axis(data)
    assert overlay["starts"].tolist() == [27, 28, 29, 30, 31, 32, 33, 34, 35]
    first_targets = windows.target_rows(overlay["starts"], L, H)[:, 0]
    assert first_targets.tolist() == [30, 31, 32, 33, 34, 35, 36, 37, 38]
    assert list(overlay["times"]) == list(data.timestamps(first_targets))
    assert overlay["target"] == "y"


def test_inspect_time_axis_counts_the_input_steps():
    axis = plots.TimeAxis(L, 3600)
    assert axis.ticks.tolist() == windows.steps_before_forecast(L).tolist() == [-3, -2, -1]
    assert axis.label == "steps before forecast (1 step = 1 h)"

"""Printed text: one number formatter, and tables that use it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rnnforecast import text


def test_num_formats_every_number_one_way():
    assert text.num(None) == "n/a"
    assert text.num(0.123456) == "0.1235"
    assert text.num(12, ".3f") == "12"
    assert text.num(1.5, ".3f", 8) == "   1.500"
    assert text.num(None, width=5) == "  n/a"


def test_summary_table_columns_and_missing_values():
    row = {"mse": 4.0, "rmse": 2.0, "mae": 1.5, "mape": 12.345, "mase": None, "skill": 0.25}
    ev = SimpleNamespace(split="test", metrics={"original": {"overall": {"model": row}}})
    header, line = text.summary_table(ev).splitlines()
    assert header.split() == ["MSE", "RMSE", "MAE", "MAPE", "MASE", "skill"]
    assert line.split() == ["model", "4", "2", "1.500", "12.35", "n/a", "0.250"]
    assert len(line) == len(header)
    assert text.mase_warning(ev) is None


def test_mase_warning_names_the_split():
    row = {"mase": 1.2}
    ev = SimpleNamespace(split="val", metrics={"original": {"overall": {"model": row}}})
    assert text.mase_warning(ev).startswith("warning: MASE 1.200 >= 1 on the val split")


def test_inspect_summary_flags_a_vanishing_gradient():
    numbers = {
        "ratio": 2e-4,
        "n_windows": 7,
        "layers": [
            {
                "name": "gru",
                "cell": "gru",
                "units": 4,
                "saturation": {"update_gate": {"low": [0.5, 0.0], "high": [0.25, 0.25]}},
            },
            {"name": "rnn", "cell": "simple_rnn", "units": 2, "saturation": None},
        ],
    }
    lines = text.inspect_summary(numbers, "test")
    assert lines[0].endswith("= 0.0002 (vanishing: the oldest input barely moves the forecast)")
    assert "7 test windows" in lines[0]
    assert lines[1].endswith("update 0.25/0.25")
    assert lines[2] == "rnn (simple_rnn, 2 units): no gates"


def test_one_format_per_column_aligns_the_decimal_points():
    assert text.column([17.59, 13.99, 23.15, 12.92]) == ["17.59", "13.99", "23.15", "12.92"]
    assert text.column([4.194, 3.74, 4.812]) == ["4.194", "3.740", "4.812"]  # not 3.74 beside 4.194
    assert text.column([3.0, 5.0]) == ["3", "5"]  # whole numbers stay whole
    assert text.column([1393.528, 42.734, 0.5]) == ["1393.53", "42.73", "0.50"]  # the smallest keeps 2 digits
    assert text.column([0.5, None, 7], ".3f") == ["0.500", "n/a", "7"]


@pytest.mark.parametrize("big", [42.734, -1393.528, 1e12, -9.87e15, float("nan")])
def test_summary_columns_never_run_together(big):
    """Whatever the widths, every column is separated by spaces: one token per value, decimals aligned."""
    rows = {
        "model": {"mse": big, "rmse": -1393.528, "mae": 42.734, "mape": 12.3, "mase": -big, "skill": big},
        "persistence": {"mse": 0.0012, "rmse": 3.74, "mae": -0.5, "mape": None, "mase": 1.0, "skill": 0.0},
    }
    ev = SimpleNamespace(split="test", metrics={"original": {"overall": rows}})
    lines = text.summary_table(ev).splitlines()
    assert [len(ln.split()) for ln in lines] == [6, 7, 7]
    assert len({len(ln) for ln in lines}) == 1  # right-aligned to one width
    mse = [ln.split()[1] for ln in lines[1:]]
    rmse = [ln.split()[2] for ln in lines[1:]]
    assert rmse == ["-1393.5", "3.7"]
    assert len({len(v.split(".")[-1]) for v in mse if "." in v}) <= 1  # one number of decimals per column
    dots = {ln.index(".", len(ln.split()[0])) for ln in lines[1:] if "." in ln.split()[2]}
    assert len(dots) <= 1 or big != big  # RMSE decimals aligned (the first '.' after the name is in MSE or RMSE)


def test_mean_std_shows_no_plus_minus_for_zero_std_or_one_seed():
    assert text.column_cells([(4419.0, 0.0), (80.0, None)], ".0f") == ["4419", "  80"]
    cells = text.column_cells([(1.5, 0.25), (12.25, None)], text.AUTO)
    assert cells == [" 1.50 ± 0.25", "12.25       "]  # means right-aligned, decimals in one column


def test_the_gradient_ratio_is_read_in_words():
    assert text.gradient_reading(0.02) == " (fading: the oldest input moves the forecast 50x less than the newest)"
    assert text.gradient_reading(0.5).startswith(" (kept: ")
    assert text.gradient_reading(40.0) == " (growing: the oldest input moves the forecast 40x more than the newest)"
    assert text.gradient_reading(None) == ""

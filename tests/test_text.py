"""Printed text: one number formatter, and tables that use it."""

from __future__ import annotations

from types import SimpleNamespace

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
    assert line.split() == ["model", "4", "2", "1.5", "12.35", "n/a", "0.250"]
    assert len(line) == len(header) == 16 + 3 * 12 + 9 + 8 + 8
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

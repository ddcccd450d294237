"""rnnforecast inspect through the CLI: writes inspect/ into the run, prints the gradient ratio, refuses bad windows."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rnnforecast.cli import cli


@pytest.mark.slow
def test_inspect_writes_files_and_prints_the_ratio(weather_run):
    result = CliRunner().invoke(cli, ["inspect", str(weather_run), "--window", "5"])
    assert result.exit_code == 0, result.output
    out = weather_run / "inspect"
    numbers = json.loads((out / "inspect.json").read_text())
    n_test = json.loads((weather_run / "metrics.json").read_text())["n_windows"]
    assert numbers["window_index"] == 5
    assert numbers["n_windows_total"] == n_test  # every test window, stride 1
    assert numbers["input_length"] == 7 and numbers["step_seconds"] == 86400.0
    for name in numbers["files"]:
        assert (out / name).is_file(), name
    assert {"hidden_lstm_0.png", "cell_state_lstm_0.png", "gates_lstm_0.png", "gradient_flow.png"} <= set(
        numbers["files"]
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"gradient flow, first forecast step, {numbers['n_windows']} test windows")
    assert lines[0].split(" = ")[1].split()[0] == format(numbers["ratio"], ".3g")
    assert lines[1].startswith("lstm_0 (lstm, 8 units) gate saturation") and "forget" in lines[1]
    forget = numbers["layers"][0]["saturation"]["forget_gate"]
    assert (
        f"forget {sum(forget['low']) / len(forget['low']):.2f}/{sum(forget['high']) / len(forget['high']):.2f}"
        in lines[1]
    )
    assert lines[-1] == f"plots and inspect.json written to {out}"
    # the report shows the same numbers and every inspect figure
    from test_report import assert_embeds_exactly_the_pngs, parse_report

    html = weather_run.parent / "inspected.html"
    assert CliRunner().invoke(cli, ["report", str(weather_run), "-o", str(html)]).exit_code == 0
    page = parse_report(html)
    assert_embeds_exactly_the_pngs(page, weather_run)
    assert "Inside the cells (rnnforecast inspect)" in page.headings
    assert lines[0].split(": ", 1)[1].replace(" test", "") in " ".join(page.text.split())


@pytest.mark.parametrize("window", ["-1", "100000"])
def test_window_out_of_range_is_one_line(weather_run, window):
    result = CliRunner().invoke(cli, ["inspect", str(weather_run), "--window", window])
    assert result.exit_code == 1
    n_test = json.loads((weather_run / "metrics.json").read_text())["n_windows"]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert f"--window {window} is out of range for the test split (valid: 0..{n_test - 1})" in line


def test_inspect_refuses_a_missing_run(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "run directory not found" in result.stderr

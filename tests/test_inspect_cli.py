"""rnnforecast inspect through the CLI: writes RUN-inspect/ beside the run (never into it), prints the gradient ratio,
refuses bad windows and directories it did not write."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rnnforecast.cli import cli


@pytest.mark.slow
def test_inspect_writes_files_and_prints_the_ratio(weather_run):
    before = sorted((p.relative_to(weather_run), p.stat().st_mtime_ns) for p in weather_run.rglob("*"))
    result = CliRunner().invoke(cli, ["inspect", str(weather_run), "--window", "5"])
    assert result.exit_code == 0, result.output
    assert sorted((p.relative_to(weather_run), p.stat().st_mtime_ns) for p in weather_run.rglob("*")) == before
    out = weather_run.parent / "weather-inspect"  # beside the run, named after it
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


def _hidden_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_inspect_replaces_only_its_own_directory_and_never_writes_into_a_result(weather_run, tmp_path):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(weather_run, run)
    annex = tmp_path / "r-inspect"
    annex.mkdir()
    (annex / "notes.txt").write_text("mine")  # a user's folder under the default name
    result = CliRunner().invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "holds files inspect did not write" in line and str(annex) in line and "--output" in line
    assert [p.name for p in annex.iterdir()] == ["notes.txt"] and (annex / "notes.txt").read_text() == "mine"

    (annex / "notes.txt").unlink()  # empty: taken
    for window in ("1", "2"):  # then its own: replaced, with nothing left over
        result = CliRunner().invoke(cli, ["inspect", str(run), "--window", window])
        assert result.exit_code == 0, result.output
        numbers = json.loads((annex / "inspect.json").read_text())
        assert numbers["window_index"] == int(window) and sorted(numbers["files"]) == sorted(
            p.name for p in annex.iterdir()
        )
        assert numbers["of"]["run"] == str(run.resolve()) and _hidden_leftovers(tmp_path) == []

    (annex / "extra.csv").write_text("a,b\n")  # its own directory with a user's file added: no longer replaced
    result = CliRunner().invoke(cli, ["inspect", str(run)])
    assert (
        result.exit_code == 1
        and (annex / "extra.csv").exists()
        and json.loads((annex / "inspect.json").read_text())["window_index"] == 2
    )

    for inside in (run / "mine", run / "plots" / "deeper"):  # --output inside a result: refused, the run untouched
        result = CliRunner().invoke(cli, ["inspect", str(run), "-o", str(inside)])
        assert result.exit_code == 1 and "lies inside the run" in result.stderr and not inside.exists()

    elsewhere = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["inspect", str(run), "-o", str(elsewhere), "--window", "3"])
    assert result.exit_code == 0 and json.loads((elsewhere / "inspect.json").read_text())["window_index"] == 3
    assert result.stdout.strip().splitlines()[-1] == f"plots and inspect.json written to {elsewhere}"


@pytest.mark.slow
def test_report_shows_the_inspection_of_this_run_only(weather_run, tmp_path):
    import shutil

    from test_report import parse_report

    run, other = tmp_path / "r", tmp_path / "s"
    shutil.copytree(weather_run, run)
    shutil.copytree(weather_run, other)
    assert CliRunner().invoke(cli, ["inspect", str(run)]).exit_code == 0
    shutil.copytree(tmp_path / "r-inspect", tmp_path / "s-inspect")
    record = json.loads((tmp_path / "s-inspect" / "inspect.json").read_text())
    record["of"]["metrics_sha256"] = "0" * 64  # an inspection of an earlier run made under the same name
    (tmp_path / "s-inspect" / "inspect.json").write_text(json.dumps(record))
    for name, shown in (("r", True), ("s", False)):
        assert CliRunner().invoke(cli, ["report", str(tmp_path / name)]).exit_code == 0
        page = parse_report(tmp_path / f"{name}-report.html")
        assert ("Inside the cells (rnnforecast inspect)" in page.headings) == shown, name
        inspect_alts = [alt for _, alt in page.images if alt.startswith(f"{name}-inspect/")]
        assert sorted(inspect_alts) == (
            sorted(f"r-inspect/{p.name}" for p in (tmp_path / "r-inspect").glob("*.png")) if shown else []
        )


@pytest.mark.slow
def test_kill_9_during_inspect_leaves_the_run_whole_and_the_next_inspect_clears_its_temporary(weather_run, tmp_path):
    """SIGKILL while inspect writes (its temporary ``.<pid>.r-inspect`` holds files) leaves no r-inspect and
    the run untouched; the next inspect removes the dead process's temporary and writes a whole one."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "r"
    shutil.copytree(weather_run, run)
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    proc = subprocess.Popen([sys.executable, "-m", "rnnforecast", "inspect", str(run)], stderr=subprocess.PIPE)
    tmp = tmp_path / f".{proc.pid}.r-inspect"
    deadline = time.monotonic() + 120
    while not (tmp.is_dir() and any(p.suffix == ".png" for p in tmp.iterdir())):  # mid-write: a plot is there
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "inspect wrote no plot"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tmp.is_dir() and not (tmp_path / "r-inspect").exists()  # nothing half-written under the real name
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before
    result = CliRunner().invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "r-inspect"]  # the dead one's temporary is gone
    numbers = json.loads((tmp_path / "r-inspect" / "inspect.json").read_text())
    assert sorted(numbers["files"]) == sorted(p.name for p in (tmp_path / "r-inspect").iterdir())

"""The CLI's front door: help, version, validate, and what each imports."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from conftest import CONFIGS, run_cli
from rnnforecast import __version__
from rnnforecast.cli import cli


def _modules_after(code: str) -> set[str]:
    probe = (
        code
        + "\nimport sys\nprint('MODS:' + ','.join(m for m in ('pandas', 'keras', 'jax', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    line = next(x for x in out.splitlines() if x.startswith("MODS:"))
    return set(filter(None, line[5:].split(",")))


def test_help_and_version_import_nothing_heavy():
    help_mods = _modules_after(
        "from rnnforecast.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert help_mods == set(), help_mods


def test_version_and_every_subcommand_help_import_nothing_heavy():
    """`--version` and `rnnforecast CMD --help` for every command: exit 0, real help text, no heavy import."""
    probe = """
import contextlib, io, json, sys
from rnnforecast.cli import cli, main
out = {}
for args in [["--version"]] + [[name, "--help"] for name in sorted(cli.commands)]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(args)
        except SystemExit as e:
            out[" ".join(args)] = [e.code, buf.getvalue()]
heavy = [m for m in ("pandas", "keras", "jax", "tensorflow", "matplotlib", "optuna", "ray") if m in sys.modules]
print("JSON:" + json.dumps({"runs": out, "heavy": heavy}))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("JSON:"))[5:])
    assert result["heavy"] == [], result["heavy"]
    runs = result["runs"]
    assert runs.pop("--version") == [0, f"rnnforecast, version {__version__}\n"]
    assert {k.split()[0] for k in runs} >= {"train", "validate", "evaluate", "predict", "compare", "inspect", "report"}
    for args, (code, text) in runs.items():
        name = args.split()[0]
        assert code == 0, args
        assert text.startswith(f"Usage: rnnforecast {name} "), (args, text[:80])
        assert "Options:" in text and "--help" in text, args
        assert len(text.splitlines()[2].strip()) > 10, (args, text)  # the command's docstring, not empty


def test_validate_imports_no_deep_learning_library():
    code = f"from rnnforecast.cli import main\ntry:\n    main(['validate', r'{CONFIGS / 'weather_lstm.yaml'}'])\nexcept SystemExit as e:\n    assert e.code == 0"
    mods = _modules_after(code)
    assert "pandas" in mods and not mods & {"keras", "jax", "tensorflow"}, mods


def test_python_dash_m_and_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"rnnforecast, version {__version__}"
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("train", "validate", "evaluate", "predict"):
        assert command in proc.stdout


def test_validate_reports_everything_on_both_sample_datasets():
    for name, rows, first, last, freq in (
        ("weather_lstm.yaml", 1461, "2012-01-01", "2015-12-31", "D"),
        ("stock_gru.yaml", 7983, "1986-03-13", "2017-11-10", "B"),
    ):
        result = CliRunner().invoke(cli, ["validate", str(CONFIGS / name)])
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert f"rows:       {rows}" in out
        assert first in out and last in out and f"frequency:  {freq}" in out
        assert "train rows" in out and "val   rows" in out and "test  rows" in out
        assert "first window: inputs rows [0," in out and "train windows:" in out
        assert "batch shapes: past (32," in out and "-> forecast (32," in out


def test_validate_counts_windows_exactly():
    result = CliRunner().invoke(
        cli,
        [
            "validate",
            str(CONFIGS / "weather_lstm.yaml"),
            "--set",
            "window.input_length=10",
            "--set",
            "window.horizon=4",
            "--set",
            "window.stride=3",
        ],
    )
    # 1461 rows: train 1023, val 219, test 219. Train stride 3: (1023-14)//3+1 = 337; val/test (stride 1) own
    # targets only, their inputs read the rows before: one window per first target with all 4 targets inside,
    # 219-4+1 = 216
    assert (
        "train windows: 337" in result.stdout
        and "val   windows: 216" in result.stdout
        and "test  windows: 216" in result.stdout
        and "a split owns targets, not inputs" in result.stdout
    )


def test_config_error_is_one_line_with_exit_1(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("data:\n  path: x.csv\n  target: y\nwindow:\n  horizon: 0\n")
    result = CliRunner().invoke(cli, ["validate", str(p)])
    assert result.exit_code == 1
    assert (
        result.stderr.count("\n") == 1
        and "bad.yaml:5: window.horizon" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_usage_error_exits_2():
    result = CliRunner().invoke(cli, ["train"])
    assert result.exit_code == 2 and "Missing argument" in result.stderr

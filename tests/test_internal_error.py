"""The internal-error path of the CLI: a bug (not a user error) gives one line that says so, exit 1 and no stack,
unless --traceback or RNNFORECAST_TRACEBACK asks for it.

No user input reaches this path on purpose (every known bad input is a clean RnnForecastError, see test_bad_inputs and
the fuzz tests), so the test injects a fault: a child process in which ``pipeline.validate`` raises ZeroDivisionError,
then runs the real CLI entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import CONFIGS

CHILD = """
import sys
from rnnforecast import pipeline
from rnnforecast.cli import main

def broken(cfg):
    return 1 / 0

pipeline.validate = broken
main(sys.argv[1:])
"""


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "RNNFORECAST_TRACEBACK"}
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=e, timeout=120)


def test_a_bug_gives_one_line_exit_1_and_no_stack():
    p = _run("validate", str(CONFIGS / "weather_lstm.yaml"))
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines == [
        "error: internal error: ZeroDivisionError: division by zero (rerun with --traceback and report it)"
    ]
    assert "Traceback" not in p.stderr


def test_traceback_flag_and_environment_show_the_stack():
    for args, env in ((("--traceback", "validate"), None), (("validate",), {"RNNFORECAST_TRACEBACK": "1"})):
        p = _run(*args, str(CONFIGS / "weather_lstm.yaml"), env=env)
        assert p.returncode == 1, p.stderr
        assert "Traceback (most recent call last)" in p.stderr
        assert "ZeroDivisionError" in p.stderr and "in broken" in p.stderr

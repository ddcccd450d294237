"""The shipped demo (`make demo`) beats every naive baseline on the test split, at its shipped settings."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, run_cli


def demo_config() -> str:
    """The config `make demo` trains, read from the Makefile so the test follows the demo."""
    return re.search(r"^CONFIG \?= (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)


@pytest.mark.slow
def test_demo_beats_every_baseline(tmp_path):
    run = tmp_path / "demo"
    # plots off: they do not change a number and cost seconds; everything else as shipped (seed 42, default backend)
    proc = run_cli("train", str(ROOT / demo_config()), "--run-dir", str(run), "-q", "--set", "output.plots=false")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]
    assert scores["model"]["mase"] < 1
    for baseline in ("persistence", "seasonal_naive", "window_mean"):
        assert scores["model"]["mae"] < scores[baseline]["mae"], (baseline, scores)

"""The run directory's owner: one claim for runs and comparisons, strict JSON numbers, atomic user files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rnnforecast import artifacts
from rnnforecast.errors import RunError


def test_one_start_claims_runs_and_comparisons(tmp_path):
    run = artifacts.start(tmp_path / "r", "c.yaml")
    assert run == tmp_path / "r.partial"
    assert (run / artifacts.MARKER).read_text() == (
        f"This run did not finish. It is not a result.\nResume it with: rnnforecast train c.yaml --resume {run}\n"
    )
    cmp = artifacts.start(tmp_path / "cmp", what="comparison")
    assert (cmp / artifacts.MARKER).read_text().splitlines()[1] == (
        "Nothing in it resumes: remove this directory, then run rnnforecast compare again (or pass another --out)."
    )


def test_start_never_replaces_an_existing_partial(tmp_path):
    run = artifacts.start(tmp_path / "r", "c.yaml")  # stopped before its first epoch, still held by this process
    with pytest.raises(RunError, match="another rnnforecast process is writing this run"):
        artifacts.start(tmp_path / "r", "c.yaml")
    artifacts.release(run)  # its process is gone: the directory is still not this process's to delete
    with pytest.raises(RunError, match="an unfinished run is already there") as e:
        artifacts.start(tmp_path / "r", "c.yaml")
    assert e.value.fix == "remove it, or pass another --run-dir"
    assert (run / artifacts.MARKER).exists()
    artifacts.start(tmp_path / "cmp", what="comparison")
    with pytest.raises(RunError, match="another rnnforecast process is writing this comparison") as e:
        artifacts.start(tmp_path / "cmp", what="comparison")
    assert "--out" in e.value.fix
    assert (tmp_path / "cmp.partial" / artifacts.MARKER).exists()
    (tmp_path / "done").mkdir()
    with pytest.raises(RunError, match="the run directory already exists"):
        artifacts.start(tmp_path / "done", "c.yaml")


def test_finite_or_none():
    assert artifacts.finite_or_none(1.5) == 1.5
    assert artifacts.finite_or_none(math.nan) is None
    assert artifacts.finite_or_none(-math.inf) is None
    assert artifacts.finite_or_none(None) is None


def test_write_table_is_atomic_and_says_where(tmp_path):
    path = tmp_path / "f.csv"
    artifacts.write_table(path, pd.DataFrame({"a": [1, 2]}))
    assert path.read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]
    with pytest.raises(RunError, match="the folder does not exist") as e:  # refused before writing (check_output)
        artifacts.write_table(tmp_path / "missing" / "f.csv", pd.DataFrame({"a": [1]}))
    assert e.value.where == str(tmp_path / "missing")
    with pytest.raises(RunError, match="is not a folder") as e:  # a file where the folder should be
        artifacts.write_table(tmp_path / "f.csv" / "g.csv", pd.DataFrame({"a": [1]}))
    assert e.value.where == str(tmp_path / "f.csv") and sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


def test_an_annex_goes_beside_the_outermost_result_named_after_the_path_inside_it(tmp_path, monkeypatch):
    """report, inspect and export write beside what they read: a run's own name; a run inside a comparison or a
    tune beside the comparison (never inside it); a link (runs/latest) by the run it points to."""
    from rnnforecast.artifacts import annex_path

    run = tmp_path / "runs" / "x"
    cmp_run = tmp_path / "runs" / "cmp" / "runs" / "gru-seed42"
    for d in (run, cmp_run):
        d.mkdir(parents=True)
        (d / "metrics.json").write_text("{}")
        (d / "schema.json").write_text("{}")
    (tmp_path / "runs" / "cmp" / "compare.json").write_text("{}")
    (tmp_path / "runs" / "latest").symlink_to("x", target_is_directory=True)
    assert annex_path(run, "-report.html") == tmp_path / "runs" / "x-report.html"
    assert annex_path(cmp_run, "-inspect") == tmp_path / "runs" / "cmp-runs-gru-seed42-inspect"
    assert annex_path(tmp_path / "runs" / "cmp", "-report.html") == tmp_path / "runs" / "cmp-report.html"
    assert annex_path(tmp_path / "runs" / "latest", "-export-onnx") == tmp_path / "runs" / "x-export-onnx"
    monkeypatch.chdir(tmp_path / "runs")
    assert annex_path("x", "-inspect") == tmp_path / "runs" / "x-inspect"  # a relative path: beside it, absolute
    assert annex_path(".", "-inspect") == tmp_path / "runs-inspect"  # not a result: beside the folder itself


def test_a_new_directory_replaces_only_an_empty_one_or_the_callers_own(tmp_path):
    from rnnforecast.artifacts import new_directory
    from rnnforecast.errors import RunError

    out = tmp_path / "out"
    with new_directory(out, "-o") as tmp:  # nothing there: made
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RunError, match="something else is there now"):
        with new_directory(tmp_path / "missing" / ".." / "out", "-o") as tmp:  # "missing/.." names out
            (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # kept whole
    with new_directory(out, "-o", replaceable=lambda p: (p / "a.txt").exists()) as tmp:  # the caller's own
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt"]
    with pytest.raises(ValueError):
        with new_directory(out, "-o", replaceable=lambda p: True) as tmp:
            (tmp / "d.txt").write_text("4")
            raise ValueError("the work failed")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left, success or failure

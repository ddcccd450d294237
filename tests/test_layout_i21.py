"""Issue 21's layout rules: directory kinds decided once (records.kind_of), the training module named fit (no
importlib workaround), short pipeline functions, and tune's Optuna calls through the public storage API."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from rnnforecast import artifacts, records, report
from rnnforecast.errors import RunError

PACKAGE = ROOT / "rnnforecast"


def _dir(root: Path, name: str, files: dict[str, str]) -> Path:
    d = root / name
    d.mkdir()
    for f, text in files.items():
        (d / f).write_text(text)
    return d


FINISHED = {  # directory -> (its files, what records.kind_of says)
    "run": ({"metrics.json": "{}", "schema.json": "{}"}, "run"),
    "comparison": ({"compare.json": "{}", "compare.md": ""}, "comparison"),
    "tune": ({"tune.json": "{}", "trials.csv": "number\n"}, "tune"),
    "backtest": ({"plan.json": "{}", "metrics.json": '{"kind": "backtest"}'}, "backtest"),
    "fold": ({"fold.json": "{}", "predictions.csv": ""}, "backtest fold"),
    "metrics_only": ({"metrics.json": "{}"}, None),  # not a finished run: schema.json is part of its record
    "user_files": ({"notes.txt": "mine", "data.csv": "a\n1\n"}, None),
    "empty": ({}, None),
}


@pytest.mark.parametrize("name", FINISHED)
def test_records_kind_of_reads_the_records_a_directory_holds(tmp_path, name):
    files, kind = FINISHED[name]
    assert records.kind_of(_dir(tmp_path, name, files)) == kind


def test_a_record_that_is_a_folder_marks_nothing(tmp_path):
    d = _dir(tmp_path, "odd", {})
    (d / "compare.json").mkdir()
    assert records.kind_of(d) is None


def test_an_unfinished_directory_is_what_its_owner_record_says(tmp_path):
    d = _dir(tmp_path, "t.partial", {"owner.json": json.dumps({"what": "tune", "pid": 1}), "plan.json": "{}"})
    assert artifacts._result_kind(d) == "tune"
    d = _dir(tmp_path, "r.partial", {"UNFINISHED.txt": "x", "metrics.json": "{}", "schema.json": "{}"})
    assert artifacts._result_kind(d) == "run"  # no owner record: a run (the resumable kind)
    done = _dir(tmp_path, "c", {"compare.json": "{}"})
    assert artifacts._result_kind(done) == records.kind_of(done) == "comparison"


@pytest.mark.parametrize("name", ["comparison", "tune", "backtest"])
def test_report_takes_the_kind_from_records(tmp_path, name):
    files, kind = FINISHED[name]
    assert report.kind_of(_dir(tmp_path, name, files)) == kind


def test_report_names_the_missing_file_of_an_incomplete_run(tmp_path):
    d = _dir(tmp_path, "run", {"metrics.json": "{}"})
    with pytest.raises(RunError) as e:
        report.kind_of(d)
    assert e.value.message == "model.keras is missing"  # open_run's check, not "neither a run directory ..."


@pytest.mark.parametrize("name", ["user_files", "empty", "fold"])
def test_report_refuses_what_it_cannot_render(tmp_path, name):
    with pytest.raises(RunError) as e:
        report.kind_of(_dir(tmp_path, name, FINISHED[name][0]))
    assert e.value.message.startswith("neither a run directory") and "rnnforecast train" in e.value.fix


def test_report_refuses_an_unfinished_directory_before_reading_its_records(tmp_path):
    d = _dir(tmp_path, "c.partial", {"compare.json": "{}"})
    with pytest.raises(RunError, match="did not finish"):
        report.kind_of(d)


def test_the_training_module_is_fit_and_the_package_needs_no_importlib():
    assert not (PACKAGE / "train.py").exists() and (PACKAGE / "fit.py").exists()
    for module in ("__init__.py", "pipeline.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.split(".")[0] == "importlib"}, module
    code = (
        "import rnnforecast, sys; print(rnnforecast.train.__module__, 'keras' in sys.modules, 'pandas' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["rnnforecast.api", "False", "True"]  # the API function; api loads pandas, not Keras


def test_no_pipeline_function_is_longer_than_50_lines():
    tree = ast.parse((PACKAGE / "pipeline.py").read_text())
    long = {
        n.name: n.end_lineno - n.lineno + 1
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 50
    }
    assert long == {}


def test_tune_reaches_no_private_optuna_attribute():
    text = (PACKAGE / "tune.py").read_text()
    assert "._trial_id" not in text and "._storage" not in text


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna is not installed (extra: scale)")
def test_a_trials_storage_id_comes_from_the_public_storage_api(tmp_path):
    import optuna

    from rnnforecast.tune import _fail, _storage, _trial_id

    store = _storage(f"sqlite:///{tmp_path / 'a.db'}")
    other = optuna.create_study(study_name="other", storage=store)  # ids interleave across studies
    study = optuna.create_study(study_name="s", storage=store)
    asked = []
    for _ in range(3):
        other.ask()
        asked.append(study.ask())
    ids = [_trial_id(store, study, t.number) for t in asked]
    assert ids == [t._trial_id for t in asked]  # Optuna's own (private) id, as the oracle
    assert ids == [2, 4, 6]  # trial ids count across the storage: other's 1, 3, 5
    _fail(study, store, asked[1].number, {}, {}, "worker died")
    t = study.trials[1]
    assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs["error"] == "worker died"
    assert [q.user_attrs.get("retry_of") for q in study.get_trials(states=(optuna.trial.TrialState.WAITING,))] == [1]

"""tune: search-space validation through the CLI, local SQLite studies (resume after kill -9), PostgreSQL, Ray."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, DATA, TINY, merge, run_cli, write_config

SPACE = {"model.cell": ["gru", "lstm"], "training.learning_rate": {"low": 1.0e-3, "high": 1.0e-2, "log": True}}


def tune_config(directory: Path, space: dict | None = None) -> Path:
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(cfg, TINY)
    cfg["tune"] = SPACE if space is None else space
    return write_config(directory, cfg)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# --------------------------------------------------------------------------- validation, before any trial


def test_unknown_key_suggests_and_points_at_the_line(tmp_path):
    cfg = tune_config(tmp_path, {"model.cel": ["gru", "lstm"]})
    r = run_cli("tune", str(cfg), "--out", str(tmp_path / "t"))
    assert r.returncode == 1
    assert f"{cfg}:{line_of(cfg, 'model.cel')}: tune.model.cel" in r.stderr
    assert "did you mean 'cell'" in r.stderr and "Fix:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t.partial").exists() and not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"low": 0.01, "high": 0.001}, "`low` must be below `high`, received low=0.01, high=0.001"),
        ({"low": 0.0, "high": 0.01, "log": True}, "a log range needs low > 0"),
        ({"low": 0.001, "hihg": 0.01}, "unknown search key 'hihg' (did you mean 'high'?)"),
        ({"low": -0.01, "high": 0.01}, "the value -0.01 is not valid for training.learning_rate"),
        ({"choices": []}, "choices must be a non-empty list"),
    ],
)
def test_bad_range_names_file_line_and_fix(tmp_path, spec, message):
    cfg = tune_config(tmp_path, {"training.learning_rate": spec})
    r = run_cli("tune", str(cfg), "--out", str(tmp_path / "t"))
    assert r.returncode == 1, r.stderr
    assert f"{cfg}:{line_of(cfg, 'training.learning_rate')}: tune.training.learning_rate" in r.stderr
    assert message in r.stderr and "Fix:" in r.stderr


def test_bad_choice_is_checked_by_the_schema(tmp_path):
    cfg = tune_config(tmp_path, {"model.cell": ["gru", "lstmm"]})
    r = run_cli("tune", str(cfg), "--out", str(tmp_path / "t"))
    assert r.returncode == 1
    assert "the value 'lstmm' is not valid for model.cell" in r.stderr


def test_space_values_become_typed_optuna_params(tmp_path):
    from rnnforecast.config import load_config
    from rnnforecast.tune import Param, load_space

    space = {"model.units": {"choices": [[8], [8, 4]]}, "window.input_length": {"low": 6, "high": 12, "step": 3}}
    cfg = tune_config(tmp_path, space)
    params = load_space(cfg, load_config(cfg))
    assert params == [Param("model.units", choices=([8], [8, 4])), Param("window.input_length", low=6, high=12, step=3)]
    assert params[1].is_int and params[0].choices[1] == [8, 4]


# --------------------------------------------------------------------------- real studies


def read_trials(tune_dir: Path) -> pd.DataFrame:
    return pd.read_csv(tune_dir / "trials.csv")


@pytest.mark.slow
def test_local_tune_three_trials_and_one_test_evaluation(tmp_path):
    cfg = tune_config(tmp_path)
    out = tmp_path / "tune"
    r = run_cli("tune", str(cfg), "--trials", "3", "--out", str(out), "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    trials = read_trials(out)
    assert list(trials["number"]) == [0, 1, 2]
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert set(trials["params_model.cell"]) <= {"gru", "lstm"}
    assert trials["params_training.learning_rate"].between(1e-3, 1e-2).all()
    # Trials are scored on val only; the test split is read once, by best/.
    records = {p.parent.name: json.loads(p.read_text()) for p in out.rglob("metrics.json")}
    assert sorted(records) == ["0000", "0001", "0002", "best"]
    assert [k for k, r in records.items() if "test" in r] == ["best"]
    assert all(records[f"000{i}"]["split"] == "val" for i in range(3))
    info = json.loads((out / "tune.json").read_text())
    best = trials.loc[trials["value"].idxmin()]
    assert info["best_trial"] == best["number"] and info["best_value"] == pytest.approx(best["value"])
    assert records[f"{int(best['number']):04d}"]["val"]["original"]["overall"]["model"]["mae"] == pytest.approx(
        best["value"]
    )
    assert (out / "plots" / "optimization_history.png").stat().st_size > 1000
    assert not out.with_name("tune.partial").exists()
    # best.yaml is a plain config `train` accepts, and it holds the best parameters.
    best_cfg = yaml.safe_load((out / "best.yaml").read_text())
    assert best_cfg["model"]["cell"] == best["params_model.cell"]
    r = run_cli("train", str(out / "best.yaml"), "--run-dir", str(tmp_path / "again"), "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr


def finished_in(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


@pytest.mark.slow
def test_kill_9_then_rerun_continues_the_study(tmp_path):
    cfg = tune_config(tmp_path)
    out = tmp_path / "tune"
    cmd = [sys.executable, "-m", "rnnforecast", "tune", str(cfg), "--trials", "4", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = out.with_name("tune.partial") / "study.db"
    t0 = time.monotonic()
    while finished_in(db) < 2:
        assert proc.poll() is None, "tune ended before it could be killed"
        assert time.monotonic() - t0 < 600
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, with no chance to clean up
    proc.wait()
    with sqlite3.connect(db) as con:
        before = dict(con.execute("select t.number, v.value from trials t join trial_values v using (trial_id)"))
    assert len(before) >= 2
    r = run_cli("tune", str(cfg), "--trials", "4", "--out", str(out), "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    trials = read_trials(out)
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    assert len(finished) == 4
    for number, value in before.items():  # the finished trials are kept, untouched
        assert trials.loc[trials["number"] == number, "value"].item() == pytest.approx(value)
    # A trial that was running when killed is failed and retried once, never left RUNNING.
    assert "RUNNING" not in set(trials["state"])
    for _, t in trials[trials["state"] == "FAIL"].iterrows():
        assert (trials["user_attrs_retry_of"] == t["number"]).sum() == 1


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.slow
def test_two_processes_share_one_postgresql_study(tmp_path, pg_url):
    import optuna

    from rnnforecast.tune import _storage

    study = f"test-{uuid.uuid4().hex[:10]}"
    cfg = tune_config(tmp_path)
    try:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rnnforecast",
                    "tune",
                    str(cfg),
                    "--trials",
                    "4",
                    "--storage",
                    pg_url,
                    "--study",
                    study,
                    "--out",
                    str(tmp_path / f"p{i}"),
                    "--quiet",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outs = [p.communicate(timeout=900) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        infos = [json.loads((tmp_path / f"p{i}" / "tune.json").read_text()) for i in range(2)]
        s = optuna.load_study(study_name=study, storage=_storage(pg_url))
        finished = [t for t in s.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert 4 <= len(finished) <= 5  # two drivers may both ask for the last slot at the same instant
        assert sum(i["trials_by_this_process"] for i in infos) == len(s.trials)
        assert all(i["trials_by_this_process"] >= 1 for i in infos)
        pids = {t.user_attrs["pid"] for t in finished}
        assert len(pids) == 2  # both processes' workers ran trials of the one study
    finally:
        try:
            optuna.delete_study(study_name=study, storage=_storage(pg_url))
        except KeyError:
            pass


# --------------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_trials_run_in_ray_worker_processes(tmp_path):
    pytest.importorskip("ray")
    cfg = tune_config(tmp_path)
    out = tmp_path / "tune"
    r = run_cli(
        "tune",
        str(cfg),
        "--trials",
        "2",
        "--executor",
        "ray",
        "--workers",
        "2",
        "--out",
        str(out),
        "--quiet",
        timeout=900,
        env={"PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert r.returncode == 0, r.stderr
    trials = read_trials(out)
    driver = json.loads((out / "tune.json").read_text())["driver_pid"]
    assert len(trials) == 2 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert driver not in set(trials["user_attrs_pid"])

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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, DATA, TINY, merge, run_cli, write_config

SPACE = {"model.cell": ["gru", "lstm"], "training.learning_rate": {"low": 1.0e-3, "high": 1.0e-2, "log": True}}
ROWS = 300  # of the weather data: every trial trains in well under a second once its worker is warm
SMALL = {"model": {"units": [4]}, "output": {"plots": False}}  # on top of TINY (1 epoch); tune's own plots stay


def tune_config(directory: Path, space: dict | None = None) -> Path:
    data = directory / "weather_head.csv"
    data.write_text("".join((DATA / "weather.csv").read_text().splitlines(keepends=True)[: ROWS + 1]))
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(data)
    cfg = merge(merge(cfg, TINY), SMALL)
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


def test_an_empty_or_missing_search_space_is_refused_before_anything_is_written(tmp_path):
    empty = tune_config(tmp_path, {})
    r = run_cli("tune", str(empty), "--out", str(tmp_path / "t"))
    assert r.returncode == 1 and "the `tune:` section is empty, so there is nothing to search" in r.stderr
    raw = yaml.safe_load(empty.read_text())
    del raw["tune"]
    missing = write_config(tmp_path, raw, "no_tune.yaml")
    r = run_cli("tune", str(missing), "--out", str(tmp_path / "t"))
    assert r.returncode == 1 and "the config has no `tune:` section" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()


def test_space_values_become_typed_optuna_params(tmp_path):
    from rnnforecast.config import load_config
    from rnnforecast.tune import Param, load_space

    space = {"model.units": {"choices": [[8], [8, 4]]}, "window.input_length": {"low": 6, "high": 12, "step": 3}}
    cfg = tune_config(tmp_path, space)
    params = load_space(cfg, load_config(cfg))
    assert params == [Param("model.units", choices=([8], [8, 4])), Param("window.input_length", low=6, high=12, step=3)]
    assert params[1].is_int and params[0].choices[1] == [8, 4]


def test_a_range_written_1e_minus_5_is_a_number(tmp_path):
    """PyYAML reads 1e-5 (an exponent without a dot) as text; the range reads it as the number it is."""
    from rnnforecast.config import load_config
    from rnnforecast.tune import Param, load_space

    cfg = tune_config(tmp_path, {"training.learning_rate": {"low": 1.0, "high": 2.0, "log": True}})
    cfg.write_text(cfg.read_text().replace("low: 1.0", "low: 1e-5").replace("high: 2.0", "high: 1E-2"))
    assert "low: 1e-5" in cfg.read_text()
    params = load_space(cfg, load_config(cfg))
    assert params == [Param("training.learning_rate", low=1e-5, high=1e-2, step=None, log=True)]


# --------------------------------------------------------------------------- one local study, shared by the tests below


def read_trials(tune_dir: Path) -> pd.DataFrame:
    return pd.read_csv(tune_dir / "trials.csv")


def finished_in(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def wait_for(what, proc: subprocess.Popen, limit: float = 300) -> None:
    t0 = time.monotonic()
    while not what():
        assert proc.poll() is None, "tune ended too early"
        assert time.monotonic() - t0 < limit
        time.sleep(0.2)


@dataclass
class Killed:
    out: Path
    config: Path
    pid: int  # the first tune process, killed with -9 after two finished trials
    second: subprocess.CompletedProcess  # a second tune on the same directory while the first ran
    before: dict  # trial number -> value, as the killed process left them
    rerun: subprocess.CompletedProcess  # the rerun that finished the study


@pytest.fixture(scope="module")
def killed_study(tmp_path_factory) -> Killed:
    """``tune --trials 3``: a second process is refused while it runs, kill -9 after 2 finished trials, rerun."""
    d = tmp_path_factory.mktemp("tune")
    cfg = tune_config(d)
    out = d / "tune"
    partial = out.with_name("tune.partial")
    cmd = [sys.executable, "-m", "rnnforecast", "tune", str(cfg), "--trials", "3", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (partial / "plan.json").exists(), proc)
        second = run_cli("tune", str(cfg), "--trials", "3", "--out", str(out), "--quiet")
        wait_for(lambda: finished_in(partial / "study.db") >= 2, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, with no chance to clean up
        proc.wait()
    with sqlite3.connect(partial / "study.db") as con:
        before = dict(con.execute("select t.number, v.value from trials t join trial_values v using (trial_id)"))
    rerun = run_cli("tune", str(cfg), "--trials", "3", "--out", str(out), "--quiet", timeout=600)
    return Killed(out, cfg, proc.pid, second, before, rerun)


@pytest.mark.slow
def test_a_second_process_is_refused_naming_the_owner(killed_study):
    r = killed_study.second
    assert r.returncode == 1, r.stderr
    assert f"another rnnforecast process is writing this tune (pid {killed_study.pid} on " in r.stderr
    assert "Fix:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_kill_9_then_rerun_continues_the_study(killed_study):
    assert killed_study.rerun.returncode == 0, killed_study.rerun.stderr
    # --quiet under JAX: nothing on stderr (the pruning callback's `import keras` imported TensorFlow, whose start-up
    # lines, absl's and the CUDA stub's, came out once per trial)
    assert killed_study.rerun.stderr == "", killed_study.rerun.stderr
    assert len(killed_study.before) >= 2
    trials = read_trials(killed_study.out)
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    assert len(finished) == 3
    for number, value in killed_study.before.items():  # the finished trials are kept, untouched
        assert trials.loc[trials["number"] == number, "value"].item() == pytest.approx(value)
    # A trial that was running when killed is failed and retried once, never left RUNNING.
    assert "RUNNING" not in set(trials["state"])
    for _, t in trials[trials["state"] == "FAIL"].iterrows():
        assert (trials["user_attrs_retry_of"] == t["number"]).sum() == 1
    assert not killed_study.out.with_name("tune.partial").exists()
    assert not (killed_study.out / "owner.json").exists() and not (killed_study.out / ".lock").exists()


@pytest.mark.slow
def test_trials_score_val_and_only_the_best_touches_test(killed_study):
    out = killed_study.out
    trials = read_trials(out)
    # a trial killed between Optuna's ask and its first suggestion has no parameters (a busy machine's timing)
    drawn = trials.dropna(subset=["params_model.cell", "params_training.learning_rate"])
    assert len(drawn) >= len(trials) - 1 and len(drawn) >= 2
    assert set(drawn["params_model.cell"]) <= {"gru", "lstm"}
    assert drawn["params_training.learning_rate"].between(1e-3, 1e-2).all()
    # Trials are scored on val only; the test split is read once, by best/.
    records = {p.parent.name: json.loads(p.read_text()) for p in out.rglob("metrics.json")}
    done = trials[trials["state"] == "COMPLETE"]["number"]
    assert {f"{n:04d}" for n in done} | {"best"} <= set(records)
    assert [k for k, r in records.items() if "test" in r] == ["best"]
    assert all(r["split"] == "val" for k, r in records.items() if k != "best")
    info = json.loads((out / "tune.json").read_text())
    best = trials.loc[trials["value"].idxmin()]
    assert info["best_trial"] == best["number"] and info["best_value"] == pytest.approx(best["value"])
    assert records[f"{int(best['number']):04d}"]["val"]["original"]["overall"]["model"]["mae"] == pytest.approx(
        best["value"]
    )
    # tune's best gets the verdict against its best baseline, by MAE on the test split (metrics.verdict)
    overall = records["best"]["test"]["original"]["overall"]
    base = {k: v["mae"] for k, v in overall.items() if k != "model"}
    name = min(base, key=base.get)
    how = "beats" if overall["model"]["mae"] < base[name] else "loses to"
    verdict = f"verdict: on the test split the best config {how} the best baseline, {name} (MAE {base[name]:.4g})"
    assert verdict in killed_study.rerun.stdout
    assert info["test_of_best"]["mae"] == pytest.approx(records["best"]["test"]["original"]["overall"]["model"]["mae"])
    assert (out / "plots" / "optimization_history.png").stat().st_size > 1000


@pytest.mark.slow
def test_best_yaml_is_a_config_train_accepts(killed_study, tmp_path):
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    out = killed_study.out
    best = read_trials(out).set_index("number").loc[json.loads((out / "tune.json").read_text())["best_trial"]]
    best_cfg = yaml.safe_load((out / "best.yaml").read_text())
    assert best_cfg["model"]["cell"] == best["params_model.cell"]
    assert best_cfg["training"]["learning_rate"] == pytest.approx(best["params_training.learning_rate"])
    r = CliRunner().invoke(cli, ["train", str(out / "best.yaml"), "--run-dir", str(tmp_path / "again"), "--quiet"])
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"]["original"]["overall"]["model"]["mae"] == pytest.approx(
        json.loads((out / "tune.json").read_text())["test_of_best"]["mae"], rel=1e-4
    )


@pytest.mark.slow
def test_report_renders_the_tune_directory(killed_study, tmp_path):
    out = killed_study.out
    page = tmp_path / "tune.html"
    r = run_cli("report", str(out), "--output", str(page))
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    info = json.loads((out / "tune.json").read_text())
    assert f"<title>Tune: {info['study']}</title>" in html
    trials = read_trials(out)
    assert html.count("<tr") >= len(trials) + 1  # the trials table: a header and one row per trial
    assert f"best trial {info['best_trial']} with val_mae" in html
    assert "Best config (best.yaml)" in html and "learning_rate" in html
    drawn = [k for k, v in info["plots"].items() if v.startswith("plots/")]
    assert "optimization_history" in drawn
    for name in drawn:
        assert f"alt='plots/{name}.png'" in html
    assert html.count("data:image/png;base64,") == len(list(out.rglob("*.png")))
    assert "the only run on the test split" in html


def test_an_unfinished_tune_with_another_config_is_refused(tmp_path):
    from rnnforecast import artifacts
    from rnnforecast.config import load_config
    from rnnforecast.tune import _Dir

    cfg = tune_config(tmp_path)
    final = tmp_path / "t"
    d = _Dir(final, {"config": load_config(cfg).hash()}, again="Resume it with: rnnforecast tune ...")
    owner = json.loads((d.partial / "owner.json").read_text())
    assert owner["what"] == "tune" and owner["pid"] == os.getpid()
    assert "Resume it with: rnnforecast tune" in (d.partial / "UNFINISHED.txt").read_text()
    artifacts.release(d.partial)
    r = run_cli("tune", str(cfg), "--out", str(final))
    assert r.returncode == 1
    assert "an unfinished tune with another config or other options is already there" in r.stderr
    assert str(d.partial) in r.stderr


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.slow
def test_two_processes_share_one_postgresql_study(tmp_path, pg_url):
    import optuna

    from rnnforecast.tune import _storage

    study = f"test-{uuid.uuid4().hex[:10]}"
    cfg = tune_config(tmp_path)
    args = [sys.executable, "-m", "rnnforecast", "tune", str(cfg), "--trials", "3", "--storage", pg_url]
    try:
        procs = [
            subprocess.Popen(
                [*args, "--study", study, "--out", str(tmp_path / f"p{i}"), "--quiet"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        infos = [json.loads((tmp_path / f"p{i}" / "tune.json").read_text()) for i in range(2)]
        s = optuna.load_study(study_name=study, storage=_storage(pg_url))
        finished = [t for t in s.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert 3 <= len(finished) <= 4  # two drivers may both ask for the last slot at the same instant
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


@pytest.mark.xdist_group("ray")  # one local Ray runtime at a time under xdist
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
        timeout=600,
        env={"PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert r.returncode == 0, r.stderr
    trials = read_trials(out)
    driver = json.loads((out / "tune.json").read_text())["driver_pid"]
    assert len(trials) == 2 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert driver not in set(trials["user_attrs_pid"])

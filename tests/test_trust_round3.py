"""Issue 24, trust round 3: workers die with their driver, outputs never land in a result, secrets stay secret,
mixed inputs are refused, and bad input gets one clean line instead of an internal error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from rnnforecast import artifacts

# --------------------------------------------------------------------------- 1: orphaned workers


def _wait_for(cond, proc, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigkill_of_a_compare_driver_takes_its_workers_with_it(tmp_path, weather_config):
    """kill -9 of a `compare --workers 2` driver while both workers train 500 epochs: no handler runs in the driver,
    yet every worker (and multiprocessing's resource tracker) is gone within a few seconds; the comparison stays
    .partial with the first run's checkpoint, nothing is promoted to --out."""
    out = tmp_path / "cmp"
    partial = artifacts.partial_of(out)
    runs = [partial / "runs" / artifacts.partial_of(Path(f"{c}-seed42")).name for c in ("gru", "lstm")]
    args = ["compare", str(weather_config), "--cells", "gru,lstm", "--out", str(out), "--workers", "2"]
    args += ["--set", "training.epochs=500", "--set", "training.early_stopping=null"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: all((r / "checkpoint" / "state.json").exists() for r in runs), proc, 180, "both checkpoints")
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = {json.loads((r / artifacts.OWNER).read_text())["pid"] for r in runs}  # the processes training
        assert workers <= {c.pid for c in children} and len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        _, alive = psutil.wait_procs(children, timeout=5)
        gone_after = time.monotonic() - t0
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == -signal.SIGKILL
    assert alive == [], f"still running {gone_after:.1f} s after the driver died: {alive}"
    assert not out.exists() and (partial / artifacts.MARKER).is_file()
    assert all(artifacts.committed_epoch(r) >= 1 for r in runs)  # each worker's checkpoint stays for a look


def test_the_portable_watcher_ends_a_worker_whose_parent_was_killed(tmp_path):
    """The macOS path (no parent-death signal; also used off the main thread): a watcher thread polling the parent
    pid. A parent process starts a child that calls die_with_parent(deathsig=False) and sleeps; kill -9 of the parent
    ends the child within a second or two."""
    pidfile = tmp_path / "child.pid"
    code = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", '''
        import os, sys, time
        from rnnforecast.executor import die_with_parent
        die_with_parent({{parent}}, deathsig=False)
        open({str(pidfile)!r} + ".tmp", "w").write(str(os.getpid()))
        os.replace({str(pidfile)!r} + ".tmp", {str(pidfile)!r})
        time.sleep(120)
        '''.replace("{{parent}}", str(os.getpid()))])
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        _wait_for(pidfile.exists, parent, 60, "the child's pid file")
        child = psutil.Process(int(pidfile.read_text()))
        assert child.ppid() == parent.pid
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        _, alive = psutil.wait_procs([child], timeout=3)
    finally:
        parent.kill() if parent.poll() is None else None
    assert alive == []


# --------------------------------------------------------------------------- 2: outputs never land in a result


def invoke(*args) -> tuple[int, str]:
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stderr


def clean_error(stderr: str, rc: int, expected: str, code: int = 1) -> None:
    """Exactly the one line ``expected`` (error: ... Fix: ...), exit ``code``, no traceback."""
    assert rc == code, (rc, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert lines == [expected], stderr


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` and its bytes: what "touching nothing" compares."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def small_project(d: Path, n: int = 200) -> Path:
    from conftest import sine_frame, write_config

    sine_frame(n).to_csv(d / "s.csv", index=False)
    raw = {
        "name": "r3",
        "data": {"path": str(d / "s.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 3, "horizon": 2},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 16},
        "output": {"runs_dir": str(d / "runs"), "plots": True},
    }
    return write_config(d, raw)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A finished run, backtest (2 folds) and comparison, side by side."""
    from conftest import run_cli

    d = tmp_path_factory.mktemp("results")
    config = small_project(d)
    assert invoke("train", config, "--run-dir", d / "run", "--quiet")[0] == 0
    r = run_cli("backtest", str(config), "--folds", "2", "--refit", "none", "--out", str(d / "bt"), "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("compare", str(config), "--cells", "gru", "--out", str(d / "cmp"), "-q")
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, target, root, kind, exists",
    [
        (["predict", "{d}/run", "-o", "{t}"], "bt/metrics.json", "bt", "backtest", True),
        (["evaluate", "{d}/run", "-o", "{t}"], "bt/predictions.csv", "bt", "backtest", True),
        (["predict", "{d}/run", "-o", "{t}"], "bt/folds/00/model.keras", "bt", "backtest", True),
        (["report", "{d}/run", "-o", "{t}"], "bt/plan.json", "bt", "backtest", True),
        (["predict", "{d}/run", "-o", "{t}"], "bt/folds/01/mine.csv", "bt", "backtest", False),  # a new name, deep
        (["predict", "{d}/run", "--plot", "{t}"], "bt/plots/new.png", "bt", "backtest", False),
        (["init", "{d}/s.csv", "-o", "{t}", "--force"], "bt/config.yaml", "bt", "backtest", True),
        (["export", "{d}/run", "--format", "onnx", "-o", "{t}"], "bt/folds/export", "bt", "backtest", False),
        (["predict", "{d}/run", "-o", "{t}"], "cmp/compare.json", "cmp", "comparison", True),
        (["report", "{d}/run", "-o", "{t}"], "cmp/runs/gru-seed42/metrics.json", "cmp", "comparison", True),
        (["evaluate", "{d}/run", "-o", "{t}"], "run/mine.csv", "run", "run", False),
    ],
)
def test_no_output_lands_inside_a_result(results, args, target, root, kind, exists):
    """predict/evaluate/report/init/export -o anywhere inside a backtest, comparison or run (finished: no owner
    record left) is refused before any work with one line naming the result; every byte under it stays."""
    before = snapshot(results)
    option = "--plot" if "--plot" in args else "-o" if args[0] in ("init", "export") else "--output"
    path = results / target
    rc, err = invoke(*(a.format(d=results, t=path) for a in args))
    what = (
        f"would overwrite {Path(target).relative_to(root).as_posix()}, a file of the {kind} in {results / root}"
        if exists
        else f"lies inside the {kind} in {results / root}, a result rnnforecast wrote"
    )
    clean_error(err, rc, f"error: {path}: {option} {what}. Fix: write the output outside {results / root}.")
    assert path.exists() == exists
    assert snapshot(results) == before


def test_a_users_plan_json_does_not_make_a_folder_a_result(tmp_path):
    """Only the tool's own sets of files mark a result: a project folder with its own plan.json is not one."""
    (tmp_path / "plan.json").write_text("{}")
    assert artifacts.enclosing_result(tmp_path) is None
    artifacts.check_output(tmp_path / "out.csv", "--output")  # no error


# --------------------------------------------------------------------------- 4 (issue): secrets stay secret


@pytest.mark.parametrize(
    "text, expected",
    [
        ("postgresql://u:pw@127.0.0.1:1/x", "postgresql://u:***@127.0.0.1:1/x"),
        ("postgresql://u:p@ss@h:1/x", "postgresql://u:***@h:1/x"),  # an unencoded @: the tail is hidden too
        ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),
        (
            "pg://u@h/x?sslmode=require&PassWord=a&api_KEY=b;Token=c",
            "pg://u@h/x?sslmode=require&PassWord=***&api_KEY=***;Token=***",
        ),
        ("postgresql://u:${PW}@h/x?password=${PW}", "postgresql://u:${PW}@h/x?password=${PW}"),  # references stay
        ("--storage postgresql://u:pw@h:1/x: refused.", "--storage postgresql://u:***@h:1/x: refused."),
        ('{"url": "mysql://a:b@c/d"}', '{"url": "mysql://a:***@c/d"}'),
        ("sqlite:///a/b.db and postgresql://h:5432/db?x=1", "sqlite:///a/b.db and postgresql://h:5432/db?x=1"),
    ],
)
def test_mask_secrets_hides_every_url_credential(text, expected):
    from rnnforecast.config import mask_password
    from rnnforecast.masking import mask_secrets

    assert mask_secrets(text) == expected == mask_password(text)  # one rule, under both names


def _everything(d: Path) -> str:
    """The text of every file under ``d`` (undecodable bytes kept as escapes)."""
    return "\n".join(p.read_bytes().decode("utf-8", "backslashreplace") for p in d.rglob("*") if p.is_file())


def test_storage_credentials_reach_neither_screen_nor_disk(tmp_path):
    """tune --storage with a password and a token, the server unreachable: one line with both masked, and no
    directory left; a password with an unencoded @ is refused without showing any part of it."""
    from conftest import run_cli

    config = small_project(tmp_path)
    config.write_text(config.read_text() + "tune:\n  model.cell: [gru, lstm]\n")
    url = "postgresql://u:TOPSECRET@127.0.0.1:1/x?Token=TOKEN123"
    r = run_cli("tune", str(config), "--trials", "1", "--out", str(tmp_path / "t"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: --storage postgresql://u:***@127.0.0.1:1/x?Token=***: cannot open the study storage")
    assert line.endswith("Fix: check the URL, the server and the credentials.")
    assert not (tmp_path / "t").exists() and not artifacts.partial_of(tmp_path / "t").exists()
    r2 = run_cli(
        "tune", str(config), "--out", str(tmp_path / "t"), "--storage", "postgresql://u:p@ssTAIL9@127.0.0.1:1/x"
    )
    assert r2.stderr.strip() == (
        "error: --storage: the password in the URL holds an unencoded '@'. Fix: write each '@' of the password as %40."
    )
    assert r2.returncode == 1 and not artifacts.partial_of(tmp_path / "t").exists()
    seen = r.stdout + r.stderr + r2.stdout + r2.stderr + _everything(tmp_path)
    for secret in ("TOPSECRET", "TOKEN123", "ssTAIL9", "p@ss"):
        assert secret not in seen


@pytest.mark.slow
def test_sql_url_credentials_reach_no_file_and_no_output(tmp_path, pg_url):
    """A PostgreSQL table read with ``?password=`` in data.sql.url, and a userinfo password given with --set: train,
    an interrupted train (UNFINISHED.txt, owner.json), backtest, report, evaluate --json, predict, validate and a
    wrong table write neither secret to any file or any output."""
    import sqlalchemy

    from conftest import run_cli, sine_frame, write_config

    table = "r3_" + os.urandom(4).hex()
    engine = sqlalchemy.create_engine("postgresql+psycopg://" + pg_url.split("://", 1)[1])
    sine_frame(200).to_sql(table, engine, index=False)
    user, rest = pg_url.split("://", 1)[1].split("@", 1)
    query_url = f"postgresql://{user}@{rest}?sslmode=disable&password=QSECRET1"  # trust auth ignores both
    userinfo_url = f"postgresql://{user}:USECRET2@{rest}"
    raw = {
        "name": "pgs",
        "data": {"sql": {"url": query_url, "table": table}, "target": "y", "time_column": "time"},
        "window": {"input_length": 3, "horizon": 2},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 16},
        "output": {"runs_dir": str(tmp_path / "runs"), "plots": True},
    }
    config = write_config(tmp_path, raw, "c.yaml")
    user_set = ["--set", f"data.sql.url={userinfo_url}"]
    try:
        outs = [
            run_cli("train", str(config), "--run-dir", str(tmp_path / "run")),
            run_cli("backtest", str(config), "--folds", "2", "--refit", "none", "--out", str(tmp_path / "bt")),
            run_cli("report", str(tmp_path / "run")),
            run_cli("evaluate", str(tmp_path / "run"), "--json"),
            run_cli("predict", str(tmp_path / "run"), "--json"),
            run_cli("validate", str(config), *user_set),
            run_cli("train", str(config), *user_set, "--run-dir", str(tmp_path / "run3")),
        ]
        assert [o.returncode for o in outs[:-1]] == [0] * 6, [o.stderr[-300:] for o in outs]
        assert outs[-1].returncode == 0, outs[-1].stderr
        wrong = run_cli(
            "validate",
            str(config),
            "--set",
            f"data.sql.url={userinfo_url}?password=QSECRET1",
            "--set",
            "data.sql.table=nope",
        )
        assert wrong.returncode == 1 and f"postgresql+psycopg://{user}:***@" in wrong.stderr
        # interrupted while training: the marker and owner record hold the command line with the --set
        args = ["train", str(config), *user_set, "--run-dir", str(tmp_path / "run2")]
        args += ["--set", "training.epochs=500", "--set", "training.early_stopping=null"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnnforecast", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        partial = artifacts.partial_of(tmp_path / "run2")
        try:
            _wait_for(lambda: (partial / "checkpoint" / "state.json").exists(), proc, 120, "a checkpoint")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill() if proc.poll() is None else None
    finally:
        with engine.begin() as c:
            c.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()
    assert proc.returncode == 143
    masked = f"postgresql://{user}:***@{rest}"
    assert masked in (partial / artifacts.MARKER).read_text() and masked in (partial / artifacts.OWNER).read_text()
    assert "?sslmode=disable&password=***" in (tmp_path / "run" / "config.yaml").read_text()
    assert (tmp_path / "run-report.html").is_file() and (tmp_path / "bt" / "config.yaml").is_file()
    written = _everything(tmp_path).replace(config.read_text(), "")  # the user's own config holds its password
    seen = "".join(o.stdout + o.stderr for o in [*outs, wrong]) + out.decode() + err.decode() + written
    assert "QSECRET1" not in seen and "USECRET2" not in seen


# --------------------------------------------------------------------------- 3 (issue): mixed inputs


@pytest.mark.slow
def test_a_backtest_resumed_after_its_data_changed_is_refused(tmp_path):
    """An unfinished backtest (fold 0 done) and a data file edited since (same timestamps, so the same fold plan):
    the rerun refuses with one line naming the changed data, exit 1, and leaves the unfinished directory as it was."""
    import pandas as pd

    from conftest import run_cli

    config = small_project(tmp_path)
    out, again = tmp_path / "bt", tmp_path / "again"
    args = ["backtest", str(config), "--folds", "2", "--refit", "none", "-q"]
    assert run_cli(*args, "--out", str(out)).returncode == 0
    partial = artifacts.partial_of(again)
    partial.mkdir()
    shutil.copy(out / "plan.json", partial / "plan.json")
    shutil.copytree(out / "folds" / "00", partial / "folds" / "00")
    df = pd.read_csv(tmp_path / "s.csv")
    df.loc[df.index[-20:], "y"] += 5.0  # the test stretch changes, the timestamps do not
    df.to_csv(tmp_path / "s.csv", index=False)
    before = snapshot(partial)
    r = run_cli(*args, "--out", str(again))
    clean_error(
        r.stderr,
        r.returncode,
        f"error: {partial}: the data changed since this backtest started (SHA-256 differs); resuming would mix folds"
        " from two inputs. Fix: restore the data it started with to resume, or pass another --out for a new backtest.",
    )
    assert snapshot(partial) == before and not again.exists()


@pytest.mark.slow
def test_tune_refuses_a_study_made_by_another_config(tmp_path, pg_url):
    """A PostgreSQL study made by `tune` of one config: `tune` of another config with the same --study is refused
    before any directory, and the study keeps only its own trials."""
    import optuna

    from conftest import run_cli
    from rnnforecast.tune import _storage

    config = small_project(tmp_path)
    config.write_text(config.read_text() + "tune:\n  model.cell: [gru, lstm]\n")
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("units:\n  - 4", "units:\n  - 6"))
    study = "r3_" + os.urandom(4).hex()
    common = ["--trials", "1", "--storage", pg_url, "--study", study]
    try:
        r = run_cli("tune", str(config), *common, "--out", str(tmp_path / "t1"), "-q")
        assert r.returncode == 0, r.stderr
        r = run_cli("tune", str(other), *common, "--out", str(tmp_path / "t2"), "-q")
        s = optuna.load_study(study_name=study, storage=_storage(pg_url))
        n_trials, recorded = len(s.trials), s.user_attrs["config_sha256"]
    finally:
        optuna.delete_study(study_name=study, storage=_storage(pg_url))
    from rnnforecast.config import load_config

    mine, theirs = load_config(str(other)).hash(), load_config(str(config)).hash()
    assert mine != theirs and recorded == theirs and n_trials == 1
    clean_error(
        r.stderr,
        r.returncode,
        f"error: --study: the study '{study}' in this storage was made by another config (config SHA-256 {theirs[:12]},"
        f" this one {mine[:12]}); its trials and best would mix with this one's. Fix: use the config and options that"
        f" made it, or pass another --study name (e.g. --study {study}-2).",
    )
    assert not (tmp_path / "t2").exists() and not artifacts.partial_of(tmp_path / "t2").exists()


# --------------------------------------------------------------------------- 5, 6, 10 (issue): clean lines


def test_bad_input_gets_one_clean_line_before_anything_is_built(tmp_path):
    """init -o into a missing folder, a SQL syntax error, a model too big to build (the count by hand: a GRU layer
    holds 3 * (u*i + u*u + 2u) weights), tune --timeout 0 and an in-memory SQLite URL: one line each, no file."""
    import sqlite3

    import pandas as pd

    config = small_project(tmp_path)
    before = snapshot(tmp_path)
    rc, err = invoke("init", tmp_path / "s.csv", "-o", tmp_path / "nowhere" / "c.yaml")
    clean_error(
        err,
        rc,
        f"error: {tmp_path / 'nowhere'}: the folder does not exist. Fix: create it first (mkdir -p"
        f" {tmp_path / 'nowhere'}), or pass -o in an existing folder.",
    )
    u = 200_000
    weights = 3 * (u * 1 + u * u + 2 * u)
    rc, err = invoke("validate", config, "--set", f"model.units=[{u}]")
    clean_error(
        err,
        rc,
        f"error: {config}: --set model.units: [{u}] makes a gru model of at least {weights:,} weights (480.0 GB as"
        " float32), more than the 100,000,000 rnnforecast builds. Fix: use fewer units per layer, e.g. [64] or [128, 64].",
    )
    rc, err = invoke("tune", config, "--timeout", "0")
    assert rc == 2 and "Invalid value for '--timeout': 0.0 is not in the range x>0." in err
    assert snapshot(tmp_path) == before
    with sqlite3.connect(tmp_path / "s.db") as con:
        pd.read_csv(tmp_path / "s.csv").to_sql("t", con, index=False)
    sql = ["--set", "data.path=null", "--set"]
    rc, err = invoke("validate", config, *sql, 'data.sql={url: s.db, query: "SELEC * FROM t"}')
    clean_error(
        err,
        rc,
        f"error: sqlite:///{tmp_path / 's.db'} (query): the database refused: (sqlite3.OperationalError) near"
        ' "SELEC": syntax error. Fix: check data.sql (URL, credentials, query) and that the server is running.',
    )
    rc, err = invoke("validate", config, *sql, 'data.sql={url: ":memory:", table: t}')
    clean_error(err, rc, "error: data.sql.url: an in-memory SQLite database holds no data. Fix: name a SQLite file.")
    assert not list(tmp_path.glob("runs*")) and not (tmp_path / "nowhere").exists()


@pytest.fixture(scope="module")
def band_run(tmp_path_factory) -> Path:
    """A run with 80/95 % bands on y with an input x, trained with --run-dir NAME.partial."""
    import numpy as np
    import pandas as pd
    import yaml

    d = tmp_path_factory.mktemp("bands")
    config = small_project(d)
    df = pd.read_csv(d / "s.csv")
    df["x"] = np.cos(np.arange(len(df)) / 7.0)
    df.to_csv(d / "s.csv", index=False)
    cfg = yaml.safe_load(config.read_text())
    cfg["intervals"] = {"levels": [80, 95]}
    config.write_text(yaml.safe_dump(cfg))
    rc, err = invoke("train", config, "--run-dir", d / "run.partial", "--quiet")
    assert rc == 0, err
    return d / "run"


@pytest.mark.slow
def test_run_dir_named_partial_is_written_under_its_final_name(band_run):
    """train --run-dir x.partial: the tool adds .partial while it writes, so the run ends as x, a run every command
    accepts, never as a finished x.partial that all of them refuse as unfinished."""
    assert band_run.is_dir() and not artifacts.partial_of(band_run).exists()
    assert not artifacts.partial_of(artifacts.partial_of(band_run)).exists()
    artifacts.open_run(band_run)  # a complete run
    rc, err = invoke("predict", band_run)
    assert rc == 0, err


@pytest.mark.slow
def test_data_with_the_columns_in_another_order_is_taken_by_name(band_run, tmp_path):
    """--data holding x, time, y instead of time, y, x: the same forecast, byte for byte, as the file in order."""
    import pandas as pd

    df = pd.read_csv(band_run.parent / "s.csv")
    df[["x", "time", "y"]].to_csv(tmp_path / "swapped.csv", index=False)
    df.to_csv(tmp_path / "same.csv", index=False)
    outs = []
    for name in ("same", "swapped"):
        rc, err = invoke("predict", band_run, "--data", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.out.csv")
        assert rc == 0, err
        outs.append((tmp_path / f"{name}.out.csv").read_bytes())
    assert outs[0] == outs[1] and b"y_p97.5" in outs[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "edit, why",
    [
        ("levels", "its levels [50, 99] are not the run's intervals.levels [80, 95]"),
        ("widths", "model.width is 2x1x1 (levels x leads x targets), the run needs 2x2x1"),
    ],
)
def test_an_edited_intervals_json_is_refused(band_run, tmp_path, edit, why):
    """intervals.json with levels edited to [50, 99] (silently used before), or widths for 1 of 2 leads (an
    internal error before): predict and evaluate refuse with one line naming the file and what disagrees."""
    run = tmp_path / "run"
    shutil.copytree(band_run, run)
    doc = json.loads((run / "intervals.json").read_text())
    if edit == "levels":
        for part in (doc, doc["model"], doc["persistence"]):
            part["levels"] = [50, 99]
    else:
        doc["model"]["width"] = [level[:1] for level in doc["model"]["width"]]
    (run / "intervals.json").write_text(json.dumps(doc))
    before = snapshot(tmp_path)
    for command in ("predict", "evaluate"):
        rc, err = invoke(command, run)
        clean_error(
            err,
            rc,
            f"error: {run / 'intervals.json'}: intervals.json does not match the run: {why}. Fix: the run is damaged:"
            " train again (or copy the run directory again if it came from elsewhere).",
        )
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_export_of_a_run_with_bands_says_they_are_not_in_the_model(band_run, tmp_path):
    from conftest import run_cli

    r = run_cli("export", str(band_run), "--format", "savedmodel", "-o", str(tmp_path / "exp"))
    assert r.returncode == 0, r.stderr
    assert (
        "warning: the exported model gives point forecasts only; the run's 80%, 95% conformal bands are not in it."
        " Fix: use rnnforecast predict on the run for the bands" in r.stdout.splitlines()
    )
    sig = json.loads((tmp_path / "exp" / "signature.json").read_text())
    assert sig["output_shape"] == [None, 2, 1]  # (batch, horizon, targets): no quantile axis


def test_init_time_column_of_fractional_numbers_is_named(tmp_path):
    """init --time-column on a float column: the column is named as numbers, with the real timestamp column as the
    Fix (it talked about a repeated 1970 timestamp), and no config is written."""
    import numpy as np
    import pandas as pd

    small_project(tmp_path)
    df = pd.read_csv(tmp_path / "s.csv")
    df["temp"] = np.round(20 + np.sin(np.arange(len(df))), 3)
    df.to_csv(tmp_path / "t.csv", index=False)
    rc, err = invoke("init", tmp_path / "t.csv", "--time-column", "temp", "-o", tmp_path / "c.yaml")
    clean_error(
        err,
        rc,
        f"error: {tmp_path / 't.csv'}: --time-column 'temp' holds numbers (e.g. {df['temp'].iloc[0]}), not timestamps."
        " Fix: name the timestamp column, e.g. --time-column time.",
    )
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.slow
def test_no_result_directory_is_made_inside_another(results):
    """compare/backtest --out and train --run-dir inside a finished backtest or comparison: refused, nothing made."""
    before = snapshot(results)
    for args, option, root, kind in [
        (["compare", "{c}", "--cells", "gru", "--out", "{d}/bt/folds/cmp"], "--out", "bt", "backtest"),
        (["backtest", "{c}", "--folds", "2", "--out", "{d}/cmp/runs/bt2"], "--out", "cmp", "comparison"),
        (["train", "{c}", "--run-dir", "{d}/bt/mine"], "--run-dir", "bt", "backtest"),
    ]:
        rc, err = invoke(*(a.format(c=results / "config.yaml", d=results) for a in args))
        assert rc == 1 and f"{option} lies inside another {kind} directory ({results / root}" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert snapshot(results) == before

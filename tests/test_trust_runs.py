"""Run directories and run files (issue 12, items 1-6, 13, 14, 19, 20, 22): never delete or overwrite what the
tool did not make, claim a run directory exclusively, check every run file on load, SIGTERM like Ctrl-C.

Every case goes through the real CLI (click's CliRunner in-process, or a child process where signals or two
processes are the point) and asserts the one error line, the exit code and the files left on disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import merge, sine_frame, write_config
from rnnforecast import artifacts
from rnnforecast.cli import cli
from rnnforecast.config import load_config

BASE = {
    "name": "trust_runs",
    "data": {"path": "data.csv", "target": "y", "time_column": "time"},
    "window": {"input_length": 7, "horizon": 2},
    "model": {"units": [4]},
    "training": {"epochs": 1, "batch_size": 64},
    "output": {"plots": True},
}


def project(tmp_path: Path, n: int = 300, **extra) -> Path:
    sine_frame(n).to_csv(tmp_path / "data.csv", index=False)
    return write_config(tmp_path, merge(BASE, extra))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def clean_error(stderr: str, rc: int, *phrases: str, code: int = 1) -> str:
    """Exactly one `error: ... Fix: ...` line holding every phrase, exit ``code``, no traceback."""
    assert rc == code, (rc, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    assert "Fix: " in lines[0], lines[0]
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def snapshot(d: Path) -> dict[str, str]:
    """Every file under ``d`` (links not followed) and its SHA-256: what "touching nothing" compares."""
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory) -> Path:
    """One finished 1-epoch run on a 300-row sine (one feature), trained in-process."""
    d = tmp_path_factory.mktemp("sine")
    config = project(d)
    rc, _, err = invoke("train", config, "--run-dir", d / "run", "--quiet")
    assert rc == 0, err
    return d / "run"


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# --------------------------------------------------------------------------- 1, 2: claiming a run directory


def test_a_users_partial_folder_is_never_deleted(tmp_path):
    config = project(tmp_path)
    mine = tmp_path / "results.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own notes")
    rc, _, err = invoke("train", config, "--run-dir", tmp_path / "results", "--quiet")
    clean_error(err, rc, "results.partial", "never deletes it", "pass another --run-dir")
    assert (mine / "notes.txt").read_text() == "my own notes" and sorted(os.listdir(mine)) == ["notes.txt"]
    assert not (tmp_path / "results").exists()


def test_a_claimed_run_directory_names_its_owner_and_is_left_alone(tmp_path):
    config = project(tmp_path)
    partial = artifacts.start(tmp_path / "results", "c.yaml", record={"data_sha256": "x"})  # held by this process
    before = snapshot(partial)
    owner = json.loads((partial / artifacts.OWNER).read_text())
    assert owner["pid"] == os.getpid() and owner["host"] and owner["started"] and owner["data_sha256"] == "x"
    rc, _, err = invoke("train", config, "--run-dir", tmp_path / "results", "--quiet")
    clean_error(err, rc, "another rnnforecast process", f"pid {os.getpid()} on {owner['host']}", owner["started"])
    assert snapshot(partial) == before
    artifacts.release(partial)


def test_runs_planned_in_the_same_second_get_distinct_directories(tmp_path):
    planned = tmp_path / "runs" / "name-20240101-000000"
    first = artifacts.start(planned, "c.yaml", numbered=True)
    second = artifacts.start(planned, "c.yaml", numbered=True)
    third = artifacts.start(planned, "c.yaml", numbered=True)
    assert [p.name for p in (first, second, third)] == [
        "name-20240101-000000.partial",
        "name-20240101-000000-2.partial",
        "name-20240101-000000-3.partial",
    ]
    for p in (first, second, third):
        artifacts.release(p)


@pytest.mark.parametrize("kind", ["file", "symlink", "inside_run"])
def test_a_run_dir_that_is_a_file_a_link_or_inside_a_run_is_refused(tmp_path, sine_run, kind):
    config = project(tmp_path)
    if kind == "file":
        target = tmp_path / "results"
        target.write_text("mine")
        phrase = "already exists"
    elif kind == "symlink":
        target = tmp_path / "results"
        target.symlink_to(tmp_path / "elsewhere")
        phrase = "already exists"
    else:
        target = copy_run(sine_run, tmp_path / "done") / "sub"
        phrase = "inside another run directory"
    before = snapshot(tmp_path)
    rc, _, err = invoke("train", config, "--run-dir", target, "--quiet")
    if kind == "file":  # click's own check of --run-dir (a usage error, exit 2)
        assert rc == 2 and "is a file" in err and "Traceback" not in err, err
    else:
        clean_error(err, rc, phrase)
    assert snapshot(tmp_path) == before and not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_two_processes_on_one_run_dir_give_one_refusal_and_one_intact_run(tmp_path):
    config = project(tmp_path, n=600, training={"epochs": 3})
    other = write_config(tmp_path, merge(yaml.safe_load(config.read_text()), {"seed": 7}), "seed7.yaml")
    run_dir = tmp_path / "results"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rnnforecast", "train", str(c), "--run-dir", str(run_dir), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in (config, other)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outcomes) == [0, 1], outcomes
    bad_rc, bad_err = next((rc, e) for rc, e in outcomes if rc)
    line = clean_error(bad_err, bad_rc)
    assert "another rnnforecast process is writing this run (pid " in line or "already exists" in line, line
    seed = yaml.safe_load((run_dir / "config.yaml").read_text())["seed"]
    assert json.loads((run_dir / "metrics.json").read_text())["seed"] == seed
    winner = config if seed == 42 else other
    # the hash of the config the run used: the winner's, its auto keys settled, as the run's config.yaml keeps it
    kept = load_config(str(run_dir / "config.yaml"))
    assert kept.seed == load_config(str(winner)).seed
    assert json.loads((run_dir / "metrics.json").read_text())["config_sha256"] == kept.hash()
    assert not artifacts.partial_of(run_dir).exists()
    assert sorted(os.listdir(run_dir)) == sorted(
        [*artifacts.REQUIRED, "history.csv", "timing.json", "forecast.csv", "plots", "heldout"]  # final fit: default
    )


# --------------------------------------------------------------------------- 3: resuming onto a finished run


def test_resume_when_the_final_directory_exists_touches_nothing(tmp_path, sine_run):
    config = project(tmp_path)
    final = copy_run(sine_run, tmp_path / "results")
    partial = tmp_path / "results.partial"
    (partial / "checkpoint").mkdir(parents=True)
    (partial / "checkpoint" / "state.json").write_text('{"epoch": 0}')
    (partial / "UNFINISHED.txt").write_text("This run did not finish. It is not a result.\n")  # as train leaves it
    before = snapshot(tmp_path)
    rc, _, err = invoke("train", config, "--resume", partial, "--quiet")
    clean_error(err, rc, "finished; there is nothing to resume", "moved away")
    assert snapshot(tmp_path) == before
    shutil.rmtree(final)
    final.mkdir()
    (final / "mine.txt").write_text("x")  # a user's folder, not a run
    rc, _, err = invoke("train", config, "--resume", partial, "--quiet")
    clean_error(err, rc, "already exists, so this run could not be finished", "move")
    assert (final / "mine.txt").read_text() == "x"


def test_resume_on_a_finished_run_says_it_is_finished(tmp_path, sine_run):
    config = project(tmp_path)
    before = snapshot(sine_run)
    rc, _, err = invoke("train", config, "--resume", sine_run, "--quiet")
    clean_error(err, rc, "finished; there is nothing to resume")
    assert snapshot(sine_run) == before


# --------------------------------------------------------------------------- 4, 6: SIGTERM, SIGINT and resume checks


def _train_until_first_checkpoint(config: Path, run_dir: Path, sig: int) -> tuple[int, str]:
    log = open(run_dir.parent / f"{run_dir.name}.log", "w+")  # noqa: SIM115 (a file: a full pipe would block it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", "train", str(config), "--run-dir", str(run_dir), "--quiet"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    state = artifacts.partial_of(run_dir) / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    log.seek(0)
    return rc, log.read()


def _change_one_value(data: Path) -> bytes:
    """Change the second row's value of the project's data file (its SHA-256 changes); return the original bytes."""
    original = data.read_bytes()
    data.write_bytes(original.replace(b"\n2020-01-01 01:00:00,0.", b"\n2020-01-01 01:00:00,9.", 1))
    assert data.read_bytes() != original
    return original


@pytest.mark.slow
def test_sigterm_keeps_the_checkpoint_and_resume_checks_config_and_data(tmp_path):
    config = project(tmp_path, n=1200, training={"epochs": 6, "batch_size": 8})
    run_dir = tmp_path / "results"
    rc, out = _train_until_first_checkpoint(config, run_dir, signal.SIGTERM)
    partial = artifacts.partial_of(run_dir)
    line = clean_error(out, rc, "interrupted (SIGTERM)", "is saved in this unfinished run", code=143)
    assert f"--resume {partial}" in line
    assert artifacts.committed_epoch(partial) >= 1 and (partial / artifacts.MARKER).exists()

    before = snapshot(partial)
    changed = write_config(tmp_path, merge(yaml.safe_load(config.read_text()), {"seed": 1}), "changed.yaml")
    rc, _, err = invoke("train", changed, "--resume", partial, "--quiet")
    clean_error(err, rc, "the config differs", "--force-resume")
    data = tmp_path / "data.csv"
    original = _change_one_value(data)
    rc, _, err = invoke("train", config, "--resume", partial, "--quiet")
    clean_error(err, rc, "data.csv changed since this run started (SHA-256 differs)", "--force-resume")
    assert snapshot(partial) == before  # refusals touch nothing

    data.write_bytes(original)
    rc, _, err = invoke("train", config, "--resume", partial, "--quiet")
    assert rc == 0, err
    assert "resuming from epoch" in err
    assert (run_dir / "metrics.json").exists() and not partial.exists()


@pytest.mark.slow
def test_sigint_keeps_the_checkpoint_and_force_resume_continues_on_changed_data(tmp_path):
    config = project(tmp_path, n=1200, training={"epochs": 6, "batch_size": 8})
    run_dir = tmp_path / "results"
    rc, out = _train_until_first_checkpoint(config, run_dir, signal.SIGINT)
    partial = artifacts.partial_of(run_dir)
    clean_error(out, rc, "interrupted (Ctrl-C)", f"--resume {partial}", code=130)
    data = tmp_path / "data.csv"
    _change_one_value(data)
    rc, _, err = invoke("train", config, "--resume", partial, "--quiet", "--force-resume")
    assert rc == 0, err
    assert "warning: the data file" in err and "resuming anyway (--force-resume)" in err
    assert json.loads((run_dir / "metrics.json").read_text())["data_sha256"] == artifacts.sha256(data)


# --------------------------------------------------------------------------- 5, 19: outputs never overwrite a run


@pytest.mark.parametrize(
    "args, name",
    [
        (["predict", "{run}", "-o", "{run}/model.keras"], "model.keras"),
        (["predict", "{run}", "-o", "{other}/config.yaml"], "config.yaml"),
        (["predict", "{run}", "--plot", "{run}/plots/forecast.png"], "plots/forecast.png"),
        (["report", "{run}", "-o", "{run}/metrics.json"], "metrics.json"),
    ],
)
def test_outputs_never_overwrite_a_runs_files(tmp_path, sine_run, args, name):
    run = copy_run(sine_run, tmp_path / "run")
    other = copy_run(sine_run, tmp_path / "other")
    before = snapshot(tmp_path)
    rc, _, err = invoke(*(a.format(run=run, other=other) for a in args))
    clean_error(err, rc, f"would overwrite {name}, a file of the run")
    assert snapshot(tmp_path) == before


def test_predict_outputs_are_written_whole_next_to_the_run(tmp_path, sine_run):
    run = copy_run(sine_run, tmp_path / "run")
    rc, _, err = invoke("predict", run, "-o", tmp_path / "next.csv", "--plot", tmp_path / "p.png")
    assert rc == 0, err
    table = pd.read_csv(tmp_path / "next.csv")
    assert list(table["step"]) == [1, 2] and table["y"].notna().all()
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(run) + os.listdir(tmp_path) if p.startswith(".")]  # no temporary left


@pytest.mark.parametrize(
    "args, option",
    [
        (["predict", "{run}", "-o", "{mine}"], "--output"),
        (["predict", "{run}", "--plot", "{png}"], "--plot"),
        (["evaluate", "{run}", "-o", "{mine}"], "--output"),
        (["report", "{run}", "-o", "{html}"], "--output"),
    ],
)
def test_an_existing_output_file_is_replaced_only_with_force(tmp_path, sine_run, args, option):
    """rnnforecast cannot know who made a file that is already there (a copy of the training data under the name
    given to -o was replaced, exit 0): it replaces none unless --force says so. The files are the user's own."""
    run = copy_run(sine_run, tmp_path / "run")
    files = {"mine": tmp_path / "data_copy.csv", "png": tmp_path / "mine.png", "html": tmp_path / "notes.html"}
    for f in files.values():
        f.write_bytes(b"the user's own bytes\n")
    argv = [a.format(run=run, **files) for a in args]
    target = Path(argv[-1])
    before = snapshot(tmp_path)
    rc, _, err = invoke(*argv)
    clean_error(
        err, rc, f"{target}: {option}: the file already exists", f"pass --force to replace it, or {option} another"
    )
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced
    rc, _, err = invoke(*argv, "--force")
    assert rc == 0, err
    assert target.read_bytes() != b"the user's own bytes\n" and target.stat().st_size > 100
    # a new name needs no --force
    rc, _, err = invoke(*argv[:-1], str(target.with_name("new" + target.suffix)))
    assert rc == 0, err


@pytest.mark.parametrize(
    "args, option",
    [
        (["predict", "{run}", "-o", "{dir}"], "--output"),
        (["predict", "{run}", "--plot", "{dir}"], "--plot"),
        (["evaluate", "{run}", "-o", "{dir}"], "--output"),
        (["report", "{run}", "-o", "{dir}"], "--output"),
    ],
)
def test_a_directory_as_an_output_is_one_line_and_never_replaced(tmp_path, sine_run, args, option):
    """A directory given to -o or --plot got click's usage block (exit 2); it is a RunError like every other refused
    output, with --force too (a directory is never replaced), and what is in it stays."""
    run = copy_run(sine_run, tmp_path / "run")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    argv = [a.format(run=run, dir=folder) for a in args]
    before = snapshot(tmp_path)
    for extra in ([], ["--force"]):
        rc, _, err = invoke(*argv, *extra)
        clean_error(err, rc, f"{folder}: {option} names a directory; it takes a file", f"give {option} a file name")
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args, option, name",
    [
        (["predict", "{run}", "-o", "{out}"], "--output", "f.csv"),
        (["predict", "{run}", "--plot", "{out}"], "--plot", "f.png"),
        (["evaluate", "{run}", "-o", "{out}"], "--output", "f.csv"),
        (["report", "{run}", "-o", "{out}"], "--output", "f.html"),
    ],
)
def test_an_output_in_a_missing_folder_is_one_line_and_no_folder_is_made(tmp_path, sine_run, args, option, name):
    """--plot made the missing folder (a typo's stray folder) while -o refused at the end, after the work; now every
    output refuses it before any work, with init's words, and nothing is created."""
    run = copy_run(sine_run, tmp_path / "run")
    folder = tmp_path / "typo" / "deeper"
    argv = [a.format(run=run, out=folder / name) for a in args]
    before = snapshot(tmp_path)
    rc, _, err = invoke(*argv)
    clean_error(
        err, rc, f"{folder}: the folder does not exist", f"create it first (mkdir -p {folder}), or pass {option}"
    )
    assert snapshot(tmp_path) == before and not (tmp_path / "typo").exists()


def test_report_replaces_its_own_page_beside_the_run_without_force_and_no_one_elses(tmp_path, sine_run):
    run = copy_run(sine_run, tmp_path / "run")
    page = tmp_path / "run-report.html"
    page.write_text("<!DOCTYPE html><html><head><title>my notes on the run</title></head></html>")
    before = snapshot(run)
    rc, _, err = invoke("report", run)
    clean_error(err, rc, "a file report did not write (or wrote of another directory) is at the page's name", "--force")
    assert page.read_text().startswith("<!DOCTYPE html><html><head><title>my notes")  # a user's page is kept
    rc, out, err = invoke("report", run, "--force")
    assert rc == 0, err
    first = page.read_text()
    assert "my notes" not in first and "<meta name='generator' content='rnnforecast report'>" in first[:400]
    for _ in range(2):  # report's own page: replaced without --force
        rc, out, err = invoke("report", run)
        assert rc == 0, err
        assert out.strip() == f"report written to {page}"
    assert page.stat().st_size > 1000 and snapshot(run) == before and not (run / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-report.html"]  # no temporary left


def test_plot_must_be_a_png_and_inspect_window_has_a_fix(sine_run):
    rc, _, err = invoke("predict", sine_run, "--plot", "x.csv")
    clean_error(err, rc, "--plot must name a .png file", "ending in .png")
    rc, _, err = invoke("inspect", sine_run, "--window", "9999")
    clean_error(err, rc, "--window 9999 is out of range", "pass --window")


@contextmanager
def read_only(d: Path):
    """``d`` and its folders cannot get new entries: chmod for a user, ``chattr +i`` for root (chmod binds no root)."""
    dirs = [d, *(p for p in d.rglob("*") if p.is_dir())]
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", *map(str, dirs)]).returncode:
            pytest.skip("root without chattr: no way to make a read-only directory")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, dirs)], check=True)
    else:
        for p in dirs:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p in dirs:
                p.chmod(0o755)


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["inspect", "{run}"], "cannot create run-inspect"),
        (["report", "{run}"], "cannot write the report"),
        (["export", "{run}", "--format", "savedmodel"], "cannot create run-export-savedmodel"),
        (["predict", "{run}", "--plot", "{run}/p.png"], "--plot lies inside the run"),
    ],
)
def test_a_read_only_runs_folder_gives_a_clean_error(tmp_path, sine_run, args, phrase):
    run = copy_run(sine_run, tmp_path / "ro" / "run")  # the annexes go beside the run: its folder is read-only
    before = snapshot(tmp_path / "ro")
    with read_only(tmp_path / "ro"):
        rc, _, err = invoke(*(a.format(run=run) for a in args))
    clean_error(err, rc, phrase)
    assert snapshot(tmp_path / "ro") == before
    with read_only(run):  # a report written elsewhere is fine
        rc, _, err = invoke("report", run, "-o", tmp_path / "r.html")
    assert rc == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- 13: every run file is checked on load


def _damage_scaler_columns(run: Path, other: Path) -> str:
    s = json.loads((run / "scaler.json").read_text())
    s["columns"], s["shift"], s["scale"] = s["columns"][:-1], [r[:-1] for r in s["shift"]], [r[:-1] for r in s["scale"]]
    s["low"], s["high"] = [r[:-1] for r in s["low"]], [r[:-1] for r in s["high"]]  # a consistent file, one column short
    (run / "scaler.json").write_text(json.dumps(s))
    return "scaler.json"


def _truncate_scaler(run: Path, other: Path) -> str:
    (run / "scaler.json").write_text((run / "scaler.json").read_text()[:40])
    return "scaler.json"


def _schema_list(run: Path, other: Path) -> str:
    (run / "schema.json").write_text("[1, 2]")
    return "schema.json"


def _config_input_length(run: Path, other: Path) -> str:
    c = yaml.safe_load((run / "config.yaml").read_text())
    c["window"]["input_length"] += 2
    (run / "config.yaml").write_text(yaml.safe_dump(c))
    return "config.yaml"


def _foreign_model(run: Path, other: Path) -> str:
    shutil.copy(other / "model.keras", run / "model.keras")
    return "model.keras"


@pytest.mark.parametrize(
    "damage, phrase",
    [
        (_damage_scaler_columns, "the scaler has columns"),
        (_truncate_scaler, "cannot read the scaler (JSONDecodeError)"),
        (_schema_list, "holds a list, not a mapping"),
        (_config_input_length, "differ from the trained model's"),
        (_foreign_model, "comes from another run"),
    ],
)
def test_damaged_run_files_are_a_run_error_naming_the_file(tmp_path, sine_run, weather_run, damage, phrase):
    run = copy_run(weather_run, tmp_path / "run")
    name = damage(run, sine_run)
    for command in ("predict", "evaluate"):
        rc, out, err = invoke(command, run)
        line = clean_error(err, rc, phrase)
        assert str(run / name) in line and out == ""


# --------------------------------------------------------------------------- 14: missing values at the end of --data


def test_trailing_missing_targets_are_refused_unless_allowed(tmp_path, sine_run):
    df = sine_frame(300)
    df.loc[297:, "y"] = None
    df.to_csv(tmp_path / "new.csv", index=False)
    rc, out, err = invoke("predict", sine_run, "--data", tmp_path / "new.csv")
    clean_error(err, rc, "the last 3 observed row(s) have no y value (lines 299-301)", "--allow-missing-tail")
    assert out == ""
    rc, out, err = invoke("predict", sine_run, "--data", tmp_path / "new.csv", "--allow-missing-tail")
    assert rc == 0, err
    assert "warning: the last 3 observed row(s) have no y value" in err
    assert len(pd.read_csv(io.StringIO(out))) == 2


# --------------------------------------------------------------------------- 20: report embeds only real PNG files


def test_report_embeds_only_regular_png_files_inside_the_directory(tmp_path, sine_run):
    run = copy_run(sine_run, tmp_path / "run")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nTOP-SECRET-BYTES")
    (run / "plots" / "leak.png").symlink_to("/etc/passwd")
    (run / "plots" / "link.png").symlink_to(secret)  # a real PNG, but outside the directory
    (run / "elsewhere").symlink_to(tmp_path, target_is_directory=True)  # a folder link out of the run
    (run / "plots" / "fake.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    rc, _, err = invoke("report", run)
    assert rc == 0, err
    html = (tmp_path / "run-report.html").read_text()
    for leaked in (b"root:x:0:0", b"TOP-SECRET-BYTES"):
        assert base64.b64encode(leaked)[:12].decode() not in html
    for name in ("leak.png", "link.png", "fake.png", "elsewhere"):
        assert name not in html
    assert html.count("<figure>") == len(list((sine_run / "plots").glob("*.png"))) == 5  # with forecast_next.png


# --------------------------------------------------------------------------- 22: where runs go


def test_validate_prints_the_resolved_runs_path(tmp_path, monkeypatch):
    config = project(tmp_path, output={"runs_dir": "../../escaped"})
    monkeypatch.chdir(tmp_path)
    rc, out, err = invoke("validate", config)
    assert rc == 0, err
    assert f"runs written under: {(tmp_path / '../../escaped').resolve()}" in out


def test_train_prints_the_absolute_run_directory(tmp_path, monkeypatch):
    config = project(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, out, err = invoke("train", config, "--run-dir", "rel", "--quiet")
    assert rc == 0, err
    assert out.splitlines()[-1] == f"run directory: {tmp_path / 'rel'}"


# --------------------------------------------------------------------------- neighbours


def test_evaluate_and_report_on_a_partial_directory_say_it_is_unfinished(tmp_path):
    partial = artifacts.start(tmp_path / "r", "c.yaml")
    artifacts.release(partial)
    for args in (["evaluate", partial], ["report", partial], ["predict", tmp_path / "r"]):
        rc, _, err = invoke(*args)
        clean_error(err, rc, "did not finish" if args[0] != "predict" else "unfinished")


def test_output_and_plot_naming_one_file_are_refused_before_any_work(tmp_path, sine_run):
    """The table was written, then the plot refused ("already exists") over it: a half-done file was left; with
    --force the plot silently replaced the table."""
    run = copy_run(sine_run, tmp_path / "run")
    for extra in ((), ("--force",)):
        before = snapshot(tmp_path)
        rc, _, err = invoke("predict", run, "-o", tmp_path / "same.png", "--plot", tmp_path / "same.png", *extra)
        clean_error(err, rc, "--output and --plot name the same file", "give each its own file")
        assert snapshot(tmp_path) == before and not (tmp_path / "same.png").exists()


def test_a_refusal_between_the_lock_and_the_owner_record_waits_for_the_record(tmp_path):
    """The holder takes the lock, then writes owner.json: a second process refused in between said "owner unknown"
    (a full suite run saw it). The refusal now waits for the record and names the holder's pid."""
    import fcntl
    import json as _json
    import threading

    from rnnforecast import artifacts
    from rnnforecast.errors import RunError

    d = tmp_path / "run.partial"
    d.mkdir()
    holder = open(d / artifacts.LOCK, "a+")  # noqa: SIM115 (another process's lock: flock is per open file)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    late = threading.Timer(0.3, lambda: (d / artifacts.OWNER).write_text(_json.dumps({"pid": 4242, "host": "h"})))
    late.start()
    try:
        with pytest.raises(RunError, match=r"another rnnforecast process is writing this run \(pid 4242 on h"):
            artifacts.lock(d, what="run", option="--run-dir")
    finally:
        late.join()
        holder.close()


# --------------------------------------------------------------------------- the annexes beside a result


def test_annexes_of_a_run_reached_through_a_link_land_beside_the_real_comparison(tmp_path, sine_run):
    """A link into a comparison's runs folder (``s -> cmp/runs``) made inspect crash (IndexError) or write one
    folder above the user's; the annex is named from the real path, beside the comparison."""
    cmp = tmp_path / "deep" / "cmp"
    copy_run(sine_run, cmp / "runs" / "gru-seed42")
    (cmp / "compare.json").write_text("{}")
    (tmp_path / "s").symlink_to(cmp / "runs", target_is_directory=True)
    rc, out, err = invoke("report", tmp_path / "s" / "gru-seed42")
    assert rc == 0, err
    assert out.strip() == f"report written to {tmp_path / 'deep' / 'cmp-runs-gru-seed42-report.html'}"


def test_a_fifo_at_the_pages_name_is_refused_not_opened(tmp_path, sine_run):
    run = copy_run(sine_run, tmp_path / "run")
    os.mkfifo(tmp_path / "run-report.html")
    proc = subprocess.run(
        [sys.executable, "-m", "rnnforecast", "report", str(run)], capture_output=True, text=True, timeout=60
    )
    clean_error(proc.stderr, proc.returncode, "a file report did not write", "--force")


def test_two_runs_sharing_an_annex_name_do_not_replace_each_others_inspection(tmp_path, sine_run):
    """``cmp/runs/a`` and a run named ``cmp-runs-a`` beside it share the name ``cmp-runs-a-inspect``: the second
    inspect is refused (the inspection there is another run's), and report names its page's source."""
    cmp = tmp_path / "cmp"
    copy_run(sine_run, cmp / "runs" / "a")
    (cmp / "compare.json").write_text("{}")
    twin = copy_run(sine_run, tmp_path / "cmp-runs-a")
    rc, _, err = invoke("inspect", cmp / "runs" / "a")
    assert rc == 0, err
    first = json.loads((tmp_path / "cmp-runs-a-inspect" / "inspect.json").read_text())
    assert first["of"]["run"] == str((cmp / "runs" / "a").resolve())
    rc, _, err = invoke("inspect", twin)
    clean_error(err, rc, f"holds the inspection of another run ({(cmp / 'runs' / 'a').resolve()})", "--output")
    assert json.loads((tmp_path / "cmp-runs-a-inspect" / "inspect.json").read_text()) == first
    rc, _, err = invoke("report", cmp / "runs" / "a")
    assert rc == 0, err
    rc, _, err = invoke("report", twin)  # the page there is the other run's: kept unless --force
    clean_error(err, rc, "(or wrote of another directory)", "--force")


@pytest.mark.parametrize(
    "output, phrase",
    [
        ("{f}/sub/x", "is not a folder"),  # a file on the way
        ("{t}/missing/x", "the folder does not exist"),  # never made: a typo leaves no stray folder
        ("{link}", "is a link"),
        ("{f}", "is a file, not a directory"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "export"])
def test_an_output_directory_is_checked_before_any_work(tmp_path, sine_run, command, output, phrase):
    run = copy_run(sine_run, tmp_path / "run")
    (tmp_path / "f.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    (tmp_path / "lnk").symlink_to(tmp_path / "empty", target_is_directory=True)
    target = output.format(f=tmp_path / "f.txt", t=tmp_path, link=tmp_path / "lnk")
    before = snapshot(tmp_path)
    extra = ["--format", "savedmodel"] if command == "export" else []
    rc, _, err = invoke(command, run, *extra, "-o", target)
    clean_error(err, rc, phrase)
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "empty",
        "f.txt",
        "lnk",
        "run",
    ]


def test_long_run_names_get_one_line_or_a_legal_annex(tmp_path, sine_run):
    """A 250-byte run name plus "-report.html" is no legal file name: one error line (it was an internal error,
    OSError ENAMETOOLONG); a 235-byte one has legal annex names, and the temporaries beside them are legal too (its
    inspect said "cannot create ... (File name too long)": the hidden temporary's prefix made the name too long)."""
    long_run = copy_run(sine_run, tmp_path / ("L" * 250))
    for args in (["report", long_run], ["inspect", long_run], ["export", long_run, "--format", "savedmodel"]):
        rc, _, err = invoke(*args)
        clean_error(err, rc, "bytes, longer than a file name may be (255)", "with a shorter name")
    run = copy_run(sine_run, tmp_path / ("M" * 235))
    for args in (["report", run], ["inspect", run]):
        rc, _, err = invoke(*args)
        assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [long_run.name, run.name, run.name + "-report.html", run.name + "-inspect"]
    )


def test_dotdot_after_a_link_is_read_as_the_system_reads_it(tmp_path, sine_run):
    """``q/lnk/../b`` is the folder above where lnk points: its report goes beside that real run (it went to
    ``q/b-report.html``, beside a run that is not there)."""
    copy_run(sine_run, tmp_path / "real" / "a")
    copy_run(sine_run, tmp_path / "real" / "b")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "lnk").symlink_to(tmp_path / "real" / "a", target_is_directory=True)
    rc, out, err = invoke("report", tmp_path / "q" / "lnk" / ".." / "b")
    assert rc == 0, err
    assert out.strip() == f"report written to {tmp_path / 'real' / 'b-report.html'}"
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["lnk"]

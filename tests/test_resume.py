"""Interrupted and failing training: Ctrl-C and kill -9 cost nothing, NaN losses and full disks say what to do.

The resume test follows issue 8 point 11: dropout, early stopping and learning-rate reduction are
on; the process is killed when its checkpoint shows four finished epochs (polling the file, no
timer): past the first plateau (measured: val loss best at epoch 3, worse at 4..7), so the callbacks'
counters are live at the kill; the resumed run must end with the metrics of an uninterrupted run
with the same seed, and stop and cut the learning rate where those counters say.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, checkpoint_epoch, kill_9_after, merge, run_cli, write_config
from rnnforecast.cli import cli

pytestmark = pytest.mark.slow

RESUME = {
    "name": "resume",
    "window": {"input_length": 7, "horizon": 2},
    "model": {"units": [8], "dropout": 0.2},
    "training": {
        "epochs": 25,
        "batch_size": 16,
        "learning_rate": 0.03,  # noisy enough that both callbacks act: measured, ES stops at 12, LR falls from epoch 4
        "early_stopping": {"patience": 4},
        "reduce_lr_on_plateau": {"patience": 1, "factor": 0.5},
    },
    "output": {"plots": False},
}
KILL_AT = 3  # 0-based epoch index in the checkpoint that triggers the kill


def _config(directory: Path, extra: dict) -> Path:
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    return write_config(directory, merge(cfg, extra))


def _popen(config: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    """``rnnforecast train`` in a new process, on this process's backend (KERAS_BACKEND is inherited)."""
    log = open(
        run_dir.parent / f"{run_dir.name}{'-resume' if extra else ''}.log", "w+"
    )  # a file: a full pipe would block it
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", "train", str(config), "--quiet", *(extra or ("--run-dir", str(run_dir)))],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.log = log
    return proc


def _output(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()


_epoch = checkpoint_epoch


def _kill_after_four_epochs(procs: dict[str, tuple[subprocess.Popen, Path, int]]) -> dict[str, int]:
    """Poll each run's checkpoint; send its signal once it shows epoch index >= KILL_AT. Returns that index."""
    pending, killed_at = dict(procs), {}
    deadline = time.monotonic() + 300
    while pending:
        for name, (proc, partial, sig) in list(pending.items()):
            assert proc.poll() is None, f"{name} ended before epoch index {KILL_AT} was checkpointed:\n{_output(proc)}"
            epoch = _epoch(partial)
            if epoch >= KILL_AT:
                proc.send_signal(sig)
                killed_at[name] = epoch
                del pending[name]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    return killed_at


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> dict:
    """Two runs killed after epoch 4 (SIGINT, SIGKILL) and resumed, and an uninterrupted reference.

    The reference trains in this process while the resumed runs train in theirs (2 cores).
    """
    from rnnforecast import backend

    backend.activate("auto")  # the subprocesses inherit KERAS_BACKEND: all three runs share a backend
    root = tmp_path_factory.mktemp("resume")
    config = _config(root, RESUME)
    runs = {name: root / name for name in ("reference", "sigint", "sigkill")}
    partial = {name: runs[name].with_name(name + ".partial") for name in runs}
    procs = {name: _popen(config, runs[name]) for name in ("sigint", "sigkill")}
    killed_at = _kill_after_four_epochs(
        {
            name: (procs[name], partial[name], sig)
            for name, sig in (("sigint", signal.SIGINT), ("sigkill", signal.SIGKILL))
        }
    )
    out = {"config": config, "runs": runs, "killed_at": killed_at, "killed": {}}
    for name in ("sigint", "sigkill"):
        procs[name].wait(timeout=120)
        out["killed"][name] = {
            "returncode": procs[name].returncode,
            "output": _output(procs[name]),
            "files": sorted(p.name for p in partial[name].iterdir()),
            "checkpoint": sorted(p.name for p in (partial[name] / "checkpoint").iterdir()),
            "state": json.loads((partial[name] / "checkpoint" / "state.json").read_text()),
            "marker": (partial[name] / "UNFINISHED.txt").read_text(),
            "final_exists": runs[name].exists(),
            "evaluate": CliRunner().invoke(cli, ["evaluate", str(partial[name])]),
        }
    resumed = {name: _popen(config, runs[name], "--resume", str(partial[name])) for name in ("sigint", "sigkill")}
    ref = CliRunner().invoke(cli, ["train", str(config), "--run-dir", str(runs["reference"]), "--quiet"])
    assert ref.exit_code == 0, ref.output
    for name, proc in resumed.items():
        proc.wait(timeout=300)
        assert proc.returncode == 0, f"{name}:\n{_output(proc)}"
    out["resumed_output"] = {name: _output(p) for name, p in resumed.items()}
    return out


def test_sigint_says_where_the_partial_run_is_and_how_to_resume(interrupted):
    k = interrupted["killed"]["sigint"]
    assert k["returncode"] == 130, k["output"]
    assert "Traceback" not in k["output"]
    last = k["output"].strip().splitlines()[-1]
    partial = str(interrupted["runs"]["sigint"]) + ".partial"
    assert last.startswith("error: ") and "interrupted" in last and partial in last
    assert f"--resume {partial}" in last and "Fix: resume with: rnnforecast train" in last
    assert "UNFINISHED.txt" in k["files"] and "config.yaml" in k["files"] and not k["final_exists"]
    assert "did not finish" in k["marker"] and "--resume" in k["marker"]


@pytest.mark.parametrize("name", ["sigint", "sigkill"])
def test_an_unfinished_run_is_never_mistaken_for_a_result(interrupted, name):
    k = interrupted["killed"][name]
    assert not k["final_exists"] and "UNFINISHED.txt" in k["files"] and "metrics.json" not in k["files"]
    ev = k["evaluate"]
    assert ev.exit_code == 1 and "did not finish" in ev.stderr and "--resume" in ev.stderr, ev.output
    # One committed checkpoint: the model and best weights state.json names, nothing half-written beside them.
    state = k["state"]
    assert state["epoch"] >= 1 and state["model"] in k["checkpoint"]
    named = {"state.json", state["model"], state["callbacks"]["early_stopping"]["best_weights"]}
    # A SIGKILL between the commit (state.json) and the clean-up may leave the previous epoch's complete files.
    previous = {f"model-{state['epoch']:04d}.keras", f"best-{state['epoch']:04d}.npz"} if name == "sigkill" else set()
    assert set(k["checkpoint"]) <= named | previous, k["checkpoint"]


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


@pytest.mark.parametrize("name", ["sigint", "sigkill"])
def test_resumed_run_ends_with_the_uninterrupted_metrics(interrupted, name):
    runs = interrupted["runs"]
    assert (
        f"resuming from epoch {interrupted['killed'][name]['state']['epoch'] + 1}"
        in interrupted["resumed_output"][name]
    )
    ref = json.loads((runs["reference"] / "metrics.json").read_text())
    got = json.loads((runs[name] / "metrics.json").read_text())
    assert not runs[name].with_name(name + ".partial").exists() and not (runs[name] / "checkpoint").exists()
    # The kill really interrupted training: the run went on for more epochs after it.
    assert KILL_AT <= interrupted["killed_at"][name] <= interrupted["killed"][name]["state"]["epoch"]
    assert interrupted["killed"][name]["state"]["epoch"] + 1 < ref["training"]["epochs_run"]
    ref_leaves, got_leaves = dict(_leaves(ref)), dict(_leaves(got))
    assert ref_leaves.keys() == got_leaves.keys()
    numbers = 0
    for key, value in ref_leaves.items():
        if isinstance(value, float):
            numbers += 1
            assert got_leaves[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
        else:
            assert got_leaves[key] == value, key
    assert numbers > 100
    # The callbacks' state came back too: the same epochs, learning rates and early stop.
    ref_hist = (runs["reference"] / "history.csv").read_text().splitlines()
    got_hist = (runs[name] / "history.csv").read_text().splitlines()
    assert ref_hist[0] == got_hist[0] and len(ref_hist) == len(got_hist)
    np.testing.assert_allclose(
        np.loadtxt(got_hist[1:], delimiter=","), np.loadtxt(ref_hist[1:], delimiter=","), rtol=1e-6
    )


def _callbacks_by_hand(val_loss: list[float], reset_at: int | None = None) -> tuple[int, list[float]]:
    """Keras' EarlyStopping (patience 4, min_delta 0) and ReduceLROnPlateau (patience 1, factor 0.5,
    min_delta 1e-4, min_lr 1e-6) replayed on a val-loss history: (epochs run, learning rate of each epoch).
    ``reset_at``: forget both callbacks' state before that epoch index, as a resume without their state would."""
    es = RESUME["training"]["early_stopping"]["patience"]
    rlr = RESUME["training"]["reduce_lr_on_plateau"]
    lr, lrs = RESUME["training"]["learning_rate"], []
    es_best = rlr_best = np.inf
    es_wait = rlr_wait = 0
    for epoch, loss in enumerate(val_loss):
        if epoch == reset_at:
            es_best = rlr_best = np.inf
            es_wait = rlr_wait = 0
        lrs.append(lr)
        if loss < rlr_best - 1e-4:
            rlr_best, rlr_wait = loss, 0
        else:
            rlr_wait += 1
            if rlr_wait >= rlr["patience"]:
                lr, rlr_wait = max(lr * rlr["factor"], 1e-6), 0
        if loss < es_best:
            es_best, es_wait = loss, 0
        else:
            es_wait += 1
            if es_wait >= es and epoch > 0:
                return epoch + 1, lrs
    return len(val_loss), lrs


@pytest.mark.parametrize("name", ["sigint", "sigkill"])
def test_early_stopping_and_lr_cuts_carry_on_after_resume(interrupted, name):
    """The callbacks' counters come back with the checkpoint: the resumed run stops and cuts the rate exactly
    where Keras' rules applied to the whole val-loss history say, and a forgetful resume would differ."""
    run = interrupted["runs"][name]
    history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    metrics = json.loads((run / "metrics.json").read_text())["training"]
    resumed_from = interrupted["killed"][name]["state"]["epoch"] + 1  # 0-based index of the first resumed epoch
    epochs_run, lrs = _callbacks_by_hand(list(history["val_loss"]))
    assert (
        metrics["stopped_early"] and metrics["epochs_run"] == epochs_run == len(history) < RESUME["training"]["epochs"]
    )
    assert epochs_run > resumed_from + 1  # the stop was decided by the resumed process
    np.testing.assert_allclose(history["learning_rate"], lrs, rtol=1e-6)
    cuts = [e for e in range(1, len(lrs)) if lrs[e] < lrs[e - 1]]
    assert any(e > resumed_from for e in cuts), cuts  # at least one cut made after the resume
    # A resume that forgot the callbacks' state would stop or cut elsewhere: this test can tell the two apart.
    forgetful = _callbacks_by_hand(list(history["val_loss"]), reset_at=resumed_from)
    assert forgetful != (epochs_run, lrs[: forgetful[0]] if forgetful[0] <= len(lrs) else lrs), resumed_from


def test_resume_refuses_a_different_config(interrupted, tmp_path):
    other = _config(tmp_path, merge(RESUME, {"seed": 7}))
    partial = interrupted["runs"]["sigint"].with_name("x.partial")
    partial.mkdir(exist_ok=True)
    (partial / "checkpoint").mkdir(exist_ok=True)
    (partial / "checkpoint" / "state.json").write_text("{}")
    (partial / "config.yaml").write_text((interrupted["runs"]["sigint"] / "config.yaml").read_text())
    (partial / "UNFINISHED.txt").write_text("This run did not finish.\n")
    r = CliRunner().invoke(cli, ["train", str(other), "--resume", str(partial), "--quiet"])
    assert r.exit_code == 1 and "config differs" in r.stderr, r.output
    seed = yaml.safe_load((partial / "config.yaml").read_text())["seed"]
    assert f"the config differs from the one this run started with (seed: {seed} then, 7 now)" in r.stderr


def test_resume_of_a_folder_that_is_no_unfinished_run_says_so_and_touches_nothing(interrupted, tmp_path):
    """A user's folder (with or without .partial in its name) is not a run to resume: one line that says so
    (it said 'mine already exists, so this run could not be finished. Fix: move mine away')."""
    config = _config(tmp_path, RESUME)
    mine, empty = tmp_path / "mine", tmp_path / "res.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    empty.mkdir()
    for folder in (mine, empty):
        r = CliRunner().invoke(cli, ["train", str(config), "--resume", str(folder), "--quiet"])
        assert r.exit_code == 1, r.output
        assert r.stderr == (
            f"error: {folder}: this is not an unfinished rnnforecast run (UNFINISHED.txt is missing); train --resume "
            "takes a run's .partial directory. Fix: pass the .partial directory printed when training stopped.\n"
        )
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not list(empty.iterdir())


# --------------------------------------------------------------------------- failures


def test_nan_loss_stops_with_advice_and_keeps_the_last_good_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Measured on JAX: plain SGD at learning rate 2 grows the loss ~1e4x per epoch and reaches inf in epoch 4.
    extra = {
        # MSE: an MAE loss's gradient is bounded, and SGD at this rate then never overflows
        "training": {
            "optimizer": "sgd",
            "learning_rate": 2.0,
            "epochs": 10,
            "reduce_lr_on_plateau": None,
            "loss": "mse",
        },
        "data": {"scaling": "standard"},  # measured with the tutorial's model: z-scores, one step at a time
        "model": {"units": [8], "segment_length": None, "residual": "none"},
    }
    config = _config(tmp_path, merge(RESUME, extra))
    r = CliRunner().invoke(cli, ["train", str(config), "--run-dir", "run", "--quiet"])
    assert r.exit_code == 1, r.output
    msg = r.stderr.strip()
    assert "\n" not in msg and "Traceback" not in r.output
    assert "NaN or infinite" in msg and "training.learning_rate" in msg and "clipnorm" in msg
    partial = tmp_path / "run.partial"
    state = json.loads((partial / "checkpoint" / "state.json").read_text())
    assert f"last good epoch ({state['epoch'] + 1})" in msg and "run.partial/checkpoint" in msg
    assert not (tmp_path / "run").exists()
    assert all(np.isfinite(v).all() for v in state["history"].values())

    from rnnforecast import artifacts

    model = artifacts.load_model(partial / "checkpoint" / state["model"])
    weights = model.get_weights()
    assert weights and all(np.isfinite(w).all() for w in weights)


def test_nan_in_the_first_epoch_keeps_nothing_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = {"training": {"optimizer": "sgd", "learning_rate": 1e12, "epochs": 3, "loss": "mse"}}
    config = _config(tmp_path, merge(RESUME, extra))
    r = CliRunner().invoke(cli, ["train", str(config), "--run-dir", "run", "--quiet"])
    assert r.exit_code == 1 and "NaN or infinite in epoch 1" in r.stderr and "no weights were kept" in r.stderr, (
        r.output
    )
    assert "clipnorm" in r.stderr
    assert list(tmp_path.iterdir()) == [config]  # no run directory, partial or not


# Writes past RLIMIT_FSIZE fail with EFBIG ("File too large"), as writes on a full disk fail with
# ENOSPC: a real failing write(), not a mock. Python ignores SIGXFSZ, so the process survives it.
LIMITED = "import resource, runpy, sys; n = int(sys.argv.pop(1)); resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); runpy.run_module('rnnforecast', run_name='__main__')"
FULL_DISK = {  # name: (file size limit, plots, something kept)
    "first-checkpoint-fails": (20_000, False, False),  # the checkpoint (~37 kB) cannot be written
    "plots-fail-after-training": (45_000, True, True),  # checkpoints fit, then a plot (> 45 kB) does not
}


def test_a_full_disk_gives_one_clear_line_and_leaves_no_half_written_files(tmp_path):
    procs = {}
    for name, (limit, plots, _) in FULL_DISK.items():
        d = tmp_path / name
        d.mkdir()
        config = _config(d, merge(RESUME, {"training": {"epochs": 2}, "output": {"plots": plots}}))
        cmd = [sys.executable, "-c", LIMITED, str(limit), "train", str(config), "--run-dir", str(d / "run"), "--quiet"]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        kept = FULL_DISK[name][2]
        assert proc.returncode == 1, stderr
        # matplotlib may say it cannot save its font cache: the limit applies to it too; the final fit's one
        # notice ("final fit: N epoch(s) on every row", printed under --quiet too) precedes a failure after it
        noise = ("Could not save font_manager cache", "final fit: ")
        lines = [x for x in stderr.strip().splitlines() if not x.startswith(noise)]
        assert len(lines) == 1 and "Traceback" not in stderr, stderr
        assert "cannot write the run (File too large)" in lines[0] and "Fix: free disk space" in lines[0]
        partial = tmp_path / name / "run.partial"
        assert not (tmp_path / name / "run").exists()
        if not kept:
            assert "nothing was kept" in lines[0] and not partial.exists()
            continue
        assert "epoch 2 is kept" in lines[0] and f"--resume {partial}" in lines[0]
        assert sorted(p.name for p in partial.iterdir()) == [
            ".lock",
            "UNFINISHED.txt",
            "checkpoint",
            "config.yaml",
            "owner.json",
        ]
        state = json.loads((partial / "checkpoint" / "state.json").read_text())
        names = {"state.json", state["model"], state["callbacks"]["early_stopping"]["best_weights"]}
        assert {p.name for p in (partial / "checkpoint").iterdir()} == names


def test_an_unwritable_run_dir_is_a_clear_error(tmp_path, weather_config):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    r = CliRunner().invoke(cli, ["train", str(weather_config), "--run-dir", str(blocker / "run"), "--quiet"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    msg = r.stderr.strip()
    assert "\n" not in msg and "cannot create the run directory" in msg and "Fix: choose a writable --run-dir" in msg
    assert sorted(tmp_path.iterdir()) == [blocker]


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root ignores directory permissions; the file-in-the-way case covers this as root"
)
def test_a_read_only_parent_is_a_clear_error(tmp_path, weather_config):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli("train", str(weather_config), "--run-dir", str(ro / "run"), "--quiet")
    finally:
        ro.chmod(0o700)
    assert proc.returncode == 1 and "cannot create the run directory" in proc.stderr and "Traceback" not in proc.stderr
    assert list(ro.iterdir()) == []


def test_a_step_schedule_carries_on_after_kill_9(tmp_path):
    """SIGKILL after the second epoch's checkpoint, then --resume: the resumed epochs run at the step schedule's
    rates for their own epoch numbers (1e-3 halved every epoch), not from the start again."""
    extra = {
        "model": {"units": [4], "dropout": 0.0},
        "training": {
            "epochs": 6,
            "lr_schedule": "step",
            "lr_decay": 0.5,
            "lr_decay_after": 1,
            "early_stopping": None,
            "reduce_lr_on_plateau": None,
            "final_fit": False,
        },
        "output": {"plots": False},
    }
    config = _config(tmp_path, extra)
    run = tmp_path / "run"
    partial = run.with_name("run.partial")
    proc = _popen(config, run)
    killed_at = kill_9_after(proc, partial, 1, lambda: _output(proc))
    assert 1 <= killed_at < 5 and not run.exists()
    resumed = _popen(config, run, "--resume", str(partial))
    resumed.wait(timeout=300)
    assert resumed.returncode == 0, _output(resumed)
    assert f"resuming from epoch {killed_at + 1}" in _output(resumed)
    history = pd.read_csv(run / "history.csv")
    rate = "learning_rate" if "learning_rate" in history else "lr"
    assert history[rate].tolist() == pytest.approx([1e-3 * 0.5**e for e in range(6)], rel=1e-6)

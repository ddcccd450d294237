"""Issue 24, trust round 3: workers die with their driver, outputs never land in a result, secrets stay secret,
mixed inputs are refused, and bad input gets one clean line instead of an internal error."""

from __future__ import annotations

import json
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

"""The local executor: real spawned worker processes, their start-up environment, and a dead worker."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from rnnforecast.executor import SHARED_ACCELERATOR, LocalExecutor, WorkerDied


def _env_of_worker(keys: list[str]) -> tuple[int, dict]:
    return os.getpid(), {k: os.environ.get(k) for k in keys}


def _die(_: object) -> None:
    os._exit(3)


def _train_until_stopped(_: object) -> bytes:
    """What a training does with SIGTERM in a worker: it stops at its next batch and finishes the task cleanly; its
    result (a run's record) is larger than a pipe holds, so sending it waits for a reader."""
    from rnnforecast import executor

    while not executor._STOP.is_set():
        time.sleep(0.01)
    return b"x" * 2**20


def _pid(_: object) -> int:
    time.sleep(30)
    return os.getpid()


def test_workers_share_one_accelerator_and_keep_what_the_user_set(monkeypatch):
    """Two workers on one GPU would each preallocate most of its memory (JAX 75 %): workers grow memory as needed;
    a value set in the environment is kept; the driver's own environment is untouched."""
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")  # the user's choice wins
    keys = list(SHARED_ACCELERATOR)
    with LocalExecutor(workers=2) as ex:
        results = [h.result() for h in ex.as_completed([ex.submit(_env_of_worker, keys) for _ in range(4)])]
    assert all(pid != os.getpid() for pid, _ in results)
    assert all(
        env == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "false"} for _, env in results
    )
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ


def test_a_worker_that_exits_is_worker_died_and_the_pool_recovers():
    with LocalExecutor(workers=1) as ex:
        with pytest.raises(WorkerDied, match="a worker process died"):
            ex.submit(_die, None).result()
        pid, _ = ex.submit(_env_of_worker, []).result()  # a fresh pool takes the next task
    assert pid != os.getpid()


def test_kill_9_of_one_worker_ends_the_pool_while_another_trains():
    """One worker killed while the other is mid-task: the pool breaks and CPython sends the other SIGTERM, a clean
    stop that finishes its task and sends a result nobody reads any more (the pool's thread only waits for the
    workers to end). close() must not wait on it (compare --workers 2 hung for good); both are gone after close."""
    ex = LocalExecutor(workers=2)
    handles = [ex.submit(_pid, None), ex.submit(_train_until_stopped, None)]
    deadline = time.monotonic() + 120
    while len(ex._pool._processes or {}) < 2 or not all(p.pid for p in ex._pool._processes.values()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3)  # both tasks started (spawned workers import the package first)
    workers = list(ex._pool._processes.values())
    os.kill(workers[0].pid, signal.SIGKILL)
    for h in handles:
        with pytest.raises(WorkerDied):
            h.result()
    closed = threading.Thread(target=ex.close, daemon=True)
    closed.start()
    closed.join(timeout=60)
    assert not closed.is_alive(), "close() waited on a worker of the broken pool"
    deadline = time.monotonic() + 10  # the pool's own thread reaps them too: poll, do not join from here
    while any(p.exitcode is None for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    # the one killed here, and the other killed by close() (a clean stop would exit 0, or never)
    assert [p.exitcode for p in workers] == [-signal.SIGKILL, -signal.SIGKILL]


def test_a_broken_pool_is_closed_before_the_interpreter_exits():
    """After a worker died, close() returns only when the pool's own thread has ended and closed its wake-up pipe:
    CPython 3.11's exit hook writes into every pool's pipe that is not closed, and a thread closing it at that moment
    printed a traceback (EBADF) after compare's one-line message. Checked on the pool's own objects, deterministic."""
    from concurrent.futures import process

    ex = LocalExecutor(workers=1)
    with pytest.raises(WorkerDied):
        ex.submit(_die, None).result()
    manager, wakeup = ex._pool._executor_manager_thread, ex._pool._executor_manager_thread_wakeup
    ex.close()
    assert manager is not None and not manager.is_alive()
    assert wakeup._closed and process._threads_wakeups.get(manager) in (None, wakeup)

"""The local executor: real spawned worker processes, their start-up environment, and a dead worker."""

from __future__ import annotations

import os

import pytest

from rnnforecast.executor import SHARED_ACCELERATOR, LocalExecutor, WorkerDied


def _env_of_worker(keys: list[str]) -> tuple[int, dict]:
    return os.getpid(), {k: os.environ.get(k) for k in keys}


def _die(_: object) -> None:
    os._exit(3)


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

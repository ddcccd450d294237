"""run_many: results in task order, a task that raises, a worker killed with SIGKILL, an interruption, and the
same numbers here and in two worker processes (real spawned processes, no training)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from rnnforecast.errors import ConfigError
from rnnforecast.executor import LocalExecutor, WorkerDied
from rnnforecast.fsio import write_atomic
from rnnforecast.many import Task, TaskFailed, run_many


@dataclasses.dataclass(frozen=True, kw_only=True)
class Draw(Task):
    """Three seeded normal draws, written to ``out`` as JSON; ``sleep`` first, ``fail`` how to fail instead."""

    sleep: float = 0.0
    fail: str = ""

    def run(self) -> dict:
        time.sleep(self.sleep)
        if self.fail == "bug":
            raise ValueError(f"no draws for seed {self.seed}")
        if self.fail == "user":
            raise ConfigError("bad seed", where="seed")
        if self.fail == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        values = np.random.default_rng(self.seed).normal(size=3).tolist()
        write_atomic(self.out, json.dumps(values))
        return {"values": values, "pid": os.getpid()}


def _draws(tmp_path: Path, seeds, **kw) -> list[Draw]:
    tmp_path.mkdir(exist_ok=True)
    return [Draw(label=f"draw {s}", out=tmp_path / f"{s}.json", seed=s, **kw) for s in seeds]


def _expected(seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=3).tolist()


def test_results_come_in_task_order_though_tasks_finish_out_of_it(tmp_path):
    tasks = [Draw(label="slow", out=tmp_path / "7.json", seed=7, sleep=1.5), *_draws(tmp_path, [1, 2])]
    finished = []
    with LocalExecutor(workers=2) as ex:
        results = run_many(tasks, ex, on_done=lambda t, r, k: finished.append((t.label, k)))
    assert [r["values"] for r in results] == [_expected(7), _expected(1), _expected(2)]
    assert finished[-1] == ("slow", 3)  # it finished last, after the two quick ones, yet comes first
    assert [label for label, _ in finished[:2]] == ["draw 1", "draw 2"]
    assert {r["pid"] for r in results} != {os.getpid()}
    assert json.loads((tmp_path / "7.json").read_text()) == _expected(7)


def test_here_and_in_two_workers_give_equal_results(tmp_path):
    seeds = [3, 4, 5, 6, 7]
    started = []
    here = run_many(_draws(tmp_path / "here", seeds), on_start=lambda n, t: started.append((n, t.label)))
    with LocalExecutor(workers=2) as ex:
        there = run_many(_draws(tmp_path / "there", seeds), ex)
    assert [r["values"] for r in here] == [r["values"] for r in there] == [_expected(s) for s in seeds]
    assert {r["pid"] for r in here} == {os.getpid()} and os.getpid() not in {r["pid"] for r in there}
    assert started == [(i, f"draw {s}") for i, s in enumerate(seeds, 1)]
    for s in seeds:
        assert (tmp_path / "here" / f"{s}.json").read_bytes() == (tmp_path / "there" / f"{s}.json").read_bytes()


@pytest.mark.parametrize("workers", [None, 2])
def test_a_task_that_raises_is_named(tmp_path, workers):
    tasks = [*_draws(tmp_path, [1]), Draw(label="draw 9", out=tmp_path / "9.json", seed=9, fail="bug")]
    ex = LocalExecutor(workers) if workers else None
    with ex or LocalExecutor(1), pytest.raises(TaskFailed) as info:
        run_many(tasks, ex)
    assert str(info.value) == "draw 9: ValueError: no draws for seed 9"
    assert info.value.task is tasks[1] and isinstance(info.value.__cause__, ValueError)


def test_a_user_error_is_raised_as_it_is_with_its_task(tmp_path):
    task = Draw(label="draw 2", out=tmp_path / "2.json", seed=2, fail="user")
    with pytest.raises(ConfigError) as info:
        run_many([task])
    assert info.value.one_line() == "seed: bad seed." and info.value.task is task


def test_a_worker_killed_with_sigkill_is_worker_died_naming_the_task(tmp_path):
    killed = Draw(label="draw 5", out=tmp_path / "5.json", seed=5, fail="kill")
    with LocalExecutor(workers=1) as ex, pytest.raises(WorkerDied) as info:
        run_many([killed, *_draws(tmp_path, [6])], ex)
    assert str(info.value).startswith("the worker process training draw 5 died (a worker process died (")
    assert info.value.task is killed and info.value.reason.startswith("a worker process died")
    assert not (tmp_path / "6.json").exists()  # the first failure stops the rest
    # errors="return": the dead worker is that task's result and the next task runs in a fresh pool
    with LocalExecutor(workers=1) as ex:
        results = run_many([killed, *_draws(tmp_path, [6])], ex, errors="return")
    assert isinstance(results[0], WorkerDied) and results[0].task is killed
    assert results[1]["values"] == _expected(6)


def test_an_interruption_stops_the_executor_and_starts_nothing_more(tmp_path):
    """Ctrl-C (or SIGTERM, raised as a KeyboardInterrupt) while the driver waits: the executor is stopped, no
    other task starts, and what finished is whole (written atomically: no temporary files)."""

    def interrupt(task, result, k):
        raise KeyboardInterrupt

    with LocalExecutor(workers=1) as ex:
        with pytest.raises(KeyboardInterrupt):
            run_many(_draws(tmp_path, [1, 2, 3]), ex, on_done=interrupt)
        assert ex._stop.is_set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json"]
    assert json.loads((tmp_path / "1.json").read_text()) == _expected(1)


def test_a_function_as_source_is_asked_again_as_tasks_finish(tmp_path):
    """tune's shape: the next task depends on what finished. Here the source gives one task at a time although two
    workers are free: None means "none now", it is asked again when a task finishes, and the loop ends when it
    gives None with nothing running."""
    todo = iter(_draws(tmp_path, [1, 2, 3]))
    given, done = [], []

    def source():
        if len(given) > len(done):  # one in flight
            return None
        task = next(todo, None)
        if task is not None:
            given.append((task.seed, list(done)))
        return task

    with LocalExecutor(workers=2) as ex:
        results = run_many(source, ex, on_done=lambda t, r, k: done.append(t.seed))
    assert given == [(1, []), (2, [1]), (3, [1, 2])]
    assert done == [1, 2, 3] and [r["values"] for r in results] == [_expected(s) for s in (1, 2, 3)]

"""One loop for many trainings: typed tasks run here, one after another, or through an executor, with one rule each
for results, a failed task, a dead worker and an interruption (ensemble members, compare runs, backtest folds, tune
trials).

    results = run_many([CompareRun(...), ...], executor)  # executor None: in this process
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import RnnForecastError, first_line
from .executor import Executor, WorkerDied


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """One training of a command: a subclass adds what it trains and defines ``run``. It is pickled to a worker
    process (or a Ray task), so its fields are plain data and its class lives at module level.

    Args:
        label: names the task in messages: "gru, seed 42", "ensemble member 2", "trial 3".
        out: where its results go (a run, member or fold directory, or file).
        seed: the seed it trains with.
    """

    label: str
    out: Path
    seed: int

    def run(self) -> Any:
        """Train, write the results under ``out`` (atomically, done-marker last) and return what the driver needs."""
        raise NotImplementedError

    def to_driver(self, result: Any) -> Any:
        """In a worker: what of ``result`` travels back to the driver (a model goes through its file instead)."""
        return result

    def from_worker(self, result: Any) -> Any:
        """In the driver: ``result`` as ``run`` returns it here, from what ``to_driver`` sent."""
        return result


class TaskFailed(RuntimeError):
    """A task raised an exception that is not a user error (a bug): its type and first line, naming the task."""

    def __init__(self, task: Task, error: BaseException):
        self.task = task
        super().__init__(f"{task.label}: {type(error).__name__}: {first_line(error)}")
        self.__cause__ = error  # --traceback shows where the task failed


def task_died(task: Task, reason: WorkerDied) -> WorkerDied:
    """The one rule for a dead worker: WorkerDied naming the task, with the executor's ``reason`` kept."""
    e = WorkerDied(f"the worker process training {task.label} died ({reason})")
    e.task, e.reason = task, str(reason)
    return e


def _failed(task: Task, error: BaseException) -> BaseException:
    """The one rule for a task that raised: a user error (one line, it says where) and an OSError (the machine's
    state: a full disk, a permission; the commands read its errno) are kept as they are, with ``task`` set;
    anything else is a bug and becomes TaskFailed, naming the task."""
    if isinstance(error, WorkerDied):
        return task_died(task, error)
    if isinstance(error, (RnnForecastError, OSError)):
        error.task = task
        return error
    return TaskFailed(task, error)


def _run(task: Task) -> Any:
    """Executor function: the task in a worker process, its result as it travels back."""
    return task.to_driver(task.run())


Source = Callable[[], "Task | None"]
OnStart = Callable[[int, Task], None]
OnDone = Callable[[Task, Any, int], None]


def _source(tasks: Iterable[Task] | Source) -> Source:
    if callable(tasks):
        return tasks
    it = iter(tasks)
    return lambda: next(it, None)


class Many:
    """``run_many`` in two steps, for a driver that trains something itself meanwhile (ensemble member 0)::

        with Many(tasks, executor) as many:  # the first ``executor.workers`` tasks start in the executor
            ...                              # this process's own work
            results = many.results()         # the rest, then every result in task order

    Leaving the block by an exception (Ctrl-C, SIGTERM, an error here or of a task) stops the executor: tasks
    not started are dropped, running ones stop at their next batch, and their directories stay marked unfinished.
    """

    def __init__(
        self,
        tasks: Iterable[Task] | Source,
        executor: Executor | None = None,
        *,
        on_start: OnStart | None = None,
        on_done: OnDone | None = None,
        errors: str = "raise",
        poll_s: float | None = None,
    ):
        self.next_task, self.executor = _source(tasks), executor
        self.on_start, self.on_done = on_start, on_done
        self.errors, self.poll_s = errors, poll_s
        self.order: list[Task] = []  # every task started, in the order it was started
        self.done: dict[int, Any] = {}  # position in ``order`` -> result (or error, with errors="return")
        self.running: dict[Any, int] = {}  # executor handle -> position in ``order``
        self.exhausted = False

    def __enter__(self) -> Many:
        if self.executor is not None:
            self._fill()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None and self.executor is not None:
            self.executor.stop()

    def results(self) -> list[Any]:
        """Every task's result in the order the tasks were given (with errors="return", a failed task's is its
        error: WorkerDied, TaskFailed or the user error it raised)."""
        if self.executor is None:
            self._here()
        else:
            self._on_executor()
        return [self.done[i] for i in range(len(self.order))]

    def _here(self) -> None:
        while (task := self.next_task()) is not None:
            self.order.append(task)
            if self.on_start:
                self.on_start(len(self.order), task)
            try:
                result = task.run()
            except Exception as e:
                result = self._error(task, e)
            self._finish(len(self.order) - 1, result)

    def _fill(self) -> None:
        """Start tasks until the executor's workers are all busy or the source has none to give now."""
        while not self.exhausted and len(self.running) < self.executor.workers:
            task = self.next_task()
            if task is None:
                self.exhausted = not self.running  # a callable source may give more once a task finishes
                return
            self.order.append(task)
            self.running[self.executor.submit(_run, task)] = len(self.order) - 1

    def _on_executor(self) -> None:
        self._fill()
        while self.running:
            for handle in self.executor.wait(list(self.running), timeout=self.poll_s):
                i = self.running.pop(handle)
                task = self.order[i]
                try:
                    result = task.from_worker(handle.result())
                except Exception as e:
                    result = self._error(task, e)
                self._finish(i, result)
            self._fill()

    def _error(self, task: Task, e: Exception) -> Exception:
        err = _failed(task, e)
        if self.errors == "return":
            return err
        raise err from err.__cause__  # TaskFailed: the task's own exception; the others stand alone

    def _finish(self, i: int, result: Any) -> None:
        self.done[i] = result
        if self.on_done:
            self.on_done(self.order[i], result, len(self.done))


def run_many(
    tasks: Iterable[Task] | Source,
    executor: Executor | None = None,
    *,
    on_start: OnStart | None = None,
    on_done: OnDone | None = None,
    errors: str = "raise",
    poll_s: float | None = None,
) -> list[Any]:
    """Run every task and return their results in the order the tasks were given.

    Args:
        tasks: a list (or any iterable) of tasks, or a function giving the next task to start, or None when it has
            none now (asked again after the next task finishes; the loop ends when it gives None and nothing runs).
        executor: None runs the tasks here, one after another; otherwise up to ``executor.workers`` at once in it
            (local processes or Ray). The caller opens and closes it.
        on_start: ``(n, task)`` before the n-th task runs here (progress lines; not called with an executor, whose
            tasks queue and start out of the driver's sight).
        on_done: ``(task, result, finished)`` as each task finishes, in the order they finish.
        errors: "raise": the first failure stops the executor and is raised; "return": a failure is that task's
            result (WorkerDied, TaskFailed or the user error) and the others go on.
        poll_s: with a function as ``tasks``, ask it again every ``poll_s`` seconds while tasks run.

    Raises:
        WorkerDied: a worker process died; its message names the task ("the worker process training gru, seed 42
            died (...)").
        TaskFailed: a task raised an unexpected exception (type and first line, naming the task).
        RnnForecastError, OSError: what a task raised, as it is (a user error says where; an OSError's errno
            tells a full disk), with the task in its ``task`` attribute.
    """
    with Many(tasks, executor, on_start=on_start, on_done=on_done, errors=errors, poll_s=poll_s) as many:
        return many.results()

"""Run many independent trainings at once: N local worker processes, or Ray tasks on a local runtime or a cluster.

One interface for every command that fans out trainings (tune trials, compare cells x seeds, backtest folds,
seed-ensemble members):

    with make_executor("local", workers=2) as ex:
        handles = [ex.submit(fn, item) for item in items]
        for h in ex.as_completed(handles):
            h.result()  # the function's return value, its exception, or WorkerDied

``fn`` must be a module-level function (it is pickled to another process) and ``item`` plain data.

Why Optuna ask/tell over these tasks rather than Ray Tune + OptunaSearch: the study lives in Optuna's own
storage (SQLite file or PostgreSQL), so it survives kill -9, is shared by several drivers and is the same
whether trials run in local processes or on Ray; Ray Tune would keep its own experiment state beside it
(two sources of truth to resume from), require Ray even for a laptop run, and own the training loop
(``tune.report``) where we want ``pipeline.train`` unchanged. With ask/tell the driver alone decides what
a trial's final state is, so a dead worker becomes a FAIL row, never a half-written study.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import ConfigError, Interrupted, first_line


class WorkerDied(RuntimeError):
    """The process that ran a task exited (killed, out of memory) before returning."""


class Handle:
    """One submitted task; ``result()`` returns its value or raises its exception (or WorkerDied)."""

    def __init__(self, executor: Executor, inner: Any, item: Any):
        self.executor, self.inner, self.item = executor, inner, item

    def result(self) -> Any:
        return self.executor._result(self)


class Executor:
    """Base class: ``submit`` a task, iterate ``as_completed``; subclasses map them onto processes or Ray."""

    workers: int = 1
    label = "tasks"  # what the tasks run as, for progress lines

    def submit(self, fn: Callable, item: Any) -> Handle:
        raise NotImplementedError

    def wait(self, handles: list[Handle], timeout: float | None = None) -> list[Handle]:
        """The handles (of ``handles``) that finished, waiting up to ``timeout`` seconds for the first one."""
        raise NotImplementedError

    def _result(self, handle: Handle) -> Any:
        raise NotImplementedError

    def as_completed(self, handles: Iterable[Handle]) -> Iterator[Handle]:
        pending = list(handles)
        while pending:
            for h in self.wait(pending):
                pending.remove(h)
                yield h

    def map(self, fn: Callable, items: Iterable[Any]) -> list[Any]:
        """``[fn(item) for item in items]``, run in parallel; raises the first task error."""
        handles = [self.submit(fn, item) for item in items]
        list(self.as_completed(handles))
        return [h.result() for h in handles]

    def stop(self) -> None:
        """Stop promptly: tasks not started are dropped and running ones asked to stop (the driver was interrupted)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # Ctrl-C, SIGTERM or an error in the driver: the other tasks' results are not wanted
            self.stop()
        self.close()


SHARED_ACCELERATOR = {  # worker processes share one GPU: memory grows as needed instead of being taken up front
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # JAX preallocates 75 % of GPU memory per process by default
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # TensorFlow takes nearly all of it
}


def share_accelerator() -> None:
    """Before a local worker imports a backend: a value the user set is kept. No effect on a CPU."""
    for k, v in SHARED_ACCELERATOR.items():
        os.environ.setdefault(k, v)


_STOP = None  # in a local worker: the executor's stop event, shared by its workers


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 0.25  # how often the portable watcher looks at the parent pid


def die_with_parent(parent: int, deathsig: bool = True) -> None:
    """In a worker: end this process as soon as ``parent`` (the driver) is gone, even after a kill -9 of the driver,
    which no handler sees. Linux: the kernel's parent-death signal (SIGKILL), then a re-check, since the parent may
    have died before it was set. Everywhere (macOS, or a pool started off the main thread, where ``deathsig`` is False
    because Linux sends that signal when the *thread* that started the worker ends): a daemon thread that polls the
    parent pid, which changes to the reaper's when the parent dies."""
    if deathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=_watch_parent, args=(parent,), name="rnnforecast-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup to do: the driver that wanted the result is gone


def _start_worker(stop, parent: int | None = None, deathsig: bool = True) -> None:
    """Start-up of each local worker. Ctrl-C (the terminal signals every process of the group) or SIGTERM outside a
    training finishes the task at hand and starts no other; during a training, ``train`` stops at the next batch.
    The worker dies with its driver (``die_with_parent``)."""
    global _STOP
    _STOP = stop
    if parent is not None:
        die_with_parent(parent, deathsig)
    share_accelerator()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())


def _run_task(fn: Callable, item: Any) -> Any:
    if _STOP is not None and _STOP.is_set():
        raise Interrupted("not started: the command was interrupted")
    return fn(item)


class LocalExecutor(Executor):
    """``workers`` processes started with the spawn method (no forked JAX/TensorFlow state)."""

    label = "local processes"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._spawn = multiprocessing.get_context("spawn")
        self._stop = self._spawn.Event()
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # workers start in the thread that submits: Linux's parent-death signal only when that is the main thread
        deathsig = threading.current_thread() is threading.main_thread()
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._spawn,
            initializer=_start_worker,
            initargs=(self._stop, os.getpid(), deathsig),
        )

    def submit(self, fn: Callable, item: Any) -> Handle:
        try:
            fut = self._pool.submit(_run_task, fn, item)
        except cf.process.BrokenProcessPool:  # a worker died earlier: the pool is unusable, start a fresh one
            self._discard_broken_pool()
            self._pool = self._new_pool()
            fut = self._pool.submit(_run_task, fn, item)
        return Handle(self, fut, item)

    def stop(self) -> None:
        """Queued tasks return at once; each worker gets SIGTERM, so a training stops at its next batch (keeping its
        checkpoint) instead of running to the end while the driver waits in ``close``."""
        self._stop.set()
        for p in list((self._pool._processes or {}).values()):  # concurrent.futures keeps no public list of them
            with contextlib.suppress(OSError):
                p.terminate()

    def wait(self, handles: list[Handle], timeout: float | None = None) -> list[Handle]:
        by_future = {h.inner: h for h in handles}
        done, _ = cf.wait(list(by_future), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return [by_future[f] for f in done]

    def _result(self, handle: Handle) -> Any:
        try:
            return handle.inner.result()
        except cf.process.BrokenProcessPool as e:
            raise WorkerDied(f"a worker process died ({e})") from None

    def close(self) -> None:
        if self._pool._broken:  # concurrent.futures keeps no public flag of it
            self._discard_broken_pool()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _discard_broken_pool(self) -> None:
        """A worker died: CPython's pool sends the others SIGTERM, which here is a clean stop (``_start_worker``), so
        each finishes its task, then waits for work that a broken pool never sends, and the pool's shutdown waits on
        them forever (measured: ``compare --workers 2`` hung after kill -9 of one worker). Their results cannot come
        back: they are killed.

        Then the pool's own thread is joined: it closes its wake-up pipe as it ends, and CPython 3.11's exit hook
        (``concurrent.futures.process._python_exit``) writes into every pool's pipe unless it is closed: a thread
        still closing it at exit raced that write and printed ``OSError: [Errno 9] Bad file descriptor`` with a
        traceback after ``compare``'s one-line message (seen once in a full suite run)."""
        manager = self._pool._executor_manager_thread  # shutdown() forgets it
        for p in list((self._pool._processes or {}).values()):
            with contextlib.suppress(OSError):
                p.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            manager.join(timeout=30)  # its workers are killed: it only reaps them


class RayExecutor(Executor):
    """Each task a Ray task with declared resources; a local Ray runtime when ``address`` is None.

    Ray's own task retries are off (``max_retries=0``): a crashed worker surfaces as WorkerDied, and the
    caller (tune) records it and decides about the retry, so the study shows what happened.
    """

    label = "Ray tasks"

    def __init__(
        self, workers: int | None = None, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0
    ):
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "the ray executor needs the `ray` package",
                where="--executor ray",
                fix="pip install 'rnnforecast[scale]' or use --executor local",
            ) from None
        self.ray = ray
        self._own = not ray.is_initialized()
        if self._own:
            if not address:
                refuse_small_address_space()  # before any Ray process exists
            try:
                self._start(address, workers)
            except Exception as e:  # a runtime that did not come up: stop what did, say why in one line
                with contextlib.suppress(Exception):
                    ray.shutdown()
                raise ConfigError(
                    f"cannot start {'the Ray connection' if address else 'a local Ray runtime'} ({first_line(e, 200)})",
                    where=f"--executor ray{f' --address {address}' if address else ''}",
                    fix="use --executor local, or start Ray yourself (ray start --head) and pass --address",
                ) from None
        self.workers = int(workers or ray.cluster_resources().get("CPU", 1))
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self._submitted: list[Any] = []

    def _start(self, address: str | None, workers: int | None) -> None:
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if address:
            self.ray.init(address=address, **quiet)
            return
        # Ray's default GCS port 6379 is often taken by Redis: a local runtime binds port 0 (the OS picks a free
        # one) unless RAY_GCS_SERVER_PORT says otherwise.
        self.ray.init(
            num_cpus=max(1, int(workers or os.cpu_count() or 1)),
            _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": _worker_env()},
            **quiet,
        )

    def submit(self, fn: Callable, item: Any) -> Handle:
        remote = self.ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(fn)
        handle = Handle(self, remote.remote(item), item)
        self._submitted.append(handle.inner)
        return handle

    def stop(self) -> None:
        """Cancel every task not finished (force: a running one's worker is killed), so none trains on for nobody."""
        for ref in self._submitted:
            with contextlib.suppress(Exception):  # finished, or the runtime is already going away
                self.ray.cancel(ref, force=True)

    def wait(self, handles: list[Handle], timeout: float | None = None) -> list[Handle]:
        by_ref = {h.inner: h for h in handles}
        ready, _ = self.ray.wait(list(by_ref), num_returns=1, timeout=timeout)
        return [by_ref[r] for r in ready]

    def _result(self, handle: Handle) -> Any:
        ex = self.ray.exceptions
        try:
            return self.ray.get(handle.inner)
        except (ex.WorkerCrashedError, ex.NodeDiedError, ex.LocalRayletDiedError) as e:
            raise WorkerDied(f"a Ray worker died ({type(e).__name__})") from None
        except ex.RayTaskError as e:  # the task raised: re-raise the original exception
            raise e.as_instanceof_cause() from None

    def close(self) -> None:
        if self._own:
            self.ray.shutdown()


RAY_MIN_ADDRESS_SPACE = 32 * 2**30  # measured (Ray 2.60, 2 workers): 4 GiB times out starting, 8 GiB crashes
# every worker, 32 GiB trains; the raylet, the object store and each JAX worker reserve gigabytes they never touch


def refuse_small_address_space() -> None:
    """A local Ray runtime under an address-space limit (``ulimit -v``, RLIMIT_AS) below what it reserves hangs in
    startup or crashes its workers one by one: refuse it in one line, before a Ray process is started."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft >= RAY_MIN_ADDRESS_SPACE:
        return
    raise ConfigError(
        f"the address-space limit (ulimit -v) is {soft / 2**30:.1f} GiB; a local Ray runtime reserves more "
        f"(the raylet, its object store and each worker) and hangs or crashes under less than "
        f"{RAY_MIN_ADDRESS_SPACE // 2**30} GiB",
        where="--executor ray",
        fix="use --executor local, or raise the limit (ulimit -v unlimited)",
    )


def _worker_env() -> dict[str, str]:
    """Environment the Ray workers need to import this package the same way the driver does."""
    keep = ("PYTHONPATH", "KERAS_BACKEND", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES", "RNNFORECAST_TRACEBACK")
    return {k: os.environ[k] for k in keep if k in os.environ}


def make_executor(kind: str = "local", workers: int = 1, address: str | None = None) -> Executor:
    if kind == "local":
        if address:
            raise ConfigError("--address only applies to the ray executor", where="--address", fix="add --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address)
    raise ConfigError(f"unknown executor {kind!r}", where="--executor", fix="use local or ray")

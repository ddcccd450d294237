"""The run directory: its layout, claiming it, writing every file (atomically), resuming, reading it back,
and checking new data against it.

A run (or comparison) is written under ``<name>.partial`` with a marker file and renamed when complete.
"""

from __future__ import annotations

import ctypes
import datetime
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import socket
import sys
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from . import fsio, masking, records
from .config import Config, from_dict
from .data import SERIES, Frame, ns
from .errors import DataError, ExitCode, Interrupted, RunError, Terminated, TrainingError, first_line
from .records import CONFIG, FORECAST, HISTORY, INTERVALS, METRICS, MODEL, SCALER, SCHEMA, TIMING  # noqa: F401

if TYPE_CHECKING:
    from .series import SeriesData

FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
MARKER = "UNFINISHED.txt"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when built in: ~10 ms less per load
OWNER = "owner.json"  # who is writing a .partial directory: pid, host, start time, command, what a resume must match
LOCK = ".lock"  # flock'ed by the process writing a .partial directory
REQUIRED = records.REQUIRED


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def slug(name: str) -> str:
    """A run name safe as one path component (no separators, no '..')."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")
    return s or "run"


def named_final(path: str) -> Path:
    """The final directory a user named: ``x.partial`` means ``x`` (the tool adds the suffix while it writes, so a
    result is never left under a name every command refuses as unfinished)."""
    p = Path(path)
    return final_of(p) if p.name.endswith(PARTIAL_SUFFIX) and p.name != PARTIAL_SUFFIX else p


def plan_run_dir(cfg: Config, run_dir: str | None) -> Path:
    if run_dir:
        return named_final(run_dir)
    return Path(cfg.output.runs_dir) / f"{slug(cfg.name)}-{time.strftime('%Y%m%d-%H%M%S')}"


def partial_of(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def final_of(partial: Path) -> Path:
    return partial.with_name(partial.name[: -len(PARTIAL_SUFFIX)])


def plan_compare_dir(cfg: Config, out: str | None, kind: str = "compare") -> Path:
    """``out``, or ``<runs_dir>/<name>-<kind>-<time>`` (kind: compare, backtest)."""
    if out:
        return named_final(out)
    return Path(cfg.output.runs_dir) / f"{slug(cfg.name)}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


# --------------------------------------------------------------------------- claiming a directory

_held: dict[Path, object] = {}  # directories this process claimed -> their open, locked lock file


def resume_keys(cfg: Config, source_sha256: str | None = None) -> dict:
    """What a resumed run must still match: the config's SHA-256 and the data's (the file's, or ``source_sha256``:
    the rows of a SQL source or DataFrame as read)."""
    return {"config_sha256": cfg.hash(), "data_sha256": source_sha256 or sha256(cfg.data_path)}


def start_or_resume(final: Path, fingerprint: dict, *, what: str, again: str) -> tuple[Path, bool]:
    """Claim ``<final>.partial`` like :func:`start`, or take back one this command left unfinished.

    An unfinished directory is taken back only when its ``plan.json`` holds the same ``fingerprint``
    (same config, plan and options): its finished parts are kept and the rest is redone.

    Returns:
        ``(partial, resumed)``.
    """
    partial = partial_of(final)
    if partial.exists() and not final.exists():
        try:
            old = json.loads((partial / "plan.json").read_text())
        except (OSError, ValueError):
            old = None
        new = masking.masked(json.loads(json.dumps(fingerprint, default=str)))  # as written: no password
        if old != new:
            raise _mismatch(partial, what, old, new)
        lock(partial, what=what, option="--out")  # another process resuming it at the same time is refused
        record_owner(partial, what)
        return partial, True
    partial = start(final, what=what, again=again)
    write_json(partial / "plan.json", fingerprint)
    return partial, False


def _mismatch(partial: Path, what: str, old, new: dict) -> RunError:
    """Why an unfinished directory cannot be resumed: its data changed (named), or its config or options did."""
    if isinstance(old, dict) and "data_sha256" in old and old.get("data_sha256") != new.get("data_sha256"):
        why = f"the data changed since this {what} started (SHA-256 differs); resuming would mix folds from two inputs"
        fix = f"restore the data it started with to resume, or pass another --out for a new {what}"
    else:
        why = f"an unfinished {what} with another config or other options is already there"
        fix = "rerun with the same config and options to resume it, or pass another --out"
    return RunError(why, where=str(partial), fix=fix)


def start(
    final: Path,
    config_path: str | None = None,
    *,
    what: str = "run",
    again: str | None = None,
    record: dict | None = None,
    numbered: bool = False,
) -> Path:
    """Claim ``<final>.partial`` for a run or a comparison: create it exclusively, lock it, record the owner,
    and leave a marker that says how to finish it.

    Nothing that exists is ever removed or reused: an existing ``final`` or ``.partial`` (a user's folder, another
    process's run, an unfinished run to resume) is a RunError that says what is there.

    Args:
        final: the directory the result gets once complete; it must not exist.
        config_path: for a run, how the user named the config (with ``--set`` options), for the resume hint.
        what: ``"run"`` (resumable), ``"comparison"``, ``"backtest"``...
        again: for anything but a run, the marker's line on how to finish it.
        record: extra keys for the owner record (``resume_keys``: what a resume must match).
        numbered: ``final`` is a planned name: when it is taken, try ``<final>-2``, ``<final>-3``, ...

    Returns:
        The ``.partial`` directory, now owned (locked) by this process until ``finish`` or the process ends.
    """
    option = "--run-dir" if what == "run" else "--out"
    target = final
    for n in range(2, 10_000):
        partial = _create(target, what, option)
        if partial is not None:
            break
        if not numbered:
            raise _taken(target, what, option, config_path)
        target = final.with_name(f"{final.name}-{n}")
    if what == "run":
        again = f"rnnforecast train {config_path} --resume {shlex.quote(str(partial))}"
        marker = f"This run did not finish. It is not a result.\nResume it with: {again}\n"
    else:
        nothing = (
            "Nothing in it resumes: remove this directory, then run rnnforecast compare again (or pass another --out)."
        )
        marker = f"This {what} did not finish. It is not a result.\n{again or nothing}\n"
    try:
        claim(partial, what=what, option=option, record=record)
        write_atomic(partial / MARKER, marker)
    except OSError as e:
        release(partial)
        shutil.rmtree(partial, ignore_errors=True)  # made by this call a moment ago
        raise _unwritable(partial, what, option, e) from None
    return partial


def _create(final: Path, what: str, option: str) -> Path | None:
    """``<final>.partial``, created by this call (os.mkdir, never reusing one), or None when either name is taken."""
    if final.exists() or final.is_symlink():
        return None
    partial = partial_of(final)
    inside = enclosing_result(final.parent)
    # a comparison's or tune's own runs live inside it; nothing else is written into a result
    if inside is not None and not (what == "run" and _owner(inside).get("what") in ("comparison", "tune")):
        raise RunError(
            f"{option} lies inside another {_result_kind(inside)} directory ({inside})",
            where=str(final),
            fix=f"pass {option} outside {inside}",
        )
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder belongs, no permission
        raise _unwritable(partial, what, option, e) from None
    try:
        os.mkdir(partial)
    except FileExistsError:
        return None
    except OSError as e:
        raise _unwritable(partial, what, option, e) from None
    return partial


def _unwritable(partial: Path, what: str, option: str, e: OSError) -> RunError:
    return RunError(
        f"cannot create the {what} directory ({e.strerror or e})", where=str(partial), fix=f"choose a writable {option}"
    )


def _taken(final: Path, what: str, option: str, config_path: str | None) -> RunError:
    """Why ``final`` cannot be claimed: it exists, or its ``.partial`` does (running, resumable, or not ours)."""
    partial = partial_of(final)
    if final.exists() or final.is_symlink():
        return RunError(f"the {what} directory already exists", where=str(final), fix=f"pass another {option}")
    owner = locked_by(partial)
    if owner is not None:
        why, fix = f"another rnnforecast process is writing this {what} ({owner})", "wait for it to finish, or"
    elif what == "run" and committed_epoch(partial) is not None:
        why = "an unfinished run is already there"
        fix = f"resume it with: rnnforecast train {config_path} --resume {shlex.quote(str(partial))}, or"
    elif _owner(partial).get("what") == what:  # left by an rnnforecast process that is gone: still not ours to delete
        why = f"an unfinished {what} is already there"
        fix = "comparison has no resume: remove it, or" if what == "comparison" else "remove it, or"
    else:
        why = f"{partial.name} already exists and was not made by this process; rnnforecast never deletes it"
        return RunError(why, where=str(partial), fix=f"pass another {option}, or move or remove {partial} yourself")
    return RunError(why, where=str(partial), fix=f"{fix} pass another {option}")


def _result_kind(d: Path) -> str | None:
    """What rnnforecast wrote ``d`` as ("run", "comparison", "tune", "backtest", ...), finished or not (an
    unfinished one names itself in its owner record), or None when it did not."""
    if (d / MARKER).is_file() or (d / OWNER).is_file():
        return _owner(d).get("what") or "run"
    return records.kind_of(d)


def enclosing_result(path: Path) -> Path | None:
    """The nearest directory at or above ``path`` that rnnforecast wrote as a result (a run, comparison, tune,
    backtest or one of its folds, finished or not), or None."""
    for d in (path, *path.parents):
        if _result_kind(d) is not None:
            return d
    return None


def outermost_result(path: Path) -> tuple[Path, str] | None:
    """The outermost directory at or above ``path`` that rnnforecast wrote as a result, and what it is; or None."""
    found = None
    for d in (path, *path.parents):
        kind = _result_kind(d)
        if kind is not None:
            found = (d, kind)
    return found


def check_name(path: Path, option: str) -> None:
    """A RunError when ``path``'s last name is longer than a file name may be (a long run's name plus a suffix)."""
    n = len(os.fsencode(path.name))
    if n > fsio.NAME_MAX:
        raise RunError(
            f"the name {path.name[:24]}... is {n} bytes, longer than a file name may be ({fsio.NAME_MAX})",
            where=str(path.parent),
            fix=f"pass {option} with a shorter name",
        )


def check_output(path: str | Path, option: str, suffix: str | None = None, force: bool = False) -> Path:
    """An output file the user named: refused when it lies inside a result rnnforecast wrote (``RUN/model.keras``,
    ``BT/folds/00/x.csv``; any run's, backtest's, comparison's or tune's, finished or not, at any depth), lacks
    ``suffix``, or already exists and ``force`` (the command's ``--force``) was not given: rnnforecast cannot know
    who made a file that is there, so it replaces none unasked. Returns the path."""
    p = Path(path)
    check_name(p, option)
    if p.is_dir():  # never replaced, --force or not (click's own check printed its usage block, exit 2)
        raise RunError(
            f"{option} names a directory; it takes a file",
            where=str(p),
            fix=f"give {option} a file name, in that directory or elsewhere (a directory is never replaced)",
        )
    if suffix and p.suffix.lower() != suffix:
        raise RunError(
            f"{option} must name a {suffix} file. Received: {p.name}",
            where=str(p),
            fix=f"pass a file name ending in {suffix}",
        )
    refuse_inside_result(p, option)
    if not p.parent.is_dir():  # never made here: a typo in a folder name would leave a stray folder behind
        raise RunError(
            "the folder does not exist" if not p.parent.exists() else "is not a folder",
            where=str(p.parent),
            fix=f"create it first (mkdir -p {shlex.quote(str(p.parent))}), or pass {option} in an existing folder",
        )
    if not force and (p.exists() or p.is_symlink()):
        raise RunError(
            f"{option}: the file already exists",
            where=str(p),
            fix=f"pass --force to replace it, or {option} another file",
        )
    return p


def refuse_inside_result(path: Path, option: str) -> None:
    """A RunError when ``path`` lies inside a directory rnnforecast wrote as a result, at any depth (a run,
    comparison, tune, backtest, its folds): an output never lands in a result, new name or not."""
    real = path.resolve()
    found = outermost_result(real.parent)
    if found is None:
        return
    root, kind = found
    rel = real.relative_to(root)
    if real.exists():
        what = f"would overwrite {rel.as_posix()}, a file of the {kind} in {root}"
    else:
        what = f"lies inside the {kind} in {root}, a result rnnforecast wrote"
    raise RunError(
        f"{option} {what}",
        where=str(path),
        fix=f"write the output outside {root}",
    )


def annex_path(result: str | Path, suffix: str) -> Path:
    """Where a command that reads a result writes by default (``report``, ``inspect``, ``export``): beside the
    outermost result holding it, named after it, never inside one (no result is written into by another command):
    ``runs/x`` -> ``runs/x-report.html``; a run inside a comparison or tune, ``runs/cmp/a`` -> ``runs/cmp-a-inspect``
    (named from the real path: a link on the way changes nothing)."""
    path = Path(result)
    path = path.resolve() if path.is_symlink() else fsio.absolute(path)  # runs/latest: the run's own name
    real = path.resolve()
    found = outermost_result(real)
    if found is not None and found[0] != real:
        root = found[0]
        return root.parent / ("-".join((root.name, *real.relative_to(root).parts)) + suffix)
    return path.parent / (path.name + suffix)


def check_output_dir(out: Path, option: str, what: str, own=None, make_parents: bool = False) -> Path:
    """An output directory (inspect's, export's, ``Forecaster.save``'s), checked before any work: never inside a
    result, never a link or a file, never a non-empty directory unless ``own(out)`` says it is the command's own
    earlier output; its folder must exist (``make_parents``: made). Returns ``out`` as an absolute path."""
    out = fsio.absolute(out)
    check_name(out, option)
    refuse_inside_result(out, option)
    if out.is_symlink():
        raise RunError(
            "is a link; an output is never written through one", where=str(out), fix=f"pass {option} a new directory"
        )
    if out.exists() and not out.is_dir():
        raise RunError("is a file, not a directory", where=str(out), fix=f"pass {option} a new directory")
    if out.is_dir() and any(out.iterdir()) and not (own is not None and own(out)):
        if own is None:
            raise RunError(
                "already exists and is not empty", where=str(out), fix=f"pass {option} with a new or empty directory"
            )
        raise RunError(
            f"holds files {what} did not write; a directory is never merged into or replaced",
            where=str(out),
            fix=f"pass {option} a new or empty directory",
        )
    folder = next((p for p in out.parents if p.exists() or p.is_symlink()), None)
    if folder is not None and not folder.is_dir():
        raise RunError("is not a folder", where=str(folder), fix=f"pass {option} in a folder")
    if not out.parent.is_dir():
        if not make_parents:
            raise RunError(
                "the folder does not exist",
                where=str(out.parent),
                fix=f"create it first (mkdir -p {shlex.quote(str(out.parent))}), or pass {option} in an existing folder",
            )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(
                f"cannot create the folder ({e.strerror or e})", where=str(out.parent), fix=f"pass a writable {option}"
            ) from None
    return out


def owned_annex(directory: Path, record: str, key: str) -> bool:
    """Whether ``directory`` is an annex this tool wrote (its ``record`` JSON file has ``key``) holding nothing but
    that record and PNG images, so a command may replace it with a new one of its own."""
    try:
        names = list(directory.iterdir())
        if not all(p.is_file() and not p.is_symlink() and (p.name == record or p.suffix == ".png") for p in names):
            return False
        return key in json.loads((directory / record).read_text())
    except (OSError, ValueError, TypeError):
        return False


INSPECT_RECORD = "inspect.json"


def inspection_dir(run: str | Path, output: str | Path | None) -> Path:
    """Where ``inspect`` writes: ``output`` or ``<run>-inspect`` beside the run (``annex_path``), checked by
    ``check_output_dir``; an earlier inspection of this same run there is replaced (``is_inspection_of``)."""
    out = Path(output) if output else annex_path(run, "-inspect")
    check_name(out, "--output")
    if out.is_dir() and not out.is_symlink() and owned_annex(out, INSPECT_RECORD, "of"):
        if not is_inspection_of(out, run):  # two runs whose annexes share a name (runs/cmp/a and runs/cmp-a)
            of = json.loads((out / INSPECT_RECORD).read_text()).get("of") or {}
            raise RunError(
                f"holds the inspection of another run ({of.get('run', '?')}); it is kept",
                where=str(out),
                fix="pass --output a new or empty directory",
            )
    return check_output_dir(out, "--output", "inspect", own=lambda d: is_inspection_of(d, run))


def is_inspection_of(directory: Path, run: str | Path) -> bool:
    """Whether ``directory`` holds an inspection of ``run`` that inspect wrote and nothing else: the one directory
    it replaces (another run's, at a name two runs share, is kept)."""
    if not owned_annex(directory, INSPECT_RECORD, "of"):
        return False
    try:
        of = json.loads((directory / INSPECT_RECORD).read_text())["of"]
        return isinstance(of, dict) and of.get("run") == str(Path(run).resolve())
    except (OSError, ValueError, KeyError):
        return False


def inspection_of(run: Path) -> Path | None:
    """The inspection of ``run`` that report shows: ``<run>-inspect`` when its inspect.json is of this run (the
    run's metrics.json by SHA-256: a run made again under the same name does not show the old one's), else the
    ``RUN/inspect`` of a run inspected by an older version; None when there is none."""
    annex = annex_path(run, "-inspect")
    try:
        of = json.loads((annex / INSPECT_RECORD).read_text()).get("of") or {}
        if of.get("metrics_sha256") == sha256(run / METRICS):
            return annex
    except (OSError, ValueError, AttributeError):
        pass
    legacy = run / "inspect"
    return legacy if (legacy / INSPECT_RECORD).is_file() else None


def _remove_dead_leftovers(out: Path) -> None:
    """The temporaries ``new_directory`` left for ``out`` in a process killed outright (kill -9): the names
    ``fsio.temporary_name`` gives ``out`` (and its ``.old``) with another process's id, that process gone."""
    try:
        found = [(p, int(m.group(1))) for p in out.parent.iterdir() if (m := re.match(r"\.(\d+)\.", p.name))]
    except OSError:
        return
    for p, pid in found:
        mine = {fsio.temporary_name(q, pid).name for q in (out, out.with_name(out.name + ".old"))}
        if p.name in mine and pid != os.getpid() and not _alive(pid) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


@contextmanager
def new_directory(out: Path, option: str, replaceable=None):
    """A temporary directory next to ``out`` to fill; when the block succeeds it becomes ``out``, when it fails it
    is removed. What is at ``out`` then is replaced only when it is an empty directory or ``replaceable(out)`` says
    it is the command's own (checked at the swap, not trusted from earlier); else a RunError, the result left
    unmade. An unwritable place is a RunError naming the option."""
    out = fsio.absolute(out)
    _remove_dead_leftovers(out)
    tmp, old = fsio.temporary_name(out), fsio.temporary_name(out.with_name(out.name + ".old"))
    try:
        tmp.mkdir()
    except OSError as e:
        raise RunError(
            f"cannot create {out.name} ({e.strerror or e})", where=str(out.parent), fix=f"pass a writable {option}"
        ) from None
    try:
        yield tmp
        if out.exists() or out.is_symlink():
            empty = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
            if not (empty or (replaceable is not None and out.is_dir() and not out.is_symlink() and replaceable(out))):
                raise RunError(
                    "something else is there now; it is kept and nothing was written",
                    where=str(out),
                    fix=f"move it away, or pass another {option}",
                )
            os.rename(out, old)
        os.rename(tmp, out)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def atomic_output(path: str | Path, option: str):
    """A temporary name next to ``path`` for a writer that wants a path (matplotlib, Keras); renamed to ``path``
    when the block succeeds, removed when it fails. An unwritable place is a RunError naming the option."""
    path = Path(path)
    try:
        with fsio.atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise RunError(
            f"cannot write {path.name} ({e.strerror or e})", where=str(path), fix=f"pass a writable {option}"
        ) from None


def claim(directory: Path, *, what: str, option: str, record: dict | None = None) -> None:
    """Lock ``directory`` for this process (``lock``) and write the owner record (``record_owner``)."""
    lock(directory, what=what, option=option)
    record_owner(directory, what, record)


def lock(directory: Path, *, what: str, option: str) -> None:
    """``fcntl.flock`` on ``directory``'s lock file, held until ``release`` or the process ends; a RunError naming
    the owner when another process holds it."""
    fh = open(directory / LOCK, "a+")  # noqa: SIM115 (held while this process works in the directory)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunError(
            f"another rnnforecast process is writing this {what} ({_owner_text(directory, wait=OWNER_WAIT)})",
            where=str(directory),
            fix=f"wait for it to finish, or pass another {option}",
        ) from None
    _held[directory.resolve()] = fh


def record_owner(directory: Path, what: str, record: dict | None = None) -> None:
    """owner.json: pid, host, start time and command of this process, and ``record``; a resume keeps what the run
    started with unless ``record`` replaces it."""
    owner = {
        **_owner(directory),
        "what": what,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["rnnforecast", *sys.argv[1:]]),
        **(record or {}),
    }
    write_json(directory / OWNER, owner)


def release(directory: Path) -> None:
    """Drop this process's lock on ``directory`` (a no-op when it holds none)."""
    fh = _held.pop(directory.resolve(), None)
    if fh is not None:
        fh.close()


def locked_by(directory: Path) -> str | None:
    """Who holds ``directory``'s lock ("pid 12 on host, started ..."), or None when nobody does.

    Looks without creating anything: a directory without a lock file is not locked.
    """
    try:
        fh = open(directory / LOCK)  # noqa: SIM115
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _owner_text(directory)
    return None


def _owner(directory: Path) -> dict:
    try:
        owner = json.loads((directory / OWNER).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


OWNER_WAIT = 2.0  # seconds: the holder takes the lock, then writes owner.json; a refusal in between waits for it


def _owner_text(directory: Path, wait: float = 0.0) -> str:
    o = _owner(directory)
    deadline = time.monotonic() + wait
    while not o and time.monotonic() < deadline:  # the lock's holder is writing its record (a suite run saw this)
        time.sleep(0.02)
        o = _owner(directory)
    if not o:
        return "owner unknown"
    return f"pid {o.get('pid')} on {o.get('host')}, started {o.get('started')}"


def committed_epoch(partial: Path) -> int | None:
    """The last epoch (1-based) whose checkpoint was committed in ``partial``, or None."""
    try:
        return int(json.loads((partial / "checkpoint" / "state.json").read_text())["epoch"]) + 1
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep_only_checkpoint(partial: Path) -> int | None:
    """After a failed or interrupted training: keep the committed checkpoint, the config and the
    marker, delete everything else (half-written files); without a checkpoint, delete the directory.

    Returns:
        The committed epoch (1-based), or None when nothing was kept.
    """
    from .final_fit import is_checkpoint  # the final fit's checkpoints are kept too

    epoch = committed_epoch(partial)
    release(partial)
    if epoch is None:
        shutil.rmtree(partial, ignore_errors=True)  # claimed (os.mkdir) by this process: nothing of anyone else's
        return None
    ckpt = partial / "checkpoint"
    state = json.loads((ckpt / "state.json").read_text())
    keep = {
        "state.json",
        state.get("model"),
        ((state.get("callbacks") or {}).get("early_stopping") or {}).get("best_weights"),
    }
    for f in ckpt.iterdir():
        if f.name not in keep:
            f.unlink(missing_ok=True)
    for f in partial.iterdir():
        if f.name not in ("checkpoint", CONFIG, MARKER, OWNER, LOCK) and not is_checkpoint(f.name):
            shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
    return epoch


def finish(partial: Path) -> Path:
    """Turn the claimed ``partial`` into its final directory (never onto an existing one) and release it."""
    final = final_of(partial)
    shutil.rmtree(partial / "checkpoint", ignore_errors=True)
    (partial / MARKER).unlink(missing_ok=True)
    (partial / OWNER).unlink(missing_ok=True)
    try:
        rename_no_replace(partial, final)
    except FileExistsError:
        raise RunError(
            "the final directory appeared while this process was writing; the result stays in the .partial directory",
            where=str(final),
            fix=f"move {final} away, then rename {partial} to it",
        ) from None
    finally:
        release(partial)
    (final / LOCK).unlink(missing_ok=True)
    return final


def rename_no_replace(src: Path, dst: Path) -> None:
    """``os.rename`` that never replaces ``dst`` (plain rename replaces an empty directory): FileExistsError."""
    libc = _libc()
    if libc is not None:
        if libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), 1) == 0:  # AT_FDCWD, RENAME_NOREPLACE
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(dst))
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    os.rename(src, dst)


def _libc():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.renameat2  # noqa: B018 (glibc >= 2.28)
    except (OSError, AttributeError):
        return None
    return libc


write_atomic = fsio.write_atomic  # the package's atomic writers live in fsio; these names stay for callers


def listing(directory: str | Path) -> dict[str, str]:
    """The files and folders directly in a result directory, name -> absolute path (for ``--json``)."""
    d = Path(directory)
    return {p.name: str(p.resolve()) for p in sorted(d.iterdir())} if d.is_dir() else {}


write_json = fsio.write_json
finite_or_none = fsio.finite_or_none


# --------------------------------------------------------------------------- writing a run

# What a finished run directory holds (see README, "What a run directory holds"):
#   config.yaml  model.keras  scaler.json  schema.json  history.csv  metrics.json  timing.json  forecast.csv  plots/


def write_config(partial: Path, cfg: Config) -> None:
    write_atomic(partial / CONFIG, cfg.to_yaml())


def schema_of(data: SeriesData, cfg: Config) -> dict:
    """schema.json: what new data must look like to be used with this run (columns, types, calendar, window)."""
    from .nextsteps import target_decimals

    f = data.frame
    t = pd.DatetimeIndex(f.df[f.time_column])
    steps = np.diff(ns(t)) if len(t) > 1 else np.array([0])
    return {
        "format_version": FORMAT_VERSION,
        "time_column": f.time_column,
        "series_id": cfg.data.series_id,
        "series": [s.series for s in data.segments],
        "columns": data.columns,
        "features": data.features,
        "targets": data.targets,
        "source_columns": sorted(set(f.numeric_source) - {SERIES}),
        "dtypes": f.numeric_source,
        "categories": f.categories,
        "frequency": f.frequency,
        "calendar": f.calendar,
        "zone": f.zone,  # what the zone rule did with UTC offsets ("": none); new data is checked against it
        "median_step_seconds": float(np.median(steps[steps > 0]) / 1e9) if (steps > 0).any() else None,
        "last_timestamp": {s.series: str(t[s.hi - 1]) for s in data.segments},
        "transform": data.transform,
        "input_length": data.input_length,
        "horizon": data.horizon,
        **_quantile_axis(cfg),
        **_network_shape(data),
        "rows": int(len(f.df)),
        "decimals": target_decimals(data),  # what the data is recorded with: the text a person reads is rounded to it
    }


def _network_shape(data: SeriesData) -> dict:
    """With independent channels the network reads one sequence per target: its own shapes (framing.py)."""
    fr = data.framing
    if not fr.independent:
        return {}
    return {"network": {"inputs": fr.network_inputs, "targets": fr.network_targets}}


def _quantile_axis(cfg: Config) -> dict:
    """The model output's last axis: one point forecast, or the quantiles of a quantile head."""
    from .intervals import quantile_name
    from .models import model_quantiles

    qs = model_quantiles(cfg)
    return (
        {"n_quantiles": len(qs), "quantiles": [quantile_name(q) for q in qs]}
        if qs
        else {
            "n_quantiles": 1,
            "quantiles": ["mean"],
        }
    )


def metrics_record(cfg: Config, scored: dict, val: dict, fit, params: int, extra: dict, split: str = "test") -> dict:
    """metrics.json: the scored split's and val's scores, training facts, and what the run depends on (``extra``:
    stationarity, backend, versions). ``split`` is "test" for a run, "val" for a tune trial (test never scored)."""
    return {
        "format_version": FORMAT_VERSION,
        "split": split,
        "n_windows": scored["n_windows"],
        "season_length": scored["season_length"],
        split: {k: scored[k] for k in ("original", "normalised")},
        "val": {k: val[k] for k in ("original", "normalised")},
        "per_series": scored.get("per_series"),
        **({"intervals": scored["intervals"]} if "intervals" in scored else {}),
        "training": {
            "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch,
            "stopped_early": fit.stopped_early,
            "params": params,
            "best_val_loss": finite_or_none(min(fit.history.get("val_loss", [math.nan]))),
            **(
                {"untrained_val_loss": finite_or_none(fit.start_loss)}
                if getattr(fit, "start_loss", None) is not None
                else {}
            ),
        },
        "stationarity": {"share_test_outside_train_range": extra["stationarity"]},
        "backend": extra["backend"],
        "devices": extra.get("devices", 1),  # each batch split over this many devices (runtime.distribution)
        "versions": extra["versions"],
        "config_sha256": cfg.hash(),
        "data_sha256": extra.get("data_sha256") or sha256(cfg.data_path),  # a SQL source or DataFrame: its rows
        "seed": cfg.seed,
        **({"ensemble": extra["ensemble"]} if "ensemble" in extra else {}),  # training above: member 0's
    }


def timing_record(train_seconds: float, epoch_seconds: list[float]) -> dict:
    """timing.json: wall time of ``fit`` and of each epoch."""
    return {
        "train_seconds": train_seconds,
        "epoch_seconds": epoch_seconds,
        "median_epoch_seconds": float(np.median(epoch_seconds)) if epoch_seconds else None,
    }


def history_table(history: dict[str, list[float]], epochs_run: int) -> pd.DataFrame:
    """history.csv: one row per epoch run, one column per logged value that has every epoch."""
    return pd.DataFrame(
        {"epoch": np.arange(1, epochs_run + 1), **{k: v for k, v in history.items() if len(v) == epochs_run}}
    )


def write_run(
    partial: Path,
    *,
    history: pd.DataFrame,
    metrics: dict,
    timing: dict,
    forecast: pd.DataFrame,
    model=None,
    scaler=None,
    schema: dict | None = None,
    intervals: dict | None = None,
) -> None:
    """Write the records of a trained run into ``partial`` (plots aside), each one atomically.

    The trained thing itself (model, scaler, schema, intervals) is ``Forecaster.save``'s; ``model``, ``scaler``,
    ``schema`` and ``intervals`` (``intervals.RunIntervals.to_dict``) are written here only when given.
    """
    if model is not None:
        save_model(model, partial / MODEL)
    if scaler is not None:
        write_atomic(partial / SCALER, scaler_json(scaler))
    if schema is not None:
        write_json(partial / SCHEMA, schema)
    write_atomic(partial / HISTORY, history.to_csv(index=False))
    write_json(partial / METRICS, metrics)
    write_json(partial / TIMING, timing)
    write_atomic(partial / FORECAST, forecast.to_csv(index=False))
    if intervals is not None:
        write_json(partial / INTERVALS, intervals)


def scaler_json(scaler) -> str:
    """scaler.json's text (``Scaler.to_json``), for ``write_atomic``: ``Scaler.save`` writes in place."""
    return json.dumps(scaler.to_json(), indent=1)


def member_path(run_dir: Path, i: int) -> Path:
    """Where member ``i`` (>= 1) of a seed ensemble is saved; member 0 is ``model.keras``."""
    return run_dir / "members" / f"{i}.keras"


def ensemble_record(seed: int, first, members: list[dict]) -> dict:
    """metrics.json's ``ensemble``: each member's seed, epochs and best epoch (the seconds of every member are
    timing.json's ``train_seconds``: metrics.json is reproducible byte for byte)."""
    fits = [first, *(m["fit"] for m in members)]
    return {
        "members": len(fits),
        "seeds": [seed + i for i in range(len(fits))],
        "epochs_run": [f.epochs_run for f in fits],
        "best_epoch": [f.best_epoch for f in fits],
        "combined": "mean (median of each quantile for quantile outputs)",
    }


def save_model(model, path: Path) -> None:
    """``model.save`` under a temporary name in the same folder, then a rename (Keras wants the .keras suffix)."""
    with fsio.atomic_path(path) as tmp:
        model.save(tmp)


def write_table(path: str | Path, table: pd.DataFrame, force: bool = False) -> None:
    """A CSV the user asked for (``predict --output``), atomically; an unwritable path, a run's own file or (without
    ``force``) an existing file is a RunError."""
    check_output(path, "--output", force=force)
    try:
        write_atomic(path, table.to_csv(index=False))
    except OSError as e:
        raise RunError(f"cannot write ({e.strerror})", where=str(path), fix="choose a writable path") from None


@contextmanager
def kept_on_failure(partial: Path, config_path: str, epochs: int):
    """Around a training into ``partial``: on interruption or failure keep only the committed checkpoint
    (or nothing) and raise one error that says what was kept and how to resume."""
    try:
        yield
    except KeyboardInterrupt as e:
        raise _interrupted(partial, config_path, epochs, e) from None
    except OSError as e:
        epoch = keep_only_checkpoint(partial)  # no half-written files stay behind
        kept = f"epoch {epoch} is kept in {partial}" if epoch else "nothing was kept"
        fix = (
            f"free disk space, then resume with: rnnforecast train {config_path} --resume {shlex.quote(str(partial))}"
            if epoch
            else "free disk space or choose a writable --run-dir"
        )
        raise TrainingError(
            f"cannot write the run ({e.strerror or e}); {kept}", where=str(e.filename or partial), fix=fix
        ) from None
    except TrainingError:
        keep_only_checkpoint(partial)
        raise
    finally:
        release(partial)  # the lock (finish released it already after a success)


def _interrupted(partial: Path, config_path: str, epochs: int, e: KeyboardInterrupt) -> Interrupted:
    """Ctrl-C or SIGTERM during a training: keep the committed checkpoint and say how to resume."""
    signame = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
    epoch = keep_only_checkpoint(partial)
    if epoch is None:
        err = Interrupted(
            f"interrupted ({signame}) before the first epoch finished; nothing was kept",
            where=str(partial),
            fix=f"start again: rnnforecast train {config_path}",
        )
    else:
        err = Interrupted(
            f"interrupted ({signame}); epoch {epoch} of {epochs} is saved in this unfinished run",
            where=str(partial),
            fix=f"resume with: rnnforecast train {config_path} --resume {shlex.quote(str(partial))}",
        )
    if isinstance(e, Terminated):
        err.exit_code = ExitCode.TERMINATED
    return err


# --------------------------------------------------------------------------- resuming


def resume_dir(
    resume: str, cfg: Config, force: bool = False, source_sha256: str | None = None
) -> tuple[Path, list[str]]:
    """The ``.partial`` directory to resume (given it or its final name), claimed by this process and checked
    against ``cfg`` and its data file; touches nothing when it refuses.

    Args:
        force: resume although the config or the data file changed since the run started (``--force-resume``).
    """
    p = _resumable(Path(resume))
    lock(p, what="run", option="--resume")
    try:
        warnings = _check_resume(p, cfg, force, source_sha256)
    except BaseException:
        release(p)
        raise
    record_owner(p, "run", resume_keys(cfg, source_sha256))
    return p, warnings


def _resumable(p: Path) -> Path:
    """The unfinished directory that ``--resume p`` names (``p`` or its .partial), refused when there is none."""
    if not p.name.endswith(PARTIAL_SUFFIX) and partial_of(p).exists():
        p = partial_of(p)
    final = final_of(p) if p.name.endswith(PARTIAL_SUFFIX) else p
    if final.is_dir() and all((final / name).exists() for name in REQUIRED):
        raise _finished_already(p, final)
    _check_resumable(p, final)
    return p


def _finished_already(p: Path, final: Path) -> RunError:
    """The refusal of a resume whose run finished (``p`` may be a second, unfinished copy of it)."""
    other = p.exists() and p != final
    return RunError(
        f"the run {final} finished; there is nothing to resume",
        where=str(p if other else final),
        fix="evaluate or predict with the finished run, or start a new training"
        + (f" (the unfinished {p.name} can only be resumed once {final} is moved away)" if other else ""),
    )


def _check_resumable(p: Path, final: Path) -> None:
    """An unfinished run ``p`` can be resumed: it exists, its final name is free, and an epoch was saved."""
    if not p.exists():
        raise RunError(
            "nothing to resume here", where=str(p), fix="pass the .partial directory printed when training stopped"
        )
    if not (p / MARKER).is_file() or _owner(p).get("what", "run") != "run":  # a user's folder, or another kind
        kind = _owner(p).get("what") if (p / MARKER).is_file() else None
        raise RunError(
            f"this is {f'an unfinished {kind}' if kind else 'not an unfinished rnnforecast run'} ({MARKER} "
            f"{'names another kind' if kind else 'is missing'}); train --resume takes a run's .partial directory",
            where=str(p),
            fix="pass the .partial directory printed when training stopped",
        )
    if final.exists() or final.is_symlink():
        raise RunError(
            f"{final} already exists, so this run could not be finished",
            where=str(p),
            fix=f"move {final} away, then resume",
        )
    if not (p / "checkpoint" / "state.json").exists():
        raise RunError(
            "no completed epoch was saved, so there is nothing to resume", where=str(p), fix="start a new training"
        )


def _same_run_config(saved, cfg: Config) -> bool:
    """config.yaml of a run vs ``cfg``, ignoring ``runtime.workers`` (how many processes train, not what)."""
    if not isinstance(saved, dict):
        return False
    now = cfg.to_dict()
    for d in (saved, now):
        if isinstance(d.get("runtime"), dict):
            d["runtime"] = {k: v for k, v in d["runtime"].items() if k != "workers"}
    return saved == now


def _check_resume(p: Path, cfg: Config, force: bool, source_sha256: str | None = None) -> list[str]:
    """Refuse a resume whose config or data file changed since the run started, unless ``force``."""
    try:
        saved = yaml.safe_load((p / CONFIG).read_text()) if (p / CONFIG).exists() else None
    except (yaml.YAMLError, UnicodeDecodeError):
        saved = "damaged"
    owner = _owner(p)
    now = resume_keys(cfg, source_sha256)
    reasons = []
    if (saved is not None and not _same_run_config(saved, cfg)) or owner.get(
        "config_sha256", now["config_sha256"]
    ) != now["config_sha256"]:
        key = _first_difference(saved, cfg.to_dict()) if isinstance(saved, dict) else None
        which = f" ({key}: {_short_value(key, saved)} then, {_short_value(key, cfg.to_dict())} now)" if key else ""
        reasons.append((f"the config differs from the one this run started with{which}", p / CONFIG))
    if owner.get("data_sha256", now["data_sha256"]) != now["data_sha256"]:
        reasons.append((f"the data file {cfg.data_path} changed since this run started (SHA-256 differs)", p / OWNER))
    if reasons and not force:
        what, where = reasons[0]
        raise RunError(
            what,
            where=str(where),
            fix="resume with the same config, --set options and data, or pass --force-resume to continue anyway",
        )
    return [f"warning: {what}; resuming anyway (--force-resume)" for what, _ in reasons]


def _first_difference(a: dict, b: dict, prefix: str = "") -> str | None:
    """The first dotted key whose value differs between two config dicts (``runtime.workers`` aside), or None."""
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        if key == "runtime.workers":
            continue
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            inner = _first_difference(x, y, f"{key}.")
            if inner:
                return inner
        elif x != y:
            return key
    return None


def _short_value(key: str, d: dict) -> str:
    """The value at dotted ``key`` of ``d`` for a message: compact, masked, cut to 40 characters."""
    v = d
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    text = masking.mask_secrets(json.dumps(v, default=str))
    return text if len(text) <= 40 else text[:37] + "..."


def read_state(partial: Path) -> dict:
    """The training state of the last committed epoch (``checkpoint/state.json``)."""
    return json.loads((partial / "checkpoint" / "state.json").read_text())


# --------------------------------------------------------------------------- reading


@dataclass
class Run:
    path: Path
    config: Config
    schema: dict
    metrics: dict

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    def member_paths(self) -> list[Path]:
        """The model files: ``model.keras``, then ``members/<i>.keras`` for a seed ensemble's other members."""
        n = self.config.model.ensemble
        paths = [self.model_path, *(member_path(self.path, i) for i in range(1, n))]
        for p in paths[1:]:
            if not p.exists():
                raise RunError(f"ensemble member {p.stem} of {n} is missing", where=str(p), fix=DAMAGED_FIX)
        return paths

    @property
    def intervals(self):
        """The run's ``intervals.RunIntervals`` from intervals.json, or None for a point-forecast run."""
        from .intervals import RunIntervals, inconsistency

        path = self.path / INTERVALS
        if not path.exists():
            return None
        try:
            iv = RunIntervals.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as e:  # [] or "x": Attribute
            raise RunError(
                f"cannot read intervals.json ({type(e).__name__})",
                where=str(path),
                fix="the run is damaged: train again",
            ) from None
        why = inconsistency(iv, self.config.intervals.levels if self.config.intervals else (), *self._iv_shape())
        if why:
            raise RunError(f"intervals.json does not match the run: {why}", where=str(path), fix=DAMAGED_FIX)
        return iv

    def _iv_shape(self) -> tuple[int, int]:
        return self.config.window.horizon, len(self.config.data.target)


def open_run(path: str | Path) -> Run:
    """Check a run directory and read its config, schema and metrics (not the model)."""
    p = Path(path)
    _check_finished_run(p)
    schema, metrics, raw_cfg = _read_records(p)
    _check_schema(p / SCHEMA, schema)
    version = schema.get("format_version")
    if version != FORMAT_VERSION:
        raise RunError(
            f"schema.json has format_version {version!r}; this rnnforecast reads {FORMAT_VERSION}",
            where=str(p / SCHEMA),
            fix="use the rnnforecast version that wrote the run, or train again",
        )
    cfg = from_dict(raw_cfg, source=str(p / CONFIG), base_dir=str(p))
    _check_window(p, cfg, schema)
    return Run(p, cfg, schema, metrics)


def _check_finished_run(p: Path) -> None:
    """``p`` is a finished run directory: it exists, is not unfinished, and holds every REQUIRED file."""
    if not p.exists():
        guess = partial_of(p)
        fix = (
            f"it is unfinished at {guess}; resume it with rnnforecast train CONFIG --resume {guess}"
            if guess.exists()
            else "pass a directory written by rnnforecast train"
        )
        raise RunError("run directory not found", where=str(p), fix=fix)
    if not p.is_dir():
        raise RunError("not a directory", where=str(p), fix="pass the run directory printed by rnnforecast train")
    if (p / MARKER).exists() or p.name.endswith(PARTIAL_SUFFIX):
        raise RunError(
            "this run did not finish; it is not a result",
            where=str(p),
            fix="resume it with rnnforecast train CONFIG --resume " + str(p),
        )
    for name in REQUIRED:
        if not (p / name).exists():
            raise RunError(
                f"{name} is missing", where=str(p), fix="pass a complete run directory written by rnnforecast train"
            )


def _read_records(p: Path) -> tuple[dict, dict, dict]:
    """schema.json, metrics.json and config.yaml of a run, each a mapping, or the run is damaged."""
    try:
        schema = json.loads((p / SCHEMA).read_text())
        metrics = json.loads((p / METRICS).read_text())
        raw_cfg = yaml.load((p / CONFIG).read_text(), Loader=SAFE_LOADER)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise RunError(
            f"cannot read the run's files ({type(e).__name__})", where=str(p), fix="the run is damaged: train again"
        ) from None
    for name, value in ((SCHEMA, schema), (METRICS, metrics), (CONFIG, raw_cfg)):
        if not isinstance(value, dict):
            raise RunError(
                f"{name} holds a {type(value).__name__}, not a mapping", where=str(p / name), fix=DAMAGED_FIX
            )
    return schema, metrics, raw_cfg


DAMAGED_FIX = "the run is damaged: train again (or copy the run directory again if it came from elsewhere)"

# schema.json keys that loading a run relies on, and their types
SCHEMA_TYPES = {
    "format_version": int,
    "time_column": str,
    "columns": list,
    "features": list,
    "targets": list,
    "source_columns": list,
    "frequency": str,
    "input_length": int,
    "horizon": int,
}


def _check_schema(path: Path, schema: dict) -> None:
    for key, kind in SCHEMA_TYPES.items():
        if not isinstance(schema.get(key), kind) or isinstance(schema.get(key), bool):
            got = type(schema.get(key)).__name__ if key in schema else "nothing"
            raise RunError(f"{key!r} must be a {kind.__name__}, got {got}", where=str(path), fix=DAMAGED_FIX)
    if not set(schema["features"]) | set(schema["targets"]) <= set(schema["columns"]):
        raise RunError("features and targets are not all among 'columns'", where=str(path), fix=DAMAGED_FIX)


def _check_window(p: Path, cfg: Config, schema: dict) -> None:
    """config.yaml's window must be the one the model was trained with (schema.json; the model's own shapes are
    checked against schema.json when it loads)."""
    if cfg.window.input_length != schema["input_length"] or cfg.window.horizon != schema["horizon"]:
        raise RunError(
            f"window.input_length={cfg.window.input_length}, window.horizon={cfg.window.horizon} differ from the "
            f"trained model's {schema['input_length']} and {schema['horizon']} (schema.json)",
            where=str(p / CONFIG),
            fix="restore the run's own config.yaml (train again for another window)",
        )


def load_scaler(run: Run, path: Path | None = None):
    """The run's scaler (or the one at ``path``), checked (Scaler.load) and matching the schema's columns and series."""
    from .scaling import Scaler

    path = path or run.path / SCALER
    scaler = Scaler.load(path)
    if list(scaler.columns) != run.schema["columns"]:
        raise RunError(
            f"the scaler has columns {scaler.columns}, schema.json {run.schema['columns']}",
            where=str(path),
            fix=DAMAGED_FIX,
        )
    series = run.schema.get("series") or []
    if scaler.groups != ["*"] and sorted(scaler.groups) != sorted(series):
        raise RunError(f"the scaler has series {scaler.groups}, schema.json {series}", where=str(path), fix=DAMAGED_FIX)
    return scaler


def check_tail(frame: Frame, allow: bool, open_rows: int = 0) -> list[str]:
    """New data whose last target values are missing: refused (the forecast would rest on filled values), or with
    ``allow`` a warning. ``open_rows`` trailing rows per series are expected empty (the horizon rows that carry a
    run's known-future inputs)."""
    late = {k: v[: len(v) - open_rows] for k, v in frame.missing_tail.items() if len(v) > open_rows}
    if not late:
        return []
    series, lines = next(iter(late.items()))
    who = f"series {series!r}: " if len(frame.series) > 1 else ""
    known = [n for n in lines if n]
    at = f"lines {known[0]}-{known[-1]}" if len(known) > 1 else (f"line {known[0]}" if known else "gap rows")
    what = (
        f"{who}the last {len(lines)} observed row(s) have no {'/'.join(frame.targets)} value ({at}); "
        "the forecast would start from filled values"
    )
    if allow:
        return [f"warning: {what} (filled as data.missing says; --allow-missing-tail)"]
    raise DataError(
        what,
        where=str(frame.path),
        fix="pass data that ends with observed target values, or --allow-missing-tail to fill them and forecast",
    )


def check_against_schema(path: Path, schema: dict, columns) -> None:
    """New data for a run (``columns`` of the file or table named ``path``) must have the run's source columns."""
    have = set(map(str, columns))
    known = set(schema["columns"]) | {schema["time_column"]} | set(schema.get("categories", {}))
    missing = [c for c in schema["source_columns"] if c != "__line__" and c not in have and c in known]
    if missing:
        raise RunError(
            f"columns {missing} that the run was trained on are missing (file has: {', '.join(sorted(have))})",
            where=str(path),
            fix="pass a file with the training data's columns (see schema.json in the run)",
        )


def check_step(frame: Frame, schema: dict, path: Path) -> None:
    """New data for a run must have the run's time step (within 1 %)."""
    steps = np.diff(ns(pd.DatetimeIndex(frame.df[frame.time_column])))
    steps = steps[steps > 0]
    want = schema.get("median_step_seconds")
    if not want or not len(steps):
        return
    got = float(np.median(steps)) / 1e9
    if abs(got - want) > 0.01 * want:
        raise RunError(
            f"the file's time step is {pd.Timedelta(seconds=got)}, the run was trained on "
            f"{pd.Timedelta(seconds=want)} ({schema['frequency']})",
            where=str(path),
            fix="resample the file to the training frequency, or train a new run on it",
        )


def load_model(path: Path):
    """Load a ``.keras`` file in safe mode: no Python code from the file is run."""
    import keras

    # No TensorFlow import here: loading a .keras file does not need it under JAX (saving does,
    # see train.seed_everything), and importing it cost 2.4 s of every `predict` (docs/benchmarks.md).
    _check_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=_custom_objects())
    except Exception as e:  # zip, h5, JSON and deserialisation errors from a damaged or foreign file
        raise _model_error(path, e, "the model") from None


def load_model_compiled(path: Path, quantiles: list[float] | None = None):
    """Load a training checkpoint with its optimizer state (safe mode); ``quantiles``: its pinball loss's."""
    import keras

    _check_archive(path)
    custom = _custom_objects()
    if quantiles:
        from .quantile_head import pinball_loss

        custom["pinball"] = pinball_loss(quantiles)
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=True, custom_objects=custom)
    except Exception as e:
        raise _model_error(path, e, "the checkpoint") from None


def _custom_objects() -> dict:
    """The layers rnnforecast defines (the monotone quantile head, segment recurrence), for loading."""
    from . import quantile_head, segments

    return quantile_head.custom_objects() | segments.custom_objects()


UNSAFE_MARKERS = ("safe_mode", "arbitrary code", "enable_unsafe_deserialization", "Lambda")


def _check_archive(path: Path) -> None:
    """A ``.keras`` file is a zip archive; say so plainly instead of Keras' "File not found"."""
    if path.is_file() and not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise RunError(
            f"cannot load the model: not a .keras archive ({size} bytes; truncated or damaged)",
            where=str(path),
            fix="train again (or copy the run directory again if it came from elsewhere)",
        )


def _model_error(path: Path, e: BaseException, what: str) -> RunError:
    texts, cause = [], e
    while cause is not None and len(texts) < 5:  # Keras sometimes wraps the real error
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    if any(m in t for t in texts for m in UNSAFE_MARKERS):
        return RunError(
            f"refused to load {what}: it contains Python code (e.g. a Lambda layer), which safe mode does not run",
            where=str(path),
            fix="only load models trained by rnnforecast; retrain instead of loading files from untrusted sources",
        )
    return RunError(
        f"cannot load {what} ({type(e).__name__}: {first_line(e, 200)})",
        where=str(path),
        fix="the file is damaged or truncated: train again",
    )

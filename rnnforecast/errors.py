"""Error classes, exit codes and the did-you-mean hint: every user-facing failure is one of these."""

from __future__ import annotations

import difflib
import enum
import errno
from collections.abc import Iterable

from .masking import mask_secrets


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # config, data or run error: one line on stderr
    USAGE = 2  # click's own usage errors
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM (kill, systemd, batch schedulers): handled like Ctrl-C


class RnnForecastError(Exception):
    """Base class: a message for people, saying what, where and how to fix it."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.message.rstrip("."))
        if self.fix:
            parts.append(f". Fix: {self.fix.rstrip('.')}.")
        else:
            parts.append(".")
        return mask_secrets(" ".join("".join(parts).split()))  # always one line, never a password


class ConfigError(RnnForecastError):
    """The YAML config or a --set override is wrong."""


class DataError(RnnForecastError):
    """The data file cannot be used as the config describes it."""


class RunError(RnnForecastError):
    """A run directory is missing, incomplete, corrupt or does not match the data."""


class TrainingError(RnnForecastError):
    """Training failed in a way the user can act on (NaN loss, unwritable directory)."""


class Interrupted(RnnForecastError):
    exit_code = ExitCode.INTERRUPTED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt so that both are cleaned up alike (exit 143)."""


def did_you_mean(name: object, options: Iterable[object]) -> str:
    """`` (did you mean 'window'?)`` for the closest option to a misspelt ``name``, or ``""``.

    Both sides are compared as text, so a number or a YAML key that is not a string still gets an answer.
    """
    text = str(name)
    close = difflib.get_close_matches(text, [str(o) for o in options], n=1, cutoff=0.6)
    # a look-alike is a typo only within a few edits: 'zero' is 0.67 similar to 'error' yet no misspelling of it
    if close and edits(text.lower(), close[0].lower()) <= max(1, len(close[0]) // 4):
        return f" (did you mean {close[0]!r}?)"
    return ""


def edits(a: str, b: str) -> int:
    """Edit distance counting an insertion, deletion, substitution or swap of neighbours as one edit."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def first_line(e: BaseException | str, limit: int | None = None) -> str:
    """The first non-blank line of an exception's message (or of a text), cut to ``limit`` characters; ``""`` when
    there is none. Library messages go on for pages (tracebacks, SQL); one line names the problem."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else ""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # no space, over quota, over the file limit
DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "File too large", "database or disk is full")
DISK_FULL_FIX = "free disk space (or raise the file-size limit, ulimit -f) and run the command again"


def disk_full(e: BaseException) -> str | None:
    """Why ``e`` is a full disk, in the system's words ("No space left on device"), or None when it is not.

    OSError carries an errno; libraries that wrap it (TensorFlow's OutOfRangeError, SQLite's OperationalError,
    a worker's error re-raised in the driver, our own one-line errors) only keep the words.
    """
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
        return e.strerror or DISK_FULL_WORDS[0]
    text = str(e)
    return next((w for w in DISK_FULL_WORDS if w.lower() in text.lower()), None)

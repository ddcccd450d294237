"""Error classes, exit codes and the did-you-mean hint: every user-facing failure is one of these."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable


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
        return " ".join("".join(parts).split())  # always one line


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
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""

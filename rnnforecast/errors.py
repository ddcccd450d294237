"""Error classes and exit codes: every user-facing failure is one of these."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # config, data or run error: one line on stderr
    USAGE = 2  # click's own usage errors
    INTERRUPTED = 130  # Ctrl-C


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

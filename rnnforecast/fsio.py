"""Files written whole or not at all, and the one JSON convention (NaN and infinity are null).

Every file the package writes goes through :func:`write_atomic` (data in hand) or :func:`atomic_path`
(a writer that wants a path: Keras, matplotlib): a temporary name in the same folder, then a rename, so a
reader sees the old file or the new one, never half of one, and an interrupted write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

from .masking import mask_secrets, masked

NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows alike)


def temporary_name(path: Path, pid: int | None = None) -> Path:
    """The one temporary name of the package: hidden, this process's id (or ``pid``'s), and ``path``'s own suffix
    (Keras and matplotlib pick the format from it); for a name too long to take the prefix, a digest of it stands in
    (a legal final name always has a legal temporary)."""
    pid = os.getpid() if pid is None else pid
    name = f".{pid}.{path.name}"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:24]
        name = f".{pid}.{digest}{path.suffix if len(os.fsencode(path.suffix)) < 64 else ''}"
    return path.with_name(name)


def absolute(path: str | Path) -> Path:
    """``path`` made absolute as the system will read it: ``a/../b`` is ``b`` (whether or not ``a`` exists), but after
    a link (``link/../b``) the ``..`` is taken from where the link points; other links are kept as typed."""
    path = Path(path)
    return Path(os.path.realpath(path)) if ".." in path.parts else Path(os.path.abspath(path))


@contextmanager
def atomic_path(path: str | Path):
    """A temporary path next to ``path`` for a writer that wants a path; renamed to ``path`` when the block
    succeeds, removed when it fails (OSError and everything else propagate)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` all at once; no URL credential reaches a file (masking.py)."""
    if isinstance(data, str) and "://" in data:  # a config, report, owner record or marker naming a database URL
        data = mask_secrets(data)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")


def finite_or_none(value) -> float | None:
    """``value`` as a float, or None when it is None, NaN or infinite: strict JSON has neither."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def plain(obj):
    """JSON-safe values: NaN and inf as null, numpy scalars as numbers, paths and timestamps as text."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return _plain_scalar(obj)


def _plain_scalar(obj):
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and obj != obj or obj in (float("inf"), float("-inf")):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)  # Path and the like


def write_json(path: str | Path, obj, indent: int = 1) -> None:
    """``obj`` as strict JSON (a NaN is an error here: records pass numbers through :func:`finite_or_none`)."""
    write_atomic(path, json.dumps(masked(obj), indent=indent, allow_nan=False, default=str))

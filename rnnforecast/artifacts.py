"""Run directories: written under a `.partial` name and renamed when complete; read back with checks."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import Config, from_dict
from .errors import RunError

FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
MARKER = "UNFINISHED.txt"
REQUIRED = ("model.keras", "config.yaml", "scaler.json", "schema.json", "metrics.json")


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


def plan_run_dir(cfg: Config, run_dir: str | None) -> Path:
    if run_dir:
        return Path(run_dir)
    return Path(cfg.output.runs_dir) / f"{slug(cfg.name)}-{time.strftime('%Y%m%d-%H%M%S')}"


def partial_of(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def final_of(partial: Path) -> Path:
    return partial.with_name(partial.name[: -len(PARTIAL_SUFFIX)])


def start(final: Path, config_path: str) -> Path:
    """Create ``<final>.partial`` with a marker that says how to resume."""
    if final.exists():
        raise RunError("the run directory already exists", where=str(final), fix="pass another --run-dir or remove it")
    partial = partial_of(final)
    if partial.exists() and committed_epoch(partial) is None:
        shutil.rmtree(partial, ignore_errors=True)  # it stopped before its first epoch: nothing to resume
    if partial.exists():
        raise RunError(
            "an unfinished run is already there",
            where=str(partial),
            fix=f"resume it with: rnnforecast train {config_path} --resume {partial}",
        )
    try:
        partial.mkdir(parents=True)
        (partial / MARKER).write_text(
            "This run did not finish. It is not a result.\n"
            f"Resume it with: rnnforecast train {config_path} --resume {partial}\n"
        )
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise RunError(
            f"cannot create the run directory ({e.strerror})", where=str(partial), fix="choose a writable --run-dir"
        ) from None
    return partial


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
    epoch = committed_epoch(partial)
    if epoch is None:
        shutil.rmtree(partial, ignore_errors=True)
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
        if f.name not in ("checkpoint", "config.yaml", MARKER):
            shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
    return epoch


def finish(partial: Path) -> Path:
    final = final_of(partial)
    shutil.rmtree(partial / "checkpoint", ignore_errors=True)
    (partial / MARKER).unlink(missing_ok=True)
    os.replace(partial, final)
    return final


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file in the same folder, then a rename.

    The one atomic writer of the package: a reader sees the old file or the new one, never half of one,
    and an interrupted write leaves no partial file behind (the temporary is removed).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=1, allow_nan=False, default=str))


# --------------------------------------------------------------------------- reading


@dataclass
class Run:
    path: Path
    config: Config
    schema: dict
    metrics: dict

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"


def open_run(path: str | Path) -> Run:
    """Check a run directory and read its config, schema and metrics (not the model)."""
    p = Path(path)
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
    try:
        schema = json.loads((p / "schema.json").read_text())
        metrics = json.loads((p / "metrics.json").read_text())
        raw_cfg = yaml.safe_load((p / "config.yaml").read_text())
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise RunError(
            f"cannot read the run's files ({type(e).__name__})", where=str(p), fix="the run is damaged: train again"
        ) from None
    version = schema.get("format_version")
    if version != FORMAT_VERSION:
        raise RunError(
            f"schema.json has format_version {version!r}; this rnnforecast reads {FORMAT_VERSION}",
            where=str(p / "schema.json"),
            fix="use the rnnforecast version that wrote the run, or train again",
        )
    cfg = from_dict(raw_cfg, source=str(p / "config.yaml"), base_dir=str(p))
    return Run(p, cfg, schema, metrics)


def load_model(path: Path):
    """Load a ``.keras`` file in safe mode: no Python code from the file is run."""
    import keras

    # No TensorFlow import here: loading a .keras file does not need it under JAX (saving does,
    # see train.seed_everything), and importing it cost 2.4 s of every `predict` (docs/benchmarks.md).
    _check_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # zip, h5, JSON and deserialisation errors from a damaged or foreign file
        raise _model_error(path, e, "the model") from None


def load_model_compiled(path: Path):
    """Load a training checkpoint with its optimizer state (safe mode)."""
    import keras

    _check_archive(path)
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=True)
    except Exception as e:
        raise _model_error(path, e, "the checkpoint") from None


UNSAFE_MARKERS = ("safe_mode", "arbitrary code", "enable_unsafe_deserialization", "Lambda")


def _check_archive(path: Path) -> None:
    """A ``.keras`` file is a zip archive; say so plainly instead of Keras' "File not found"."""
    import zipfile

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
        f"cannot load {what} ({type(e).__name__}: {_first_line(str(e))})",
        where=str(path),
        fix="the file is damaged or truncated: train again",
    )


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]

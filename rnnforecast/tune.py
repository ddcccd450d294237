"""`rnnforecast tune`: an Optuna study over the config's `tune:` section, trials fanned out by an executor.

The driver (this process) owns the study: it asks Optuna for parameters, hands each trial to the executor
(a ``Trial`` task in a worker process or Ray task, which calls ``pipeline.train`` scored on the validation
split and reports the validation loss after every epoch for the median pruner), and tells Optuna the result.
Only after the study does one final ``pipeline.train`` of the best config touch the test split.

Search space, keyed by the same dotted keys as ``--set``::

    tune:
      model.cell: [gru, lstm]                          # a list: categorical
      model.units: {choices: [[8], [16], [16, 8]]}     # categorical, any YAML values
      training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
      window.input_length: {low: 12, high: 96, step: 12}   # ints when low, high (and step) are ints
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import artifacts, text
from . import plots as figures
from .config import Config, _check_override_key, _node_lines, load_config, yaml_number
from .errors import (
    DISK_FULL_FIX,
    ConfigError,
    Interrupted,
    RnnForecastError,
    RunError,
    did_you_mean,
    disk_full,
    first_line,
)
from .executor import WorkerDied
from .many import Task, run_many
from .records import Metrics
from .text import say

METRICS = ("val_mae", "val_rmse", "val_mse", "val_mase", "val_loss")
RANGE_KEYS = ("low", "high", "step", "log")
HEARTBEAT_S = 5  # the driver marks its running trials alive this often
GRACE_S = 30  # another process's RUNNING trial without a heartbeat for this long is failed (shared storage)


_say = say


# --------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class Param:
    key: str  # dotted config key
    choices: tuple | None = None  # categorical values (decoded)
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)

    def suggest(self, trial) -> Any:
        """Ask an Optuna trial for this parameter; returns the config value."""
        if self.choices is not None:
            encoded = [_encode(c) for c in self.choices]
            return _decode(trial.suggest_categorical(self.key, encoded))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


def _encode(v: Any) -> Any:
    """Optuna stores categorical values as None/bool/int/float/str: lists become their JSON text."""
    return v if v is None or isinstance(v, (bool, int, float, str)) else "json:" + json.dumps(v)


def _decode(v: Any) -> Any:
    return json.loads(v[5:]) if isinstance(v, str) and v.startswith("json:") else v


def decode_params(params: dict) -> dict:
    return {k: _decode(v) for k, v in params.items()}


def load_space(path: str | Path, base: Config) -> list[Param]:
    """Read the `tune:` section of the config at ``path`` and check every key and value against ``base``."""
    text = Path(path).read_text()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    raw = yaml.safe_load(text) or {}
    lines = _node_lines(node) if node is not None else {}
    section = raw.get("tune") if isinstance(raw, dict) else None
    src = str(path)
    if not section:
        raise ConfigError(
            "the config has no `tune:` section, so there is nothing to search"
            if section is None
            else "the `tune:` section is empty, so there is nothing to search",
            where=src,
            fix="add e.g. `tune: {model.cell: [gru, lstm], training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}}`",
        )
    if not isinstance(section, dict):
        raise ConfigError(
            "`tune:` must map dotted keys to search ranges",
            where=f"{src}:{lines.get('tune', 1)}: tune",
            fix="write `tune:` then indented lines such as `model.cell: [gru, lstm]`",
        )
    return [
        _param(str(key), spec, base, f"{src}:{lines.get(f'tune.{key}', lines.get('tune', 1))}: tune.{key}")
        for key, spec in section.items()
    ]


def _param(key: str, spec: Any, base: Config, where: str) -> Param:
    try:
        _check_override_key(key)
    except ConfigError as e:
        raise ConfigError(e.message, where=where, fix=e.fix) from None
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"a search range is a list or a mapping, received {spec!r}",
            where=where,
            fix=f"write `{key}: [a, b]`, `{{choices: [...]}}` or `{{low: .., high: ..}}`; fixed values belong in their section",
        )
    _check_search_keys(spec, where)
    param = _choices(key, spec["choices"], where) if "choices" in spec else _range(key, spec, where)
    _check_values(param, base, where)
    return param


def _check_search_keys(spec: dict, where: str) -> None:
    """``choices`` alone, or the keys of a range."""
    allowed = ("choices",) if "choices" in spec else RANGE_KEYS
    for k in spec:
        if k not in allowed:
            raise ConfigError(
                f"unknown search key {k!r}{did_you_mean(k, ('choices',) + RANGE_KEYS)}",
                where=where,
                fix="use `choices: [...]` alone, or `low`, `high` with optional `step` or `log: true`",
            )


def _check_values(param: Param, base: Config, where: str) -> None:
    """Every choice, or both ends of a range, checked by the config's schema exactly as for --set."""
    for value in param.choices if param.choices is not None else (param.low, param.high):
        try:
            base.replace(**{param.key: value})
        except ConfigError as e:
            raise ConfigError(
                f"the value {value!r} is not valid for {param.key}: {e.message}", where=where, fix=e.fix
            ) from None


def _choices(key: str, choices: Any, where: str) -> Param:
    if not isinstance(choices, list) or not choices:
        raise ConfigError(
            f"choices must be a non-empty list, received {choices!r}", where=where, fix=f"write `{key}: [a, b]`"
        )
    return Param(key, choices=tuple(choices))


def _range_types(spec: dict, where: str) -> tuple:
    """``(low, high, step, log)`` of a range mapping: low and high present, numbers finite, log a boolean."""
    for k in ("low", "high"):
        if k not in spec:
            raise ConfigError(f"a range needs `{k}`", where=where, fix="write `{low: .., high: ..}`")
    low, high, step = (yaml_number(spec.get(k)) for k in ("low", "high", "step"))
    log = spec.get("log", False)
    for k, v in (("low", low), ("high", high), ("step", step)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ConfigError(f"`{k}` must be a number, received {v!r}", where=where, fix=f"write `{k}: 0.01`")
    if not isinstance(log, bool):
        raise ConfigError(f"`log` must be true or false, received {log!r}", where=where, fix="write `log: true`")
    return low, high, step, log


def _range(key: str, spec: dict, where: str) -> Param:
    low, high, step, log = _range_types(spec, where)
    if not low < high:
        raise ConfigError(
            f"`low` must be below `high`, received low={low}, high={high}", where=where, fix="swap or widen them"
        )
    if log and low <= 0:
        raise ConfigError(
            f"a log range needs low > 0, received low={low}", where=where, fix="use a positive low, e.g. 1.0e-4"
        )
    if step is not None and log:
        raise ConfigError("`step` and `log: true` cannot be combined", where=where, fix="drop one of them")
    if step is not None and not 0 < step <= high - low:
        raise ConfigError(
            f"`step` must be > 0 and at most high - low ({high - low}), received {step}",
            where=where,
            fix="pick a smaller step",
        )
    return Param(key, low=low, high=high, step=step, log=log)


# --------------------------------------------------------------------------- storage


def _quiet_optuna() -> None:
    """Optuna warns that heartbeats and constant_liar are experimental; users cannot act on that."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage.*")


def _storage(url: str, heartbeat: bool = False):
    import optuna

    _quiet_optuna()

    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # workers and driver write one file
    if heartbeat:
        # Optuna 4.9 renamed the callback (the old name warns); keep both ends of optuna>=4.0,<5 working.
        st = optuna.storages
        retry = getattr(st, "RetryHeartbeatStaleTrialCallback", None) or st.RetryFailedTrialCallback
        kwargs.update(
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=retry(max_retry=1),
        )
    from .sql import refuse_unencoded_at

    refuse_unencoded_at(url, "--storage")
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as e:  # sqlalchemy raises many kinds; the user needs one line
            # Two processes creating the tables of a fresh database at once: one loses the race; try again.
            if attempt < 4 and ("already exists" in str(e) or "unique constraint" in str(e)):
                time.sleep(1 + attempt)
                continue
            raise _storage_error(e, url) from None


def _storage_error(e: Exception, url: str) -> ConfigError:
    """Why the study storage did not open, in one line: a full disk and a SQLite file that cannot be written are
    the machine's state (no URL, server or credential to check)."""
    full = disk_full(e)
    if full:
        return ConfigError(
            f"cannot open the study storage: disk full ({full})", where=f"--storage {url}", fix=DISK_FULL_FIX
        )
    if url.startswith("sqlite") and "disk I/O error" in str(e):  # SQLite's word for a write refused (EFBIG, EROFS)
        return ConfigError(
            "cannot write the study file (SQLite: disk I/O error): a full disk, a file-size limit (ulimit -f) or a"
            " folder that cannot be written",
            where=f"--storage {url}",
            fix=DISK_FULL_FIX + ", or choose a writable --out",
        )
    return ConfigError(
        f"cannot open the study storage ({type(e).__name__}: {first_line(e)})",
        where=f"--storage {url}",
        fix="check the URL, the server and the credentials",
    )


# --------------------------------------------------------------------------- one trial (worker side)


@dataclass(frozen=True, kw_only=True)
class Trial(Task):
    """One trial: the config at ``config`` with ``overrides`` and the trial's ``params``, trained into ``out`` and
    scored on the validation split, reporting to trial ``number`` of ``study`` in ``storage``."""

    config: str  # the config file, absolute: a Ray worker may run elsewhere
    overrides: tuple[str, ...]
    config_path: str  # how the user named it (with --set options), for resume hints
    storage: str  # the study's storage URL
    study: str
    metric: str
    params: dict
    number: int
    trial_id: int  # the storage's id of the trial

    def run(self) -> dict:
        """Train the trial's config in this (worker) process, scored on the validation split.

        Reports the validation loss after each epoch to the study; when the median pruner says so the
        training stops early and the trial is returned as pruned (its run directory is still complete).
        """
        import optuna

        from . import backend, pipeline

        cfg = load_config(self.config, self.overrides).replace(**self.params)
        backend.activate(cfg.runtime.backend)
        study = optuna.load_study(study_name=self.study, storage=_storage(self.storage))
        prune = _pruning(optuna.Trial(study, self.trial_id))
        result = pipeline.train(
            cfg, config_path=self.config_path, run_dir=str(self.out), quiet=True, split="val", callbacks=[prune]
        )
        return {
            "value": metric_value(result.metrics, self.metric),
            "metric": self.metric,  # named in the progress line
            "pruned_at": prune.pruned_at,
            "run_dir": str(result.run_dir),
            "pid": os.getpid(),
        }


def _pruning(trial):
    """A Keras callback that reports the validation loss after each epoch and stops when the pruner says so."""
    from .backend import import_keras

    keras = import_keras()  # not `import keras`: under JAX it would import TensorFlow too (its start-up lines, 2-3 s)

    class Prune(keras.callbacks.Callback):
        pruned_at: int | None = None

        def on_epoch_end(self, epoch, logs=None):
            v = (logs or {}).get("val_loss")
            if v is None or not math.isfinite(float(v)):
                return
            trial.report(float(v), epoch + 1)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return Prune()


def metric_value(record: dict, metric: str) -> float:
    if metric == "val_loss":
        v = record["training"]["best_val_loss"]
    else:
        v = Metrics.of(record).val.model[metric[len("val_") :]]
    return float("nan") if v is None else float(v)


# --------------------------------------------------------------------------- the study (driver side)


@dataclass
class TuneResult:
    directory: Path
    table: str
    summary: dict = field(default_factory=dict)  # what tune.json adds: best trial, params, test of the best


class _Dir:
    """The tune directory: ``<final>.partial`` claimed with ``artifacts.start_or_resume`` (created exclusively,
    owner recorded, locked) until the study is done; an unfinished one with the same fingerprint is taken back."""

    def __init__(self, final: Path, fingerprint: dict, again: str):
        self.final = final
        self.partial, self.resumed = artifacts.start_or_resume(final, fingerprint, what="tune", again=again)
        info = self.partial / "tune.json"
        saved = json.loads(info.read_text()) if info.exists() else {}
        artifacts.write_json(info, {**saved, "fingerprint": fingerprint, "driver_pid": os.getpid()})

    def finish(self) -> Path:
        (self.partial / "lock").unlink(missing_ok=True)  # left by tune directories of earlier versions
        return artifacts.finish(self.partial)


def _done_count(trials) -> int:
    """Finished trials that count towards --trials: complete, pruned, and failures that will not be retried."""
    from optuna.trial import TrialState

    retried = {t.user_attrs.get("retry_of") for t in trials} | {t.system_attrs.get("failed_trial") for t in trials}
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and t.number not in retried)
        for t in trials
    )


def tune(
    config_path: str,
    overrides: tuple[str, ...] = (),
    *,
    trials: int = 20,
    timeout: float | None = None,
    metric: str = "val_mae",
    workers: int = 1,
    storage: str | None = None,
    executor: str = "local",
    address: str | None = None,
    out: str | None = None,
    study_name: str | None = None,
    quiet: bool = False,
) -> TuneResult:
    """Run (or resume) the study, then train the best config once and write the tune directory."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}", where="--metric", fix=f"use one of {', '.join(METRICS)}")
    base = load_config(config_path, overrides)
    space = load_space(config_path, base)  # every key and range checked before anything starts

    import optuna

    from .executor import make_executor

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    final = Path(out) if out else Path("tunes") / f"{artifacts.slug(base.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    name = study_name or artifacts.slug(base.name)
    fingerprint = {
        "config": base.hash(),
        "space": [repr(p) for p in space],
        "metric": metric,
        "storage": storage,
        "study": name,
    }
    sets = "".join(f" --set {o}" for o in overrides)
    again = f"rnnforecast tune {config_path}{sets} --out {final}" + (f" --storage {storage}" if storage else "")
    # the executor first: no Ray, or an address space Ray cannot start in, is refused before any directory
    with make_executor(executor, workers, address) as ex:
        study, store, tdir, url = _open_study_and_dir(storage, name, base, metric, final, fingerprint, again)
        common = {  # what every trial shares
            "config": str(Path(config_path).resolve()),
            "overrides": tuple(overrides),
            "storage": url,
            "study": name,
            "metric": metric,
            "config_path": f"{config_path}{sets}",
            "seed": base.seed,
        }
        try:
            mine = _drive(study, store, ex, space, common, tdir, trials, timeout, quiet)
        except KeyboardInterrupt:
            raise Interrupted(
                "interrupted; finished trials are kept in the study",
                where=str(tdir.partial),
                fix=f"resume with: {again}",
            ) from None
    return _finish(study, base, config_path, sets, tdir, metric, mine, quiet)


def _open_study_and_dir(storage: str | None, name: str, base: Config, metric: str, final: Path, fingerprint, again):
    """The study (its storage checked first: a wrong URL, or a study of another config, is refused before any
    directory), the claimed tune directory, and the storage URL. Without --storage the study lives in the
    directory's study.db. Trials a killed driver left running are recovered."""
    local_db = storage is None
    study = None
    if storage:
        store = _storage(storage, heartbeat=True)
        study = _open_study(name, store, base, metric, local_db)
    tdir = _Dir(final, fingerprint, again=f"Resume it with: {again}")
    url = storage or f"sqlite:///{(tdir.partial / 'study.db').resolve()}"
    if study is None:
        store = _storage(url, heartbeat=True)
        study = _open_study(name, store, base, metric, local_db)
    _recover(study, store, local_db)
    return study, store, tdir, url


def _open_study(name: str, store, base: Config, metric: str, local_db: bool):
    """Create the study, or load it when it exists; it records the config hash and metric it was made with (user
    attributes) and refuses a driver with another: its trials and best would mix two configs."""
    import optuna

    study = optuna.create_study(
        study_name=name,
        storage=store,
        direction="minimize",
        load_if_exists=True,
        # One seed for a study in its own file; processes sharing a study must not draw the same startup points.
        sampler=optuna.samplers.TPESampler(seed=base.seed if local_db else base.seed + os.getpid(), constant_liar=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    mine = {"config_sha256": base.hash(), "metric": metric}
    for key, value in mine.items():
        have = study.user_attrs.get(key)
        if have is None:
            study.set_user_attr(key, value)
        elif have != value:
            made = f"config SHA-256 {have[:12]}, this one {value[:12]}" if key == "config_sha256" else f"metric {have}"
            raise ConfigError(
                f"the study {name!r} in this storage was made by another {key.split('_')[0]} ({made}); its trials and"
                " best would mix with this one's",
                where="--study",
                fix=f"use the config and options that made it, or pass another --study name (e.g. --study {name}-2)",
            )
    return study


def _recover(study, store, local_db: bool) -> None:
    """Trials left RUNNING by a killed driver become FAIL (and are retried once); the rest is kept."""
    import optuna
    from optuna.trial import TrialState

    if local_db:  # the tune directory is ours (flock), so nothing else can be running these
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _fail(study, store, t.number, t.params, t.user_attrs, "the previous tune process stopped")
    else:
        optuna.storages.fail_stale_trials(study)


def _trial_id(store, study, number: int) -> int:
    """The storage's id of trial ``number`` (Optuna's Trial keeps its id private; the storage API is public)."""
    return store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(study.study_name), number)


def _fail(study, store, number: int, params: dict, user_attrs: dict, why: str) -> None:
    store.set_trial_user_attr(_trial_id(store, study, number), "error", why)
    study.tell(number, state=optuna_state("FAIL"), skip_if_finished=True)
    if "retry_of" not in user_attrs:
        study.enqueue_trial(params, user_attrs={"retry_of": number})


def optuna_state(name: str):
    from optuna.trial import TrialState

    return getattr(TrialState, name)


def _drive(study, store, ex, space, common: dict, tdir: _Dir, trials: int, timeout, quiet: bool) -> int:
    """Keep ``ex.workers`` trials in flight until the study holds ``trials`` finished ones; returns how many
    trials this process ran."""
    deadline = time.monotonic() + timeout if timeout else None
    running: dict[int, tuple] = {}  # trial number -> (optuna Trial, its storage id)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, running, stop), daemon=True)
    beat.start()

    def next_trial() -> Trial | None:
        if not _may_start(study, trials, deadline):
            return None
        task, trial, trial_id = _start(study, store, space, common, tdir, quiet)
        running[trial.number] = trial, trial_id
        return task

    def finished(task: Trial, outcome, k: int) -> None:
        trial, _ = running.pop(task.number)
        _tell(study, store, trial, outcome, quiet)

    try:
        return len(run_many(next_trial, ex, on_done=finished, errors="return", poll_s=HEARTBEAT_S))
    except KeyboardInterrupt:
        for trial, _ in running.values():
            _fail(study, store, trial.number, trial.params, trial.user_attrs, "interrupted")
        raise
    finally:
        stop.set()


def _may_start(study, trials: int, deadline: float | None) -> bool:
    """Time is left and the study holds fewer than ``trials`` trials finished or running."""
    from optuna.trial import TrialState

    all_trials = study.get_trials(deepcopy=False)
    busy = sum(t.state == TrialState.RUNNING for t in all_trials)
    open_slots = trials - _done_count(all_trials) - busy
    return (deadline is None or time.monotonic() < deadline) and open_slots > 0


def _start(study, store, space, common: dict, tdir: _Dir, quiet: bool) -> tuple[Trial, Any, int]:
    """Ask the study for a trial; returns ``(task, trial, trial_id)``."""
    trial = study.ask()
    trial_id = _trial_id(store, study, trial.number)
    params = {p.key: p.suggest(trial) for p in space}
    run_dir = tdir.partial / "trials" / f"{trial.number:04d}"
    trial.set_user_attr("run_dir", str(tdir.final / "trials" / f"{trial.number:04d}"))
    store.record_heartbeat(trial_id)
    task = Trial(
        label=f"trial {trial.number}", out=run_dir, params=params, number=trial.number, trial_id=trial_id, **common
    )
    if not quiet:
        _say(f"trial {trial.number} started: {_show(params)}")
    return task, trial, trial_id


def _heartbeat(store, running: dict, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        for _, trial_id in list(running.values()):
            try:
                store.record_heartbeat(trial_id)
            except Exception:  # a heartbeat missed is retried at the next beat
                pass


def _tell(study, store, trial, outcome, quiet: bool) -> None:
    """Tell the study how the trial ended: ``outcome`` is its result, or how it failed (``run_many``'s errors)."""
    if isinstance(outcome, WorkerDied):
        _fail(study, store, trial.number, trial.params, trial.user_attrs, outcome.reason)
        retry = "" if "retry_of" in trial.user_attrs else "; retrying it once"
        _say(f"trial {trial.number} failed: {outcome.reason}{retry}")
        return
    if isinstance(outcome, RnnForecastError):
        trial.set_user_attr("error", outcome.one_line())
        study.tell(trial, state=optuna_state("FAIL"))
        _say(f"trial {trial.number} failed: {outcome.one_line()}")
        return
    if isinstance(outcome, BaseException):  # a bug, or the machine's state (a full disk): the study stops
        raise outcome
    r = outcome
    trial.set_user_attr("pid", r["pid"])
    if r["pruned_at"] is not None:
        study.tell(trial, state=optuna_state("PRUNED"))
        state = f"pruned after epoch {r['pruned_at']}"
    elif math.isfinite(r["value"]):
        study.tell(trial, r["value"])
        state = f"{r.get('metric', 'value')} {r['value']:.5g}"  # val_mae 2.5432
    else:
        trial.set_user_attr("error", "the metric is not finite")
        study.tell(trial, state=optuna_state("FAIL"))
        state = "failed (metric not finite)"
    if not quiet:
        _say(f"trial {trial.number} finished: {state}")


def _show(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _finish(study, base: Config, config_path: str, sets: str, tdir: _Dir, metric: str, mine: int, quiet: bool):
    from optuna.trial import TrialState

    from . import pipeline

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise RunError(
            "no trial completed, so there is no best config",
            where=str(tdir.partial),
            fix="read the `error` column of the study's trials; widen the search space or fix the config",
        )
    best = study.best_trial
    params = decode_params(best.params)
    cfg = base.replace(**params)
    artifacts.write_atomic(tdir.partial / "best.yaml", cfg.to_yaml())
    best_dir = tdir.partial / "best"
    if not best_dir.exists():  # the one run that touches the test split
        resume = artifacts.partial_of(best_dir)
        result = pipeline.train(
            cfg,
            config_path=str(tdir.final / "best.yaml"),
            run_dir=str(best_dir),
            quiet=quiet,
            resume=str(resume) if artifacts.committed_epoch(resume) is not None else None,
        )
        record = result.metrics
    else:
        record = json.loads((best_dir / artifacts.METRICS).read_text())
    scored = record["test"]  # the verdict reads the scored split's block (text.run_verdict)
    test = Metrics.of(record).scores.model
    _write_trials_csv(study, tdir)
    plots = figures.tune_plots(study, tdir.partial / "plots", metric, base.data.target, base.data.units, _decode)
    summary = {
        "study": study.study_name,
        "metric": metric,
        "trials": len(study.trials),
        "trials_by_this_process": mine,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": params,
        "test_of_best": {k: test.get(k) for k in ("mae", "rmse", "mse", "mase")},
        "plots": plots,
        "driver_pid": os.getpid(),
    }
    info = json.loads((tdir.partial / "tune.json").read_text())
    artifacts.write_json(tdir.partial / "tune.json", {**info, **summary})
    final = tdir.finish()
    lines = [
        f"{len(study.trials)} trials in study {study.study_name!r} ({mine} run by this process)",
        f"best trial {best.number}: {metric} {best.value:.5g} with {_show(params)}",
        f"test split of the best config (trained once): MAE {test['mae']:.5g}  RMSE {test['rmse']:.5g}",
        *text.run_verdict(scored, "test", "the best config"),
        f"tune directory: {final}  (best.yaml trains the best config: rnnforecast train {final / 'best.yaml'})",
    ]
    return TuneResult(final, "\n".join(lines), summary)


def _write_trials_csv(study, tdir: _Dir) -> None:
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    for col in [c for c in df.columns if c.startswith("params_")]:
        df[col] = df[col].map(_decode).map(lambda v: json.dumps(v) if isinstance(v, list) else v)
    if "duration" in df:
        df["duration"] = df["duration"].dt.total_seconds()
    artifacts.write_atomic(tdir.partial / "trials.csv", df.to_csv(index=False))

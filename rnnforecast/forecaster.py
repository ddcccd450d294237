"""A trained run as one object: its model (or seed-ensemble members), scaler, schema, calibration and config.

``Forecaster`` is the one place that knows how a trained model turns rows into forecasts: ``score`` (the
model and the naive baselines on identical windows, bands scored), ``forecast`` (the next ``horizon``
steps after the data's last row), ``forecast_windows`` (every origin of a split), ``fit``, ``save`` and
``load``. Commands, the Python API and backtest folds load it once and ask it; none of them re-assembles
a model from files. Loading prefers the numpy replay of the network (``numpy_model``): no Keras import
on the predict path when every layer can be replayed.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifacts, backend, fsio, metrics, windows
from . import final_fit as FF
from . import intervals as I
from . import short_series as SS
from .config import Config
from .data import load_source, season_length
from .errors import DataError, RunError
from .numpy_model import Ensemble, load_predictor, predict_windows
from .predictions import predictions_table
from .records import Schema, Scores
from .scaling import Scaler
from .series import SeriesData, build
from .transforms import history_rows

# --------------------------------------------------------------------------- scoring


@dataclass
class Evaluation:
    """The model and the baselines on every window of one split, in original units, and their scores."""

    split: str
    starts: np.ndarray
    actual: np.ndarray  # (B, H, T) original units
    forecasts: dict[str, np.ndarray]  # name -> (B, H, T, 1) point forecasts; "model" first
    metrics: dict
    output: np.ndarray | None = None  # (B, H, T, Qm) the model's whole output, original units
    bands: dict[str, np.ndarray] = field(default_factory=dict)  # "model"/"persistence" -> (B, H, T, Q) quantiles
    intervals: I.RunIntervals | None = None
    source: str = ""  # the data scored: a file, a masked SQL URL, or <DataFrame>
    filled: np.ndarray | None = None  # (B, H, T) actuals the tool filled (gap rows): left out of every score
    adaptive_state: dict[str, I.AdaptiveState] | None = None  # series -> ACI state after the last window (adaptive)


def norm_scale(data: SeriesData) -> np.ndarray:
    """Each target's standard deviation over the training rows (1 where constant), ``(T,)``."""
    rows = np.concatenate([np.arange(*s.bounds["train"]) for s in data.segments])
    std = data.raw[rows][:, data.target_idx].std(axis=0)
    return np.where(std > 0, std, 1.0)


def msis_scale(data: SeriesData, season: int) -> np.ndarray:
    """M4's MSIS denominator per target: the training rows' mean seasonal absolute difference, ``(T,)``."""
    bounds, lo = [], 0
    for s in data.segments:
        a, b = s.bounds["train"]
        bounds.append((lo, lo + b - a))
        lo += b - a
    rows = np.concatenate([np.arange(*s.bounds["train"]) for s in data.segments])
    return I.seasonal_naive_scale(data.raw[rows][:, data.target_idx], season, bounds)


def model_output(model, data: SeriesData, starts: np.ndarray) -> np.ndarray:
    """The model's whole output for the windows at ``starts``, in original units ``(B, H, T, Qm)``."""
    return data.invert(starts, predict_windows(model, data, starts))


def evaluate_model(model, data: SeriesData, cfg: Config, split: str = "test") -> Evaluation:
    """The model and the naive baselines on every window of ``split``, scored in original and normalised units.

    A quantile model is scored on its median; bands are added by :func:`add_intervals`.
    """
    starts = data.starts(split, stride=1)
    if len(starts) == 0:
        raise DataError(
            f"the {split} split has no complete window",
            where=str(data.frame.path),
            fix="use more data or a shorter window",
        )
    output = model_output(model, data, starts)  # (B, H, T, Qm)
    iv = cfg.intervals
    pred = I.point_forecast(output, iv and iv.method, iv and iv.levels)  # (B, H, T, 1)
    actual = data.actual(starts)
    raw_t = data.raw[:, data.target_idx]
    seg_lo = np.array([s.lo for s in data.segments])[data.series_index(starts)]
    season = season_length(data.frame.frequency, cfg.data.season_length)
    forecasts = {
        "model": pred,
        **metrics.baseline_forecasts(raw_t, starts, data.input_length, data.horizon, season, seg_lo),
    }
    filled = data.filled(starts)  # (B, H, T)
    result = metrics.evaluate_forecasts(actual, forecasts, data.targets, norm_scale(data), ~filled)
    result["season_length"] = season
    result["n_windows"] = int(len(starts))
    if len(data.segments) > 1:
        result["per_series"] = _per_series(data, starts, actual, forecasts, ~filled)
    ev = Evaluation(split, starts, actual, forecasts, result, output, source=str(data.frame.path), filled=filled)
    result["filled_actuals"] = int(filled.sum())
    result["split_rows"] = min((hi - lo for lo, hi in data.bounds(split)), default=0)
    return ev


def _per_series(data: SeriesData, starts: np.ndarray, actual: np.ndarray, forecasts: dict, scored: np.ndarray) -> dict:
    names = data.series_of(starts)
    out = {}
    for s in data.segments:
        m = names == s.series
        if m.any():
            sub = {k: v[m] for k, v in forecasts.items()}
            out[s.series] = Scores.of(
                metrics.evaluate_forecasts(actual[m], sub, data.targets, norm_scale(data), scored[m])
            ).overall
    return out


def calibrate(cfg: Config, val: Evaluation) -> I.RunIntervals | None:
    """The run's intervals calibrated on the validation windows (None when the config asks for none)."""
    iv = cfg.intervals
    if iv is None:
        return None
    if len(val.starts) == 0:
        raise DataError(
            "intervals need validation windows to calibrate on, and the val split has none",
            where="intervals",
            fix="enlarge data.split.val, or remove the intervals section",
        )
    persistence = val.forecasts["persistence"]
    return I.calibrate_run(iv.method, iv.levels, iv.joint, val.actual, val.output, persistence, iv.adaptive, iv.gamma)


def add_intervals(ev: Evaluation, run: I.RunIntervals, data: SeriesData, val: Evaluation | None = None) -> None:
    """Band the model and persistence on ``ev``'s windows and score the bands into ``ev.metrics["intervals"]``.

    ``val`` (the validation evaluation) is needed only for adaptive bands: its residuals start the score pool.
    """
    ev.bands = {
        "model": _model_bands(ev, run, data, val),
        "persistence": I.apply_bands(ev.forecasts["persistence"], run.persistence.width, run.levels),
    }
    ev.intervals = run
    scale = msis_scale(data, ev.metrics["season_length"])
    kept = None if ev.filled is None else ~ev.filled
    scored = {k: I.interval_metrics(ev.actual, q, run.levels, data.targets, scale, kept) for k, q in ev.bands.items()}
    shift, drift = _scale_shift(ev, run, data, val)
    ev.metrics["intervals"] = {
        "method": run.method,
        "levels": list(run.levels),
        "joint": run.joint,
        "adaptive": run.adaptive and val is not None,
        "calibration_windows": (run.model or run.persistence).n,
        **scored,
        **({"residual_scale_ratio": shift} if shift else {}),
        "warnings": run.warnings() + drift + I.coverage_warnings(scored["model"], split=ev.split),
    }


def _model_bands(ev: Evaluation, run: I.RunIntervals, data: SeriesData, val: Evaluation | None) -> np.ndarray:
    """The model's ``(B, H, T, Q)`` bands on ``ev``'s windows: adaptive ones (the pool started from ``val``'s
    residuals; each series' final state kept in ``ev.adaptive_state``) or the calibrated fixed width."""
    if not (run.adaptive and val is not None):
        return I.model_bands(run, ev.output)
    val_scores = np.abs(val.actual - val.forecasts["model"][..., 0])  # (N, H, T)
    groups = data.series_index(ev.starts)
    model_q, states = I.adaptive_run(run, ev.forecasts["model"], ev.actual, val_scores, groups)
    ev.adaptive_state = {str(data.segments[g].series): st for g, st in states.items()}
    return model_q


def _scale_shift(ev: Evaluation, run: I.RunIntervals, data: SeriesData, val: Evaluation | None) -> tuple[dict, list]:
    """``intervals.scale_shift`` of ``ev``'s residuals against the validation ones; none when ``ev`` is the
    validation evaluation itself or there is none."""
    if val is None or val is ev:
        return {}, []
    return I.scale_shift(_abs(val), _abs(ev), data.targets, adaptive=run.adaptive)


def _abs(ev: Evaluation) -> np.ndarray:
    """``(B, H, T)`` absolute residuals of the model's point forecast; NaN where the actual was filled by the tool."""
    res = np.abs(ev.actual - ev.forecasts["model"][..., 0])
    return res if ev.filled is None else np.where(ev.filled, np.nan, res)


# --------------------------------------------------------------------------- forecasting past the data


def forecast_table(model, data: SeriesData, frequency: str, calibration: I.RunIntervals | None = None) -> pd.DataFrame:
    """One row per series and step: timestamp, [series], step, quantile, one column per target.

    With intervals, one more column per target and quantile (``intervals.quantile_column``: ``temp_max_p10``).
    """
    return pd.DataFrame(forecast_rows(model, data, frequency, calibration))


def forecast_rows(
    model,
    data: SeriesData,
    frequency: str,
    calibration: I.RunIntervals | None = None,
    iso: bool = False,
    series: bool = True,
) -> list[dict]:
    """The rows of :func:`forecast_table` as dicts (the server answers them without a DataFrame, ``iso``: its
    timestamps as ISO text, else Timestamps); the model is called once for every series of ``data``. ``series``:
    the ``series`` column when there are several (False: the server's batch items, each answered apart)."""
    _check_history(data)
    L, H = data.input_length, data.horizon
    starts, inputs = data.forecast_inputs(frequency)  # (S,), the window ending at each series' last observed row
    # the compiled predict step: an eager model(x) under JAX compiles the scan anew each call (~200 ms)
    raw_pred = data.unfold(model.predict_on_batch(inputs))  # (S, H, T, Q)
    output = data.invert(starts, raw_pred)  # (S, H, T, Qm)
    method, levels = (calibration.method, calibration.levels) if calibration else (None, None)
    pred = I.point_forecast(output, method, levels)  # (S, H, T, 1)
    bands, qcols = _forecast_bands(data, output, calibration)  # (S, H, T, Q) or None
    last = windows.last_input_rows(starts, L)
    if iso:  # (S*H,) series-major
        future = windows.target_times_iso(data.time_values(last), H, frequency)
    else:
        future = list(windows.target_times_of(data.timestamps(last), H, frequency))
    quantile = "median" if method in ("quantile", "cqr") else "mean"
    S, T = len(data.segments), pred.shape[2]
    many = S > 1 and series
    # one row per series and step, series-major: timestamp, [series], step, quantile, the targets, then each
    # target's quantiles (``qcols[j]``, target-major); the numbers converted to floats in one call
    keys = ["timestamp", *(["series"] if many else []), "step", "quantile", *data.targets]
    keys += [name for names in qcols for name in names]
    numbers = pred[..., 0].reshape(S * H, T)
    if bands is not None:
        numbers = np.concatenate([numbers, bands.reshape(S * H, -1)], axis=1)
    columns = [future, *([[s.series for s in data.segments for _ in range(H)]] if many else [])]
    columns += [list(range(1, H + 1)) * S, [quantile] * (S * H)]
    return [dict(zip(keys, (*cells, *values))) for *cells, values in zip(*columns, numbers.tolist())]


def _forecast_bands(data: SeriesData, output: np.ndarray, calibration: I.RunIntervals | None):
    """``(bands (S, H, T, Q), names)`` of a forecast past the data: each series' calibrated bands, and
    ``names[j][k]`` target j's quantile k's column (``intervals.quantile_column``); ``(None, [])`` without
    calibration."""
    if not calibration:
        return None, []
    bands = I.model_bands(calibration, output, [str(s.series) for s in data.segments])
    return bands, [[I.quantile_column(t, q) for q in calibration.quantiles] for t in data.targets]


def empty_forecast(targets: list[str]) -> pd.DataFrame:
    """forecast.csv of a run whose data cannot be forecast past (known-future inputs need ``horizon`` more rows)."""
    return pd.DataFrame(columns=["timestamp", "step", "quantile", *targets])


def _check_history(data: SeriesData) -> None:
    """Every series needs ``input_length`` rows of history (one more when a transform differences it, one season
    more for a seasonal residual: ``Framing.history_extra``)."""
    L = data.input_length
    need = history_rows(L, data.transform) + data.framing.history_extra
    why = " + 1 (for the transform)" if history_rows(L, data.transform) > L else ""
    why += f" + season {data.framing.history_extra} (model.residual: seasonal)" if data.framing.history_extra else ""
    for s in data.segments:
        if s.hi - s.lo < need:
            who = f"series {s.series!r} has" if len(data.segments) > 1 else "the data has"
            raise DataError(
                f"{who} {s.hi - s.lo} rows, fewer than input_length={L}{why}",
                where=str(data.frame.path),
                fix=f"pass at least {need} rows of history",
            )


# --------------------------------------------------------------------------- the data a finished run reads


def _changed_warning(source) -> list[str]:
    return [f"warning: {source} changed since training (SHA-256 differs); results will not match the run's metrics"]


def _own_data_warnings(run: artifacts.Run, path: Path) -> list[str]:
    if not path.exists():
        raise RunError("the run's data file is gone", where=str(path), fix="pass the data with --data FILE")
    return _changed_warning(path) if artifacts.sha256(path) != run.metrics.get("data_sha256") else []


def _new_data(run: artifacts.Run, data_path: str | None, table: pd.DataFrame | None):
    """``--data FILE`` (or a DataFrame) for a run: its columns and time step checked against the run's schema."""
    categories = run.schema.get("categories")
    cfg = new_data_config(run)
    if table is not None:
        artifacts.check_against_schema(Path("<DataFrame>"), run.schema, table.columns)
        frame = load_source(cfg, table, categories)
    else:
        path = Path(data_path).resolve()
        if not path.exists():
            raise DataError("--data file not found", where=str(path), fix="check the path given to --data")
        cfg = cfg.replace(**{"data.path": str(path), "data.sql": None})
        check = functools.partial(artifacts.check_against_schema, path, run.schema)  # on the file read once
        frame = load_source(cfg, categories=categories, check_columns=check)
    artifacts.check_step(frame, run.schema, frame.path)
    return in_schema_order(frame, run.schema["columns"])


def new_data_config(run: artifacts.Run):
    """The run's config for reading new rows: its numeric input columns listed (``data.features``), so that each is
    read as numbers with every cell checked (a text cell named with its line), not guessed again from the new
    rows' types."""
    return run.config.replace(**{"data.features": source_features(run.schema)})


def source_features(schema: dict) -> list[str]:
    """The run's input columns that come from the data file as numbers (schema.json's features less the one-hot
    and calendar columns the tool adds), in the run's order."""
    from .data import PERIODS

    added = {f"{c}={v}" for c, values in (schema.get("categories") or {}).items() for v in values}
    added |= {f"{name}_{fn}" for name in PERIODS for fn in ("sin", "cos")}
    return [c for c in schema["features"] if c not in added]


def in_schema_order(frame, columns: list[str]):
    """New data whose model columns are the run's in another order (a file written with its columns swapped):
    the inputs taken by name, in the order the model was trained on."""
    if frame.columns == columns or sorted(frame.columns) != sorted(columns):
        return frame
    return dataclasses.replace(frame, features=[c for c in columns if c in frame.features])


def _frame(run: artifacts.Run, data_path: str | None, table: pd.DataFrame | None, allow_missing_tail: bool):
    """The run's own rows (its file or ``data.sql``, read again) or new rows, and the warnings they raise."""
    cfg = run.config
    categories = run.schema.get("categories")
    if data_path or table is not None:
        frame = _new_data(run, data_path, table)
        open_rows = cfg.window.horizon if cfg.data.future else 0  # horizon rows that carry known-future inputs
        return frame, artifacts.check_tail(frame, allow_missing_tail, open_rows)
    if cfg.data.sql is not None:
        frame = load_source(cfg, categories=categories)
        return frame, _changed_warning(frame.path) if frame.source_sha256 != run.metrics.get("data_sha256") else []
    warnings = _own_data_warnings(run, cfg.data_path)
    return load_source(cfg, categories=categories), warnings


def filled_history_warnings(data: SeriesData) -> list[str]:
    """The rows a forecast starts from (each series' last ``input_length``) that the tool filled in (gap rows,
    missing target cells): the forecast leans on invented values; said once, with the count."""
    filled = data.frame.filled
    if filled is None or not len(filled):
        return []
    L = data.input_length
    rows = [(s.series, int(filled[max(s.lo, s.hi - L) : s.hi].any(axis=1).sum())) for s in data.segments]
    hit = [(name, k) for name, k in rows if k]
    if not hit:
        return []
    name, k = max(hit, key=lambda x: x[1])
    where = f" of series {name}" if len(data.segments) > 1 else ""
    more = f" ({len(hit)} series)" if len(hit) > 1 else ""
    return [
        f"warning: {data.frame.path}: {k} of the {L} rows the forecast{where} starts from had no target value and "
        f"were filled in (data.missing){more}: the forecast leans on invented values. Fix: pass the recent rows "
        "complete."
    ]


def new_data_warnings(data: SeriesData, schema: dict) -> list[str]:
    """What new rows (predict --data, evaluate --data, the API, serve) are warned about once read: timestamps read
    in another time reference than the run's (``zone_warnings``), values far outside the training data."""
    return zone_warnings(data.frame.zone, schema, data.frame.path) + far_outside_warnings(data)


def zone_warnings(zone: str, schema: dict, path) -> list[str]:
    """New timestamps read in UTC where the run's were read as written, or the other way round (the zone rule,
    ``data.zone_rule``): the calendar features and the forecast's timestamps would be shifted by the offset.
    Runs written before schema.json kept ``zone`` are not checked."""
    if "zone" not in schema:
        return []
    then, now = schema["zone"].endswith("in UTC"), zone.endswith("in UTC")
    if then == now:
        return []
    if then:
        what = f"the run's timestamps had UTC offsets and were read in UTC ({schema['zone']}); these have none"
        fix = "give the timestamps with their UTC offsets, as the training data had them, or in UTC"
    else:
        what = f"these timestamps are read in UTC ({zone}); the run's were read as written, without offsets"
        fix = "give the timestamps as the training data had them (local times without an offset)"
    return [
        f"warning: {path}: {what}: if one of the two is local time, the calendar features and the forecast's "
        f"timestamps are shifted by the offset. Fix: {fix}."
    ]


def far_outside_warnings(data: SeriesData) -> list[str]:
    """New data whose targets lie far beyond the training data (``Scaler.far_outside``): one warning per target.

    Values the model never saw (a file in other units, 1000x the training range) give a forecast that is an
    extrapolation; predict and evaluate say so rather than print it as if it were as good as the test split's.
    """
    out = []
    for j, col in zip(data.target_idx, data.targets):
        c = data.scaler.columns.index(col)
        kind = data.transform.get(col, "none")
        for s in data.segments:
            rows = slice(s.lo, s.hi)
            g = data.scaler.group_of(s.series)
            far = data.scaler.far_outside(data.values[rows, j], g, c)
            if not far.any():
                continue
            i = int(np.argmax(np.abs(np.where(far, data.values[rows, j], 0))))
            # the value in the units the statistics are in: the column's, or its transform's (a log return)
            value = data.raw[s.lo + i, j] if kind == "none" else data.scaler.unscale_one(data.values[s.lo + i, j], g, c)
            what = f"{col!r}" if kind == "none" else f"the {kind} of {col!r}"
            out.append(
                f"warning: {data.frame.path}: {what} reaches {value:.6g}"
                f"{f' in series {s.series}' if len(data.segments) > 1 else ''}, far outside what the run was trained"
                f" on ({data.scaler.fitted_on(g, c)}): the forecast is an extrapolation. Fix: check the data's units"
                " (a factor of 1000?), or train on data that covers this range."
            )
            break
    return out


# --------------------------------------------------------------------------- the trained thing


def _load_members(paths: list[Path], schema: dict, keras: bool):
    """One model, or an Ensemble of every member's numpy replay; ``keras`` loads member 0's Keras object alone
    (inspect and export read its layers)."""
    if keras or len(paths) == 1:
        return load_predictor(paths[0], schema, keras=keras)
    return Ensemble([load_predictor(p, schema) for p in paths])


@dataclass
class Forecaster:
    """A trained model with everything it needs to turn rows into forecasts.

    Args:
        config: the run's resolved config.
        model: anything with ``predict_on_batch``: a Keras model, a ``NumpyModel``, or an ``Ensemble`` of them.
        scaler: the scaler fitted on the training split.
        schema: schema.json (``artifacts.schema_of``), read: the columns new data must have, the calendar.
        calibration: the interval calibration (intervals.json), or None for a point-forecast run.
        run: the run directory record it was loaded from (None while training).
        heldout: the held-out model and scaler of a final-fit run (``heldout/``, :mod:`final_fit`), not the final.
        short_by: the naive baseline that forecasts the series too short for the model (:mod:`short_series`).
        season_length: the season of that baseline (seasonal naive).
    """

    config: Config
    model: object
    scaler: Scaler
    schema: Schema
    calibration: I.RunIntervals | None = None
    run: artifacts.Run | None = None
    heldout: bool = False
    short_by: str | None = None
    season_length: int = 1

    # ------------------------------------------------------------------ building one

    @classmethod
    def fit(
        cls,
        cfg: Config,
        data: SeriesData,
        directory: Path,
        *,
        quiet: bool = False,
        state: dict | None = None,
        callbacks: list | tuple = (),
    ) -> tuple[Forecaster, Fitted]:
        """Train as ``cfg`` says on ``data`` (the training entry, ``pipeline.fit_ensemble``), checkpoints and
        ensemble members in ``directory``; uncalibrated (see :meth:`calibrate`)."""
        from .pipeline import fit_ensemble  # imports Keras when it trains

        model, fit, seconds, members = fit_ensemble(cfg, data, directory, quiet=quiet, state=state, callbacks=callbacks)
        seconds += sum(m["seconds"] for m in members)
        if members:
            model = Ensemble([model, *(m["model"] for m in members)])
        forecaster = cls(cfg, model, data.scaler, Schema.of(artifacts.schema_of(data, cfg)))
        return forecaster, Fitted(fit, seconds, members)

    @classmethod
    def load(
        cls,
        run: str | Path | artifacts.Run,
        *,
        keras: bool = False,
        backend_name: str | None = None,
        heldout: bool = False,
    ):
        """A finished run directory, checked and loaded once: model or members (numpy when every layer can be
        replayed; ``keras`` for the Keras objects, member 0 only), scaler and calibration.

        ``backend_name``: the Keras backend to activate (default: the run's own ``runtime.backend``).
        ``heldout``: a final-fit run's held-out model and scaler (``heldout/``) instead of the final ones.
        """
        run = run if isinstance(run, artifacts.Run) else artifacts.open_run(run)
        backend.activate(backend_name or run.config.runtime.backend)
        held = FF.heldout_dir(run.path) if heldout else None
        if held:  # the run's own model and scaler are checked too: a damaged run is refused whichever model scores
            load_predictor(run.model_path, run.schema)
            artifacts.load_scaler(run)
            model = _load_members(FF.heldout_paths(held, run.config.model.ensemble), run.schema, keras)
            scaler = artifacts.load_scaler(run, held / artifacts.SCALER)
        else:
            model, scaler = _load_members(run.member_paths(), run.schema, keras), artifacts.load_scaler(run)
        short = run.metrics.get("short_series") or {}
        return cls(
            run.config,
            model,
            scaler,
            Schema.of(run.schema),
            run.intervals,
            run,
            heldout=held is not None,
            short_by=short.get("forecast_by"),
            season_length=run.metrics.get("season_length", 1),
        )

    def save(self, run_dir: str | Path) -> Path:
        """Write the forecaster into ``run_dir``, a new or empty directory (never a non-empty one, never inside a
        result rnnforecast wrote): all at once (a failure leaves nothing), so that ``Forecaster.load`` opens it.
        Returns the directory.
        """
        d = fsio.absolute(run_dir)
        if self.run is not None and d.resolve() == self.run.path.resolve():
            raise RunError("is the run this forecaster was loaded from", where=str(d), fix="save into a new directory")
        d = artifacts.check_output_dir(d, "run_dir", "save", make_parents=True)
        with artifacts.new_directory(d, "run_dir") as tmp:
            self.write_into(tmp)
        return d

    def write_into(self, d: Path) -> None:
        """Write config.yaml, the model files, scaler.json, schema.json and (with intervals) intervals.json into
        ``d``, a directory this process writes (``save``'s new one, ``train``'s claimed ``.partial``); a forecaster
        loaded from a run also writes that run's metrics.json, so the copy loads again.

        A Keras model is saved; a loaded numpy replay copies the files it was read from. Ensemble members that
        training already saved there (``members/<i>.keras``) are kept.
        """
        artifacts.write_config(d, self.config)
        self._save_models(d)
        artifacts.write_atomic(d / artifacts.SCALER, artifacts.scaler_json(self.scaler))
        artifacts.write_json(d / artifacts.SCHEMA, self.schema.record)
        if self.calibration is not None:
            artifacts.write_json(d / artifacts.INTERVALS, self.calibration.to_dict())
        if self.run is not None:
            artifacts.write_json(d / artifacts.METRICS, self.run.metrics)

    def _save_models(self, d: Path) -> None:
        """model.keras and members/<i>.keras: Keras models saved, numpy replays (and members not loaded, as
        ``keras=True`` loads member 0 only) copied from the run they were read from."""
        members = self.model.members if isinstance(self.model, Ensemble) else [self.model]
        sources = self._model_paths()
        for i in range(max(len(members), len(sources))):
            path = d / artifacts.MODEL if i == 0 else artifacts.member_path(d, i)
            if i and self.run is None and path.exists():
                continue  # saved by training (pipeline.fit_members) a moment ago
            path.parent.mkdir(parents=True, exist_ok=True)
            m = members[i] if i < len(members) else None
            if hasattr(m, "save"):
                artifacts.save_model(m, path)
            else:
                artifacts.write_atomic(path, Path(sources[i]).read_bytes())

    def _model_paths(self) -> list[Path]:
        """The model files this forecaster was loaded from (none while training)."""
        if self.run is None:
            return []
        held = FF.heldout_dir(self.run.path) if self.heldout else None
        return FF.heldout_paths(held, self.run.config.model.ensemble) if held else self.run.member_paths()

    def calibrate(self, val: Evaluation) -> I.RunIntervals | None:
        """Calibrate the config's intervals on the validation windows ``val`` (None when it asks for none)."""
        self.calibration = calibrate(self.config, val)
        return self.calibration

    def adapt(self, test: Evaluation) -> None:
        """Keep the adaptive level that scoring ``test`` reached (``intervals.adaptive``), so that every forecast
        past the data (forecast.csv, predict, the API, serve) carries the bands the test coverage was measured on."""
        if self.calibration is not None and test.adaptive_state:
            self.calibration = dataclasses.replace(self.calibration, adaptive_state=test.adaptive_state)

    # ------------------------------------------------------------------ data

    def read_data(
        self, data_path: str | None = None, table: pd.DataFrame | None = None, allow_missing_tail: bool = False
    ) -> tuple[SeriesData, list[str]]:
        """The run's own data (its file or ``data.sql``, read again), or new data (``data_path`` or ``table``)
        checked against the run's schema; scaled with the run's scaler. Trailing missing target values in new
        data are refused unless ``allow_missing_tail``."""
        if self.run is None:
            raise RunError("this forecaster was not loaded from a run directory", fix="use Forecaster.load(run_dir)")
        frame, warnings = _frame(self.run, data_path, table, allow_missing_tail)
        frame = SS.set_apart_named(frame, (self.run.metrics.get("short_series") or {}).get("series", []))
        if frame.columns != self.schema.columns:
            raise RunError(
                f"the data gives model columns {frame.columns}, the run was trained on {self.schema.columns}",
                where=str(frame.path),
                fix="pass a file with the same columns as the training data",
            )
        data = build(frame, self.config, scaler=self.scaler, check_splits=False)
        if data_path or table is not None:
            warnings = warnings + new_data_warnings(data, self.schema.record)
        return data, warnings

    # ------------------------------------------------------------------ forecasts

    def score(self, data: SeriesData, split: str = "test", val: Evaluation | None = None) -> Evaluation:
        """The model and the naive baselines on every window of ``split`` of ``data`` (identical windows); with a
        calibration, the model's and persistence's bands scored too.

        ``val``: the validation evaluation, when the caller has it: adaptive bands start from its residuals
        (else it is computed here when needed), and ``split="val"`` scores that evaluation itself.
        """
        reuse = val is not None and val.split == split
        ev = val if reuse else evaluate_model(self.model, data, self.config, split)
        if self.calibration is not None:
            if val is None and self.calibration.adaptive and split != "val":
                val = evaluate_model(self.model, data, self.config, "val")
            add_intervals(ev, self.calibration, data, val)
        return ev

    def forecast(self, data: SeriesData) -> pd.DataFrame:
        """The next ``horizon`` steps after each series' last row of ``data``, in original units and timestamps,
        with quantile columns when the run has intervals (:func:`forecast_table`); the series too short for the
        model forecast by its naive baseline, marked in a ``forecast_by`` column (:mod:`short_series`)."""
        table = forecast_table(self.model, data, self.schema.frequency, self.calibration)
        return SS.add_forecasts(
            table, data.frame, self.short_by, data.horizon, self.season_length, self.schema.frequency
        )

    def forecast_windows(self, data: SeriesData, split: str = "test") -> pd.DataFrame:
        """Every origin of ``split``: one row per window, lead and target, with the actual value, the point
        forecast and (with intervals) the quantiles (``predictions.predictions_table``); ``evaluate --output``."""
        return self.windows_table(data, self.score(data, split))

    def windows_table(self, data: SeriesData, ev: Evaluation) -> pd.DataFrame:
        """The long table of an evaluation's windows (see :meth:`forecast_windows`)."""
        qs = self.calibration.quantiles if self.calibration else None
        return predictions_table(data, ev.starts, ev.actual, ev.forecasts["model"], ev.bands.get("model"), qs)

    @property
    def path(self) -> Path | None:
        return self.run.path if self.run is not None else None


@dataclass
class Fitted:
    """What training a forecaster reports besides the forecaster: member 0's ``FitResult``, the training
    seconds of all members, and the other members' ``{"model", "fit", "seconds"}``."""

    fit: object
    seconds: float
    members: list[dict]


def open_run_with_data(
    run_dir: str | Path,
    data_path: str | None = None,
    table: pd.DataFrame | None = None,
    keras_model: bool = False,
    allow_missing_tail: bool = False,
):
    """A finished run, its model and its data (its own, ``data_path`` or ``table``) scaled with the run's scaler.

    Returns:
        ``(run, model, data, warnings)``; kept for callers that predate :class:`Forecaster`.
    """
    f = Forecaster.load(run_dir, keras=keras_model)
    data, warnings = f.read_data(data_path, table, allow_missing_tail)
    return f.run, f.model, data, warnings

"""`rnnforecast export`: a run's model with its scaler and transforms folded in, as a SavedModel or an ONNX file.

The exported model takes raw input windows, ``(B, window_length, n_inputs)`` float32 in the order of
``signature.json``'s input columns, and returns forecasts in original units, ``(B, horizon, n_targets)``; a
quantile model (``intervals.method: quantile`` or ``cqr``) returns its quantiles, ``(B, horizon, n_targets, Q)``,
in the order of ``signature.json``'s ``quantiles`` (each path inverted, then made non-decreasing around the median
as ``predict`` does).
Inside it does what ``predict`` does around the Keras model (framing.py), in float64:

    raw window ─ transform (diff, log_diff, pct_change: one extra row; log) ─ scale
        ─ per-window normalisation (window, instance) ─ [seasonal differences of the target inputs]
        ─ [one sequence per target channel] ─ Keras model ─ [channels back] ─ [* residual spread + baseline]
        ─ de-normalise ─ unscale ─ cumulate from the last observed level ─ forecast

``window_length`` = ``input_length`` + one season (a seasonal residual reads the season before the window)
+ 1 (a difference reads the row before).

Export runs on the TensorFlow backend (SavedModel is TensorFlow's format; ONNX goes through tf2onnx, as
Keras' own ``model.export(format="onnx")`` does on that backend). Before anything is written, the exported
model's forecast of the run's last window is checked against ``predict``'s at 1e-4 relative.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, artifacts, backend, fsio, transforms
from .data import PERIODS
from .errors import RunError
from .framing import EPS
from .models import model_quantiles

TRANSFORM_CODES = {"none": 0, "diff": 1, "log_diff": 2, "pct_change": 3, "log": 4}
RTOL = 1e-4  # agreement required between the exported model and predict


@dataclass
class Plan:
    """What the exported model must do around the Keras model, as constants."""

    inputs: list[str]  # model input columns, in order
    targets: list[str]
    input_length: int
    horizon: int
    skip: int  # 1 when a differenced input needs the row before the window
    input_transform: np.ndarray  # (F,) TRANSFORM_CODES of each input column
    shift_in: np.ndarray  # (F,) scaler shift of each input column
    scale_in: np.ndarray  # (F,)
    shift_out: np.ndarray  # (T,)
    scale_out: np.ndarray  # (T,)
    target_pos: list[int]  # position of each target among the inputs (-1: not an input)
    target_transform: list[str]
    window_relative: bool  # data.scaling: window
    scaling: str
    instance: bool = False  # data.scaling: instance (each window's targets by their own mean and deviation)
    residual: str = "none"  # model.residual: none | persistence | seasonal
    season: int = 1  # steps per season of a seasonal residual
    residual_scale: np.ndarray | None = None  # (T,) the residual targets' spread (Scaler.residual_scale), or None
    base_rows: list[int] = field(default_factory=list)  # (H,) each step's baseline row among the scaled rows
    independent: bool = False  # model.channels: independent
    other_pos: list[int] = field(default_factory=list)  # the input columns that are not targets
    quantiles: list[float] = field(default_factory=list)  # a quantile model's levels (Q); empty: point forecasts

    @property
    def extra(self) -> int:
        """Rows read before the input window: one season for a seasonal residual (framing.history_extra)."""
        return self.season if self.residual == "seasonal" else 0

    @property
    def window(self) -> int:
        return self.input_length + self.extra + self.skip


def plan_for(data, where: str, quantiles: list[float] | None = None) -> Plan:
    """The constants of the fold, or a RunError naming what cannot be folded and how to train instead.
    ``quantiles``: a quantile model's levels (``models.model_quantiles``), None for a point model."""
    _check_foldable(data, where)
    scaler = data.scaler
    features, targets = data.features, data.targets
    pos = [features.index(t) if t in features else -1 for t in targets]
    _check_levels(data, pos, where)
    fi, ti = data.feature_idx, data.target_idx
    codes = np.array([TRANSFORM_CODES[data.transform.get(c, "none")] for c in features], dtype=np.int64)
    f = data.framing
    r = scaler.residual_scale  # None: a run from before the residual spread (series.py divides by 1)
    return Plan(
        inputs=list(features),
        targets=list(targets),
        input_length=data.input_length,
        horizon=data.horizon,
        skip=int(transforms.differences(data.transform)),
        input_transform=codes,
        shift_in=scaler.shift[0, fi].astype(np.float64),
        scale_in=scaler.scale[0, fi].astype(np.float64),
        shift_out=scaler.shift[0, ti].astype(np.float64),
        scale_out=scaler.scale[0, ti].astype(np.float64),
        target_pos=pos,
        target_transform=[data.transform.get(t, "none") for t in targets],
        window_relative=data.window_relative,
        scaling=scaler.kind,
        instance=f.norm == "instance",
        residual=f.residual,
        season=f.season,
        residual_scale=None if f.residual == "none" else np.ones(len(ti)) if r is None else r[ti].astype(np.float64),
        base_rows=_base_rows(f, data.input_length, data.horizon),
        independent=f.independent,
        other_pos=f.other_pos,
        quantiles=[round(float(q), 10) for q in quantiles or []],  # 0.1, not 1 - 0.9
    )


def _base_rows(f, input_length: int, horizon: int) -> list[int]:
    """The row each forecast step's baseline copies (framing.base_rows) among the ``history_extra + input_length``
    rows the exported model scales: its window, as one series from row 0."""
    if f.residual == "none":
        return []
    rows = f.base_rows(np.zeros(1, np.int64), f.history_extra + input_length, horizon, np.zeros(1, np.int64))
    return [int(i) for i in rows[0]]


def _check_foldable(data, where: str) -> None:
    """One scaler, no future inputs, and a framing the fold replays."""
    scaler = data.scaler
    if scaler.groups != ["*"]:
        raise RunError(
            f"the run has one scaler per series ({len(scaler.groups)} series); export folds a single scaler",
            where=where,
            fix="train with data.scale_per_series: false to export this model",
        )
    if data.future_idx:
        raise RunError(
            "export takes one raw window; this model also reads values of the forecast steps (a 'future' input)",
            where=where,
            fix="train with data.future_time_features: false and without data.future to export",
        )


def _check_levels(data, pos: list[int], where: str) -> None:
    """A target that is not an input (``pos`` -1) cannot be transformed, window-scaled or forecast as a residual
    in the fold: undoing any of them needs its observed values."""
    f = data.framing
    needs_level = [
        t
        for t, p in zip(data.targets, pos)
        if p < 0
        and (data.transform.get(t, "none") != "none" or f.norm in ("window", "instance") or f.residual != "none")
    ]
    if needs_level:
        if f.norm != "none":
            why = f"data.scaling: {f.norm}"
        elif f.residual != "none":
            why = f"model.residual: {f.residual}"
        else:
            why = f"data.transform of {needs_level[0]!r}"
        what = "observed values of" if f.residual == "seasonal" and f.norm == "none" else "last observed"
        raise RunError(
            f"cannot fold {why} into the export: it needs the {what} {needs_level[0]!r}, "
            "which is not one of the model's inputs",
            where=where,
            fix=f"train with {needs_level[0]!r} in data.features"
            + (" (or without that transform)" if why.startswith("data.transform") else "")
            + " to export",
        )


# --------------------------------------------------------------------------- the folded model


def _invert_steps(ops, steps, base, kind: str, horizon: int):
    """Scaled-back steps ``(B, H)`` of one target -> levels, cumulated from the last observed level ``base (B, 1)``
    (``log``: each step on its own)."""
    if kind == "log":
        return ops.exp(steps)
    if kind == "diff":
        return base + ops.cumsum(steps, axis=1)
    if kind == "log_diff":
        return base * ops.exp(ops.cumsum(steps, axis=1))
    if kind == "pct_change":
        growth = 1.0 + steps
        cum = [growth[:, 0]]
        for h in range(1, horizon):  # an unrolled cumprod: every ONNX opset has Mul
            cum.append(cum[-1] * growth[:, h])
        return base * ops.stack(cum, axis=1)
    return steps


def _monotone(ops, q, median: int):
    """``(B, H, T, Q)`` made non-decreasing along Q with the median fixed (intervals.monotone), unrolled: every
    ONNX opset has Max and Min."""
    cols = [q[..., k] for k in range(q.shape[-1])]
    for k in range(median + 1, len(cols)):
        cols[k] = ops.maximum(cols[k], cols[k - 1])
    for k in range(median - 1, -1, -1):
        cols[k] = ops.minimum(cols[k], cols[k + 1])
    return ops.stack(cols, axis=-1)


def _onehot(p: Plan) -> np.ndarray:
    """``(T, F)``: each target's input column (a zero row for a target that is not an input)."""
    eye = np.eye(len(p.inputs))
    return np.array([eye[i] if i >= 0 else 0.0 * eye[0] for i in p.target_pos])


def _targets_of(ops, p: Plan, a):
    """``(..., F)`` -> ``(..., T)``: the target columns (each target is an input whenever this is asked)."""
    return ops.stack([a[..., i] for i in p.target_pos], axis=-1)


def _transformed(ops, p: Plan, x):
    """Raw rows ``(B, W, F)`` -> transformed rows ``(B, W - skip, F)`` (transforms.forward)."""
    z, code = x[:, p.skip :, :], p.input_transform
    if (code == 4).any():
        z = ops.where(code == 4, ops.log(ops.where(code == 4, z, 1.0)), z)
    if not p.skip:
        return z
    prev = x[:, :-1, :]
    diff, logd, pct = (code == 1), (code == 2), (code == 3)
    ratio = ops.where(logd | pct, z, 1.0) / ops.where(logd | pct, prev, 1.0)
    z = ops.where(diff, z - prev, z)
    z = ops.where(logd, ops.log(ratio), z)
    return ops.where(pct, ratio - 1.0, z)


def _normalisation(ops, p: Plan, s):
    """``(loc, scale)`` ``(B, F)`` of each scaled window ``s (B, L, F)`` (framing.Framing.stats)."""
    last = s[:, -1, :]
    if p.window_relative:
        return last, ops.ones_like(last)
    if p.instance:
        own = _targets_of(ops, p, s)  # (B, L, T)
        onehot = _onehot(p)
        loc = ops.matmul(ops.mean(own, axis=1), onehot)  # (B, F), 0 outside the targets
        spread = 1.0 + ops.matmul(ops.sqrt(ops.var(own, axis=1) + EPS) - 1.0, onehot)  # 1 outside the targets
        return loc, spread
    return ops.zeros_like(last), ops.ones_like(last)


def _network_input(ops, p: Plan, rows, loc, scale):
    """The normalised window ``(B, L, F)`` from the scaled rows ``(B, extra + L, F)``; with a seasonal residual
    each target input column is its difference to one season before, divided by the residual spread
    (SeriesData._seasonal_differences)."""
    net = (rows[:, p.extra :, :] - loc[:, None, :]) / scale[:, None, :]
    if p.residual != "seasonal":
        return net
    m = p.season
    r_in = 1.0 + (p.residual_scale - 1.0) @ _onehot(p)  # (F,): 1 outside the targets
    seasonal = (rows[:, m:, :] - rows[:, :-m, :]) / scale[:, None, :] / r_in  # (B, L, F): the loc cancels
    is_target = np.isin(np.arange(len(p.inputs)), p.target_pos)  # (F,)
    return ops.where(is_target, seasonal, net)


def _channels(ops, p: Plan, net):
    """``(B, L, F)`` -> ``(B*T, L, 1 + E + T)``: one sequence per target channel (framing.Framing.fold)."""
    n_t, steps = len(p.target_pos), net.shape[1]
    other = [net[:, :, i : i + 1] for i in p.other_pos]  # E x (B, L, 1)
    zero = ops.zeros_like(net[:, :, :1])  # (B, L, 1)
    seqs = [
        ops.concatenate([net[:, :, i : i + 1], *other, zero + np.eye(n_t, dtype="float32")[j]], axis=-1)
        for j, i in enumerate(p.target_pos)
    ]
    seq = ops.stack(seqs, axis=1)  # (B, T, L, 1+E+T)
    return ops.reshape(seq, (-1, steps, seq.shape[-1]))


def build_exported(model, p: Plan):
    """A Keras model: raw window ``(B, W, F)`` -> forecast in original units ``(B, H, T)``."""
    import keras
    from keras import ops

    n_t = len(p.target_pos)
    r_out = np.ones(n_t) if p.residual_scale is None else p.residual_scale  # (T,)
    reads_targets = p.window_relative or p.instance or p.residual != "none"  # else a target need not be an input

    class Prepare(keras.layers.Layer):
        """Raw window -> the network's input, plus what the inverse needs: each window's target loc and scale,
        the residual's baseline (normalised like the targets), the last raw row."""

        def call(self, window):
            x = ops.cast(window, "float64")  # (B, W, F)
            rows = (_transformed(ops, p, x) - p.shift_in) / p.scale_in  # (B, extra + L, F) scaled
            loc, scale = _normalisation(ops, p, rows[:, p.extra :, :])  # (B, F)
            net = ops.cast(_network_input(ops, p, rows, loc, scale), "float32")  # (B, L, F)
            base = ops.zeros_like(rows[:, :1, :1]) + np.zeros((p.horizon, n_t))  # (B, H, T)
            loc_t, scale_t = ops.zeros_like(base[:, 0, :]), ops.ones_like(base[:, 0, :])  # (B, T)
            if reads_targets:
                loc_t, scale_t = _targets_of(ops, p, loc), _targets_of(ops, p, scale)
            if p.residual != "none":  # framing.base_rows: the rows the baseline copies
                own = _targets_of(ops, p, rows)  # (B, extra + L, T)
                base = ops.stack([own[:, i, :] for i in p.base_rows], axis=1)  # (B, H, T)
                base = (base - loc_t[:, None, :]) / scale_t[:, None, :]
            return (_channels(ops, p, net) if p.independent else net), loc_t, scale_t, base, x[:, -1, :]

    n_q = max(1, len(p.quantiles))

    class Finish(keras.layers.Layer):
        """Network output ``(B, H, T, Q)`` (``(B*T, H, 1, Q)`` with independent channels) -> original units
        ``(B, H, T)``, or ``(B, H, T, Q)`` for a quantile model."""

        def call(self, pred, loc_t, scale_t, base, level):
            y = ops.cast(pred, "float64")  # (B, H, T, Q) | (B*T, H, 1, Q)
            if p.independent:  # framing.Framing.unfold
                y = ops.transpose(ops.reshape(y, (-1, n_t, p.horizon, n_q)), (0, 2, 1, 3))  # (B, H, T, Q)
            y = y * r_out[:, None] + base[..., None]  # the residual's baseline added back (0 without one)
            y = y * scale_t[:, None, :, None] + loc_t[:, None, :, None]  # per-window normalisation undone
            y = y * p.scale_out[:, None] + p.shift_out[:, None]
            paths = [
                ops.stack(
                    [
                        _invert_steps(ops, y[:, :, j, k], level[:, p.target_pos[j]][:, None], kind, p.horizon)
                        for j, kind in enumerate(p.target_transform)
                    ],
                    axis=-1,
                )
                for k in range(n_q)
            ]  # Q x (B, H, T): every quantile path inverted as predict inverts it (SeriesData.invert)
            if not p.quantiles:
                return ops.cast(paths[0], "float32")
            out = _monotone(ops, ops.stack(paths, axis=-1), p.quantiles.index(0.5))
            return ops.cast(out, "float32")

    window = keras.Input((p.window, len(p.inputs)), name="window", dtype="float32")
    past, loc_t, scale_t, base, level = Prepare(name="prepare", dtype="float64")(window)  # float64: no autocast
    out = Finish(name="forecast_units", dtype="float64")(model({"past": past}), loc_t, scale_t, base, level)
    return keras.Model(window, out, name="rnnforecast_export")


# --------------------------------------------------------------------------- writing


def target_dir(run_path: Path, fmt: str, output: str | None) -> Path:
    """Where to write: ``-o``, or ``<run>-export-<format>`` beside the run (``artifacts.annex_path``); never into
    a result, a link, a file or a non-empty directory (``artifacts.check_output_dir``), in an existing folder."""
    out = Path(output) if output else artifacts.annex_path(run_path, f"-export-{fmt}")
    if fsio.absolute(out).resolve() == run_path.resolve():
        raise RunError("is the run directory itself", where=str(out), fix="pass -o with a new directory")
    return artifacts.check_output_dir(out, "-o", "export")


TIME_VALUES = {  # the x in sin/cos(2*pi*x/period), as data.PERIODS computes it from a pandas Timestamp
    "hour_of_day": "hour + minute / 60",
    "day_of_week": "dayofweek (Monday = 0)",
    "day_of_month": "day - 1",
    "day_of_year": "dayofyear - 1",
    "month_of_year": "month - 1",
}


def input_kinds(inputs: list[str], categories: dict[str, list[str]], time_column: str) -> list[dict]:
    """How to compute each input column from a raw row: a number, a one-hot flag, or a calendar sin/cos."""
    onehot = {f"{col}={v}": (col, v) for col, values in categories.items() for v in values}
    out = []
    for name in inputs:
        base, _, fn = name.rpartition("_")
        if name in onehot:
            col, v = onehot[name]
            out.append({"name": name, "kind": "one_hot", "column": col, "value": v})
        elif base in PERIODS and fn in ("sin", "cos"):
            period = PERIODS[base][1]
            out.append(
                {
                    "name": name,
                    "kind": "time_feature",
                    "of": time_column,
                    "formula": f"{fn}(2*pi*x/{period}), x = {TIME_VALUES[base]} of the row's timestamp",
                }
            )
        else:
            out.append({"name": name, "kind": "numeric"})
    return out


def export_run(run_dir: str, fmt: str, output: str | None = None) -> str:
    """Export a finished run; returns the lines to print."""
    run = artifacts.open_run(run_dir)
    if run.config.model.ensemble > 1:
        raise RunError(
            f"export writes one network; this run is a seed ensemble of {run.config.model.ensemble} members",
            where=str(run.path),
            fix="train with model.ensemble: 1 to export, or use rnnforecast predict on this run",
        )
    out = target_dir(run.path, fmt, output)
    if fmt == "onnx" and not _has_onnx_tools():
        raise RunError("ONNX export needs the onnx and tf2onnx packages", fix='pip install "rnnforecast[export]"')
    with artifacts.new_directory(out, "-o") as tmp:  # made before the work; an empty out (checked above) replaced
        notes, shapes = _export_into(tmp, run, fmt)
    return "\n".join([*notes, f"exported {fmt} to {out}", *shapes])


def _export_into(tmp: Path, run, fmt: str) -> tuple[list[str], list[str]]:
    """Write the exported model, signature.json and example.json into ``tmp``; returns what export prints before
    and after the line that names the directory."""
    from .forecaster import Forecaster

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # "failed call to cuInit" on machines without a GPU
    backend.activate("tensorflow")
    backend.quiet_tensorflow_import()
    forecaster = Forecaster.load(run, keras=True, backend_name="tensorflow")
    model = forecaster.model
    data, warnings = forecaster.read_data()
    p = plan_for(data, str(run.path), model_quantiles(run.config))
    seg = data.segments[0]
    if seg.hi - seg.lo < p.window:
        raise RunError(f"the run's data has fewer than {p.window} rows for an example window", where=str(run.path))
    example = data.raw[seg.hi - p.window : seg.hi][:, data.feature_idx].astype(np.float32)[None]  # (1, W, F)
    expected = _expected(forecaster, data, seg.series, p)
    exported = build_exported(model, p)
    got = np.asarray(exported.predict_on_batch(example), dtype=np.float64)
    check_close(got, expected, "the folded Keras model")
    io = _write_model(exported, fmt, tmp, example, expected)
    signature = _signature(run, data, p, fmt, io)
    artifacts.write_json(tmp / "signature.json", signature)
    artifacts.write_json(
        tmp / "example.json",
        {"window": example[0].tolist(), "forecast": expected[0].tolist(), "series": seg.series},
    )
    lines = [
        f"input:  {io['input']} float32 (batch, {p.window}, {len(p.inputs)}): {', '.join(p.inputs[:8])}"
        + (" ..." if len(p.inputs) > 8 else "")
    ]
    shape = f"(batch, {p.horizon}, {len(p.targets)}{f', {len(p.quantiles)}' if p.quantiles else ''})"
    quantiles = f"; quantiles {', '.join(f'{q:g}' for q in p.quantiles)}" if p.quantiles else ""
    lines.append(f"output: {io['output']} float32 {shape}: {', '.join(p.targets)}{quantiles}")
    lines.append("checked: its forecast of the run's last window matches rnnforecast predict (1e-4 relative)")
    return [*warnings, *bands_note(run)], lines


def _expected(forecaster, data, series: str, p: Plan) -> np.ndarray:
    """What predict forecasts for ``series`` past the data: ``(1, H, T)``, or the network's quantiles in
    original units ``(1, H, T, Q)`` for a quantile model (their median is predict's forecast, checked here).
    The run's bands are left out (``bands_note``): a point model's table is computed without its calibration."""
    import dataclasses

    from .intervals import monotone

    point_only = dataclasses.replace(forecaster, calibration=None) if not p.quantiles else forecaster
    table = point_only.forecast(data)  # a quantile model's calibration makes the median its point forecast
    if "series" in table:
        table = table[table["series"] == series]
    point = table[p.targets].to_numpy(dtype=np.float64)[None]  # (1, H, T)
    if not p.quantiles:
        return point
    starts, inputs = data.forecast_inputs(forecaster.schema.frequency)
    k = [s.series for s in data.segments].index(series)
    out = data.invert(starts, data.unfold(forecaster.model.predict_on_batch(inputs)))[k : k + 1]  # (1, H, T, Q)
    out = monotone(out, p.quantiles.index(0.5))
    check_close(out[..., p.quantiles.index(0.5)], point, "the quantile model's median")
    return out


def bands_note(run) -> list[str]:
    """What of the run's prediction intervals the exported model does not carry: say so, once. A quantile head's
    own quantiles are exported; conformal widths, CQR corrections and adaptive levels are not."""
    iv = run.intervals
    if iv is None:
        return []
    levels = ", ".join(f"{c:g}%" for c in iv.levels)
    if iv.method == "quantile" and not iv.adaptive:
        return []
    if iv.method in ("quantile", "cqr"):
        what = "the CQR corrections" if iv.method == "cqr" else "the adaptive level"
        return [
            f"warning: the exported model gives the network's own quantiles; {what} of the run's {levels} bands "
            "are not in it. Fix: use rnnforecast predict on the run for those bands"
        ]
    return [
        f"warning: the exported model gives point forecasts only; the run's {levels} {iv.method} bands are not in it. "
        "Fix: use rnnforecast predict on the run for the bands"
    ]


def check_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    atol = RTOL * max(1.0, float(np.abs(expected).max()))
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=RTOL, atol=atol):
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("nan")
        raise RunError(
            f"{what} does not reproduce predict (shape {got.shape} vs {expected.shape}, max difference {diff:.3g}); "
            "nothing was written",
            fix="report this as a bug with the run's config.yaml",
        )


def _has_onnx_tools() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "tf2onnx"))


def _write_model(exported, fmt: str, tmp: Path, example: np.ndarray, expected: np.ndarray) -> dict:
    """Write the model file(s) into ``tmp``, read them back, check them; return input/output names."""
    if fmt == "savedmodel":
        import tensorflow as tf

        exported.export(str(tmp / "savedmodel"), format="tf_saved_model", verbose=False)
        fn = tf.saved_model.load(str(tmp / "savedmodel")).signatures["serving_default"]
        (name,) = fn.structured_input_signature[1]
        result = fn(**{name: tf.constant(example)})
        (out_name,) = result
        check_close(np.asarray(result[out_name], np.float64), expected, "the written SavedModel")
        return {"file": "savedmodel", "signature": "serving_default", "input": name, "output": out_name}
    import warnings

    import onnx

    with warnings.catch_warnings():  # Keras' tf2onnx patch for NumPy 2 touches np.object
        warnings.simplefilter("ignore", FutureWarning)
        exported.export(str(tmp / "model.onnx"), format="onnx", verbose=False)
    graph = onnx.load(str(tmp / "model.onnx")).graph
    io = {"file": "model.onnx", "input": graph.input[0].name, "output": graph.output[0].name}
    try:
        import onnxruntime as ort
    except ImportError:
        return io
    session = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {io["input"]: example})[0]
    check_close(np.asarray(got, np.float64), expected, "the written ONNX model")
    return io


def _signature(run, data, p: Plan, fmt: str, io: dict) -> dict:
    f = data.frame
    return {
        "format": fmt,
        **io,
        "input_shape": [None, p.window, len(p.inputs)],
        "output_shape": [None, p.horizon, len(p.targets), *([len(p.quantiles)] if p.quantiles else [])],
        "quantiles": p.quantiles or None,  # the last output axis of a quantile model
        "dtype": "float32",
        "input_columns": p.inputs,
        "inputs": input_kinds(p.inputs, f.categories, f.time_column),
        "output_columns": p.targets,
        "window_length": p.window,
        "input_length": p.input_length,
        "horizon": p.horizon,
        # window_length = input_length + season (a seasonal residual's season before the window) + transform (1)
        "history_rows": {"input_length": p.input_length, "season": p.extra, "transform": p.skip},
        "rows": _rows_text(p),
        "scaling": p.scaling,
        "residual": p.residual,
        "season": p.season if p.residual == "seasonal" else None,
        "channels": "independent" if p.independent else "mixed",
        "transform": {c: k for c, k in data.transform.items() if k != "none"},
        "time_column": f.time_column,
        "frequency": f.frequency,
        "calendar": f.calendar,
        "run": str(run.path.resolve()),
        "rnnforecast": __version__,
    }


def _rows_text(p: Plan) -> str:
    """What the window's rows are, in words: why it is longer than ``input_length`` when it is."""
    why = [f"{p.input_length} input rows"]
    if p.extra:
        why.append(f"{p.extra} before them (model.residual: seasonal reads the season before each input row)")
    if p.skip:
        why.append("1 before those (the transforms need the row before)")
    text = f"the last {p.window} rows before the forecast, oldest first, without missing values"
    return text + (f" ({' + '.join(why)})" if len(why) > 1 else "")

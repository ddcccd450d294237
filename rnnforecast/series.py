"""The scaled series and its splits: the one array every window is gathered from, and the way back.

``SeriesData`` holds the cleaned original values (float64), the model-space array
(transformed, scaled, float32), the row ranges of every series and split, and inverts model
outputs to original units. It is pure numpy: training, evaluation, prediction and inspection
all use it without caring about the Keras backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import folds, transforms, windows
from .config import Config
from .data import PERIODS, SERIES, Frame, season_length
from .errors import DataError
from .framing import Framing
from .metrics import naive_maes, residual_choice
from .scaling import Scaler

SPLITS = ("train", "val", "test")


@dataclass
class Segment:
    series: str
    lo: int  # first row of this series in the array
    hi: int  # one past its last row
    bounds: dict[str, tuple[int, int]]  # split -> (lo, hi)


@dataclass
class SeriesData:
    frame: Frame
    raw: np.ndarray  # (N, C) float64, original units, model columns
    values: np.ndarray  # (N, C) float32, transformed and scaled
    columns: list[str]
    feature_idx: list[int]
    target_idx: list[int]
    transform: dict[str, str]  # column -> kind (every model column)
    scaler: Scaler
    segments: list[Segment]
    input_length: int
    horizon: int
    stride: int
    framing: Framing  # per-window normalisation, residual baseline, channels (framing.py)
    future_idx: list[int] = field(default_factory=list)  # columns known at the forecast steps: data.future, calendar
    n_future_calendar: int = 0  # the last entries of future_idx that are calendar (sin/cos) columns

    # ------------------------------------------------------------------ windows

    def bounds(self, split: str) -> list[tuple[int, int]]:
        return [s.bounds[split] for s in self.segments]

    def starts(self, split: str, stride: int | None = None) -> np.ndarray:
        """Window starts of ``split``. A split owns targets, not inputs: a window belongs to the split of its
        first target. Training windows lie inside the training rows entirely; a validation or test window
        has every target inside its split and reads its inputs from the rows before, of the same series
        (history known at forecast time, :func:`folds.target_window_starts`), never before the first
        training row. With ``input_length=3, horizon=2``, train rows 0..5, val rows 6..8::

            row:    0  1  2  3  4  5 | 6  7  8
            train:  x  x  x  y  y    |            starts 0, 1 (targets never leave the training rows)
            val:             x  x  x | y  y       starts 3, 4: inputs [3, 6) and [4, 7), targets in 6..8
        """
        stride = stride or self.stride
        if split == "train":
            return windows.window_starts(self.bounds(split), self.input_length, self.horizon, stride)
        parts = [
            folds.target_window_starts(s.bounds[split], self.input_length, self.horizon, stride, s.bounds["train"][0])
            for s in self.segments
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def fold_view(self, test_end: pd.Timestamp | None) -> SeriesData:
        """A backtest fold's view: the test split stops before ``test_end`` (None: at the end); windows follow
        :meth:`starts` like every run's."""
        times = self.frame.df[self.frame.time_column].to_numpy()
        segments = []
        for s in self.segments:
            lo, hi = s.bounds["test"]
            if test_end is not None:
                hi = min(hi, s.lo + int(np.searchsorted(times[s.lo : s.hi], np.datetime64(test_end))))
            segments.append(Segment(s.series, s.lo, s.hi, {**s.bounds, "test": (lo, max(lo, hi))}))
        return replace(self, segments=segments)

    def series_index(self, rows: np.ndarray) -> np.ndarray:
        """Segment number of each row."""
        los = np.array([s.lo for s in self.segments])
        return np.searchsorted(los, np.asarray(rows), side="right") - 1

    def batch(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised inputs ``(B, L, F)`` and targets ``(B, H, T)`` of the given windows (before channel folding).

        Targets are residuals to the framing's baseline when ``model.residual`` asks for one."""
        x, y = windows.gather(self.values, starts, self.input_length, self.horizon, self.feature_idx, self.target_idx)
        return self._normalise(starts, x, y)

    def model_batch(self, starts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The network's input mapping (``past``, and ``future`` when it has one) and targets, channels folded:
        ``(B, H, T)``, or ``(B*T, H, 1)`` with independent channels."""
        x, y = self.batch(starts)
        return self.framing.fold(self._with_future({"past": x}, starts), y)

    def loss_weights(self, starts: np.ndarray, power: int) -> np.ndarray | None:
        """The training loss's weight of each window and target (``Framing.loss_weights``), or ``None``."""
        if self.framing.norm != "instance":
            return None
        return self.framing.loss_weights(self._window_stats(starts)[1][:, self.target_idx], power)

    def model_inputs(self, starts: np.ndarray, future: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The input mapping only; ``future`` ``(B, H, n_future)`` replaces rows past the end of the data."""
        inputs = {"past": self.inputs(starts)}
        inputs = inputs | {"future": future} if future is not None else self._with_future(inputs, starts)
        return self.framing.fold(inputs)[0]

    def unfold(self, out) -> np.ndarray:
        """The network's output for :meth:`model_inputs` -> ``(B, H, T, Q)`` in normalised units."""
        return self.framing.unfold(out)

    def _with_future(self, inputs: dict, starts: np.ndarray) -> dict:
        if self.future_idx:
            rows = windows.target_rows(starts, self.input_length, self.horizon)  # (B, H)
            inputs["future"] = self.values[rows][..., self.future_idx]  # (B, H, n_future)
        return inputs

    def forecast_inputs(self, frequency: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Starts ``(S,)`` and inputs of the one forecast window per series, past the end of the data.

        Calendar columns of the forecast steps are computed from their timestamps. Columns the user
        declared known in advance (``data.future``) come from the last ``horizon`` rows of each series,
        whose targets must be empty: those rows are the forecast steps, not history.
        """
        n_time_features = self.n_future_calendar
        user = len(self.future_idx) - n_time_features  # data.future columns come first in future_idx
        tail = self.horizon if user else 0
        if user:
            self._check_open_tail()
        starts = np.array([windows.forecast_start(s.hi - tail, self.input_length) for s in self.segments])
        if not self.future_idx:
            return starts, self.model_inputs(starts)
        rows = windows.target_rows(starts, self.input_length, self.horizon)  # (S, H), inside the data when tail
        future = np.zeros((len(starts), self.horizon, len(self.future_idx)), dtype=np.float32)
        if user:
            future[..., :user] = self.values[rows][..., self.future_idx[:user]]
        if n_time_features:
            last = self.timestamps(windows.last_input_rows(starts, self.input_length))
            cols = self.future_idx[user:]
            groups = self._scaler_groups(windows.last_input_rows(starts, self.input_length))
            for k in range(len(starts)):
                times = windows.target_times(last[k], self.horizon, frequency)
                raw = time_feature_values(times, [self.columns[i] for i in cols])  # (H, n)
                future[k, :, user:] = (raw - self.scaler.shift[groups[k]][cols]) / self.scaler.scale[groups[k]][cols]
        return starts, self.model_inputs(starts, future)

    def can_forecast(self) -> bool:
        """False when data.future columns are read but the data has no horizon rows holding them."""
        user = len(self.future_idx) > self.n_future_calendar
        return not user or all(self.frame.open_tail.get(s.series, 0) == self.horizon for s in self.segments)

    def _check_open_tail(self) -> None:
        names = [self.columns[i] for i in self.future_idx]
        for s in self.segments:
            got = self.frame.open_tail.get(s.series, 0)
            if got != self.horizon:
                who = f"series {s.series!r}" if len(self.segments) > 1 else "the data"
                raise DataError(
                    f"the run reads {names} at the forecast steps, so {who} must end with horizon={self.horizon} "
                    f"rows whose target is empty and those columns filled; it ends with {got}",
                    where=str(self.frame.path),
                    fix=f"append {self.horizon} rows with the future timestamps, an empty target and the known values",
                )

    def inputs(self, starts: np.ndarray) -> np.ndarray:
        """Normalised inputs ``(B, L, F)`` only: for forecasting past the end of the data."""
        x = windows.gather_inputs(self.values, starts, self.input_length, self.feature_idx)
        return self._normalise(starts, x)[0]

    @property
    def window_relative(self) -> bool:
        return self.framing.norm == "window"

    def _normalise(self, starts: np.ndarray, x: np.ndarray, y: np.ndarray | None = None):
        """Framing steps 1-2: each window by its own statistics; targets minus the baseline."""
        f = self.framing
        if f.norm == "none" and f.residual == "none":
            return x, y
        loc, scale = self._window_stats(starts)  # (B, C)
        F, T = self.feature_idx, self.target_idx
        x = (x - loc[:, None, F]) / scale[:, None, F]
        if f.residual == "seasonal":
            x = self._seasonal_differences(starts, x, scale)
        x = x.astype(np.float32)
        if y is not None:
            y = (y - loc[:, None, T]) / scale[:, None, T] - self._base(starts, loc, scale)
            y = (y / self._residual_scale).astype(np.float32)
        return x, y

    def _seasonal_differences(self, starts: np.ndarray, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """A seasonal residual model reads what it forecasts: each target input column as its difference to the
        value one season earlier (rows before the window are read; never before the series' first row), in the
        window's units divided by the residual spread. Other input columns are unchanged."""
        m = self.framing.season
        rows = starts[:, None] + np.arange(self.input_length)  # (B, L)
        lo = np.array([s.lo for s in self.segments])[self.series_index(starts)]
        lag = np.maximum(rows - m, lo[:, None])
        r = self._residual_scale
        for j, pos in enumerate(self.framing.target_pos):
            if pos < 0:
                continue
            c = self.target_idx[j]
            diff = (self.values[rows, c] - self.values[lag, c]) / scale[:, None, c]  # (B, L): the window's loc cancels
            x[:, :, pos] = diff / (r[j] if isinstance(r, np.ndarray) else r)
        return x

    @property
    def _residual_scale(self) -> np.ndarray | float:
        """``(T,)`` the residual model's target spread (``Scaler.residual_scale``), or 1."""
        r = self.scaler.residual_scale
        return 1.0 if r is None else r[self.target_idx]

    def residual_spread(self, max_windows: int = 20_000) -> np.ndarray:
        """``(C,)`` root mean square of the residual targets (normalised target minus baseline) over the training
        windows (at most ``max_windows``, evenly spaced), per target column; 1 elsewhere. Floored at 1e-3: an
        exact baseline is not divided by 0."""
        out = np.ones(len(self.columns))
        starts = self.starts("train")
        if not len(starts):
            return out
        starts = starts[np.linspace(0, len(starts) - 1, min(len(starts), max_windows)).astype(int)]
        T = self.target_idx
        y = self.values[windows.target_rows(starts, self.input_length, self.horizon)][..., T]  # (B, H, T): no inputs
        loc, scale = self._window_stats(starts)
        resid = (y - loc[:, None, T]) / scale[:, None, T] - self._base(starts, loc, scale)  # (B, H, T)
        out[T] = np.maximum(np.sqrt(np.nanmean(resid.astype(np.float64) ** 2, axis=(0, 1))), 1e-3)
        return out

    def _base(self, starts: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The residual's baseline ``(B, H, T)``, normalised like each window's targets (zeros without one)."""
        if self.framing.residual == "none":
            return np.zeros((len(starts), self.horizon, len(self.target_idx)))
        series_lo = np.array([s.lo for s in self.segments])[self.series_index(starts)]
        rows = self.framing.base_rows(starts, self.input_length, self.horizon, series_lo)  # (B, H)
        T = self.target_idx
        return (self.values[rows][..., T] - loc[:, None, T]) / scale[:, None, T]

    def _window_stats(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(loc, scale)`` ``(B, C)`` of each window (framing.py), from the scaled values of its input rows."""
        last = self.values[windows.last_input_rows(starts, self.input_length)]  # (B, C)
        x = windows.gather_inputs(self.values, starts, self.input_length) if self.framing.norm == "instance" else None
        return self.framing.stats(x, last, self.target_idx, self.feature_idx)

    # ------------------------------------------------------------------ back to original units

    def invert(self, starts: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Model outputs ``(B, H, T, Q)`` -> original units ``(B, H, T, Q)`` (float64)."""
        pred = np.asarray(pred, dtype=np.float64)
        last_rows = windows.last_input_rows(starts, self.input_length)
        t = self.target_idx
        f = self.framing
        if f.norm != "none" or f.residual != "none":
            loc, scale = self._window_stats(starts)
            r = np.reshape(self._residual_scale, (1, 1, -1, 1)) if f.residual != "none" else 1.0
            pred = pred * r + self._base(starts, loc, scale)[..., None]
            pred = pred * scale[:, None, t, None] + loc[:, None, t, None]
        groups = self._scaler_groups(last_rows)
        shift = self.scaler.shift[groups][:, t][:, None, :, None]  # (B, 1, T, 1)
        scale = self.scaler.scale[groups][:, t][:, None, :, None]
        out = pred * scale + shift
        for j, col in enumerate(self.columns[i] for i in t):
            kind = self.transform.get(col, "none")
            if kind != "none":
                level = self.raw[last_rows, t[j]]  # (B,)
                out[:, :, j, :] = transforms.inverse(level[:, None], out[:, :, j, :], kind)
        return out

    def actual(self, starts: np.ndarray) -> np.ndarray:
        """Observed targets ``(B, H, T)`` in original units."""
        rows = windows.target_rows(starts, self.input_length, self.horizon)
        return self.raw[rows][..., self.target_idx]

    def filled(self, starts: np.ndarray) -> np.ndarray:
        """``(B, H, T)`` True where a target value was filled by the tool (a gap row, a missing cell): not observed,
        so never scored as an actual."""
        rows = windows.target_rows(starts, self.input_length, self.horizon)
        if self.frame.filled is None:
            return np.zeros((*rows.shape, len(self.target_idx)), dtype=bool)
        return self.frame.filled[rows]

    def _scaler_groups(self, rows: np.ndarray) -> np.ndarray:
        if self.scaler.groups == ["*"]:
            return np.zeros(len(rows), dtype=np.int64)
        seg = self.series_index(rows)
        lookup = np.array([self.scaler.groups.index(s.series) for s in self.segments])
        return lookup[seg]

    def timestamps(self, rows: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.time_values(rows))

    def time_values(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows),)`` datetime64 of the time column at ``rows``."""
        return self.frame.time_values()[np.asarray(rows)]

    def level_shift(self) -> dict[str, float]:
        """Per target: how far the test split's mean lies from the training split's, in training standard
        deviations (a level a model scaled on training statistics never saw)."""
        out = {}
        for j, col in zip(self.target_idx, self.targets):
            tr = np.concatenate([self.raw[slice(*s.bounds["train"]), j] for s in self.segments])
            te = np.concatenate([self.raw[slice(*s.bounds["test"]), j] for s in self.segments])
            std = np.nanstd(tr) if len(tr) else 0.0
            out[col] = float(abs(np.nanmean(te) - np.nanmean(tr)) / std) if len(te) and std > 0 else 0.0
        return out

    @property
    def targets(self) -> list[str]:
        return [self.columns[i] for i in self.target_idx]

    @property
    def features(self) -> list[str]:
        return [self.columns[i] for i in self.feature_idx]

    @property
    def network_features(self) -> list[str]:
        """The names of the columns the network reads (framing.py): the features, or with independent channels
        the channel's own value, the non-target inputs and one column per channel."""
        if not self.framing.independent:
            return self.features
        names = self.features
        return ["own value", *(names[i] for i in self.framing.other_pos), *(f"channel={t}" for t in self.targets)]

    def series_of(self, starts: np.ndarray) -> np.ndarray:
        names = np.array([s.series for s in self.segments], dtype=object)
        return names[self.series_index(starts)]


def split_rows(n: int, lo: int, cfg: Config, times: pd.Series, where: str) -> dict[str, tuple[int, int]]:
    s = cfg.data.split
    if s.val_start is not None:
        try:
            v, t = pd.Timestamp(s.val_start), pd.Timestamp(s.test_start)
        except (ValueError, TypeError) as e:
            raise DataError(
                f"cannot parse split timestamp ({e})", where=f"{where}: data.split", fix="use ISO dates like 2015-01-01"
            ) from None
        if not v < t:
            raise DataError(
                f"val_start {v} must come before test_start {t}",
                where=f"{where}: data.split",
                fix="swap or correct the dates",
            )
        tv = times.to_numpy()
        a = lo + int(np.searchsorted(tv, np.datetime64(v)))
        b = lo + int(np.searchsorted(tv, np.datetime64(t)))
    else:
        a = lo + int(round(n * s.train))
        b = a + int(round(n * s.val))
    return {"train": (lo, a), "val": (a, b), "test": (b, lo + n)}


def build(
    frame: Frame, cfg: Config, scaler: Scaler | None = None, check_splits: bool = True, train_all: bool = False
) -> SeriesData:
    """Transform, split and scale a frame; the scaler sees training rows only.

    Args:
        scaler: a saved scaler (from a run) to apply instead of fitting a new one.
        check_splits: refuse splits shorter than one window (off for forecasting).
        train_all: the training split runs to the end of every series (the final fit on every row); the
            validation and test splits stay where they are, for monitoring only.
    """
    if cfg.unsettled:
        cfg = settle(frame, cfg)
    where = str(frame.path)
    columns = frame.columns
    raw = frame.df[columns].to_numpy(dtype=np.float64)  # (N, C)
    transform = _resolve_transforms(cfg, columns, where)
    model = raw.copy()  # (N, C) transformed, not yet scaled
    segments: list[Segment] = []
    for sid, g in frame.df.groupby(SERIES, sort=False):
        lo, n = int(g.index[0]), len(g)
        who = f" of series {str(sid)!r}" if cfg.data.series_id else ""
        _transform_series(model, raw, lo, n, transform, frame, g, where, who)
        bounds = _series_bounds(sid, lo, g, frame, cfg, transform, where, check_splits)
        if train_all:
            bounds["train"] = (bounds["train"][0], lo + n)
        segments.append(Segment(str(sid), lo, lo + n, bounds))
    fitted = scaler is None
    if fitted:
        scaler = _fit_scaler(model, segments, frame, cfg, where)
    else:
        _check_scaler_knows(scaler, segments, where)
    data = assemble(cfg, frame, raw, _scaled(model, segments, scaler), transform, scaler, segments)
    if fitted and cfg.model.residual != "none":
        scaler.residual_scale = data.residual_spread()  # after the scaler: the spread is in its units
    return data


def assemble(
    cfg: Config, frame: Frame, raw: np.ndarray, values: np.ndarray, transform: dict, scaler: Scaler, segments: list
) -> SeriesData:
    """The ``SeriesData`` of a frame's rows once transformed, scaled and split (``build``, serve's fast path)."""
    columns = frame.columns
    return SeriesData(
        frame=frame,
        raw=raw,
        values=values,
        columns=columns,
        feature_idx=[columns.index(c) for c in frame.features],
        target_idx=[columns.index(c) for c in frame.targets],
        transform=transform,
        scaler=scaler,
        segments=segments,
        input_length=cfg.window.input_length,
        horizon=cfg.window.horizon,
        stride=cfg.window.stride,
        framing=framing_of(cfg, frame, columns),
        future_idx=[columns.index(c) for c in future_columns(cfg, frame)],
        n_future_calendar=2 * len(cfg.data.time_features) if cfg.data.future_time_features else 0,
    )


def framing_of(cfg: Config, frame: Frame, columns: list[str]) -> Framing:
    """The run's framing (framing.py) from its config and columns."""
    features = [columns.index(c) for c in frame.features]
    kind = cfg.data.scaling
    season = season_length(frame.frequency, cfg.data.season_length) if cfg.model.residual == "seasonal" else 1
    return Framing(
        norm=kind if kind in ("window", "instance") else "none",
        residual=cfg.model.residual,
        season=season,
        independent=cfg.model.channels == "independent",
        target_pos=tuple(
            features.index(columns.index(t)) if columns.index(t) in features else -1 for t in frame.targets
        ),
        n_inputs=len(features),
    )


def time_feature_values(times: pd.DatetimeIndex, names: list[str]) -> np.ndarray:
    """``(len(times), len(names))`` values of sin/cos calendar columns (``day_of_week_sin``) at ``times``."""
    out = np.zeros((len(times), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        feature, part = name.rsplit("_", 1)
        fn, period = PERIODS[feature]
        phase = 2 * np.pi * np.asarray(fn(pd.Series(times).dt), dtype="float64") / period
        out[:, j] = np.sin(phase) if part == "sin" else np.cos(phase)
    return out


def future_columns(cfg: Config, frame: Frame) -> list[str]:
    """Model columns known at the forecast steps: ``data.future`` (one-hot columns of a categorical one) and,
    with ``data.future_time_features``, the sin/cos columns of ``data.time_features``."""
    d = cfg.data
    out = [c for c in frame.columns if c in d.future or c.split("=", 1)[0] in d.future]
    if d.future_time_features:
        out += [f"{name}_{part}" for name in d.time_features for part in ("sin", "cos")]
    return out


def _transform_series(
    model, raw, lo: int, n: int, transform: dict, frame: Frame, g: pd.DataFrame, where: str, who: str = ""
) -> None:
    """Apply each column's transform to the rows ``lo .. lo+n-1`` of one series (``who``: " of series 'X'" in a
    file of several), in place in ``model``."""
    for j, col in enumerate(frame.columns):
        kind = transform[col]
        if kind == "none":
            continue
        seg = raw[lo : lo + n, j]
        if transforms.needs_positive(kind) and (seg <= 0).any():
            i = int(np.argmax(seg <= 0))
            raise DataError(
                f"{kind} needs positive values but column {col!r}{who} has {seg[i]:g} at {g[frame.time_column].iloc[i]}",
                where=f"{where}: data.transform.{col}",
                fix="use diff for series that reach zero or below"
                if kind != "log"
                else f"remove the log transform of {col!r} (data.scaling: window still follows its level)",
            )
        model[lo : lo + n, j] = transforms.forward(seg, kind)


def _series_bounds(
    sid, lo: int, g: pd.DataFrame, frame: Frame, cfg: Config, transform: dict, where: str, check_splits: bool
) -> dict[str, tuple[int, int]]:
    """Split rows of one series; with ``check_splits`` every split must hold at least one window: the
    training split ``input_length + horizon`` rows, validation and test ``horizon`` rows (their windows'
    inputs read the rows before them, :meth:`SeriesData.starts`)."""
    b = split_rows(len(g), lo, cfg, g[frame.time_column], where)
    if transforms.differences(transform):  # the first row has no predecessor to difference against
        b["train"] = (b["train"][0] + 1, b["train"][1])
    L, H = cfg.window.input_length, cfg.window.horizon
    for name in SPLITS if check_splits else ():
        a, z = b[name]
        need, why = (L + H, f"input_length + horizon = {L} + {H}") if name == "train" else (H, "horizon")
        if z - a < need:
            label = f" of series {sid!r}" if cfg.data.series_id else ""
            raise DataError(
                f"the {name} split{label} has {max(z - a, 0)} rows, fewer than {why} = {need}",
                where=f"{where}: data.split",
                fix="use more data, a larger split fraction, or a shorter window.input_length",
            )
    return b


def _fit_scaler(model: np.ndarray, segments: list[Segment], frame: Frame, cfg: Config, where: str) -> Scaler:
    """A scaler fitted on the training rows of every series (one per series when asked and there are several)."""
    train_bounds = [(s.series, *s.bounds["train"]) for s in segments]
    kind = cfg.data.scaling
    _check_constant(model, frame.columns, train_bounds, frame, kind, where)
    return Scaler.fit(
        kind, frame.columns, model, train_bounds, per_series=cfg.data.scale_per_series and len(segments) > 1
    )


def _check_scaler_knows(scaler: Scaler, segments: list[Segment], where: str) -> None:
    unknown = [s.series for s in segments if scaler.groups != ["*"] and s.series not in scaler.groups]
    if unknown:
        raise DataError(
            f"series {unknown[0]!r} was not seen in training, so it has no scaler",
            where=f"{where}: data.series_id",
            fix=f"use series the run was trained on: {', '.join(scaler.groups)}",
        )


def _scaled(model: np.ndarray, segments: list[Segment], scaler: Scaler) -> np.ndarray:
    """``(N, C)`` float32 model-space values: each series scaled by its scaler group."""
    values = np.empty(model.shape, dtype=np.float32)
    for s in segments:
        g = scaler.group_of(s.series) if scaler.groups != ["*"] else 0
        values[s.lo : s.hi] = scaler.transform(model[s.lo : s.hi], g)
    values[np.isnan(values)] = 0.0  # the undefined first difference; never a target or inside a train window
    return values


def _resolve_transforms(cfg: Config, columns: list[str], where: str) -> dict[str, str]:
    spec = dict(cfg.data.transform)
    every = spec.pop("*", None)
    out = {c: "none" for c in columns}
    if every:
        for t in cfg.data.target:
            out[t] = every
    for col, kind in spec.items():
        if col not in out:
            raise DataError(
                f"transform names column {col!r}, which is not a model column",
                where=f"{where}: data.transform.{col}",
                fix=f"use one of: {', '.join(columns)}",
            )
        out[col] = kind
    return out


def _check_constant(model, columns, train_bounds, frame: Frame, kind: str, where: str) -> None:
    if kind == "none":
        return
    rows = np.concatenate([np.arange(lo, hi) for _, lo, hi in train_bounds])
    x = model[rows]
    spread = np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
    for j, col in enumerate(columns):
        if spread[j] == 0 and col in frame.targets:
            raise DataError(
                f"target column {col!r} is constant ({x[0, j]:g}) in the training split: there is nothing to learn",
                where=f"{where}: column {col}",
                fix="pick a target that varies, or move the split so training sees variation",
            )


def settle(frame: Frame, cfg: Config) -> Config:
    """``cfg`` with its ``auto`` values decided for ``frame`` (:meth:`Config.settled`): the shape keys by the
    data's season, ``model.residual`` by the training rows (:func:`auto_residual` of the split built without a
    residual). :func:`build` settles an unsettled config itself; callers that keep the config (a run writes it)
    settle first."""
    season = season_length(frame.frequency, cfg.data.season_length)
    cfg = cfg.settled(season, time_features=frame.time_features)
    if cfg.model.residual == "auto":
        plain = build(frame, replace(cfg, model=replace(cfg.model, residual="none")))
        cfg = cfg.settled(season, auto_residual(plain, season)[0])
    return cfg


def auto_residual(data: SeriesData, season: int) -> tuple[str, dict[str, float]]:
    """What ``model.residual: auto`` means for ``data`` (:func:`metrics.residual_choice` of the naive MAEs over
    leads 1..horizon on the training rows of every series, each target divided by its spread on those rows so
    targets count alike), and those MAEs."""
    rows = [data.raw[lo:hi][:, data.target_idx] for lo, hi in data.bounds("train")]  # (n, T) per series
    spread = np.nanstd(np.concatenate(rows), axis=0) if rows else np.ones(len(data.target_idx))
    spread[~(spread > 0)] = 1.0
    maes = naive_maes([r / spread for r in rows], data.horizon, season)
    return residual_choice(maes), maes

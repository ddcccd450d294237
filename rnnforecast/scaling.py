"""Scalers fitted on the training split only, saved as JSON and inverted for every number shown."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, RunError

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Scaler:
    """Per-column affine scaler ``(x - shift) / scale``, one row of statistics per series group.

    ``shift`` and ``scale`` have shape ``(n_groups, n_columns)``; group 0 is used for every
    series when scaling is global.
    """

    kind: str  # standard | minmax | none | window | instance (both: standard, then per window, series.py)
    columns: list[str]
    shift: np.ndarray  # (G, C)
    scale: np.ndarray  # (G, C)
    groups: list[str]  # series ids, or ["*"] for one global scaler
    # (C,) a residual model's target spread (series.py, model.residual): the network forecasts the difference to
    # its baseline divided by this, so that a good baseline's small differences are not lost in the noise of the
    # first updates; fitted on the training windows; None without a residual
    residual_scale: np.ndarray | None = None
    # (G, C) the training rows' smallest and largest value, scaled: new data is far outside the training data only
    # beyond these (``far_outside``); None in a scaler saved before them
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        kind: str,
        columns: list[str],
        values: np.ndarray,
        train_bounds: Sequence[tuple[str, int, int]],
        per_series: bool,
    ) -> Scaler:
        """Fit on the rows of ``train_bounds`` (``(series, lo, hi)``) and nothing else."""
        groups = [sid for sid, _, _ in train_bounds] if per_series else ["*"]
        shift = np.zeros((len(groups), len(columns)))
        scale = np.ones((len(groups), len(columns)))
        low, high = np.zeros_like(shift), np.zeros_like(shift)
        for g, group in enumerate(groups):
            rows = np.concatenate([np.arange(lo, hi) for sid, lo, hi in train_bounds if group in ("*", sid)])
            x = values[rows].astype(np.float64)  # (n_train, C)
            if kind in ("standard", "window", "instance"):
                # Divide by the largest magnitude first: the squares of values near 1e200 overflow float64.
                big = np.nanmax(np.abs(x), axis=0)
                big = np.where(np.isfinite(big) & (big > 0), big, 1.0)
                shift[g] = np.nanmean(x / big, axis=0) * big
                std = np.nanstd(x / big, axis=0) * big
                scale[g] = np.where(std > 1e-12 * np.maximum(1.0, np.abs(shift[g])), std, 1.0)
            elif kind == "minmax":
                lo_, hi_ = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
                shift[g] = lo_
                scale[g] = np.where(hi_ - lo_ > 1e-12 * np.maximum(1.0, np.abs(lo_)), hi_ - lo_, 1.0)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: no range (NaN -> 0)
                low[g] = np.nan_to_num((np.nanmin(x, axis=0) - shift[g]) / scale[g])
                high[g] = np.nan_to_num((np.nanmax(x, axis=0) - shift[g]) / scale[g])
        scaler = cls(kind, list(columns), shift, scale, groups, low=low, high=high)
        bad = scaler.problem()
        if bad:
            raise DataError(
                f"cannot scale the data: {bad}", where="data.scaling", fix="check the column for extreme values"
            )
        return scaler

    def problem(self) -> str | None:
        """What makes this scaler unusable (wrong shapes, non-finite statistics, a scale of 0), or None."""
        shape = (len(self.groups), len(self.columns))
        if self.shift.shape != shape or self.scale.shape != shape:
            return (
                f"shift {self.shift.shape} and scale {self.scale.shape} must both have shape {shape} (groups, columns)"
            )
        for name, a in (("shift", self.shift), ("scale", self.scale)):
            if not np.isfinite(a).all():
                g, c = np.argwhere(~np.isfinite(a))[0]
                return f"the {name} of column {self.columns[c]!r} is {a[g, c]}"
        if (self.scale <= 0).any():
            g, c = np.argwhere(self.scale <= 0)[0]
            return f"the scale of column {self.columns[c]!r} is {self.scale[g, c]}, not positive"
        for name, a in (("low", self.low), ("high", self.high)):
            if a is not None and (a.shape != shape or not np.isfinite(a).all()):
                return f"{name} must hold finite numbers of shape {shape} (groups, columns)"
        r = self.residual_scale
        if r is not None and (r.shape != (len(self.columns),) or not (np.isfinite(r) & (r > 0)).all()):
            return f"residual_scale must hold {len(self.columns)} positive numbers, received {r.tolist()}"
        return None

    FAR = 10.0  # scaled units beyond the training data (10 standard deviations, or 10 training ranges)

    def far_outside(self, scaled: np.ndarray, group: int = 0, col: int | None = None) -> np.ndarray:
        """Which scaled values of column ``col`` lie more than ``FAR`` training scales beyond the training rows'
        range (the smallest and largest value the scaler was fitted on; a scaler saved without them: beyond its mean,
        or its 0 .. 1 for minmax): a model forecasting from them extrapolates. A value as extreme as one the
        training rows held is never far. Always False for ``none`` (no statistics to compare with)."""
        with np.errstate(invalid="ignore"):
            if self.kind != "none" and col is not None and self.low is not None and self.high is not None:
                return (scaled < self.low[group, col] - self.FAR) | (scaled > self.high[group, col] + self.FAR)
            if self.kind == "minmax":  # the training rows span 0 .. 1
                return (scaled < -self.FAR) | (scaled > 1 + self.FAR)
            if self.kind == "none":
                return np.zeros(np.shape(scaled), dtype=bool)
            return np.abs(scaled) > self.FAR

    def unscale_one(self, scaled: float, group: int, col: int) -> float:
        """One scaled value of column ``col`` back in the units the scaler was fitted in."""
        return float(scaled) * float(self.scale[group, col]) + float(self.shift[group, col])

    def fitted_on(self, group: int, col: int) -> str:
        """The training statistics of one column, in words."""
        shift, scale = self.shift[group, col], self.scale[group, col]
        if self.kind == "minmax":
            return f"training range {shift:.4g} .. {shift + scale:.4g}"
        return f"training mean {shift:.4g}, standard deviation {scale:.4g}"

    def group_of(self, series: str) -> int:
        return 0 if self.groups == ["*"] else self.groups.index(series)

    def transform(
        self, x: np.ndarray, group: int | np.ndarray = 0, cols: Sequence[int] | slice = slice(None)
    ) -> np.ndarray:
        """Scaled values; refused when float32 (what the model computes in) cannot hold them."""
        out = (x - self.shift[group][..., cols]) / self.scale[group][..., cols]
        with np.errstate(invalid="ignore"):
            over = np.abs(out) > FLOAT32_MAX  # NaN (a missing first difference) compares False: allowed
        if over.any():
            c = np.argwhere(over)[0][-1]
            name = np.asarray(self.columns, dtype=object)[cols][c] if over.ndim else "?"
            raise DataError(
                f"column {name!r} reaches {out[over].flat[0]:.3g} after scaling, beyond float32's range",
                where="data.scaling",
                fix=f"express {name!r} in larger units, or use data.scaling: standard",
            )
        return out

    def inverse(
        self, x: np.ndarray, group: int | np.ndarray = 0, cols: Sequence[int] | slice = slice(None)
    ) -> np.ndarray:
        return x * self.scale[group][..., cols] + self.shift[group][..., cols]

    def to_json(self) -> dict:
        out = {
            "kind": self.kind,
            "columns": self.columns,
            "groups": self.groups,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }
        if self.residual_scale is not None:
            out["residual_scale"] = self.residual_scale.tolist()
        if self.low is not None and self.high is not None:
            out["low"], out["high"] = self.low.tolist(), self.high.tolist()
        return out

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        r = np.asarray(d["residual_scale"], float) if d.get("residual_scale") is not None else None
        shift, scale = np.asarray(d["shift"], float), np.asarray(d["scale"], float)
        low, high = (np.asarray(d[k], float) if d.get(k) is not None else None for k in ("low", "high"))
        return cls(d["kind"], d["columns"], shift, scale, d["groups"], r, low, high)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Scaler:
        """Read and check a saved scaler; a damaged file is a RunError naming it."""
        try:
            scaler = cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunError(
                f"cannot read the scaler ({type(e).__name__})", where=str(path), fix="re-train the run"
            ) from None
        bad = scaler.problem()
        if bad:
            raise RunError(f"damaged scaler: {bad}", where=str(path), fix="re-train the run")
        return scaler

"""Scalers fitted on the training split only, saved as JSON and inverted for every number shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Scaler:
    """Per-column affine scaler ``(x - shift) / scale``, one row of statistics per series group.

    ``shift`` and ``scale`` have shape ``(n_groups, n_columns)``; group 0 is used for every
    series when scaling is global.
    """

    kind: str  # standard | minmax | none | window (window = standard, then relative to each window's last value)
    columns: list[str]
    shift: np.ndarray  # (G, C)
    scale: np.ndarray  # (G, C)
    groups: list[str]  # series ids, or ["*"] for one global scaler

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
        for g, group in enumerate(groups):
            rows = np.concatenate([np.arange(lo, hi) for sid, lo, hi in train_bounds if group in ("*", sid)])
            x = values[rows].astype(np.float64)  # (n_train, C)
            if kind in ("standard", "window"):
                shift[g] = np.nanmean(x, axis=0)
                std = np.nanstd(x, axis=0)
                scale[g] = np.where(std > 1e-12 * np.maximum(1.0, np.abs(shift[g])), std, 1.0)
            elif kind == "minmax":
                lo_, hi_ = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
                shift[g] = lo_
                scale[g] = np.where(hi_ - lo_ > 1e-12 * np.maximum(1.0, np.abs(lo_)), hi_ - lo_, 1.0)
        return cls(kind, list(columns), shift, scale, groups)

    def group_of(self, series: str) -> int:
        return 0 if self.groups == ["*"] else self.groups.index(series)

    def transform(
        self, x: np.ndarray, group: int | np.ndarray = 0, cols: Sequence[int] | slice = slice(None)
    ) -> np.ndarray:
        return (x - self.shift[group][..., cols]) / self.scale[group][..., cols]

    def inverse(
        self, x: np.ndarray, group: int | np.ndarray = 0, cols: Sequence[int] | slice = slice(None)
    ) -> np.ndarray:
        return x * self.scale[group][..., cols] + self.shift[group][..., cols]

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "columns": self.columns,
            "groups": self.groups,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        return cls(d["kind"], d["columns"], np.asarray(d["shift"], float), np.asarray(d["scale"], float), d["groups"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Scaler:
        return cls.from_json(json.loads(path.read_text()))

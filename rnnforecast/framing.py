"""What happens to a window between the scaled series and the network, and back: pure numpy, written once.

Training, evaluation, prediction (numpy or Keras) and export all go through these functions, so a
forecast is de-normalised exactly as its window was normalised::

    scaled window x (B, L, F), targets y (B, H, T)
      1. per-window normalisation (data.scaling):
           window    x - x[last]                                   (loc = last value, scale = 1)
           instance  (x - mean(x)) / sqrt(var(x) + 1e-5)           (RevIN, Kim et al. 2022; targets only)
      2. residual (model.residual): y - base, base = persistence (the last input row) or seasonal naive (the target
         row moved back by whole seasons; may read rows before the window), normalised like the window
      3. channels (model.channels: independent): one sequence per target c:
           [x[..., c], the non-target inputs, one-hot(c)]  (B*T, L, 1 + E + T); y -> (B*T, H, 1)
    network output (B*T | B, H, 1 | T, Q) -> unfold -> + base -> * scale + loc -> original units (series.py)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import windows

EPS = 1e-5  # RevIN's variance epsilon: a flat window is not divided by 0


@dataclass(frozen=True)
class Framing:
    """How windows are framed for the network.

    Args:
        norm: ``none`` | ``window`` (relative to the last value, every input column) | ``instance``
            (each target column by its window's mean and standard deviation).
        residual: ``none`` | ``persistence`` | ``seasonal``.
        season: steps per season for ``seasonal`` (at most ``input_length``).
        independent: one sequence per target channel.
        target_pos: position of each target among the input columns (-1: not an input).
        n_inputs: input columns F.
    """

    norm: str
    residual: str
    season: int
    independent: bool
    target_pos: tuple[int, ...]
    n_inputs: int

    @property
    def other_pos(self) -> list[int]:
        """Input columns that are not targets (exogenous: calendar, other measurements), in order."""
        own = set(self.target_pos)
        return [i for i in range(self.n_inputs) if i not in own]

    @property
    def network_inputs(self) -> int:
        """Columns of one sequence the network reads: F, or 1 + E + T with independent channels."""
        if not self.independent:
            return self.n_inputs
        return 1 + len(self.other_pos) + len(self.target_pos)

    @property
    def history_extra(self) -> int:
        """Rows a forecast reads before its window: one season for a seasonal residual (its inputs are differences
        to the season before), else 0."""
        return self.season if self.residual == "seasonal" else 0

    @property
    def network_targets(self) -> int:
        return 1 if self.independent else len(self.target_pos)

    # ------------------------------------------------------------------ 1. per-window normalisation

    def stats(self, x: np.ndarray, last: np.ndarray, target_idx: list[int], feature_idx: list[int]):
        """``(loc, scale)`` each ``(B, C)`` over all model columns C, from the window's own values.

        Args:
            x: ``(B, L, C)`` scaled values of every model column over each window's input rows.
            last: ``(B, C)`` scaled values at each window's last input row.
        """
        loc = np.zeros(last.shape, dtype=np.float64)
        scale = np.ones(last.shape, dtype=np.float64)
        if self.norm == "window":
            loc = last.astype(np.float64)
        elif self.norm == "instance":
            t = list(target_idx)
            xt = x[..., t].astype(np.float64)  # (B, L, T)
            loc[:, t] = xt.mean(axis=1)
            scale[:, t] = np.sqrt(xt.var(axis=1) + EPS)
        return loc, scale

    def loss_weights(self, scale: np.ndarray, power: int) -> np.ndarray | None:
        """Per-window loss weights that measure the training loss in the scaler's units, as RevIN does (it
        de-normalises the forecast inside the model and compares it with the globally scaled target): an error
        ``e`` in a window's own units is ``scale * e`` in the scaler's, so its squared error weighs ``scale**2`` and
        its absolute (or pinball) error ``scale``. Without the weights a flat window (small ``scale``) would count
        as much as a volatile one in loss units and far more in the units the forecast is scored in.

        Args:
            scale: ``(B, T)`` each window's scale per target (``stats``); 1 outside ``instance``.
            power: 2 for mse and huber, 1 for mae and the pinball loss.
        Returns ``None`` (every weight 1) unless ``norm`` is ``instance``; else ``(B, 1, T)``, or ``(B*T, 1, 1)``
        with independent channels (folded like the targets), broadcast over the horizon by Keras.
        """
        if self.norm != "instance":
            return None
        w = np.asarray(scale, dtype=np.float64) ** power  # (B, T)
        if self.independent:
            return w.reshape(-1, 1, 1).astype(np.float32)  # b-major, as ``fold`` orders the sequences
        return w[:, None, :].astype(np.float32)

    # ------------------------------------------------------------------ 2. residual baseline

    def base_rows(self, starts: np.ndarray, input_length: int, horizon: int, series_lo: np.ndarray) -> np.ndarray:
        """``(B, H)`` rows the baseline copies (``windows.seasonal_rows``, as metrics.py's seasonal naive): the last
        input row (persistence), or each target row moved back by whole seasons, which may lie before the window."""
        if self.residual == "persistence":
            return np.repeat(windows.last_input_rows(starts, input_length)[:, None], horizon, axis=1)
        return windows.seasonal_rows(starts, input_length, horizon, self.season, series_lo)

    # ------------------------------------------------------------------ 3. channels

    def fold(self, inputs: dict, y: np.ndarray | None = None):
        """Network inputs (and targets ``(B*T, H, 1)``) from window inputs ``{"past": (B, L, F), ...}``."""
        if not self.independent:
            return inputs, y
        past = inputs["past"]
        b, steps, _ = past.shape
        n_t = len(self.target_pos)
        own = np.moveaxis(past[..., list(self.target_pos)], -1, 1)[..., None]  # (B, T, L, 1)
        other = np.broadcast_to(past[:, None, :, self.other_pos], (b, n_t, steps, len(self.other_pos)))
        onehot = np.broadcast_to(np.eye(n_t, dtype=past.dtype)[None, :, None, :], (b, n_t, steps, n_t))
        seq = np.concatenate([own, other, onehot], axis=-1).reshape(b * n_t, steps, -1)  # (B*T, L, 1+E+T)
        out = {"past": seq.astype(past.dtype)}
        if "future" in inputs:
            out["future"] = np.repeat(inputs["future"], n_t, axis=0)  # (B*T, H, Fu): every channel sees them
        if y is not None:
            y = np.moveaxis(y, -1, 1).reshape(b * n_t, y.shape[1], 1)  # (B*T, H, 1)
        return out, y

    def unfold(self, out: np.ndarray) -> np.ndarray:
        """Network outputs ``(B*T, H, 1, Q)`` -> ``(B, H, T, Q)`` (unchanged without independent channels)."""
        out = np.asarray(out)
        if not self.independent:
            return out
        n_t = len(self.target_pos)
        seqs, h, _, q = out.shape
        return np.moveaxis(out.reshape(seqs // n_t, n_t, h, q), 1, 2)  # (B, H, T, Q)

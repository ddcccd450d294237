"""Seconds per training step of SegRNN's network: this project's segment layer (Keras, the configured backend)
beside SegRNN's own PyTorch code (lss-1138/SegRNN, ``models/SegRNN.py``), at the same shapes.

PyTorch is not a dependency of this project, so the two sides run in their own environments; run them one after
the other on an idle machine (a second process on the cores makes both slower, unevenly)::

    python -m bench.ltsf.segment_speed keras --horizon 336 --units 512                    # this project's env
    python bench/ltsf/segment_speed.py torch --horizon 336 --units 512 --segrnn PATH/SegRNN  # an env with torch

Both train the ETTh1 setting's network (GRU, one layer, ``channels: independent`` over C = 7 channels, segments
of 24 steps, L = 96, the decoder's input [position | channel]; dropout 0.5 and a linear head, as SegRNN's L = 96
script) with Adam and an MSE loss on seeded random windows, ``--batch`` windows a step (B*C sequences), and print
the median of ``--steps`` timed steps after two untimed ones (compilation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

try:
    from bench.ltsf.segrnn_check import segrnn_model
except ImportError:  # run as a script in SegRNN's environment: this file's folder is on sys.path
    from segrnn_check import segrnn_model

CHANNELS, LOOKBACK, SEGMENT = 7, 96, 24


def _windows(batch: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(batch, LOOKBACK, CHANNELS)).astype(np.float32),
        rng.normal(size=(batch, horizon, CHANNELS)).astype(np.float32),
    )


def _median_seconds(step, steps: int) -> float:
    for _ in range(2):  # compilation, first-call allocation: untimed
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def keras_step_seconds(horizon: int, units: int, batch: int, steps: int) -> float:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    from rnnforecast.framing import Framing
    from rnnforecast.segments import SegmentSpec, layer_class

    spec = SegmentSpec(
        "gru", (units,), SEGMENT, LOOKBACK, horizon, 1 + CHANNELS, context=CHANNELS,
        encoder_context=False, decoder_input="concat", init="torch",
    )  # fmt: skip
    past = keras.Input((LOOKBACK, 1 + CHANNELS))
    states = layer_class()(spec.__dict__, dropout=0.5, seed=0)(past)
    model = keras.Model(past, keras.layers.Dense(SEGMENT)(states))  # (B*C, M, S), cropped to H by the loss here
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    x, y = _windows(batch, horizon)
    framing = Framing("window", "none", 0, independent=True, target_pos=tuple(range(CHANNELS)), n_inputs=CHANNELS)
    inputs, y = framing.fold({"past": x}, y)  # (B*C, L, 1 + C): each channel's values and its one-hot; (B*C, H, 1)
    folded = inputs["past"]
    target = np.zeros((len(folded), spec.n_out * SEGMENT), np.float32)  # zeros beyond H: the head's cropped steps
    target[:, :horizon] = y[..., 0]
    target = target.reshape(len(folded), spec.n_out, SEGMENT)
    return _median_seconds(lambda: model.train_on_batch(folded, target), steps)


def torch_step_seconds(horizon: int, units: int, batch: int, steps: int, segrnn: str) -> float:
    shapes = dict(seq_len=LOOKBACK, pred_len=horizon, enc_in=CHANNELS, d_model=units, seg_len=SEGMENT)
    model = segrnn_model(segrnn, **shapes)
    import torch

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a) for a in _windows(batch, horizon))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()

    return _median_seconds(step, steps)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["keras", "torch"])
    p.add_argument("--horizon", type=int, default=336)
    p.add_argument("--units", type=int, default=512)
    p.add_argument("--batch", type=int, default=256, help="windows per step (SegRNN's L = 96 script: 256)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--segrnn", help="a checkout of lss-1138/SegRNN (torch side)")
    args = p.parse_args(argv)
    if min(args.horizon, args.units, args.batch, args.steps) < 1:
        p.error("--horizon, --units, --batch and --steps must be positive")
    if args.side == "torch":
        if not args.segrnn:
            p.error("torch: --segrnn PATH (a checkout of lss-1138/SegRNN) is required")
        seconds = torch_step_seconds(args.horizon, args.units, args.batch, args.steps, args.segrnn)
        where = "SegRNN's code (PyTorch)"
    else:
        seconds = keras_step_seconds(args.horizon, args.units, args.batch, args.steps)
        where = f"rnnforecast (Keras on {os.environ['KERAS_BACKEND']})"
    epoch = seconds * int(np.ceil((8640 - LOOKBACK - args.horizon + 1) / args.batch))
    print(
        f"{where}: H={args.horizon} D={args.units} batch {args.batch} windows x {CHANNELS} channels: "
        f"{seconds * 1000:.0f} ms per training step (median of {args.steps}), ~{epoch:.0f} s per ETTh1 epoch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

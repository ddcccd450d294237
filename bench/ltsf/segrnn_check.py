"""Is a trained ``segment_layout: segrnn`` run SegRNN's own network? Its weights, copied into the PyTorch
model of SegRNN's repository (lss-1138/SegRNN, ``models/SegRNN.py``), must give the same forecast.

Two steps, because PyTorch is not a dependency of this project (run the second one in any environment with
torch and numpy, such as the one SegRNN's own ``run_longExp.py`` runs in)::

    python -m bench.ltsf.segrnn_check dump RUN_DIR weights.npz          # this project's environment
    python bench/ltsf/segrnn_check.py check weights.npz --segrnn PATH/SegRNN   # an environment with torch

``dump`` writes the run's segment-layer and head weights, random windows (B, L, C) in the scaler's units and the
run's Keras forecast of them; ``check`` loads the weights into ``Model`` of SegRNN's code (GRU gates reordered:
Keras [z, r, h], PyTorch [r, z, n]) and prints the largest difference. The run must be a GRU of one layer with
``channels: independent``, no calendar or other inputs (SegRNN's ``channel_id: 1`` model), as the ETTh1 configs are.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def dump(run_dir: str, out: str, batch: int = 5, seed: int = 0) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    from rnnforecast import fsio
    from rnnforecast.framing import Framing
    from rnnforecast.segments import custom_objects

    if os.path.lexists(out):
        sys.exit(f"{out} exists: dump writes a new file only; give another name or remove it yourself")
    model = keras.saving.load_model(f"{run_dir}/model.keras", custom_objects=custom_objects(), compile=False)
    layer, head = model.get_layer("segments"), model.get_layer("head")
    spec = layer.spec
    if spec.cell != "gru" or len(spec.units) != 1 or not spec.concatenated or spec.n_inputs != 1 + spec.context:
        sys.exit(f"{run_dir}: not SegRNN's model (one GRU layer, independent channels, no other inputs): {spec}")
    w = {name: np.asarray(v) for (name, _), v in zip(spec.weight_shapes(), layer.get_weights(), strict=True)}
    w["head_kernel"], w["head_bias"] = (np.asarray(a) for a in head.get_weights())
    c, length = spec.context, spec.input_length
    x = np.random.default_rng(seed).normal(size=(batch, length, c)).astype(np.float32)  # (B, L, C)
    # the run's framing: each channel relative to its last value, one sequence per channel with its one-hot
    framing = Framing("window", "none", 0, independent=True, target_pos=tuple(range(c)), n_inputs=c)
    past, _ = framing.fold({"past": x - x[:, -1:, :]})
    forecast = framing.unfold(model(past, training=False))  # (B, H, C, 1)
    y = forecast[..., 0] + x[:, -1:, :]  # (B, H, C)
    with fsio.atomic_path(out) as tmp, open(tmp, "wb") as f:  # all or nothing, at exactly `out`
        np.savez(f, x=x, y=y, segment_length=spec.segment_length, **w)
    print(f"{out}: {len(w)} arrays, windows {x.shape}, forecast {y.shape}")


def _gates(k: np.ndarray) -> np.ndarray:
    """Keras' GRU columns [z | r | h] -> PyTorch's rows [r; z; n]."""
    z, r, h = np.split(k, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1).T


def segrnn_model(segrnn: str, *, seq_len: int, pred_len: int, enc_in: int, d_model: int, seg_len: int):
    """``Model`` of SegRNN's code at ``segrnn`` (a checkout of lss-1138/SegRNN), as its L = 96 script builds it: a
    GRU, the PMF decoder, channel ids, dropout 0.5, no RevIN, torch seeded 0. A path without SegRNN exits in one line
    (before torch is imported)."""
    if not os.path.isfile(os.path.join(segrnn, "models", "SegRNN.py")):
        sys.exit(f"--segrnn {segrnn}: no models/SegRNN.py there; give a checkout of lss-1138/SegRNN")
    sys.path.insert(0, segrnn)
    import torch
    from models.SegRNN import Model  # SegRNN's repository

    torch.manual_seed(0)  # its initial weights (and, in training, its dropout) seeded
    cfg = argparse.Namespace(
        seq_len=seq_len, pred_len=pred_len, enc_in=enc_in, d_model=d_model, dropout=0.5, rnn_type="gru",
        dec_way="pmf", seg_len=seg_len, channel_id=1, revin=0,
    )  # fmt: skip
    return Model(cfg)


def check(npz: str, segrnn: str, tolerance: float = 1e-4) -> float:
    a = np.load(npz)
    seq_len, c = a["x"].shape[1:]
    horizon, seg_len = a["y"].shape[1], int(a["segment_length"])
    if seq_len % seg_len or horizon % seg_len:  # this layer drops the oldest steps and crops the last segment
        sys.exit(
            f"{npz}: input length {seq_len} and horizon {horizon} must be multiples of the segment length {seg_len}: "
            "SegRNN's code cuts and forecasts whole segments only; check a run whose lengths are"
        )
    model = segrnn_model(
        segrnn, seq_len=seq_len, pred_len=horizon, enc_in=c, d_model=a["embed_kernel"].shape[1], seg_len=seg_len
    ).eval()
    import torch

    t = lambda v: torch.tensor(np.ascontiguousarray(v, np.float32))  # noqa: E731
    with torch.no_grad():
        model.valueEmbedding[0].weight.copy_(t(a["embed_kernel"].T))
        model.valueEmbedding[0].bias.copy_(t(a["embed_bias"]))
        model.rnn.weight_ih_l0.copy_(t(_gates(a["kernel_0"])))
        model.rnn.weight_hh_l0.copy_(t(_gates(a["recurrent_kernel_0"])))
        model.rnn.bias_ih_l0.copy_(t(_gates(a["bias_0"][0][None]).ravel()))
        model.rnn.bias_hh_l0.copy_(t(_gates(a["bias_0"][1][None]).ravel()))
        model.pos_emb.copy_(t(a["position"]))
        model.channel_emb.copy_(t(a["context_kernel"]))
        model.predict[1].weight.copy_(t(a["head_kernel"].T))
        model.predict[1].bias.copy_(t(a["head_bias"]))
        y = model(t(a["x"])).numpy()
    diff = float(np.abs(y - a["y"]).max())
    verdict = "the same network" if diff <= tolerance else "NOT the same network"
    print(
        f"max |SegRNN (PyTorch) - rnnforecast (Keras)| = {diff:.2e} (forecasts up to {np.abs(a['y']).max():.2f}): {verdict}"
    )
    return diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="a run's weights, windows and forecast -> .npz")
    d.add_argument("run_dir")
    d.add_argument("out")
    k = sub.add_parser("check", help="the .npz through SegRNN's PyTorch model")
    k.add_argument("npz")
    k.add_argument("--segrnn", required=True, help="a checkout of lss-1138/SegRNN")
    args = p.parse_args(argv)
    if args.cmd == "dump":
        dump(args.run_dir, args.out)
        return 0
    return 0 if check(args.npz, args.segrnn) <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

"""bench/ltsf: the shipped ETTh1 configs score the papers' protocol, checked on an ETTh1-shaped synthetic file.

The real ETTh1.csv is not in the repository (the bench takes its path); a file with its header, start time and
hourly rows stands in. Checked independently: the split dates of every shipped config are rows 8640 and 11520
of a file starting 2016-07-01 00:00 (counted here by hand); one tiny training through the bench's own ``train``
scores 2881 - H test windows and the persistence MSE the bench's numpy reference computes on its own windows; an
edited config trains again rather than reusing an earlier run of the same horizon and seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.ltsf import reference, run, segment_speed, segrnn_check
from conftest import DATA, run_cli, write_config

COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def _etth1_like(path, rows: int = 14400 + 24) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(rows)
    data = {"date": pd.date_range("2016-07-01 00:00:00", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S")}
    for k, c in enumerate(COLUMNS):  # a daily cycle, a drift and noise, each column its own
        data[c] = 5 + k + (1 + k / 3) * np.sin(2 * np.pi * (t + 3 * k) / 24) + t / 4000 + rng.normal(0, 0.3, rows)
    pd.DataFrame(data).round(3).to_csv(path, index=False)


@pytest.mark.parametrize("horizon", run.HORIZONS)
def test_each_shipped_config_splits_where_the_protocol_does(horizon):
    cfg = yaml.safe_load((run.HERE / f"etth1_h{horizon}.yaml").read_text())
    start = pd.Timestamp("2016-07-01 00:00:00")
    assert pd.Timestamp(cfg["data"]["split"]["val_start"]) == start + pd.Timedelta(hours=8640)
    assert pd.Timestamp(cfg["data"]["split"]["test_start"]) == start + pd.Timedelta(hours=11520)
    assert cfg["window"] == {"input_length": 96, "horizon": horizon}
    assert cfg["data"]["target"] == COLUMNS and cfg["training"]["final_fit"] is False


@pytest.mark.slow
def test_a_tiny_training_scores_the_protocols_windows_and_persistence(tmp_path, monkeypatch):
    _etth1_like(tmp_path / "ETTh1.csv")
    work = tmp_path / "work"
    work.mkdir()
    lines = (tmp_path / "ETTh1.csv").read_text().splitlines(keepends=True)
    csv = work / "ETTh1_14400.csv"
    csv.write_text("".join(lines[: reference.ROWS + 1]))  # what prepare() writes (it checks the real file's sha256)
    tiny = ["training.epochs=1", "model.units=[4]", "training.batch_size=512"]
    got = run.train(96, 0, csv, work, tiny)  # raises SystemExit unless 2881 - 96 test windows were scored
    want = reference.persistence(str(csv), 96)
    assert got["persistence_mse"] == pytest.approx(want["mse"], rel=1e-6)
    # by hand, from the raw file: persistence repeats each test window's last input row; z-units by the train rows
    raw = pd.read_csv(csv)[COLUMNS].to_numpy()
    mu, sd = raw[:8640].mean(0), raw[:8640].std(0)
    z = (raw - mu) / sd
    errs = [z[s + 96 : s + 192] - z[s + 95] for s in range(11520 - 96, 14400 - 96 - 96 + 1)]
    assert len(errs) == 2881 - 96
    assert got["persistence_mse"] == pytest.approx(float(np.mean(np.square(errs))), rel=1e-5)
    assert 0 < got["mse"] < 10 and got["seconds"] is not None
    # the same config and overrides reuse the run; other overrides, or an edited config file, train again
    again = run.train(96, 0, csv, work, tiny)
    assert again["run"] == got["run"] and again["seconds"] is None
    other = run.train(96, 0, csv, work, [*tiny, "training.learning_rate=0.01"])
    assert other["run"] != got["run"] and other["seconds"] is not None
    edited = tmp_path / "configs"
    edited.mkdir()
    text = (run.HERE / "etth1_h96.yaml").read_text()
    assert "  batch_size: 64\n" in text
    (edited / "etth1_h96.yaml").write_text(text.replace("  batch_size: 64\n", "  batch_size: 32\n"))
    monkeypatch.setattr(run, "HERE", edited)
    changed = run.train(96, 0, csv, work, tiny)
    assert changed["run"] not in (got["run"], other["run"]) and changed["seconds"] is not None


def test_the_bench_knows_etth1_and_etth2_by_their_sha256_and_refuses_other_files(tmp_path, monkeypatch):
    _etth1_like(tmp_path / "anything.csv")
    with pytest.raises(SystemExit) as refused:
        run.prepare(tmp_path / "anything.csv", tmp_path / "work")
    assert "neither ETTh1.csv's (f18de3ad269c...) nor ETTh2.csv's (a3dc2c597b92...)" in str(refused.value)
    assert not (tmp_path / "work").exists()  # nothing written for a file it refused
    # the same file under ETTh2's digest (computed here with hashlib's other interface) is ETTh2, whatever its name
    import hashlib

    h = hashlib.new("sha256")
    h.update((tmp_path / "anything.csv").read_bytes())
    monkeypatch.setitem(run.SHA256, "ETTh2", h.hexdigest())
    out = run.prepare(tmp_path / "anything.csv", tmp_path / "work")
    assert out.name == "ETTh2_14400.csv"
    lines = out.read_text().splitlines()
    assert len(lines) == 14401 and lines[0] == "date," + ",".join(COLUMNS)
    assert lines[-1].startswith("2018-02-20 23:00:00,")  # row 14399: 2016-07-01 + 14399 hours, counted by hand
    assert set(run.PUBLISHED) == set(run.SHA256) == {"ETTh1", "ETTh2"}


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _segrnn_numpy(a: dict) -> np.ndarray:
    """SegRNN's ``Model.forward`` (models/SegRNN.py, pmf decoder, channel_id 1) written from its code and PyTorch's
    GRU equations, on the weights ``segrnn_check.check`` hands PyTorch: gates in PyTorch's [r, z, n] order."""
    x = a["x"].astype(np.float64)  # (B, L, C)
    b, length, c = x.shape
    s, d = int(a["segment_length"]), a["embed_kernel"].shape[1]
    w_ih, w_hh = segrnn_check._gates(a["kernel_0"]), segrnn_check._gates(a["recurrent_kernel_0"])  # (3D, D)
    b_ih, b_hh = segrnn_check._gates(a["bias_0"][0][None]).ravel(), segrnn_check._gates(a["bias_0"][1][None]).ravel()

    def gru(inp, h):  # torch.nn.GRU, one step
        gi, gh = inp @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r, z = _sigmoid(gi[:, :d] + gh[:, :d]), _sigmoid(gi[:, d : 2 * d] + gh[:, d : 2 * d])
        n = np.tanh(gi[:, 2 * d :] + r * gh[:, 2 * d :])
        return (1 - z) * n + z * h

    last = x[:, -1:, :]
    seg = (x - last).transpose(0, 2, 1).reshape(b * c, length // s, s)  # (BC, N, S)
    h = np.zeros((b * c, d))
    for t in range(length // s):
        h = gru(np.maximum(seg[:, t] @ a["embed_kernel"] + a["embed_bias"], 0), h)
    m = a["position"].shape[0]
    pos = np.concatenate(
        [np.repeat(a["position"][None], c, 0), np.repeat(a["context_kernel"][:, None, :], m, 1)], axis=-1
    ).reshape(c * m, d)  # (C*M, D): channel-major, then segment
    hy = gru(np.tile(pos, (b, 1)), np.repeat(h, m, axis=0))  # (B*C*M, D)
    y = (hy @ a["head_kernel"] + a["head_bias"]).reshape(b, c, m * s)[:, :, : a["y"].shape[1]]
    return y.transpose(0, 2, 1) + last


@pytest.mark.slow
def test_segrnn_check_dumps_what_segrnns_own_equations_forecast(tmp_path):
    """``segrnn_check dump`` of a tiny segrnn-layout run: the weights, reordered for PyTorch as ``check`` does,
    through SegRNN's forward written out in numpy, give the run's Keras forecast; a ``keras``-layout run is refused."""
    cfg = {
        "data": {"path": str(DATA / "weather.csv"), "target": ["temp_max", "temp_min", "wind"], "features": ["temp_max", "temp_min", "wind"]},
        "window": {"input_length": 12, "horizon": 6},
        "model": {"cell": "gru", "units": [6], "segment_length": 4, "channels": "independent", "dropout": 0.5,
                  "segment_layout": "segrnn"},
        "training": {"epochs": 2, "batch_size": 64, "final_fit": False},
        "output": {"plots": False},
    }  # fmt: skip
    cfg["data"]["scaling"] = "window"
    run_dir = tmp_path / "run"
    done = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(run_dir), "-q")
    assert done.returncode == 0, done.stderr
    segrnn_check.dump(str(run_dir), str(tmp_path / "w.npz"))
    before = (tmp_path / "w.npz").read_bytes()
    with pytest.raises(SystemExit) as exit_:  # an existing file is never overwritten
        segrnn_check.dump(str(run_dir), str(tmp_path / "w.npz"))
    assert "w.npz exists: dump writes a new file only" in str(exit_.value.code)
    assert (tmp_path / "w.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left behind
    a = dict(np.load(tmp_path / "w.npz"))
    assert a["x"].shape == (5, 12, 3) and a["y"].shape == (5, 6, 3)
    assert np.abs(a["y"] - a["x"][:, -1:, :]).max() > 1e-3  # a forecast that is not the last value
    np.testing.assert_allclose(_segrnn_numpy(a), a["y"], atol=1e-5)
    a["kernel_0"] = a["kernel_0"][:, np.r_[6:12, 0:6, 12:18]]  # z and r swapped: no longer the same network
    assert np.abs(_segrnn_numpy(a) - a["y"]).max() > 1e-3

    cfg["model"]["segment_layout"] = "keras"
    other = tmp_path / "keras"
    assert run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(other), "-q").returncode == 0
    with pytest.raises(SystemExit, match="not SegRNN's model"):
        segrnn_check.dump(str(other), str(tmp_path / "k.npz"))


@pytest.mark.parametrize("seeds", ["0", "-2", "x", ",,", "1,b"])
def test_the_bench_refuses_seeds_that_name_no_training_before_reading_data(seeds, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(["--data", str(tmp_path / "absent.csv"), "--seeds", seeds])
    assert e.value.code == 2 and "give a count of seeds" in capsys.readouterr().err


def test_segment_speed_times_the_keras_side_and_refuses_what_it_cannot_run(capsys):
    """The speed bench's Keras side trains the ETTh1 network (tiny here) and prints its step time; the torch side
    needs SegRNN's checkout, and sizes must be positive: argparse errors, exit 2, before anything runs."""
    assert segment_speed.main(["keras", "--horizon", "48", "--units", "8", "--batch", "4", "--steps", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("rnnforecast (Keras on ") and "H=48 D=8 batch 4 windows x 7 channels" in line
    assert float(line.split(": ")[-1].split(" ms")[0]) >= 0
    for argv in (["torch"], ["keras", "--units", "0"], ["keras", "--steps", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            segment_speed.main(argv)
        assert exit_.value.code == 2


def test_a_path_without_segrnn_is_refused_in_one_line_before_torch_is_needed(tmp_path, capsys):
    """Both tools that run SegRNN's code build it in one place (``segrnn_check.segrnn_model``); a --segrnn that is
    not a checkout of it exits with the path and the fix, whether torch is installed or not."""
    (tmp_path / "models").mkdir()  # a folder, but no models/SegRNN.py
    for call in (
        lambda: segment_speed.main(["torch", "--segrnn", str(tmp_path)]),
        lambda: segrnn_check.segrnn_model(
            str(tmp_path / "no"), seq_len=96, pred_len=96, enc_in=7, d_model=8, seg_len=24
        ),
    ):
        with pytest.raises(SystemExit) as exit_:
            call()
        assert "no models/SegRNN.py there; give a checkout of lss-1138/SegRNN" in str(exit_.value.code)


def test_check_refuses_lengths_segrnns_code_cannot_cut_before_torch_is_needed(tmp_path):
    """SegRNN's code cuts the input and the forecast into whole segments; this layer drops the oldest steps and crops
    the last segment. A dump with L = 12 or H = 6 over segments of 4 (or 5) is refused in one line, not a torch error."""
    for length, horizon, seg in ((12, 6, 4), (12, 10, 5)):
        path = tmp_path / f"w{horizon}.npz"
        np.savez(path, x=np.zeros((2, length, 3)), y=np.zeros((2, horizon, 3)), segment_length=seg)
        with pytest.raises(SystemExit) as exit_:
            segrnn_check.check(str(path), "/nonexistent")
        assert f"input length {length} and horizon {horizon} must be multiples of the segment length {seg}" in str(
            exit_.value.code
        )

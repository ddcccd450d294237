"""framing.py: per-window normalisation (RevIN), residual baselines and independent channels, by hand and end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from rnnforecast import backend, metrics, series, windows
from rnnforecast.config import load_config
from rnnforecast.data import load_source
from rnnforecast.framing import EPS, Framing
from rnnforecast.numpy_model import predict_windows

backend.activate("auto")


def test_base_rows_by_hand():
    f = Framing("none", "seasonal", 3, False, (0,), 1)
    # window start 10, L=6: last input row 15; season 3: lead h copies row 15 + h - 3*ceil(h/3)
    assert f.base_rows(np.array([10]), 6, 5, np.array([0])).tolist() == [[13, 14, 15, 13, 14]]
    # a series starting at row 14: rows before it are never read (clamped to its first row, as metrics.py does)
    assert f.base_rows(np.array([10]), 6, 2, np.array([14])).tolist() == [[14, 14]]
    p = Framing("none", "persistence", 1, False, (0,), 1)
    assert p.base_rows(np.array([10, 20]), 6, 3, np.array([0, 0])).tolist() == [[15] * 3, [25] * 3]


def test_instance_stats_are_each_windows_own_mean_and_std():
    f = Framing("instance", "none", 1, False, (0, 2), 3)
    x = np.array([[[1.0, 10.0, 2.0], [3.0, 20.0, 2.0], [5.0, 30.0, 2.0]]])  # (1, 3, 3); target columns 0 and 2
    loc, scale = f.stats(x, x[:, -1], target_idx=[0, 2], feature_idx=[0, 1, 2])
    # column 0: mean 3, population variance (4 + 0 + 4) / 3; column 2 is flat: sqrt(EPS), never 0
    assert loc.tolist() == [[3.0, 0.0, 2.0]]
    np.testing.assert_allclose(scale, [[np.sqrt(8 / 3 + EPS), 1.0, np.sqrt(EPS)]], rtol=1e-12)


def test_fold_lays_out_one_sequence_per_target_and_unfold_inverts_it():
    f = Framing("none", "none", 1, True, (0, 2), 3)  # targets at input positions 0 and 2, column 1 exogenous
    past = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)  # (B=2, L=2, F=3)
    y = np.arange(2 * 4 * 2, dtype=np.float32).reshape(2, 4, 2)  # (B, H=4, T=2)
    inputs, yf = f.fold({"past": past, "future": np.ones((2, 4, 1), np.float32)}, y)
    seq = inputs["past"]
    assert seq.shape == (4, 2, 1 + 1 + 2) and f.network_inputs == 4 and f.network_targets == 1
    # sequence 1 = window 0, channel 1 (input column 2): [own value, exogenous column 1, one-hot (0, 1)]
    assert seq[1].tolist() == [[2, 1, 0, 1], [5, 4, 0, 1]]
    assert seq[2].tolist() == [[6, 7, 1, 0], [9, 10, 1, 0]]  # window 1, channel 0
    assert inputs["future"].shape == (4, 4, 1)
    assert yf[:, :, 0].tolist() == [y[0, :, 0].tolist(), y[0, :, 1].tolist(), y[1, :, 0].tolist(), y[1, :, 1].tolist()]
    out = yf[..., None]  # a network that forecasts its targets exactly: (B*T, H, 1, 1)
    np.testing.assert_array_equal(f.unfold(out)[..., 0], y)


def _data(tmp_path, scaling="instance", channels="independent", residual="none", frame=None, input_length=14, **model):
    path = tmp_path / "weather.csv"
    (frame if frame is not None else pd.read_csv(DATA / "weather.csv")).to_csv(path, index=False)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        f"data: {{path: {path}, target: [temp_max, temp_min], features: [temp_max, wind, temp_min], "
        f"scaling: {scaling}, season_length: 7}}\n"
        f"window: {{input_length: {input_length}, horizon: 9}}\n"
        f"model: {{cell: gru, units: [6], channels: {channels}, residual: {residual}"
        + "".join(f", {k}: {v}" for k, v in model.items())
        + "}\n"
    )
    cfg = load_config(cfg_path)
    return cfg, series.build(load_source(cfg), cfg)


@pytest.mark.parametrize("scaling", ["instance", "window"])
@pytest.mark.parametrize("residual", ["none", "seasonal", "persistence"])
def test_normalised_targets_invert_exactly_to_the_actuals(tmp_path, scaling, residual):
    """A network that outputs the framed targets exactly gets back the actuals in original units (RevIN inverse)."""
    _, data = _data(tmp_path, scaling=scaling, residual=residual)
    starts = data.starts("test")
    inputs, y = data.model_batch(starts)  # (B*T, H, 1) framed targets
    back = data.invert(starts, data.unfold(y[..., None]))[..., 0]  # (B, H, T)
    np.testing.assert_allclose(back, data.actual(starts), rtol=1e-5, atol=1e-4)
    assert not np.allclose(y[:, 0, 0], 0)  # the framing did something: targets are not the raw values


def _zero_network(cfg, data):
    from rnnforecast.models import build_model

    model = build_model(cfg.model, 14, data.framing.network_inputs, 9, data.framing.network_targets, seed=0, context=2)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("segments,input_length", [(None, 14), (7, 14), (None, 5)])
def test_a_silent_network_on_a_seasonal_residual_is_seasonal_naive(tmp_path, segments, input_length):
    """Residual to the seasonal baseline, network output 0: the forecast is the seasonal-naive baseline of
    metrics.py (a separate implementation on the original-unit series), with horizon 9 > season 7, and with a
    window (5) shorter than the season (the baseline then reads rows before the window)."""
    extra = {"segment_length": segments} if segments else {}
    cfg, data = _data(tmp_path, scaling="instance", residual="seasonal", input_length=input_length, **extra)
    starts = data.starts("test")
    got = data.invert(starts, predict_windows(_zero_network(cfg, data), data, starts))[..., 0]  # (B, H, T)
    seg_lo = np.array([s.lo for s in data.segments])[data.series_index(starts)]
    raw_t = data.raw[:, data.target_idx]
    base = metrics.baseline_forecasts(raw_t, starts, input_length, 9, 7, seg_lo)["seasonal_naive"]
    np.testing.assert_allclose(got, base[..., 0], rtol=1e-5, atol=1e-4)
    # and the seasonal rows really are one and two seasons back
    rows = windows.seasonal_rows(starts, input_length, 9, 7, seg_lo)
    np.testing.assert_allclose(got[:, 8, 0], data.raw[rows[:, 8], data.target_idx[0]], rtol=1e-5)


@pytest.mark.parametrize("segments", [None, 7])
def test_an_independent_channel_ignores_what_the_other_channel_holds(tmp_path, segments):
    extra = {"segment_length": segments} if segments else {}
    frame = pd.read_csv(DATA / "weather.csv")
    (tmp_path / "a").mkdir()
    cfg, data = _data(tmp_path / "a", frame=frame, **extra)
    model = _random_network(cfg, data)
    other = frame.copy()
    other["temp_min"] = np.random.default_rng(3).normal(50, 20, len(other))  # channel 2 replaced by noise
    (tmp_path / "b").mkdir()
    _, data_b = _data(tmp_path / "b", frame=other, **extra)
    starts = data.starts("test")
    a = data.invert(starts, predict_windows(model, data, starts))
    b = data_b.invert(starts, predict_windows(model, data_b, starts))
    np.testing.assert_allclose(a[:, :, 0], b[:, :, 0], rtol=1e-5, atol=1e-5)  # temp_max's forecast unchanged
    assert np.abs(a[:, :, 1] - b[:, :, 1]).max() > 0.1  # temp_min's moved with its own history


def _random_network(cfg, data):
    from rnnforecast.models import build_model

    model = build_model(cfg.model, 14, data.framing.network_inputs, 9, data.framing.network_targets, seed=0, context=2)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_mixed_channels_do_depend_on_the_other_channel(tmp_path):
    """The control for the test above: with mixed channels, noise in temp_min moves temp_max's forecast."""
    frame = pd.read_csv(DATA / "weather.csv")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg, data = _data(tmp_path / "a", frame=frame, channels="mixed")
    other = frame.copy()
    other["temp_min"] = np.random.default_rng(3).normal(50, 20, len(other))
    _, data_b = _data(tmp_path / "b", frame=other, channels="mixed")
    model = _random_network(cfg, data)
    starts = data.starts("test")
    a = data.invert(starts, predict_windows(model, data, starts))
    b = data_b.invert(starts, predict_windows(model, data_b, starts))
    assert np.abs(a[:, :, 0] - b[:, :, 0]).max() > 0.01


def test_validate_points_at_instance_scaling_when_the_test_level_moved(tmp_path):
    from conftest import run_cli

    n = 600
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 24) + np.where(t >= 510, 6.0, 0.0)  # the test split (last 15 %) jumps by 6
    frame = pd.DataFrame({"time": pd.date_range("2021-01-01", periods=n, freq="h"), "y": y})
    frame.to_csv(tmp_path / "jump.csv", index=False)
    for scaling, hinted in (("standard", True), ("instance", False)):
        cfg = tmp_path / f"{scaling}.yaml"
        cfg.write_text(f"data: {{path: jump.csv, time_column: time, target: y, scaling: {scaling}}}\n")
        done = run_cli("validate", str(cfg))
        assert done.returncode == 0, done.stderr
        # train std of a sine is 1/sqrt(2): the jump of 6 is 6 * sqrt(2) = 8.5 standard deviations (minus the
        # test's own sine mean)
        line = next((ln for ln in (done.stdout + done.stderr).splitlines() if "training standard deviations" in ln), "")
        assert bool(line) == hinted, done.stdout
        if hinted:
            assert "'y' lies 8." in line and "data.scaling: instance" in line


@pytest.mark.parametrize(
    "channels,loss,quantiles",
    [
        ("independent", "mse", None),
        ("mixed", "mae", None),
        ("independent", "huber", None),
        ("mixed", "mse", [0.1, 0.5, 0.9]),
    ],
)
def test_instance_scaling_measures_the_loss_in_the_scalers_units_as_revin_does(tmp_path, channels, loss, quantiles):
    """RevIN de-normalises the forecast inside the model, so its loss is the error in the globally scaled units. With
    ``scaling: instance`` the network forecasts in each window's own units; the per-window weights (scale**2 for
    squared errors, scale for absolute and pinball ones) must make Keras' validation loss equal that error, computed
    here by hand from the raw file: z-scores from the training rows (population std), each window's mean and
    sqrt(var + EPS) of its target inputs, the network's output de-normalised with them."""
    from rnnforecast import fit as T
    from rnnforecast.models import build_model, model_quantiles

    cfg, data = _data(tmp_path, channels=channels)
    cfg = cfg.replace(**{"training.loss": loss, **({"intervals.method": "quantile"} if quantiles else {})})
    if quantiles:
        cfg = cfg.replace(**{"intervals.levels": [0.8]})
    qs = model_quantiles(cfg)
    assert (qs is not None) == bool(quantiles)
    n_t = 2
    independent = channels == "independent"
    model = build_model(
        cfg.model,
        14,
        data.framing.network_inputs,
        9,
        data.framing.network_targets,
        seed=3,
        quantiles=qs,
        context=n_t if independent else 0,
    )
    T.compile_model(model, cfg)
    starts = data.starts("val", stride=1)
    ds = T.WindowDataset(data, starts, 64, weight_power=T.weight_power(cfg))
    got = model.evaluate(ds, verbose=0, return_dict=True)["loss"]

    raw = pd.read_csv(DATA / "weather.csv")[["temp_max", "temp_min"]].to_numpy(np.float64)
    lo, hi = data.segments[0].bounds["train"]
    z = (raw - raw[lo:hi].mean(0)) / raw[lo:hi].std(0)
    x = z[starts[:, None] + np.arange(14)]  # (B, 14, T) the target inputs
    mean, sd = x.mean(1), np.sqrt(x.var(1) + EPS)  # (B, T)
    y = z[starts[:, None] + 14 + np.arange(9)]  # (B, 9, T)
    out = data.unfold(model.predict(data.model_inputs(starts), verbose=0))  # (B, 9, T, Q) in window units
    pred = out * sd[:, None, :, None] + mean[:, None, :, None]
    err = y[..., None] - pred
    if quantiles:
        q = np.array(qs)
        want = np.mean(np.maximum(q * err, (q - 1) * err))
    elif loss == "mse":
        want = np.mean(err**2)
    elif loss == "mae":
        want = np.mean(np.abs(err))
    else:  # huber (delta 1) in the window's units, weighted by scale**2: the squared error where |e| <= 1 there
        e = err[..., 0] / sd[:, None, :]
        h = np.where(np.abs(e) <= 1, 0.5 * e**2, np.abs(e) - 0.5)
        want = np.mean(h * sd[:, None, :] ** 2)
    assert got == pytest.approx(want, rel=2e-4)
    # the weights matter here: the windows' scales differ, so the unweighted loss is another number
    assert sd.std() / sd.mean() > 0.1
    plain = T.WindowDataset(data, starts, 64)
    assert model.evaluate(plain, verbose=0, return_dict=True)["loss"] != pytest.approx(want, rel=0.02)


def test_only_instance_scaling_weighs_the_loss(tmp_path):
    for scaling in ("window", "standard"):
        _, data = _data(tmp_path, scaling=scaling)
        assert data.loss_weights(data.starts("val"), 2) is None
    _, data = _data(tmp_path, channels="independent")
    starts = data.starts("val")[:3]
    w = data.loss_weights(starts, 2)  # (B*T, 1, 1): window-major like the folded targets
    _, scale = data._window_stats(starts)
    want = scale[:, data.target_idx] ** 2  # (3, 2)
    assert w.shape == (6, 1, 1)
    np.testing.assert_allclose(
        w[:, 0, 0], [want[0, 0], want[0, 1], want[1, 0], want[1, 1], want[2, 0], want[2, 1]], rtol=1e-6
    )


@pytest.mark.slow
def test_instance_scaling_trains_and_its_history_holds_only_scores_in_the_scalers_units(tmp_path):
    """Through the real training loop: history.csv's val_loss is the MSE in the scaler's units, recomputed here by
    hand from the saved (best-epoch) model's forecasts in original units; no side score in the windows' own units
    (there a flat window's error is divided by about sqrt(1e-5): a val_mse of 4095 appeared on ETTh1)."""
    from rnnforecast import pipeline
    from rnnforecast.forecaster import Forecaster

    cfg, data = _data(tmp_path, channels="independent")
    cfg = cfg.replace(**{"training.loss": "mse", "training.epochs": 3, "training.final_fit": False})
    cfg = cfg.replace(**{"output.plots": False})
    result = pipeline.train(cfg, config_path=str(tmp_path / "c.yaml"), run_dir=str(tmp_path / "run"), quiet=True)
    hist = pd.read_csv(result.run_dir / "history.csv")
    assert [c for c in hist.columns if c != "learning_rate"] == ["epoch", "loss", "val_loss"]
    f = Forecaster.load(result.run_dir)
    starts = data.starts("val", stride=1)
    pred = data.invert(starts, predict_windows(f.model, data, starts))[..., 0]  # (B, H, T) original units
    raw = pd.read_csv(DATA / "weather.csv")[["temp_max", "temp_min"]].to_numpy(np.float64)
    lo, hi = data.segments[0].bounds["train"]
    err = (pred - data.actual(starts)) / raw[lo:hi].std(0)  # the scaler's units
    best = int(hist["val_loss"].idxmin())
    assert hist["val_loss"].iloc[best] == pytest.approx(np.mean(err**2), rel=1e-3)

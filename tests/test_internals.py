"""inspect_model writes every promised plot and an inspect.json with the numbers behind them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnforecast.config import ModelConfig
from rnnforecast.internals import MAX_WINDOWS, inspect_model, subsample
from rnnforecast.models import build_model

L, F = 6, 2
PNG = b"\x89PNG\r\n\x1a\n"


def _model(cell, units, **kwargs):
    import keras

    keras.utils.set_random_seed(0)
    return build_model(ModelConfig(cell=cell, units=units, **kwargs), L, F, horizon=2, n_targets=1, seed=0)


def _windows(n=20):
    return np.random.default_rng(0).normal(size=(n, L, F)).astype("float32")  # (N, L, F)


CASES = {
    "lstm": (["lstm", [3, 2]], ["lstm_0", "lstm_1"], ["hidden", "cell_state", "gates"]),
    "gru": (["gru", [3]], ["gru_0"], ["hidden", "gates"]),
    "simple_rnn": (["simple_rnn", [3]], ["simple_rnn_0"], ["hidden"]),
    "dense": (["dense", [4]], [], []),
}


@pytest.mark.parametrize("case", CASES)
def test_inspect_writes_every_plot_and_json(case, tmp_path):
    (cell, units), layer_names, per_layer = CASES[case]
    out = tmp_path / "inspect"  # does not exist yet: inspect_model creates it
    result = inspect_model(_model(cell, units), _windows(), ["load", "temp"], out, window_index=3, step_seconds=3600)

    expected = {f"{kind}_{name}.png" for name in layer_names for kind in per_layer}
    expected |= {"gradient_flow.png", "saliency.png"} | ({"gate_saturation.png"} if cell in ("lstm", "gru") else set())
    assert {p.name for p in out.glob("*.png")} == expected
    for name in expected:
        assert (out / name).read_bytes()[:8] == PNG, name

    saved = json.loads((out / "inspect.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["files"]) == expected | {"inspect.json"}
    assert saved["window_index"] == 3 and saved["n_windows"] == 20
    assert len(saved["norm_per_step"]) == L and saved["steps_before_forecast"] == list(range(-L, 0))
    assert np.asarray(saved["saliency"]).shape == (L, F)
    assert saved["ratio"] == pytest.approx(saved["norm_per_step"][0] / saved["norm_per_step"][-1])
    assert [layer["name"] for layer in saved["layers"]] == layer_names
    for layer, u in zip(saved["layers"], units):
        gates = {"lstm": {"input_gate", "forget_gate", "output_gate"}, "gru": {"update_gate", "reset_gate"}}
        assert set(layer["saturation"]) == gates.get(cell, set())
        for frac in layer["saturation"].values():
            assert len(frac["low"]) == len(frac["high"]) == u
            assert all(0 <= lo + hi <= 1 for lo, hi in zip(frac["low"], frac["high"]))


def test_subsample_is_even_and_bounded():
    assert subsample(5).tolist() == [0, 1, 2, 3, 4]
    rows = subsample(10_000)
    assert len(rows) == MAX_WINDOWS and rows[0] == 0 and rows[-1] == 9_999
    assert np.ptp(np.diff(rows)) <= 1  # evenly spaced up to rounding


def test_bad_window_index_and_feature_names_are_refused(tmp_path):
    model = _model("gru", [2])
    with pytest.raises(ValueError, match=r"`window_index` must be in \[0, 19\]. Received: window_index=20"):
        inspect_model(model, _windows(), ["load", "temp"], tmp_path, window_index=20)
    with pytest.raises(ValueError, match="must name the 2 input features"):
        inspect_model(model, _windows(), ["load"], tmp_path)

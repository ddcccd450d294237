"""segments.py: the segment recurrence by hand, against Keras' own cells, through the CLI; and the new config keys."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DATA, run_cli, write_config
from rnnforecast import backend
from rnnforecast.config import TrainingConfig
from rnnforecast.segments import SegmentSpec, layer_class, numpy_forward

PROBE = """
import sys
from rnnforecast.cli import main
try:
    main(sys.argv[1:])
finally:
    print("MODULES", sorted(m for m in ("keras", "jax", "tensorflow") if m in sys.modules), file=sys.stderr)
"""

backend.activate("auto")


def _weights(spec: SegmentSpec, rng) -> dict:
    return {name: rng.normal(0, 0.5, shape) for name, shape in spec.weight_shapes()}


def test_segment_recurrence_equals_a_hand_computation():
    """SimpleRNN, linear, one unit; L=4 in segments of 2, H=2 (one output segment)."""
    spec = SegmentSpec("simple_rnn", (1,), 2, 4, 2, 1, activation="linear")
    w = {
        "embed_kernel": np.array([[0.5], [0.5]]),  # a segment's embedding: relu(mean of its two steps)
        "embed_bias": np.array([0.0]),
        "kernel_0": np.array([[2.0]]),
        "recurrent_kernel_0": np.array([[0.5]]),
        "bias_0": np.array([0.25]),
        "position": np.array([[1.0]]),
    }
    x = np.array([[[1.0], [2.0], [3.0], [4.0]]])
    # embeddings 1.5 and 3.5; h1 = 2*1.5 + 0.25 = 3.25; h2 = 2*3.5 + 0.5*3.25 + 0.25 = 8.875
    # decoder: one step from h2 with input position 1.0: 2*1 + 0.5*8.875 + 0.25 = 6.6875
    states = []
    out = numpy_forward(spec, w, x, states)
    assert states[0][0, :, 0].tolist() == [3.25, 8.875]
    assert out.tolist() == [[[6.6875]]]
    layer = layer_class()(spec.__dict__)
    layer.build((None, 4, 1))
    layer.set_weights([w[name].astype("float32") for name, _ in spec.weight_shapes()])
    assert np.asarray(layer(x.astype("float32"))).tolist() == [[[6.6875]]]


def test_values_only_encoder_and_concatenated_decoder_input_by_hand():
    """SegRNN's layout: the segment embedding reads the values, not the channel one-hot; the decoder's input is
    [position | channel embedding]. SimpleRNN, linear, 2 units; L=4 in segments of 2, one value + 2 one-hot columns."""
    spec = SegmentSpec(
        "simple_rnn", (2,), 2, 4, 2, 3, context=2, activation="linear", encoder_context=False, decoder_input="concat"
    )
    assert dict(spec.weight_shapes())["embed_kernel"] == (2, 2)  # 2 steps x 1 value column
    assert dict(spec.weight_shapes())["position"] == (1, 1) and dict(spec.weight_shapes())["context_kernel"] == (2, 1)
    w = {
        "embed_kernel": np.array([[0.5, 0.0], [0.5, 1.0]]),
        "embed_bias": np.zeros(2),
        "kernel_0": np.eye(2),
        "recurrent_kernel_0": 0.5 * np.eye(2),
        "bias_0": np.zeros(2),
        "position": np.array([[1.0]]),
        "context_kernel": np.array([[10.0], [20.0]]),
    }
    x = np.array([[[1.0, 0, 1], [2.0, 0, 1], [3.0, 0, 1], [4.0, 0, 1]]])
    # embeddings [1.5, 2] and [3.5, 4]; h1 = [1.5, 2]; h2 = [3.5, 4] + 0.5 h1 = [4.25, 5]
    # decoder input [position 1 | channel 2's embedding 20]; output [1, 20] + 0.5 h2 = [3.125, 22.5]
    states = []
    out = numpy_forward(spec, w, x, states)
    assert states[0][0].tolist() == [[1.5, 2.0], [4.25, 5.0]]
    assert out.tolist() == [[[3.125, 22.5]]]
    other = x.copy()
    other[0, :, 1:] = [1, 0]  # the other channel: the same encoder states, the decoder's channel half changes
    states = []
    assert numpy_forward(spec, w, other, states).tolist() == [[[3.125, 12.5]]]
    assert states[0][0].tolist() == [[1.5, 2.0], [4.25, 5.0]]
    layer = layer_class()(spec.__dict__)
    layer.build((None, 4, 3))
    layer.set_weights([w[name].astype("float32") for name, _ in spec.weight_shapes()])
    assert np.asarray(layer(x.astype("float32"))).tolist() == [[[3.125, 22.5]]]


@pytest.mark.parametrize(
    "units, context, decoder_input",
    [((6,), 0, "sum"), ((6,), 3, "sum"), ((6,), 3, "concat"), ((7, 2), 3, "concat"), ((1,), 3, "concat")],
)
def test_the_decoders_first_product_equals_its_assembled_input_times_the_kernel(units, context, decoder_input):
    """The first decoder layer multiplies the positions once and each window's context once; the result equals
    assembling every window's (M, D) input, [position | context] or their sum, and multiplying that (odd D: halves 3
    and 4; D = 1: the sum, as ``concatenated`` says)."""
    from rnnforecast.segments import NumpyOps, _biases, _decoder_input_product

    spec = SegmentSpec("gru", units, 3, 9, 10, 2 + context, context=context, decoder_input=decoder_input)
    rng = np.random.default_rng(4)
    w = {name: rng.normal(size=shape) for name, shape in spec.weight_shapes()}
    x = rng.normal(size=(5, 9, 2 + context))
    bias = _biases(spec, w["bias_0"])[0]
    got = _decoder_input_product(NumpyOps, spec, w, x, w["kernel_0"], bias)
    dec = np.repeat(w["position"][None], 5, axis=0)  # (B, M, D or D // 2), each window's own copy
    if context:
        ctx = x[:, -1, 2:] @ w["context_kernel"]  # (B, D or D - D // 2)
        ctx = np.repeat(ctx[:, None, :], spec.n_out, axis=1)
        dec = np.concatenate([dec, ctx], axis=-1) if spec.concatenated else dec + ctx
    assert dec.shape == (5, spec.n_out, units[0])
    expected = np.stack([d @ w["kernel_0"] + bias for d in dec])
    np.testing.assert_allclose(np.broadcast_to(got, expected.shape), expected, rtol=1e-12, atol=1e-12)
    assert got.shape == ((5,) if context else (1,)) + expected.shape[1:]  # no context: one product for the batch
    assert numpy_forward(spec, w, x).shape == (5, spec.n_out, units[-1])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"encoder_context": False},
        {"decoder_input": "concat"},
        {"init": "torch"},
        {"init": "torch", "encoder_context": False, "decoder_input": "concat"},
    ],
)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_numpy_forward_equals_the_keras_layer_in_every_layout(cell, options):
    """The layer as Keras builds and initialises it (seeded), replayed in numpy: equal at 1e-5 (odd D: the
    concatenated decoder input's halves are 4 and 5)."""
    spec = SegmentSpec(cell, (9, 4), 3, 8, 7, 4, context=2, **options)
    layer = layer_class()(spec.__dict__, seed=5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 8, 4)).astype("float32")
    x[..., 2:] = np.eye(2)[np.arange(6) % 2][:, None, :]
    layer.build((None, 8, 4))
    w = {name: np.asarray(v) for name, v in zip([n for n, _ in spec.weight_shapes()], layer.weights, strict=True)}
    assert [w[n].shape for n, _ in spec.weight_shapes()] == [s for _, s in spec.weight_shapes()]
    np.testing.assert_allclose(numpy_forward(spec, w, x), np.asarray(layer(x)), rtol=1e-5, atol=1e-5)


def test_a_one_unit_embedding_adds_position_and_channel_and_an_old_layer_keeps_its_layout():
    """D = 1 cannot be split into halves: the decoder's input is the sum. A layer saved before the layout keys
    existed (its spec without them) is rebuilt as it was: Keras' layout, one-hot in the embedding."""
    spec = SegmentSpec("gru", (1,), 3, 6, 4, 3, context=2, encoder_context=False, decoder_input="concat", init="torch")
    assert not spec.concatenated and dict(spec.weight_shapes())["position"] == (2, 1)
    layer = layer_class()(spec.__dict__, seed=1)
    layer.build((None, 6, 3))
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
    w = {name: np.asarray(v) for name, v in layer.named.items()}
    np.testing.assert_allclose(numpy_forward(spec, w, x), np.asarray(layer(x)), rtol=1e-5, atol=1e-6)
    old = {k: v for k, v in spec.__dict__.items() if k not in ("encoder_context", "decoder_input", "init")}
    old_layer = layer_class()(old)
    old_layer.build((None, 6, 3))
    assert (old_layer.spec.encoder_context, old_layer.spec.decoder_input, old_layer.spec.init) == (True, "sum", "keras")
    assert tuple(old_layer.named["embed_kernel"].shape) == (9, 1)  # 3 steps x (1 value + 2 one-hot columns)


def test_torch_initialisation_is_pytorchs():
    """``init: torch``: U(-a, a), a = 1/sqrt(fan-in) for weights and biases (nn.Linear, nn.GRU: fan-in = hidden
    units), the position and channel embeddings N(0, 1) (SegRNN's torch.randn)."""
    spec = SegmentSpec("gru", (64,), 4, 16, 40, 5, context=3, init="torch", encoder_context=False)
    layer = layer_class()(spec.__dict__, seed=2)
    layer.build((None, 16, 5))
    w = {name: np.asarray(v) for name, v in zip([n for n, _ in spec.weight_shapes()], layer.weights, strict=True)}
    for name, a in [
        ("embed_kernel", 1 / math.sqrt(8)),
        ("embed_bias", 1 / math.sqrt(8)),
        ("kernel_0", 1 / 8),
        ("recurrent_kernel_0", 1 / 8),
        ("bias_0", 1 / 8),
    ]:
        assert np.abs(w[name]).max() <= a, name
        assert np.abs(w[name]).max() > 0.9 * a and abs(w[name].std() - a / math.sqrt(3)) < 0.15 * a, name
    both = np.concatenate([w["position"].ravel(), w["context_kernel"].ravel()])  # 10 x 64 + 3 x 64 draws
    assert abs(both.mean()) < 0.1 and 0.9 < both.std() < 1.1


@pytest.mark.parametrize(
    "cell,options",
    [("gru", {"reset_after": True}), ("gru", {"reset_after": False}), ("lstm", {}), ("simple_rnn", {})],
)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_encoder_states_equal_keras_own_layer(cell, options, activation):
    """The encoder's states over segments are what Keras' own GRU/LSTM/SimpleRNN layer computes on the embedded
    segments with the same weights: the step formulas are Keras', not a copy of ours."""
    import keras

    spec = SegmentSpec(cell, (5,), 3, 10, 4, 2, activation=activation, **options)
    rng = np.random.default_rng(0)
    w = _weights(spec, rng)
    x = rng.normal(size=(3, 10, 2))
    states = []
    numpy_forward(spec, w, x, states)
    seg = x[:, 1:].reshape(3, 3, 6)  # the oldest 10 - 3*3 = 1 step is dropped
    embedded = np.maximum(seg @ w["embed_kernel"] + w["embed_bias"], 0.0)
    cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}[cell]
    ref = cls(5, activation=activation, return_sequences=True, **options)
    ref.build((None, 3, 5))
    ref.set_weights([w["kernel_0"], w["recurrent_kernel_0"], w["bias_0"]])
    np.testing.assert_allclose(states[0], np.asarray(ref(embedded.astype("float32"))), rtol=1e-4, atol=1e-5)


def _multi_target_config(tmp_path, **model) -> str:
    cfg = {
        "name": "seg",
        "data": {
            "path": str(DATA / "weather.csv"),
            "target": ["temp_max", "temp_min"],
            "categorical": ["weather"],
            "scaling": "instance",
        },
        "window": {"input_length": 14, "horizon": 5},
        "model": {"cell": "gru", "units": [8], "segment_length": 7, "channels": "independent", **model},
        "training": {"epochs": 2, "batch_size": 64, "loss": "mae", "lr_schedule": "cosine", "warmup_epochs": 1},
        "output": {"plots": False},
        "intervals": {"levels": [80]},
    }
    return str(write_config(tmp_path, cfg))


@pytest.fixture(scope="module", params=["keras", "segrnn"])
def segment_run(tmp_path_factory, request):
    """A two-target segment model with independent channels and instance scaling: Keras' layout with a seasonal
    residual, SegRNN's layout without (two epochs of it do not beat the baseline on this data, so a residual run
    would keep the baseline: a silent network, no gradient to inspect)."""
    tmp_path = tmp_path_factory.mktemp("segment_run")
    residual = "seasonal" if request.param == "keras" else "none"
    cfg = _multi_target_config(tmp_path, residual=residual, segment_layout=request.param)
    run = tmp_path / "run"
    done = run_cli("train", cfg, "--run-dir", str(run), "-q")
    assert done.returncode == 0, done.stderr
    return run


@pytest.mark.slow
def test_segment_model_trains_and_predicts_without_keras_as_keras_does(segment_run):
    run = segment_run
    schema = json.loads((run / "schema.json").read_text())
    # one sequence per target: own value, the other numeric inputs, the one-hot channel
    assert schema["network"] == {"inputs": 1 + (len(schema["features"]) - 2) + 2, "targets": 1}
    out = run.parent / "predicted.csv"  # -o keeps full precision (the printed table is rounded)
    cmd = [sys.executable, "-c", PROBE, "predict", str(run), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "MODULES []"  # the numpy path replays the segment model
    numpy_forecast = pd.read_csv(out)
    keras_forecast = pd.read_csv(run / "forecast.csv")  # written at training time by the Keras model
    for col in ("temp_max", "temp_min", "temp_max_p10", "temp_min_p90"):
        np.testing.assert_allclose(numpy_forecast[col], keras_forecast[col], rtol=1e-5, atol=1e-4)
    history = pd.read_csv(run / "history.csv")
    # the cosine schedule with one warm-up epoch: half the rate, then the full rate
    assert history["learning_rate"].round(8).tolist()[:2] == [0.0005, 0.001]
    layer = json.loads(zipfile.ZipFile(run / "model.keras").read("config.json"))["config"]["layers"]
    spec = next(x for x in layer if x["class_name"] == "SegmentRecurrence")["config"]["spec"]
    layout = yaml.safe_load((run / "config.yaml").read_text())["model"]["segment_layout"]
    assert (spec["init"], spec["encoder_context"], spec["decoder_input"]) == {
        "keras": ("keras", True, "sum"),
        "segrnn": ("torch", False, "concat"),
    }[layout]


def test_cosine_rate_by_hand():
    from rnnforecast.fit import scheduled_rate

    t = TrainingConfig(epochs=5, learning_rate=0.1, lr_schedule="cosine", warmup_epochs=1)
    # warm-up: 0.1 * 1/2; then 0.1 * (1 + cos(pi * k / 4)) / 2 for k = 0..3
    want = [0.05, 0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 + math.cos(3 * math.pi / 4)) / 2]
    assert [scheduled_rate(t, e) for e in range(5)] == pytest.approx(want, rel=1e-12)


def test_step_rate_by_hand():
    from rnnforecast.fit import scheduled_rate

    # SegRNN's decay: the full rate for lr_decay_after epochs, then x lr_decay per epoch; warm-up first
    t = TrainingConfig(epochs=8, learning_rate=0.2, lr_schedule="step", lr_decay=0.5, lr_decay_after=2)
    assert [scheduled_rate(t, e) for e in range(6)] == pytest.approx([0.2, 0.2, 0.1, 0.05, 0.025, 0.0125])
    t = TrainingConfig(epochs=8, learning_rate=0.3, lr_schedule="step", warmup_epochs=2, lr_decay_after=1)
    assert [scheduled_rate(t, e) for e in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.27, 0.243])


def test_warmup_start_by_hand():
    """SegRNN's code builds a OneCycleLR it never steps, whose constructor sets the rate to max_lr / 25, so its
    first epoch runs at 4e-5, the next two at 1e-3, then x0.8 per epoch (utils/tools.py's type3 from epoch 2)."""
    from rnnforecast.fit import scheduled_rate

    t = TrainingConfig(epochs=8, lr_schedule="step", warmup_epochs=1, warmup_start=0.04, lr_decay=0.8, lr_decay_after=2)
    assert [scheduled_rate(t, e) for e in range(6)] == pytest.approx([4e-5, 1e-3, 1e-3, 8e-4, 6.4e-4, 5.12e-4])
    # three warm-up epochs from 0.1 x the rate: 0.1, 0.4, 0.7 (linear), then the cosine from the full rate
    t = TrainingConfig(epochs=7, learning_rate=2.0, lr_schedule="cosine", warmup_epochs=3, warmup_start=0.1)
    assert [scheduled_rate(t, e) for e in range(5)] == pytest.approx([0.2, 0.8, 1.4, 2.0, 1.0 + math.cos(math.pi / 4)])
    # unset, the warm-up keeps its equal steps: 1/3, 2/3 of the rate
    t = TrainingConfig(epochs=7, learning_rate=3.0, lr_schedule="step", warmup_epochs=2)
    assert [scheduled_rate(t, e) for e in range(3)] == pytest.approx([1.0, 2.0, 3.0])


def test_a_run_trains_at_the_step_schedules_rates(tmp_path):
    """The rates history.csv records are the schedule's: 1e-3 for one epoch, then halved every epoch."""
    cfg = {
        "data": {"path": str(DATA / "weather.csv"), "target": "temp_max"},
        "window": {"input_length": 14, "horizon": 3},
        "model": {"cell": "gru", "units": [4]},
        "training": {
            "epochs": 4,
            "lr_schedule": "step",
            "lr_decay": 0.5,
            "lr_decay_after": 1,
            "early_stopping": None,
            "final_fit": False,
        },
        "output": {"plots": False},
    }
    run = tmp_path / "run"
    done = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(run), "-q")
    assert done.returncode == 0, done.stderr
    history = pd.read_csv(run / "history.csv")
    rate = "learning_rate" if "learning_rate" in history else "lr"
    assert history[rate].tolist() == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4], rel=1e-6)


@pytest.mark.parametrize(
    "changes,where,words",
    [
        ({"model": {"cell": "dense", "segment_length": 7}}, "model.segment_length", "cell dense has none"),
        ({"model": {"segment_length": 30}}, "model.segment_length", "longer than window.input_length=14"),
        ({"model": {"segment_length": 7, "bidirectional": True}}, "model.bidirectional", "forward only"),
        ({"model": {"channels": "independent"}, "data": {"features": ["wind"]}}, "model.channels", "'temp_max'"),
        ({"training": {"lr_schedule": "cosine", "reduce_lr_on_plateau": {}}}, "reduce_lr_on_plateau", "cosine"),
        ({"training": {"warmup_epochs": 2}}, "training.warmup_epochs", "cosine or step"),
        ({"training": {"lr_schedule": "step", "warmup_start": 0.1}}, "training.warmup_start", "warmup_epochs: 1"),
        ({"training": {"lr_schedule": "step", "warmup_epochs": 1, "warmup_start": 0}}, "training.warmup_start", "0"),
        ({"training": {"lr_schedule": "step", "warmup_epochs": 1, "warmup_start": 1.5}}, "warmup_start", "1"),
        ({"training": {"lr_schedule": "step", "reduce_lr_on_plateau": {}}}, "reduce_lr_on_plateau", "step"),
        ({"training": {"lr_decay": 0.5}}, "training.lr_decay", "step schedule"),
        ({"training": {"lr_schedule": "cosine", "lr_decay_after": 5}}, "training.lr_decay_after", "step schedule"),
        ({"training": {"lr_schedule": "step", "lr_decay": 1.5}}, "training.lr_decay", "1"),
        ({"model": {"channels": "independant"}}, "model.channels", "independent"),
        ({"model": {"segment_layout": "torch"}}, "model.segment_layout", "segrnn"),
    ],
)
def test_new_keys_refuse_what_cannot_work_in_one_line(tmp_path, changes, where, words):
    cfg = {"data": {"path": str(DATA / "weather.csv"), "target": "temp_max"}, "window": {"input_length": 14}}
    for section, values in changes.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = write_config(tmp_path, cfg)
    done = run_cli("validate", str(path))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert where in lines[0] and words in lines[0] and "Fix:" in lines[0]


def test_validate_says_a_segment_layout_does_nothing_without_segments(tmp_path):
    base = {"data": {"path": str(DATA / "weather.csv"), "target": "temp_max"}, "window": {"input_length": 14},
            "model": {"segment_length": None}}  # fmt: skip
    cfg = {**base, "model": {"segment_length": None, "segment_layout": "segrnn"}}
    done = run_cli("validate", str(write_config(tmp_path, cfg)))
    assert done.returncode == 0, done.stderr
    assert "note: model.segment_layout: segrnn shapes segment models; this one steps through time" in done.stdout
    cfg["model"]["segment_length"] = 7
    done = run_cli("validate", str(write_config(tmp_path, cfg)))
    assert done.returncode == 0 and "note: model.segment_layout" not in done.stdout + done.stderr
    assert "model.segment_layout  segrnn\n" in done.stdout  # the model block names the layout of a segment model
    assert "model.segment_layout" not in run_cli("validate", str(write_config(tmp_path, base))).stdout


@pytest.mark.slow
def test_inspect_shows_states_over_segments_and_the_gradient_per_segment(segment_run):
    done = run_cli("inspect", str(segment_run))
    assert done.returncode == 0, done.stderr
    numbers = json.loads((segment_run.parent / f"{segment_run.name}-inspect" / "inspect.json").read_text())
    layer = numbers["layers"][0]
    assert (layer["cell"], layer["units"]) == ("gru", 8)
    # GRU gates over the 2 segments of 7 steps: fractions in [0, 1] per unit
    assert set(layer["saturation"]) == {"update_gate", "reset_gate"}
    assert all(0 <= v <= 1 for v in layer["saturation"]["update_gate"]["high"])
    assert numbers["segment_length"] == 7 and len(numbers["norm_per_segment"]) == 2
    assert numbers["ratio_per_segment"][-1] == 1.0
    # the segment norms are the per-step norms regrouped: recompute from a hand regrouping is not possible from
    # the JSON (norms do not add), but every segment must have felt some gradient
    assert all(v > 0 for v in numbers["norm_per_segment"])
    # independent channels: the network's columns are named
    assert numbers["features"][0] == "own value" and numbers["features"][-2:] == [
        "channel=temp_max",
        "channel=temp_min",
    ]


@pytest.mark.parametrize("layout,context", [("segrnn", 2), ("segrnn", 0), ("keras", 2)])
def test_segment_layout_segrnn_builds_the_layer_as_segrnns_reference_code(layout, context):
    """``model.segment_layout: segrnn`` with independent channels (a one-hot context): the embedding reads the
    values only, the decoder's input is [position | channel], PyTorch's initialisation, the head's too (U(-a, a),
    a = 1/sqrt(6)); without a context only the initialisation; ``keras`` (the default): Keras' (biases zero)."""
    from rnnforecast.config import ModelConfig
    from rnnforecast.models import build_model

    assert ModelConfig().segment_layout == "keras"
    cfg = ModelConfig(cell="gru", units=[6], segment_length=4, segment_layout=layout)
    model = build_model(cfg, 12, 3, 5, 1, seed=0, context=context)
    spec = model.get_layer("segments").spec
    head_kernel, head_bias = (np.asarray(w) for w in model.get_layer("head").weights)
    shapes = dict(spec.weight_shapes())
    if layout == "keras":
        assert (spec.encoder_context, spec.decoder_input, spec.init) == (True, "sum", "keras")
        assert shapes["embed_kernel"] == (12, 6) and shapes["position"] == (2, 6) and shapes["context_kernel"] == (2, 6)
        assert not head_bias.any() and not np.asarray(model.get_layer("segments").named["embed_bias"]).any()
        return
    assert spec.init == "torch"
    assert 0 < np.abs(head_bias).max() <= 1 / math.sqrt(6) and np.abs(head_kernel).max() <= 1 / math.sqrt(6)
    embed_bias = np.asarray(model.get_layer("segments").named["embed_bias"])
    assert 0 < np.abs(embed_bias).max() <= 1 / math.sqrt(shapes["embed_kernel"][0])
    if context:
        assert (spec.encoder_context, spec.decoder_input) == (False, "concat")
        assert shapes["embed_kernel"] == (4, 6) and shapes["position"] == (2, 3) and shapes["context_kernel"] == (2, 3)
    else:
        assert (spec.encoder_context, spec.decoder_input) == (True, "sum")
        assert shapes["embed_kernel"] == (12, 6) and shapes["position"] == (2, 6) and "context_kernel" not in shapes


@pytest.mark.parametrize("cell,context", [("gru", 0), ("lstm", 0), ("gru", 2)])
def test_inspect_trace_replays_the_encoder_as_the_layer_runs_it(cell, context):
    """recurrence.trace (the inspect path, recurrence.py's step functions) and segments.forward (the predict path)
    are two implementations of the encoder: their states over segments agree."""
    from rnnforecast.config import ModelConfig
    from rnnforecast.models import build_model
    from rnnforecast.recurrence import trace

    layout = "segrnn" if context else "keras"  # segrnn with a context: the embedding reads the value column only
    cfg = ModelConfig(cell=cell, units=[6, 4], segment_length=4, segment_layout=layout)
    model = build_model(cfg, 12, 3, 5, 2, seed=0, context=context)
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    x = rng.normal(size=(5, 12, 3))  # (with a context: 1 value column, 2 context columns)
    layer = model.get_layer("segments")
    states = []
    numpy_forward(layer.spec, {k: np.asarray(v) for k, v in layer.named.items()}, x, states)
    entries = trace(model, x)
    assert [e["hidden"].shape for e in entries] == [(5, 3, 6), (5, 3, 4)]
    for entry, want in zip(entries, states):
        np.testing.assert_allclose(entry["hidden"], want, rtol=1e-6, atol=1e-8)


def test_tune_searches_over_the_new_keys_and_checks_their_values(tmp_path):
    from rnnforecast.config import load_config
    from rnnforecast.errors import ConfigError
    from rnnforecast.tune import load_space

    base = {"data": {"path": str(DATA / "weather.csv"), "target": "temp_max"}, "window": {"input_length": 14}}
    good = {
        **base,
        "tune": {
            "model.segment_length": [None, 7],
            "model.channels": ["mixed", "independent"],
            "model.residual": ["none", "seasonal"],
            "data.scaling": ["standard", "instance"],
            "training.lr_schedule": ["constant", "cosine"],
            "training.ema": [None, 0.99],
            "model.segment_layout": ["keras", "segrnn"],
        },
    }
    path = write_config(tmp_path, good)
    space = load_space(path, load_config(path))
    assert [(p.key, p.choices) for p in space] == [(k, tuple(v)) for k, v in good["tune"].items()]
    bad = write_config(tmp_path, {**base, "tune": {"model.segment_length": [7, 30]}}, "bad.yaml")
    with pytest.raises(ConfigError, match=r"30 is not valid for model.segment_length: .*longer than"):
        load_space(bad, load_config(bad))
    bad = write_config(tmp_path, {**base, "tune": {"training.ema": [0.99, 1.5]}}, "bad2.yaml")
    with pytest.raises(ConfigError, match=r"1.5 is not valid for training.ema: .*0.9999"):
        load_space(bad, load_config(bad))
    bad = write_config(tmp_path, {**base, "tune": {"model.segment_layout": ["segrnn", "pytorch"]}}, "bad3.yaml")
    with pytest.raises(ConfigError, match=r"'pytorch' is not valid for model.segment_layout: .*segrnn"):
        load_space(bad, load_config(bad))

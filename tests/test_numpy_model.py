"""numpy_model replays saved models without Keras; Keras' own forecasts are the reference (1e-5)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, TINY, merge, write_config
from rnnforecast import backend, numpy_model, pipeline
from rnnforecast.cli import cli
from rnnforecast.config import ModelConfig
from rnnforecast.errors import RunError
from rnnforecast.models import build_model

L, F, H, ATOL = 7, 3, 2, 1e-5
DEEP_LEARNING = ("keras", "jax", "tensorflow")
backend.activate("auto")  # before the first Keras import: the session's runs train on the same backend
pytestmark = pytest.mark.filterwarnings("ignore:model settings .* leave the cuDNN:UserWarning")  # intended here


def _randomise(model, seed: int = 1) -> None:
    """Random weights and biases: the default zero biases would hide bias-handling bugs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])


def _saved(tmp_path: Path, model) -> tuple[Path, np.ndarray, np.ndarray]:
    """Save ``model``; return the file, 6 random windows (N, L, F) and Keras' forecast for them."""
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.random.default_rng(2).normal(size=(6, *model.inputs[0].shape[1:])).astype("float32")
    return path, x, np.asarray(model.predict_on_batch({"past": x}))


VARIANTS = {
    "one_layer": {"units": [5]},
    "two_layers": {"units": [5, 4]},
    "bidirectional": {"units": [5], "bidirectional": True},
    "bidirectional_two_layers": {"units": [4, 3], "bidirectional": True},
}
CELLS = [  # a non-tanh activation for every cell: caught the planted bug of a numpy GRU with a hard-coded tanh
    ("simple_rnn", {}),
    ("simple_rnn", {"activation": "relu"}),
    ("lstm", {}),
    ("lstm", {"activation": "relu"}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("gru", {"reset_after": True, "activation": "relu"}),
    ("gru", {"reset_after": False, "activation": "elu"}),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "cell,kwargs", CELLS, ids=[f"{c}-{'-'.join(map(str, k.values())) or 'default'}" for c, k in CELLS]
)
def test_every_cell_stack_and_direction_equals_keras(tmp_path, cell, kwargs, variant):
    cfg = ModelConfig(cell=cell, dropout=0.2, recurrent_dropout=0.1, **VARIANTS[variant], **kwargs)
    model = build_model(cfg, L, F, horizon=H, n_targets=2, seed=0)
    _randomise(model)
    path, x, expected = _saved(tmp_path, model)

    replay = numpy_model.NumpyModel.load(path)
    got = replay.predict_on_batch({"past": x})
    assert (replay.input_shape, replay.output_shape) == ((L, F), (H, 2, 1))
    assert got.shape == expected.shape == (6, H, 2, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert np.abs(expected).max() > 0.1  # a real signal, not a row of zeros


def test_dense_reference_model_equals_keras(tmp_path):
    model = build_model(ModelConfig(cell="dense", units=[6, 4], dropout=0.3), L, F, horizon=H, n_targets=1, seed=0)
    _randomise(model)
    path, x, expected = _saved(tmp_path, model)
    np.testing.assert_allclose(numpy_model.NumpyModel.load(path).predict_on_batch(x), expected, atol=ATOL, rtol=0)


def _unknown_layer_model(input_length: int, n_features: int, horizon: int):
    """A model numpy_model does not replay (LayerNormalization between the cell and the head)."""
    import keras

    past = keras.Input(shape=(input_length, n_features), name="past")
    x = keras.layers.LSTM(4, name="lstm_0")(past)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Dense(horizon, name="head")(x)
    out = keras.layers.Reshape((horizon, 1, 1), name="forecast")(x)
    return keras.Model(inputs={"past": past}, outputs=out)


def test_unknown_layer_falls_back_to_keras(tmp_path):
    import keras

    model = _unknown_layer_model(L, F, H)
    _randomise(model)
    path, x, expected = _saved(tmp_path, model)
    with pytest.raises(numpy_model.Unsupported, match="LayerNormalization"):
        numpy_model.NumpyModel.load(path)
    predictor = numpy_model.load_predictor(path)
    assert isinstance(predictor, keras.Model)
    np.testing.assert_allclose(predictor.predict_on_batch({"past": x}), expected, atol=ATOL, rtol=0)


def test_options_it_does_not_replay_fall_back(tmp_path):
    import keras

    past = keras.Input(shape=(L, F), name="past")
    x = keras.layers.Bidirectional(keras.layers.GRU(3), merge_mode="sum", name="bidirectional_0")(past)
    out = keras.layers.Reshape((H, 1, 1), name="forecast")(keras.layers.Dense(H, activation="gelu", name="head")(x))
    keras.Model(inputs={"past": past}, outputs=out).save(tmp_path / "model.keras")
    with pytest.raises(numpy_model.Unsupported, match="merge_mode 'sum'"):
        numpy_model.NumpyModel.load(tmp_path / "model.keras")


def test_wrong_window_shape_is_a_run_error(tmp_path):
    model = build_model(ModelConfig(cell="gru", units=[3]), L, F, horizon=H, n_targets=1, seed=0)
    path, _, _ = _saved(tmp_path, model)
    replay = numpy_model.NumpyModel.load(path)
    with pytest.raises(RunError, match=r"model.keras: the model takes windows of shape \(batch, 7, 3\); received"):
        replay.predict_on_batch({"past": np.zeros((2, L, F + 1))})
    schema = {"input_length": L, "features": ["a", "b"], "horizon": H, "targets": ["y"], "n_quantiles": 1}
    with pytest.raises(RunError) as err:
        numpy_model.load_predictor(path, schema)
    assert str(err.value) == (
        f"{path}: the model reads 7 steps x 3 features and forecasts 2 steps x 1 targets (a point model), but "
        "the run's schema.json says 7 steps x 2 features -> 2 steps x 1 targets (a point model). Fix: this "
        "model.keras comes from another run: copy the whole run directory, or train again."
    )


# --------------------------------------------------------------------------- whole runs


def _copy_run(weather_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(weather_run, run)
    return run


def _numbers(csv_text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(csv_text))


def _assert_same_forecast(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    numeric = [c for c in expected.columns if c not in ("timestamp", "series", "step", "quantile")]
    pd.testing.assert_frame_equal(got.drop(columns=numeric), expected.drop(columns=numeric))
    np.testing.assert_allclose(got[numeric].to_numpy(float), expected[numeric].to_numpy(float), rtol=1e-5, atol=1e-6)


def _assert_same_metrics(got: dict, expected: dict) -> None:
    for name, row in expected["original"]["overall"].items():
        for metric, value in row.items():
            if value is not None:
                assert got["original"]["overall"][name][metric] == pytest.approx(value, rel=1e-5), (name, metric)


# A wrapper that runs the CLI and says, on its last stderr line, which heavy modules the process imported.
PROBE = """
import json, sys
from rnnforecast.cli import main
try:
    main(sys.argv[1:])
finally:
    mods = ("keras", "jax", "tensorflow", "matplotlib", "torch")
    print("MODULES " + json.dumps(sorted(m for m in mods if m in sys.modules)), file=sys.stderr)
"""


def _probe(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300)
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("MODULES "), proc.stderr
    return proc, json.loads(line[len("MODULES ") :])


def test_predict_command_imports_no_deep_learning_and_matches_keras(weather_run, tmp_path):
    out = tmp_path / "forecast.csv"  # -o keeps full precision (the printed table is rounded)
    proc, modules = _probe("predict", str(weather_run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert modules == []  # no keras, jax, tensorflow; no matplotlib without --plot
    # forecast.csv was written at training time by the Keras model
    _assert_same_forecast(pd.read_csv(out), pd.read_csv(weather_run / "forecast.csv"))


def test_evaluate_command_imports_no_deep_learning_and_matches_training_metrics(weather_run):
    proc, modules = _probe("evaluate", str(weather_run), "--json")
    assert proc.returncode == 0, proc.stderr
    assert modules == []
    _assert_same_metrics(
        json.loads(proc.stdout)["metrics"], json.loads((weather_run / "metrics.json").read_text())["test"]
    )


def test_predict_falls_back_to_keras_for_a_model_it_does_not_know(weather_run, tmp_path):
    run = _copy_run(weather_run, tmp_path)
    schema = json.loads((run / "schema.json").read_text())
    model = _unknown_layer_model(schema["input_length"], len(schema["features"]), schema["horizon"])
    _randomise(model)
    model.save(run / "model.keras")
    opened, _, data, _ = pipeline.open_run_with_data(run)
    # the Keras model in this process, with the run's calibrated bands (the demo config asks for intervals)
    expected = pipeline.forecast_table(model, data, schema["frequency"], opened.intervals)

    out = tmp_path / "forecast.csv"
    proc, modules = _probe("predict", str(run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "keras" in modules
    _assert_same_forecast(pd.read_csv(out), _numbers(expected.to_csv(index=False)))


def test_model_from_another_run_is_one_line_error(weather_run, tmp_path):
    run = _copy_run(weather_run, tmp_path)
    schema = json.loads((run / "schema.json").read_text())
    other = build_model(ModelConfig(cell="lstm", units=[4]), schema["input_length"], 2, schema["horizon"], 1, seed=0)
    other.save(run / "model.keras")
    for command in ("predict", "evaluate"):
        result = CliRunner().invoke(cli, [command, str(run)])
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output
        assert str(run / "model.keras") in lines[0]
        assert "x 2 features and forecasts" in lines[0] and "Fix: this model.keras comes from another run" in lines[0]


SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_forecasts_as_keras_did(name, tmp_path):
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    cfg["data"]["path"] = str(DATA / Path(cfg["data"]["path"]).name)
    cfg = merge(cfg, {**TINY, "output": {"plots": False}})
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(write_config(tmp_path, cfg)), "--run-dir", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    assert isinstance(numpy_model.load_predictor(run / "model.keras"), numpy_model.NumpyModel)

    table, _, _ = pipeline.forecast(str(run))
    _assert_same_forecast(_numbers(table.to_csv(index=False)), pd.read_csv(run / "forecast.csv"))
    ev, _ = pipeline.evaluate(str(run))
    _assert_same_metrics(ev.metrics, json.loads((run / "metrics.json").read_text())["test"])


_OPENED: list[str] = []
_COUNTING = [False]
_HOOKED: list[bool] = []


def _count_opens(event: str, args: tuple) -> None:
    if _COUNTING[0] and event == "open" and isinstance(args[0], (str, Path)):
        _OPENED.append(str(args[0]))


def _opens_of(name: str, call) -> list[str]:
    """The paths named ``name`` that ``call()`` opens."""
    if not _HOOKED:  # an audit hook cannot be removed: added once, it records only while _COUNTING is set
        sys.addaudithook(_count_opens)
        _HOOKED.append(True)
    _OPENED.clear()
    _COUNTING[0] = True
    try:
        call()
    finally:
        _COUNTING[0] = False
    return [p for p in _OPENED if Path(p).name == name]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_new_data_is_read_once(weather_run, tmp_path, command):
    """``--data`` is checked against the run's columns and loaded from one read of the file (a large file costs once):
    the command opens it exactly as often as one ``read_table`` does (its head, its header, the table)."""
    from rnnforecast.data import read_table

    new = tmp_path / "new.csv"
    rows = (DATA / "weather.csv").read_text().splitlines(keepends=True)
    new.write_text("".join([rows[0], *rows[2:]]))  # not a copy of the run's file (a copy is hashed: evaluate)
    one_read = _opens_of("new.csv", lambda: read_table(new))
    assert one_read and set(one_read) == {str(new)}
    results = []
    opened = _opens_of(
        "new.csv", lambda: results.append(CliRunner().invoke(cli, [command, str(weather_run), "--data", str(new)]))
    )
    assert results[0].exit_code == 0, results[0].output
    assert opened == one_read

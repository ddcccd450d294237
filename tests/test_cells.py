"""The cell table is the one list of cells: config, compare, models and recurrence all answer from it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnforecast import recurrence
from rnnforecast.cells import CELL_NAMES, CELLS, RECURRENT
from rnnforecast.compare import parse_cells
from rnnforecast.config import ConfigError, from_dict

MINIMAL = {"data": {"path": "x.csv", "time_column": "t", "target": "y"}}


def test_table_names_gates_and_order():
    assert CELL_NAMES == ("simple_rnn", "lstm", "gru", "dense")
    assert [c.name for c in RECURRENT] == ["simple_rnn", "lstm", "gru"]
    assert not CELLS["dense"].recurrent and CELLS["dense"].gates == ()
    assert CELLS["simple_rnn"].gates == ()
    assert CELLS["lstm"].gates == ("input_gate", "forget_gate", "output_gate")  # Keras columns [i|f|c|o]
    assert CELLS["gru"].gates == ("update_gate", "reset_gate")  # Keras columns [z|r|h]
    assert CELLS["lstm"].states == ("hidden", "cell_state")
    for cell in RECURRENT:
        assert callable(getattr(recurrence, cell.recurrence)), cell.name


def test_config_and_compare_accept_exactly_the_table():
    for name in CELL_NAMES:
        assert from_dict({**MINIMAL, "model": {"cell": name}}).model.cell == name
    with pytest.raises(ConfigError, match="simple_rnn, lstm, gru, dense"):
        from_dict({**MINIMAL, "model": {"cell": "transformer"}})
    assert parse_cells(",".join(CELL_NAMES)) == list(CELL_NAMES)


def test_cell_table_imports_no_deep_learning_library():
    code = (
        "import sys, rnnforecast.cells; print(','.join(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", [c.name for c in RECURRENT])
def test_keras_layer_has_one_column_block_per_table_block(name):
    from rnnforecast import backend

    backend.activate("auto")
    from rnnforecast.config import ModelConfig
    from rnnforecast.models import build_model, cell_layer, recurrent_layers

    model = build_model(ModelConfig(cell=name, units=[3, 2]), 5, 4, horizon=1, n_targets=1, seed=0)
    layers = recurrent_layers(model)
    assert [layer.name for layer in layers] == [f"{name}_0", f"{name}_1"]
    assert all(isinstance(layer, cell_layer(name)) for layer in layers)
    assert recurrence.cell_of(layers[0]) is CELLS[name]
    kernel = np.asarray(layers[0].cell.kernel)  # (F, k*U)
    assert kernel.shape == (4, 3 * len(CELLS[name].blocks))

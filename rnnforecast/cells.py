"""The cell table: every cell a model can be built from, with what each part of rnnforecast needs to know about it.

Config validation (the allowed ``model.cell`` values), ``compare --cells``, models (the Keras layer),
recurrence (the numpy replay) and internals (which states and gates to draw) all read this one table.
No Keras import here: config validation reads it on the ``validate`` path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One cell.

    Args:
        name: the ``model.cell`` value; also the prefix of the layer names (``lstm_0``).
        layer: class name in ``keras.layers``; None for the dense reference, which has no recurrent layer.
        blocks: the column blocks of the layer's ``kernel``, ``recurrent_kernel`` and ``bias``, in
            Keras' order (LSTM ``[i | f | c | o]``, GRU ``[z | r | h]``); ``candidate`` is the new
            state's pre-activation, every other block is a gate.
        states: what the cell carries from step to step, recorded by ``recurrence.trace``.
        recurrence: the function in ``recurrence.py`` that replays one layer of this cell in numpy.
        options: ``ModelConfig`` fields passed to the layer as keyword arguments of the same name.
    """

    name: str
    layer: str | None = None
    blocks: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    recurrence: str | None = None
    options: tuple[str, ...] = ()

    @property
    def recurrent(self) -> bool:
        return self.layer is not None

    @property
    def gates(self) -> tuple[str, ...]:
        """The gate blocks (values in [0, 1]), in Keras' weight order; empty for SimpleRNN and dense."""
        return tuple(b for b in self.blocks if b != "candidate")


CELLS: dict[str, Cell] = {
    cell.name: cell
    for cell in (
        Cell("simple_rnn", "SimpleRNN", ("candidate",), ("hidden",), "simple_rnn"),
        Cell(
            "lstm",
            "LSTM",
            ("input_gate", "forget_gate", "candidate", "output_gate"),
            ("hidden", "cell_state"),
            "lstm",
        ),
        Cell("gru", "GRU", ("update_gate", "reset_gate", "candidate"), ("hidden",), "gru", options=("reset_after",)),
        Cell("dense"),  # the non-recurrent reference: flattened window -> dense layers
    )
}
CELL_NAMES = tuple(CELLS)  # in the order error messages list them
RECURRENT = tuple(cell for cell in CELLS.values() if cell.recurrent)

MAX_PARAMETERS = 100_000_000  # 0.4 GB of float32 weights (about 1.6 GB with Adam's moments and the gradients)


def estimate_parameters(cell: str, units: list[int], n_inputs: int, input_length: int, bidirectional: bool) -> int:
    """The weights a model of ``units`` layers holds before its output head: per recurrent layer
    ``blocks * (units * inputs + units * units + 2 * units)`` (twice for a bidirectional one; the two bias rows are
    GRU's reset_after, one more than the others hold, so this errs high by ``blocks * units``); per dense layer
    ``inputs * units + units`` on the flattened window. Known from the config alone, before anything is built."""
    spec = CELLS[cell]
    total = 0
    inputs = n_inputs if spec.recurrent else n_inputs * input_length
    for u in units:
        if spec.recurrent:
            directions = 2 if bidirectional else 1
            total += directions * len(spec.blocks) * (u * inputs + u * u + 2 * u)
            inputs = directions * u
        else:
            total += inputs * u + u
            inputs = u
    return total

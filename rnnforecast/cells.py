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

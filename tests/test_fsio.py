"""fsio: a failed write leaves the old file and no temporary behind; NaN and infinity become null once."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnforecast import fsio


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), fsio.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")  # writers read the suffix
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]
    fsio.write_atomic(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_one_json_convention_for_nan_and_numpy_numbers(tmp_path):
    assert [fsio.finite_or_none(v) for v in (1.5, np.float32(0.25), math.nan, -math.inf, None)] == [1.5, 0.25] + [
        None
    ] * 3
    doc = {"a": np.float64(math.nan), "b": [np.int64(3), np.float32(0.5), math.inf], 4: (1, "x")}
    assert fsio.plain(doc) == {"a": None, "b": [3, 0.5, None], "4": [1, "x"]}
    fsio.write_json(tmp_path / "d.json", fsio.plain(doc))
    assert json.loads((tmp_path / "d.json").read_text()) == {"a": None, "b": [3, 0.5, None], "4": [1, "x"]}
    with pytest.raises(ValueError):  # a NaN that skipped plain() is an error, never a bare NaN in the file
        fsio.write_json(tmp_path / "e.json", {"a": math.nan})
    assert not (tmp_path / "e.json").exists()

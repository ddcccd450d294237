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


def test_a_legal_name_always_has_a_legal_temporary(tmp_path):
    from rnnforecast.fsio import NAME_MAX, temporary_name

    short = tmp_path / "forecast.csv"
    assert temporary_name(short, 123).name == ".123.forecast.csv"
    for n in (NAME_MAX - 8, NAME_MAX):  # the pid prefix would push these past the limit
        long = tmp_path / ("x" * (n - 5) + ".html")
        tmp = temporary_name(long, 4194304)
        assert len(tmp.name.encode()) <= NAME_MAX and tmp.name.startswith(".4194304.") and tmp.suffix == ".html"
        tmp.write_text("ok")  # the system takes it
    assert temporary_name(long, 1) != temporary_name(tmp_path / ("y" * (NAME_MAX - 5) + ".html"), 1)

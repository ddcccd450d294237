"""The benchmark scripts keep working: tiny (--quick) runs write the JSON and the docs table.

These check values and structure, never speed: timings on a shared 2-core machine are not test material.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT

if str(ROOT) not in sys.path:  # bench/ is a folder of scripts at the repository root, not part of the package
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.common import split_windows, summary  # noqa: E402
from bench.run import BENCHMARKS, run  # noqa: E402


def _positive(d: dict, *keys: str) -> None:
    for k in keys:
        v = d[k]
        v = v["median"] if isinstance(v, dict) else v
        assert v > 0, (k, d[k])


def test_summary_is_the_median_with_its_spread():
    s = summary([3.0, 1.0, 2.0, 10.0])
    assert s == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4, "values": [3.0, 1.0, 2.0, 10.0]}
    with pytest.raises(ValueError):
        summary([])


def test_split_windows_matches_rnnforecast_splits():
    # 1,000 rows at 0.7/0.15/0.15: train rows 0..699, val rows 700..849; windows of 24 + 1 rows. Val windows own
    # their one target each and read inputs before the split: one window per val row
    assert split_windows(1_000) == {"train": 700 - 25 + 1, "val": 150}


def test_update_docs_rewrites_only_between_the_markers(tmp_path: Path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        f"# Benchmarks\n\nintro\n\n{report.START}\nold table\n{report.END}\n\n## Why the defaults\n\nprose\n"
    )
    fake = {
        "started": "2026-01-01T00:00:00",
        "command": "python -m bench.run --quick",
        "quick": True,
        "seconds": {"total": 60},
        "machine": {k: "x" for k in ("cpu", "cores", "cores_usable", "ram_gib", "gpu", "os", "python", "keras", "jax", "jaxlib", "tensorflow", "numpy", "pandas")},
        "benchmarks": {"memory": {"rows": 10, "features": 2, "input_length": 3, "batch_size": 4, "series_bytes": 2**20, "windows": 7,
                                  "materialised_bytes": 2**21, "peak_increase_bytes": summary([2**19]), "ratio": 0.5,
                                  "pass_seconds": summary([0.5]), "windows_per_second": summary([14.0])}},
    }  # fmt: skip
    report.update_docs(docs, fake, tmp_path / "r.json")
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n") and text.endswith("## Why the defaults\n\nprose\n")
    assert "old table" not in text and text.count(report.START) == 1 and text.count(report.END) == 1
    assert "| 3 | memory:" in text and "**0.50x**" in text and "| yes |" in text  # 0.5 meets <= 0.5
    report.update_docs(docs, fake, tmp_path / "r.json")
    assert docs.read_text() == text  # idempotent


def test_quick_memory_and_startup_benchmarks(tmp_path: Path):
    """The two benchmarks that need no training, end to end: JSON, docs table, the import checks."""
    docs = tmp_path / "benchmarks.md"
    result, path = run(quick=True, only=["memory", "startup"], results_dir=tmp_path, docs=docs, log=lambda m: None)
    assert path.parent == tmp_path and json.loads(path.read_text()) == result
    assert result["machine"]["cores"] >= 1 and result["machine"]["keras"]
    mem = result["benchmarks"]["memory"]
    assert mem["rows"] == 100_000 and mem["windows"] == 100_000 - 168 - 1 + 1
    assert mem["series_bytes"] == 100_000 * 16 * 4
    assert mem["materialised_bytes"] == mem["windows"] * 168 * 16 * 4
    assert 0 <= mem["ratio"] < 5  # index arrays (24 bytes a window) and one batch; not a copy of the windows
    _positive(mem, "pass_seconds", "windows_per_second")
    st = result["benchmarks"]["startup"]
    for name in ("help", "version", "validate"):
        _positive(st[name], "seconds")
        assert st[name]["imports_deep_learning"] is False, (name, st[name])
    assert st["help"]["imports"]["pandas"] is False and st["validate"]["imports"]["pandas"] is True
    text = docs.read_text()
    assert report.START in text and "| 5 | start-up: `rnnforecast --help`" in text and "Quick run" in text


@pytest.mark.slow
def test_quick_training_benchmarks(tmp_path: Path):
    """Every benchmark that trains, at tiny sizes, two worker processes at a time."""
    names = [n for n in BENCHMARKS if n not in ("memory", "startup")]
    result, path = run(quick=True, only=names, results_dir=tmp_path, docs=None, log=lambda m: None)
    b = result["benchmarks"]
    assert set(b) == set(names) and result["seconds"]["total"] > 0

    o = b["overhead"]
    assert o["backend"] == "jax" and o["windows"] == split_windows(o["rows"])
    _positive(
        o,
        "rnnforecast_epoch_seconds",
        "plain_fit_epoch_seconds",
        "ratio",
        "ratio_wall",
        "throughput_ratio",
        "pipeline_windows_per_second",
    )
    assert o["ratio"] == pytest.approx(
        o["rnnforecast_epoch_seconds"]["median"] / o["plain_fit_epoch_seconds"]["median"]
    )

    t = b["tutorial"]
    assert t["rnnforecast_backend"] == "jax" and t["tutorial_backend"] == "tensorflow"
    for v in t["cells"].values():
        assert v["speedup"] == pytest.approx(
            v["tutorial_epoch_seconds"]["median"] / v["rnnforecast_epoch_seconds"]["median"]
        )
    assert t["min_speedup"] == min(v["speedup"] for v in t["cells"].values())

    pr = b["process"]
    assert pr["tutorial_backend"] == "tensorflow" and pr["epochs"] == 3 and pr["features"] == 8
    fit = pr["tutorial_fit_seconds"]["median"]
    for key, side in (("ratio_cold", "cold"), ("ratio_warm", "warm"), ("ratio_same_backend", "tf")):
        assert pr[key] == pytest.approx(fit / pr["train_process_seconds"][side]["median"])
    assert pr["train_seconds"]["median"] < pr["train_process_seconds"]["cold"]["median"]

    s = b["scaling"]
    assert len(s["rows"]) >= 2 and len(s["units"]) >= 2 and s["linearity"] > 0
    params = [v["params"] for v in s["units"].values()]
    assert params == sorted(params) and len(set(params)) == len(params)  # more units, more parameters

    p = b["prediction"]
    assert p["backend"] == "jax"
    _positive(p, "load_seconds", "first_forecast_seconds", "warm_forecast_seconds", "predict_command_seconds")
    _positive(p, "predict_command_seconds_no_bytecode", "import_numpy_pandas_seconds")  # a second copy; the floor
    row = report.render(result, path).split("| 6b |")[1].splitlines()[0]
    assert "without cached bytecode" in row and "floor `import numpy, pandas`" in row
    assert result["machine"]["bytecode"].startswith("compiled before measuring")
    assert p["predict_imports_deep_learning"] is False  # the numpy path (rnnforecast.numpy_model)

    opt = b["options"]
    for be in ("jax", "tensorflow"):
        assert opt[be]["default"]["vs_default"] == 1.0
        assert {v["backend"] for v in opt[be].values()} == {be}
        assert all(v["ms_per_train_step"] > 0 for v in opt[be].values())

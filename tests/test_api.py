"""The Python API: importing is cheap, the README's example runs, a DataFrame goes through the file's checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import DATA, ROOT


def test_import_loads_neither_keras_nor_pandas():
    code = (
        "import sys, rnnforecast; from rnnforecast import Config, train, predict, evaluate, load_run\n"
        "print(sorted(m for m in ('keras', 'jax', 'tensorflow', 'pandas') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", "import rnnforecast, sys; " + code], capture_output=True, text=True)
    # Config lives in config.py (PyYAML only); the API functions load pandas and Keras on first call
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-c", "import sys, rnnforecast; print([m for m in ('keras', 'pandas') if m in sys.modules])"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "[]"


def test_the_package_train_stays_the_api_function_after_training_code_is_imported():
    code = (
        "import rnnforecast\n"
        "from rnnforecast import api, backend\n"
        "backend.activate('auto')\n"
        "from rnnforecast import fit as module  # what pipeline does before fitting\n"
        "from rnnforecast import train\n"
        "print(rnnforecast.train is api.train, train is api.train, hasattr(module, 'fit'))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)  # a fresh backend
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]


def test_a_dataframe_goes_through_the_same_checks_as_a_file():
    from rnnforecast import Config  # noqa: F401
    from rnnforecast.api import _config
    from rnnforecast.errors import DataError
    from rnnforecast.pipeline import load_data

    cfg, _ = _config({"data": {"target": "temp_max"}, "window": {"input_length": 7, "horizon": 2}}, ())
    frame = pd.read_csv(DATA / "weather.csv", parse_dates=["date"])
    data = load_data(cfg, frame)
    assert data.frame.path == "<DataFrame>" and len(data.frame.df) == 1461
    from_file = load_data(cfg.replace(**{"data.path": str(DATA / "weather.csv")}))
    assert data.features == from_file.features and (data.raw == from_file.raw).all()
    indexed = frame.set_index("date")  # the time column as the index
    assert len(load_data(cfg, indexed).frame.df) == 1461
    dup = frame.copy()
    dup.loc[2, "date"] = dup.loc[1, "date"]
    with pytest.raises(DataError, match=r"<DataFrame>:2: duplicate timestamp 2012-01-02"):  # :row position
        load_data(cfg, dup)
    with pytest.raises(DataError, match="column 'temp_max' not found"):
        load_data(cfg, frame.drop(columns="temp_max"))


def _readme_python_block() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    [block] = [b for b in blocks if "from rnnforecast import" in b]
    return block


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path):
    (tmp_path / "data").symlink_to(DATA)
    r = subprocess.run(
        [sys.executable, "-c", _readme_python_block()], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(tmp_path / "runs" / "weather_api")) and " test " in lines[0]
    table_lines = [line for line in lines if "2015-12-02" in line]  # frame.iloc[:-30] ends 2015-12-01
    assert table_lines and "mean" in table_lines[0]
    assert (tmp_path / "runs" / "weather_api" / "model.keras").exists()


def test_every_api_error_is_one_catchable_class(weather_run):
    """README: every error derives from RnnForecastError, importable from the package; a bad split, a 400-digit
    number and a true in a DataFrame are such errors (they were KeyError and OverflowError)."""
    import rnnforecast
    from rnnforecast import errors

    assert rnnforecast.RnnForecastError is errors.RnnForecastError and rnnforecast.DataError is errors.DataError
    assert issubclass(rnnforecast.ConfigError, rnnforecast.RnnForecastError)
    with pytest.raises(rnnforecast.RnnForecastError, match=r"split must be train, val or test. Received: 'bogus'"):
        rnnforecast.evaluate(weather_run, split="bogus")
    frame = pd.read_csv(DATA / "weather.csv").tail(30).astype({"precipitation": object})
    frame.iloc[5, frame.columns.get_loc("precipitation")] = 10**400
    with pytest.raises(rnnforecast.DataError, match=r"<DataFrame>:5: column 'precipitation' holds a number beyond"):
        rnnforecast.predict(weather_run, frame)
    frame.iloc[5, frame.columns.get_loc("precipitation")] = True
    with pytest.raises(rnnforecast.DataError, match=r"column 'precipitation' is not numeric: value 'True'"):
        rnnforecast.predict(weather_run, frame)

"""data.transform: log (level-relative windows, as ES-RNN divides by the level): by hand, and through the CLI.

With ``scaling: window`` a window of logs is measured from its last value, so the network reads and forecasts
``log(x / x_last)`` over the series' spread of logs: a series and the same series times 100 give the same windows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import yaml

from conftest import run_cli
from rnnforecast import backend, series, windows
from rnnforecast.config import load_config
from rnnforecast.data import load_source

backend.activate("auto")

L, H, M = 12, 5, 6  # input, horizon, season


def _frame(n: int = 150, seed: int = 3) -> pd.DataFrame:
    """Two positive series with a multiplicative daily shape; b is a times 100 (same ratios, another level)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = 5.0 * np.exp(0.3 * np.sin(2 * np.pi * t / M) + np.cumsum(0.02 * rng.standard_normal(n)))
    times = pd.date_range("2021-01-01", periods=n, freq="h")
    return pd.concat(
        [pd.DataFrame({"id": k, "time": times, "value": v}) for k, v in (("a", a), ("b", 100 * a))], ignore_index=True
    )


def _config(tmp_path, frame: pd.DataFrame | None = None, **over) -> dict:
    (frame if frame is not None else _frame()).to_csv(tmp_path / "long.csv", index=False)
    cfg = {
        "name": "logt",
        "data": {
            "path": "long.csv",
            "target": "value",
            "time_column": "time",
            "series_id": "id",
            "season_length": M,
            "transform": {"value": "log"},
            "scaling": "window",
            "split": {"train": 0.8, "val": 0.1, "test": 0.1},
        },
        "window": {"input_length": L, "horizon": H, "stride": 1},
        "model": {"cell": "gru", "units": [6], "residual": "none"},
        "training": {"epochs": 2, "batch_size": 32},
        "output": {"plots": False, "runs_dir": str(tmp_path / "runs")},
    }
    for dotted, value in over.items():
        *parents, last = dotted.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = value
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def _data(tmp_path, **over):
    _config(tmp_path, **over)
    cfg = load_config(tmp_path / "c.yaml")
    return series.build(load_source(cfg), cfg)


def test_a_log_window_is_the_log_ratio_to_its_last_value_over_the_spread_of_logs(tmp_path):
    data = _data(tmp_path)
    raw = _frame()
    starts = data.starts("train")
    x, y = data.batch(starts)
    seg = data.segments[0]
    assert seg.series == "a" and seg.bounds["train"] == (0, 120)  # log reads no row before: nothing dropped
    a = raw["value"].to_numpy()[:150]
    spread = np.log(a[:120]).std()  # the per-series scaler's deviation of the training logs (population)
    k = 7  # window of series a starting at row 7: inputs 7..18, targets 19..23
    assert starts[k] == 7
    want_x = np.log(a[7:19] / a[18]) / spread
    want_y = np.log(a[19:24] / a[18]) / spread
    np.testing.assert_allclose(x[k, :, 0], want_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y[k, :, 0], want_y, rtol=1e-5, atol=1e-5)
    # b = 100 a: the same windows (the level divides out), though b's values are 100 times larger
    b_starts = starts[data.series_of(starts) == "b"]
    xb, yb = data.batch(b_starts)
    xa, ya = data.batch(starts[data.series_of(starts) == "a"])
    np.testing.assert_allclose(xb, xa, atol=1e-5)
    np.testing.assert_allclose(yb, ya, atol=1e-5)
    # and the framed targets invert to the actuals in original units (exp of the log)
    back = data.invert(starts, y[..., None])[..., 0]
    np.testing.assert_allclose(back, data.actual(starts), rtol=1e-5)


def test_a_silent_network_on_a_log_seasonal_residual_repeats_the_last_season(tmp_path):
    """Output 0 on a seasonal residual in logs: exp(log of the value one season back) = seasonal naive, exactly
    in original units (the residual is a ratio to it)."""
    data = _data(tmp_path, **{"model.residual": "seasonal"})
    starts = data.starts("test")
    got = data.invert(starts, np.zeros((len(starts), H, 1, 1)))[..., 0, 0]  # (B, H)
    lo = np.array([s.lo for s in data.segments])[data.series_index(starts)]
    rows = windows.seasonal_rows(starts, L, H, M, lo)  # lead h copies the row h - M*ceil(h/M) after the last input
    assert rows[0].tolist() == [starts[0] + L - M + h for h in range(H)]
    np.testing.assert_allclose(got, data.raw[rows, 0], rtol=1e-6)  # float32 logs


def test_train_then_predict_without_keras_equals_the_keras_forecast(tmp_path):
    """The run's forecast.csv comes from Keras at training time; predict replays it in numpy (1e-5), positive,
    and the resolved config keeps the log with window scaling and the seasonal residual."""
    _config(tmp_path, **{"model.residual": "auto", "data.scaling": "auto"})
    run = tmp_path / "run"
    r = run_cli("train", str(tmp_path / "c.yaml"), "--run-dir", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["transform"] == {"value": "log"} and resolved["data"]["scaling"] == "window"
    assert resolved["model"]["residual"] == "seasonal"  # seasonal naive explains this series: auto keeps it
    out = tmp_path / "p.csv"
    probe = (
        "import sys; from rnnforecast.cli import main\n"
        "try: main(sys.argv[1:])\n"
        "finally: print('KERAS', 'keras' in sys.modules, file=sys.stderr)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe, "predict", str(run), "-o", str(out)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0 and p.stderr.strip().endswith("KERAS False"), p.stderr
    got, want = pd.read_csv(out), pd.read_csv(run / "forecast.csv")
    assert len(want) == 2 * H and (want["value"] > 0).all()
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-5)
    # b = 100 a forecast 100 times a's: the network sees the same windows (up to float32 rounding)
    fa, fb = (want[want["series"] == k]["value"].to_numpy() for k in ("a", "b"))
    np.testing.assert_allclose(fb, 100 * fa, rtol=1e-4)
    assert json.loads((run / "metrics.json").read_text())["forecast_model"]["model"] == "final"


def test_a_zero_in_one_series_is_refused_naming_it(tmp_path):
    frame = _frame()
    frame.loc[(frame["id"] == "b").to_numpy().nonzero()[0][40], "value"] = 0.0
    _config(tmp_path, frame=frame)
    r = run_cli("train", str(tmp_path / "c.yaml"), "--quiet")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "log needs positive values but column 'value' of series 'b' has 0 at 2021-01-02 16:00:00" in lines[0]
    assert "data.transform.value" in lines[0] and "Fix: remove the log transform of 'value'" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_config_help_says_what_log_does():
    r = run_cli("config")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # the help may wrap
    assert "log: each value's logarithm, so window scaling and a residual work on ratios" in text

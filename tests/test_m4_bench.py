"""The M4 Hourly scorer: sMAPE, MASE and the seasonal naive by hand, and the competition's published rows."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bench.m4 import score as S
from bench.m4.run import HERE, long_csv
from conftest import run_cli


def test_smape_and_mase_by_hand():
    insample = np.array([1.0, 3.0, 2.0, 6.0])  # m = 2: |2-1| + |6-3| -> scale 2
    actual, forecast = np.array([4.0, 2.0]), np.array([2.0, 2.0])
    assert S.smape(actual, forecast) == pytest.approx(np.mean([200 * 2 / 6, 0.0]))
    assert S.mase(insample, actual, forecast, m=2) == pytest.approx(1.0 / 2)


def test_seasonal_naive_repeats_the_last_season():
    y = np.arange(30.0)  # last season (m = 24) is rows 6..29
    f = S.seasonal_naive(y, h=48, m=24)
    assert f[:24].tolist() == list(range(6, 30)) and f[24:].tolist() == list(range(6, 30))
    assert S.naive(y, 3).tolist() == [29.0, 29.0, 29.0]


def test_the_competition_rows_are_reproduced():
    train, test = S.read("Hourly-train"), S.read("Hourly-test")
    assert len(train) == len(test) == 414 and {len(v) for v in test.values()} == {48}
    got = S.baselines(train, test)
    for name in ("Naive (naive1)", "Seasonal naive"):
        assert round(got[name]["smape"], 3) == S.PUBLISHED[name]["smape"]
        assert round(got[name]["mase"], 3) == S.PUBLISHED[name]["mase"]
    assert round(got["Seasonal naive"]["owa"], 3) == 0.628


def test_the_shipped_config_validates_on_m4_series_and_keeps_the_log(tmp_path):
    """hourly.yaml on three real series (both lengths) through `validate`: the log transform applies (M4 values are
    positive), window scaling and the seasonal residual stay, every split holds a window."""
    train = S.read("Hourly-train")
    picked = {k: train[k] for k in ("H1", "H170", "H414")}
    assert {len(v) for v in picked.values()} == {700, 960} and min(v.min() for v in picked.values()) > 0
    long_csv(picked, tmp_path / "long.csv")
    r = run_cli("validate", str(HERE / "hourly.yaml"), "--set", f"data.path={tmp_path / 'long.csv'}", "--show-config")
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load(r.stdout[r.stdout.index("# resolved config") :])
    assert resolved["data"]["transform"] == {"value": "log"} and resolved["data"]["scaling"] == "window"
    assert resolved["model"]["residual"] == "seasonal" and resolved["window"]["horizon"] == S.H

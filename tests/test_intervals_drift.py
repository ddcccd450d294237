"""Intervals under drift: the adaptive state travels with the run to every forecast, and train says when the bands
were calibrated on a period unlike the test (issue 24 item 7, issue 23 item 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import TINY, merge, write_config
from rnnforecast import intervals as iv
from rnnforecast.cli import cli
from rnnforecast.forecaster import Forecaster

H = 2  # TINY's horizon
GAMMA = 0.005  # the default step


def _drift_frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """A sine with noise sd 0.1 whose last 25 % (the test split, roughly) gets sd 2: the test residuals are
    several times the validation's."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    sd = np.where(t >= int(0.78 * n), 2.0, 0.1)
    y = np.sin(2 * np.pi * t / 25) + sd * rng.standard_normal(n)
    return pd.DataFrame({"time": pd.date_range("2020-01-01", periods=n, freq="h"), "y": y})


def _config(d: Path, adaptive: bool) -> Path:
    cfg = {
        "name": "drift",
        "seed": 0,
        "data": {
            "path": "d.csv",
            "target": "y",
            "time_column": "time",
            "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        },
        "intervals": {"levels": [80, 95], "adaptive": adaptive, "gamma": GAMMA},
        "output": {"plots": False},
    }
    return write_config(d, merge(TINY, cfg), f"{'adaptive' if adaptive else 'static'}.yaml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One adaptive and one static run of the same seed on the same drifting data (same weights: only bands differ)."""
    d = tmp_path_factory.mktemp("drift")
    _drift_frame().to_csv(d / "d.csv", index=False)
    out = {}
    for adaptive in (True, False):
        name = "adaptive" if adaptive else "static"
        res = CliRunner().invoke(cli, ["train", str(_config(d, adaptive)), "--run-dir", str(d / name), "--quiet"])
        assert res.exit_code == 0, res.output
        out[name] = (d / name, res.output)
    return d, out


def _predict(run: Path, out: Path) -> tuple[pd.DataFrame, str]:
    res = CliRunner().invoke(cli, ["predict", str(run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out), res.output


def _half_widths(table: pd.DataFrame) -> np.ndarray:
    """``(L=2, H)`` half-widths of forecast rows for levels 80 and 95 (p10/p90 and p2.5/p97.5 around the mean)."""
    return np.stack([(table["y_p90"] - table["y_p10"]).to_numpy() / 2, (table["y_p97.5"] - table["y_p2.5"]) / 2])


def _kth_smallest(values: list[float], alpha: float) -> float:
    """The split-conformal quantile by hand: the ceil((n+1)(1-alpha))-th smallest value, inf past n."""
    n = len(values)
    if alpha <= 0:
        return math.inf
    if alpha >= 1:
        return 0.0
    k = math.ceil(round((n + 1) * (1 - alpha), 9))
    return math.inf if k > n else sorted(values)[k - 1]


def _state_widths(alpha: list, val: np.ndarray, test: np.ndarray) -> np.ndarray:
    """``(L, H)`` widths implied by a saved state's levels ``alpha`` (target 0) over the pool of validation then test
    absolute residuals ``(N, H)``, ``(B, H)``, nested across levels as bands are."""
    pool = np.concatenate([val, test])
    w = np.array([[_kth_smallest(list(pool[:, h]), alpha[i][h][0]) for h in range(H)] for i in range(2)])
    return np.maximum.accumulate(w, axis=0)


def _residuals(run: Path, split: str, d: Path) -> np.ndarray:
    """``(B, H)`` absolute residuals of the run's windows on ``split``, from evaluate --output (window order)."""
    out = d / f"{run.name}-{split}.csv"  # written by every test that asks (the run is shared): --force replaces it
    res = CliRunner().invoke(cli, ["evaluate", str(run), "--split", split, "-o", str(out), "--force"])
    assert res.exit_code == 0, res.output
    t = pd.read_csv(out).sort_values(["origin_time", "lead"])
    return (t["actual"] - t["forecast"]).abs().to_numpy().reshape(-1, H)


def test_predict_carries_the_saved_adaptive_state(runs, tmp_path):
    """Planted bug (issue 24 item 7): forecast.csv and predict gave the static bands of an adaptive run. Here the
    band width of predict (and of train's forecast.csv) equals the width implied by the saved state, computed by hand
    from its scores and levels, and differs from the static run's."""
    d, out = runs
    run, _ = out["adaptive"]
    saved = json.loads((run / "intervals.json").read_text())
    (state,) = saved["adaptive_state"].values()
    table, said = _predict(run, tmp_path / "f.csv")
    want = _state_widths(state["alpha"], _residuals(run, "val", d), _residuals(run, "test", d))
    assert np.isfinite(want).all()
    # 1e-6: residuals read back from CSV differ from the model's in the last float32 digits; a rank off by one moves
    # the width by the gap between neighbouring residuals, orders of magnitude more
    np.testing.assert_allclose(_half_widths(table), want, rtol=1e-6)
    np.testing.assert_allclose(_half_widths(pd.read_csv(run / "forecast.csv")), want, rtol=1e-6)
    assert "bands carry the adaptive level reached at the end of the test split" in said

    static_table, static_said = _predict(out["static"][0], tmp_path / "s.csv")
    np.testing.assert_allclose(static_table["y"], table["y"], rtol=1e-6)  # same seed, same model: same point
    static_w = np.array(json.loads((out["static"][0] / "intervals.json").read_text())["model"]["width"])[..., 0]
    np.testing.assert_allclose(_half_widths(static_table), np.maximum.accumulate(static_w, axis=0), rtol=1e-9)
    # noisier test split: the adaptive bands are wider than the static ones at every lead and level
    assert (_half_widths(table) > 1.2 * _half_widths(static_table)).all()
    assert "adaptive" not in static_said


def test_saved_state_is_the_real_residuals_and_a_hand_replay_of_aci(runs):
    """The pool behind the saved state is every validation and test window (residuals read back through evaluate
    --output), and the alpha saved is the hand-replayed ACI recursion after every test window's outcome (lag H, then
    the last H)."""
    d, out = runs
    run, _ = out["adaptive"]
    saved = json.loads((run / "intervals.json").read_text())
    (state,) = saved["adaptive_state"].values()
    val, test = _residuals(run, "val", d), _residuals(run, "test", d)
    assert state["n"] == len(val) + len(test) and saved["model"]["n"] == len(val)

    for i, level in enumerate((80, 95)):
        for h in range(H):
            target = 1 - level / 100
            a, widths = target, []
            for t in range(len(test)):
                if t >= H:
                    a += GAMMA * (target - (test[t - H, h] > widths[t - H]))
                known = [*val[:, h], *test[: max(0, t - H + 1), h]]
                widths.append(_kth_smallest(known, a))
            for t in range(len(test) - H, len(test)):
                a += GAMMA * (target - (test[t, h] > widths[t]))
            assert state["alpha"][i][h][0] == pytest.approx(a, abs=1e-9), (level, h)


def test_train_says_the_bands_were_calibrated_on_a_period_unlike_the_test(runs):
    """Test residuals several times the validation's: train's output says so, in one line, with the ratio that
    metrics.json keeps (mean absolute residual test / val, computed here from evaluate --output)."""
    d, out = runs
    for name, (run, said) in out.items():
        lines = [ln for ln in said.splitlines() if "calibrated on a period unlike the test" in ln]
        assert len(lines) == 1, said
        ratio = json.loads((run / "metrics.json").read_text())["intervals"]["residual_scale_ratio"]["y"]
        hand = _residuals(run, "test", d).mean() / _residuals(run, "val", d).mean()
        assert ratio == pytest.approx(hand, rel=1e-4) and ratio > 1.8
        assert f"{ratio:.2f}x" in lines[0]
        assert ("intervals.adaptive: true" in lines[0]) == (name == "static")


def test_api_and_loaded_forecaster_give_the_adaptive_bands(runs):
    """Serve and the API go through Forecaster.forecast: a loaded run gives the same adaptive widths."""
    _, out = runs
    run, _ = out["adaptive"]
    f = Forecaster.load(run)
    data, _ = f.read_data()
    got = _half_widths(f.forecast(data))
    np.testing.assert_allclose(got, _half_widths(pd.read_csv(run / "forecast.csv")), rtol=1e-9)


def test_a_run_without_state_says_its_bands_are_static_and_a_damaged_state_is_refused(runs, tmp_path):
    """An adaptive run saved before the state existed: predict gives the static bands and says so. A state whose
    shape does not fit the run: one clean line, no traceback."""
    import shutil

    _, out = runs
    run = tmp_path / "old"
    shutil.copytree(out["adaptive"][0], run)
    saved = json.loads((run / "intervals.json").read_text())
    state = saved.pop("adaptive_state")
    (run / "intervals.json").write_text(json.dumps(saved))
    table, said = _predict(run, tmp_path / "f.csv")
    static_w = np.array(saved["model"]["width"])[..., 0]
    np.testing.assert_allclose(_half_widths(table), np.maximum.accumulate(static_w, axis=0), rtol=1e-9)
    assert "note: bands are static (split conformal on validation)" in said

    (key,) = state
    state[key]["alpha"] = state[key]["alpha"][:1]  # one level of two
    (run / "intervals.json").write_text(json.dumps(saved | {"adaptive_state": state}))
    res = CliRunner().invoke(cli, ["predict", str(run)])
    assert res.exit_code != 0
    assert "intervals.json does not match the run: adaptive_state" in res.output and "Traceback" not in res.output


# --------------------------------------------------------------------------- the rule, on hand values


def test_scale_shift_rule_bounds_and_nan():
    """Ratio = mean |test residual| / mean |val residual| per target; warned beyond 1.5x either way, not at it."""
    val = np.ones((4, 2, 3))  # mean 1 for every target
    test = np.stack([np.full((3, 2), 1.5), np.full((3, 2), 1.6), np.full((3, 2), 0.6)], axis=-1)  # (3, 2, 3)
    test[0, 0, 0] = np.nan  # an invented actual: left out
    ratios, lines = iv.scale_shift(val, test, ["a", "b", "c"])
    assert ratios == pytest.approx({"a": 1.5, "b": 1.6, "c": 0.6})
    assert len(lines) == 2 and "b's test residuals are 1.60x" in lines[0] and "c's test residuals are 0.60x" in lines[1]
    assert "under-cover" in lines[0] and "wider than needed" in lines[1]
    assert iv.scale_shift(np.zeros((2, 1, 1)), np.ones((2, 1, 1)), ["z"]) == ({"z": None}, [])


@pytest.mark.slow
def test_serve_single_and_batch_give_the_adaptive_bands(runs):
    """serve (a real server on a free 127.0.0.1 port): one request and each item of a batch get the state's widths."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from conftest import ROOT

    d, out = runs
    run = out["adaptive"][0]
    want = _half_widths(pd.read_csv(run / "forecast.csv"))  # equal to the state's (test above)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "rnnforecast", "serve", str(run), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        rows = pd.read_csv(d / "d.csv").tail(40)
        recs = [{"time": t, "y": y} for t, y in zip(rows["time"], rows["y"])]
        one = httpx.post(f"{url}/v1/runs/adaptive/forecast", json={"data": recs[-20:]}, timeout=60)
        assert one.status_code == 200, one.text
        np.testing.assert_allclose(_half_widths(pd.DataFrame(one.json()["forecast"])), want, rtol=1e-9)
        items = [{"data": recs[k : k + 20]} for k in (0, 10, 20)]
        batch = httpx.post(f"{url}/v1/runs/adaptive/forecast/batch", json={"items": items}, timeout=60)
        assert batch.status_code == 200, batch.text
        for result in batch.json()["results"]:
            np.testing.assert_allclose(_half_widths(pd.DataFrame(result["forecast"])), want, rtol=1e-9)
    finally:
        proc.kill()
        proc.wait(timeout=30)

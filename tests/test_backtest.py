"""backtest: exact fold origins and windows, no fold sees rows after its origin, resume, rows that recompute the metrics."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, sine_frame, write_config
from rnnforecast import backtest as B
from rnnforecast import pipeline
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame
from rnnforecast.series import build


def _config(tmp_path, n=60, **extra):
    sine_frame(n).to_csv(tmp_path / "s.csv", index=False)
    raw = {
        "name": "bt",
        "data": {"path": str(tmp_path / "s.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 3, "horizon": 2},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 16},
        "output": {"runs_dir": str(tmp_path / "runs"), "plots": True},
        **extra,
    }
    return from_dict(raw, source=str(tmp_path / "c.yaml"), base_dir=tmp_path), raw


def test_two_folds_on_a_tiny_series_have_exact_origins_and_windows(tmp_path):
    # 60 rows, split 0.7/0.15/0.15: validation 9 rows, test 9 rows -> 2 folds with step (9 - 2 + 1) // 2 = 4
    cfg, _ = _config(tmp_path)
    frame = load_frame(cfg.data, cfg.data_path)
    plan = B.make_plan(cfg, frame, 2, None, "all")
    assert (plan.step, plan.val_length) == (4, 9)
    assert [(f.origin, f.train, f.val, f.test) for f in plan.folds] == [
        (51, (0, 42), (42, 51), (51, 56)),
        (55, (0, 46), (46, 55), (55, 60)),
    ]
    times = pd.date_range("2020-01-01", periods=60, freq="h")
    assert plan.fold_times(plan.folds[0]) == {
        "val_start": times[42].isoformat(),
        "origin": times[51].isoformat(),
        "test_end": times[56].isoformat(),
    }
    assert plan.fold_times(plan.folds[1])["test_end"] is None  # the last fold ends at the last row
    got = []
    for f in plan.folds:
        fcfg = cfg.replace(**plan.overrides(f))
        data = build(frame, fcfg, check_splits=False).fold_view(plan.fold_times(f)["test_end"])
        got.append({s: data.starts(s, stride=1).tolist() for s in ("train", "val", "test")})
    assert got[0] == {"train": list(range(0, 38)), "val": list(range(39, 47)), "test": [48, 49, 50, 51]}
    assert got[1] == {"train": list(range(0, 42)), "val": list(range(43, 51)), "test": [52, 53, 54, 55]}
    # every forecast start 51..58 is used exactly once, and the last window's last target is the last row
    assert [s + 3 for g in got for s in g["test"]] == list(range(51, 59))


@pytest.mark.slow
def test_no_fold_scaler_or_model_sees_rows_after_its_origin(tmp_path):
    from rnnforecast import backend

    cfg, _ = _config(tmp_path, n=120)
    backend.activate(cfg.runtime.backend)
    frame = load_frame(cfg.data, cfg.data_path)
    plan = B.make_plan(cfg, frame, 2, None, "all")
    fold = plan.folds[0]
    fcfg = cfg.replace(**plan.overrides(fold))
    end = plan.fold_times(fold)["test_end"]

    def run(fr, root):
        forecaster, data, _ = pipeline._fold_model(fcfg, fr, fold, end, root, None, True)
        record, table = pipeline._fold_forecasts(forecaster, data, fold, plan, (80.0, 95.0), None)
        return forecaster.model, data, record, table

    m1, d1, r1, t1 = run(frame, tmp_path / "a")
    poisoned = load_frame(cfg.data, cfg.data_path)
    poisoned.df.loc[poisoned.df.index >= fold.origin, "y"] = 1e6  # every value from the origin on
    m2, d2, r2, t2 = run(poisoned, tmp_path / "b")
    assert np.array_equal(d1.scaler.shift, d2.scaler.shift) and np.array_equal(d1.scaler.scale, d2.scaler.scale)
    for w1, w2 in zip(m1.get_weights(), m2.get_weights()):
        assert np.array_equal(w1, w2)
    assert r1["calibration"] == r2["calibration"]  # calibrated on validation rows before the origin only
    # the first window forecast from the origin reads rows before it only: identical forecast and bands
    first = t1["origin_time"] == t1["origin_time"].min()
    q = [c for c in t1.columns if c == "forecast" or c.startswith("p")]
    assert np.array_equal(t1.loc[first, q].to_numpy(), t2.loc[first, q].to_numpy())
    assert (t2.loc[~first, "actual"] == 1e6).all() and not np.array_equal(t1["forecast"], t2["forecast"])


@pytest.mark.slow
def test_refit_none_trains_once_rows_recompute_metrics_and_resume_skips_done_folds(tmp_path):
    _, raw = _config(tmp_path, n=200)
    path = write_config(tmp_path, raw)
    out = tmp_path / "bt"
    r = run_cli("backtest", str(path), "--folds", "3", "--refit", "none", "--out", str(out), "--json", "-q")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["trainings"] == 1 and [f["trained"] for f in record["folds"]] == [True, False, False]
    assert [p.name for p in (out / "folds").glob("*/model.keras")] == ["model.keras"]
    assert (out / "folds" / "00" / "model.keras").exists()
    assert (record["command"], record["split"], record["directory"]) == ("backtest", "test", str(out.resolve()))
    shared = {k: v for k, v in record.items() if k not in ("command", "schema_version", "directory", "split", "files")}
    assert shared == json.loads((out / "metrics.json").read_text())  # --json carries metrics.json whole
    rows = pd.read_csv(out / "predictions.csv")
    assert list(rows.columns) == [*B.PREDICTION_COLUMNS, "p2.5", "p10", "p50", "p90", "p97.5"]
    for f in record["folds"]:
        g = rows[rows["fold"] == f["fold"]]
        assert len(g) == f["n_windows"] * 2 and (g["forecast"] == g["p50"]).all()
        err = g["forecast"] - g["actual"]
        assert np.isclose(err.abs().mean(), f["original"]["overall"]["model"]["mae"], rtol=1e-9)
        assert np.isclose(np.sqrt((err**2).mean()), f["original"]["overall"]["model"]["rmse"], rtol=1e-9)
        lead2 = g[g["lead"] == 2]
        assert np.isclose(
            (lead2["forecast"] - lead2["actual"]).abs().mean(), f["original"]["per_lead"]["model"]["mae"][1], rtol=1e-9
        )
        inside = ((g["p10"] <= g["actual"]) & (g["actual"] <= g["p90"])).mean() * 100
        assert np.isclose(inside, f["intervals"]["model"]["levels"]["80"]["coverage"]["overall"], rtol=1e-9)
    maes = [f["original"]["overall"]["model"]["mae"] for f in record["folds"]]
    agg = record["aggregate"]["scores"]["model"]["mae"]
    assert np.isclose(agg["mean"], np.mean(maes)) and np.isclose(agg["std"], np.std(maes, ddof=1))
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "backtest_error_by_lead.png",
        "backtest_error_per_fold.png",
        "backtest_forecast.png",
    ]
    r = run_cli("report", str(out))
    assert r.returncode == 0, r.stderr
    assert "Backtest: bt" in (out.parent / f"{out.name}-report.html").read_text()  # beside, not in it

    # an unfinished copy with fold 0 done: the rerun with the same --out redoes folds 1 and 2 only, training nothing
    again = tmp_path / "again"
    partial = tmp_path / "again.partial"
    partial.mkdir()
    shutil.copy(out / "plan.json", partial / "plan.json")
    shutil.copytree(out / "folds" / "00", partial / "folds" / "00")
    (partial / "folds" / "00" / "fold.json").write_text(json.dumps({**record["folds"][0], "marker": "kept"}))
    r = run_cli("backtest", str(path), "--folds", "3", "--refit", "none", "--out", str(again), "--json", "-q")
    assert r.returncode == 0, r.stderr
    assert "1 model(s) to run (resumed)" in r.stderr and "folds 1, 2 done" in r.stderr
    resumed = json.loads(r.stdout)
    assert resumed["folds"][0]["marker"] == "kept" and not partial.exists()
    assert resumed["folds"][1:] == record["folds"][1:]
    assert pd.read_csv(again / "predictions.csv").equals(rows)

    # another plan into the same unfinished directory is refused, with the fix
    (tmp_path / "other.partial").mkdir()
    shutil.copy(out / "plan.json", tmp_path / "other.partial" / "plan.json")
    r = run_cli("backtest", str(path), "--folds", "2", "--out", str(tmp_path / "other"))
    assert r.returncode != 0 and "with another config or other options is already there" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_sigterm_mid_fold_keeps_finished_folds_and_says_how_to_resume(tmp_path):
    """A real SIGTERM while fold 1 trains: one line naming the unfinished directory and the exact resume command,
    exit 143; that command finishes the backtest, keeping fold 0 and retraining only what was not done."""
    import signal
    import subprocess
    import sys
    import time

    _, raw = _config(tmp_path, n=200, training={"epochs": 40, "batch_size": 16, "early_stopping": None})
    path = write_config(tmp_path, raw)
    out, partial = tmp_path / "bt", tmp_path / "bt.partial"
    args = [sys.executable, "-m", "rnnforecast", "backtest", str(path), "--folds", "3", "--out", str(out), "-q"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (partial / "folds" / "01" / "checkpoint").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fold 1 did not start within 180 s"
            time.sleep(0.05)
        fold0 = (partial / "folds" / "00" / "fold.json").read_text()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {partial}: interrupted (SIGTERM); the backtest is unfinished. Fix: finished folds")
    command = line.split("resume with: ", 1)[1].rstrip(".")
    assert command.startswith(f"rnnforecast backtest {path} --folds 3 --step ") and command.endswith(f"--out {out}")
    assert not out.exists() and not (partial / "folds" / "01" / "fold.json").exists()

    r = run_cli(*command.split()[1:], "-q")
    assert r.returncode == 0, r.stderr
    assert "2 model(s) to run (resumed)" in r.stderr and "fold 1 done" in r.stderr and "fold 2 done" in r.stderr
    assert (out / "folds" / "00" / "fold.json").read_text() == fold0  # kept as it was
    assert [f["fold"] for f in json.loads((out / "metrics.json").read_text())["folds"]] == [0, 1, 2]

"""rnnforecast compare: identical runs per cell, the promised files, numbers that match each run, and its report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from test_report import assert_embeds_exactly_the_pngs, parse_report

from rnnforecast import artifacts
from rnnforecast.cli import cli
from rnnforecast.compare import parse_cells, seconds_per_epoch
from rnnforecast.errors import ConfigError
from rnnforecast.text import markdown, ranked_table, table_rows

CELLS = ("simple_rnn", "gru")
AUTO_KEYS = (("data", "scaling"), ("model", "channels"), ("model", "segment_length"), ("model", "residual"))
PLOTS = (
    "val_loss.png",
    "test_error.png",
    "error_by_lead.png",
    "forecast_overlay.png",
    "params_vs_error.png",
    "time_per_epoch.png",
)


@pytest.fixture(scope="module")
def compared(tmp_path_factory, weather_config):
    """One comparison of two cells, one epoch each, through the CLI."""
    out = tmp_path_factory.mktemp("compare") / "cmp"
    result = CliRunner().invoke(
        cli, ["compare", str(weather_config), "--cells", ",".join(CELLS), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out, result


@pytest.mark.slow
def test_compare_writes_every_promised_file(compared):
    out, _ = compared
    assert not artifacts.partial_of(out).exists()
    assert not (out / artifacts.MARKER).exists()
    for name in ("compare.json", "compare.md", "config.yaml"):
        assert (out / name).is_file(), name
    for name in PLOTS:
        data = (out / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(f"{c}-seed42" for c in CELLS)
    for c in CELLS:
        artifacts.open_run(out / "runs" / f"{c}-seed42")  # each one a complete run directory


@pytest.mark.slow
def test_runs_differ_only_in_cell(compared):
    out, _ = compared
    base = yaml.safe_load((out / "config.yaml").read_text())  # the base as written: auto keys stay auto
    base["model"]["cell"] = None
    auto = [(s, k) for s, k in AUTO_KEYS if base[s][k] == "auto"]
    settled = []
    for c in CELLS:
        cfg = yaml.safe_load((out / "runs" / f"{c}-seed42" / "config.yaml").read_text())
        assert cfg["model"]["cell"] == c
        cfg["model"]["cell"] = None
        settled.append({(s, k): cfg[s].pop(k) for s, k in auto})  # each run keeps what auto decided
        assert "auto" not in settled[-1].values()
        assert cfg == {
            s: {k: v for k, v in d.items() if (s, k) not in auto} if isinstance(d, dict) else d for s, d in base.items()
        }
    assert all(s == settled[0] for s in settled)  # recurrent cells on the same data settle alike
    a, b = (json.loads((out / "runs" / f"{c}-seed42" / "metrics.json").read_text()) for c in CELLS)
    assert a["n_windows"] == b["n_windows"]
    assert (
        a["test"]["original"]["overall"]["persistence"] == b["test"]["original"]["overall"]["persistence"]
    )  # same windows


@pytest.mark.slow
def test_compare_json_matches_each_run(compared):
    out, result = compared
    rec = json.loads((out / "compare.json").read_text())
    assert rec["cells"] == list(CELLS) and rec["seeds"] == [42]
    for c in CELLS:
        (run,) = rec["results"][c]["runs"]
        d = out / run["run_dir"]
        m = json.loads((d / "metrics.json").read_text())
        timing = json.loads((d / "timing.json").read_text())
        model = m["test"]["original"]["overall"]["model"]
        assert run["params"] == m["training"]["params"]
        assert run["best_epoch"] == m["training"]["best_epoch"] == 1
        assert run["test_mse"] == model["mse"]
        assert run["test_mae"] == model["mae"]
        assert run["test_mase"] == model["mase"]
        assert run["test_skill"] == model["skill"]
        assert run["val_mse"] == m["val"]["original"]["overall"]["model"]["mse"]
        assert run["seconds_per_epoch"] == timing["epoch_seconds"][0]  # one epoch: nothing to exclude
        assert run["test_mse_by_lead"] == m["test"]["original"]["per_lead"]["model"]["mse"]
        for k in ("params", "test_mse", "test_mae", "val_mse"):
            assert rec["results"][c]["mean"][k] == pytest.approx(run[k])
            assert rec["results"][c]["std"][k] is None  # one seed: no spread
        assert rec["baselines"]["persistence"]["test_mse"] == m["test"]["original"]["overall"]["persistence"]["mse"]
    mse = {c: rec["results"][c]["mean"]["test_mse"] for c in CELLS}
    assert rec["ranking"] == sorted(CELLS, key=mse.get)
    # the printed table: ranked rows first, then the baselines, with the run's numbers
    lines = [ln for ln in result.stdout.splitlines() if ln.split() and ln.split()[0] in (*CELLS, "(persistence)")]
    assert [ln.split()[0] for ln in lines] == [*rec["ranking"], "(persistence)"]
    first = lines[0].split()
    assert float(first[1]) == rec["results"][rec["ranking"][0]]["mean"]["params"]
    assert float(first[5]) == pytest.approx(mse[rec["ranking"][0]], rel=1e-3)
    assert f"comparison directory: {out}" in result.stdout
    md = (out / "compare.md").read_text()
    assert md.count("\n| ") == 1 + len(CELLS) + 3  # header, cells, three baselines


@pytest.mark.slow
def test_report_on_compare_dir(compared):
    out, _ = compared
    before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) == before  # nothing written in it
    page = parse_report(out.parent / f"{out.name}-report.html")
    # the comparison's own figures; each run has a page of its own, linked (the only links: no network)
    assert sorted(alt for _, alt in page.images) == sorted(f"plots/{name}" for name in PLOTS)
    assert sorted(page.urls) == sorted(f"{out.name}-report-runs-{c}-seed42.html" for c in CELLS)
    assert page.headings[0].startswith("Cell comparison")
    rec = json.loads((out / "compare.json").read_text())
    shown = table_rows(rec)  # the table the terminal prints, one number format per column
    html = (out.parent / f"{out.name}-report.html").read_text()
    for c, row in zip(rec["ranking"], shown[1:]):
        page_of_run = f"{out.name}-report-runs-{c}-seed42.html"  # beside the comparison's page
        assert f"<a href='{page_of_run}'>runs/{c}-seed42</a> ({c}, seed 42" in html
        assert_embeds_exactly_the_pngs(parse_report(out.parent / page_of_run), out / "runs" / f"{c}-seed42")
        assert f"<td>{c}</td>" + "".join(f"<td>{v}</td>" for v in row[1:]) in html


def test_interrupted_compare_stays_partial(tmp_path, weather_config, monkeypatch):
    from rnnforecast import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "train", interrupted)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(weather_config), "--cells", "gru", "--out", str(out)])
    assert result.exit_code == 130
    assert not out.exists()
    assert (artifacts.partial_of(out) / artifacts.MARKER).exists()
    again = CliRunner().invoke(cli, ["compare", str(weather_config), "--cells", "gru", "--out", str(out)])
    assert again.exit_code == 1
    assert "an unfinished comparison is already there" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    # the marker and the refusal give the same advice (the marker said "run compare again", which is refused)
    assert "Fix: comparison has no resume: remove it, or pass another --out." in again.stderr
    assert (
        "remove this directory, then run rnnforecast compare again"
        in (artifacts.partial_of(out) / artifacts.MARKER).read_text()
    )


def test_bad_cells_are_usage_errors(weather_config):
    result = CliRunner().invoke(cli, ["compare", str(weather_config), "--cells", "lstm,transformer"])
    assert result.exit_code == 2
    assert "unknown cell 'transformer'" in result.stderr and "simple_rnn, lstm, gru, dense" in result.stderr


def test_parse_cells():
    assert parse_cells("gru, lstm") == ["gru", "lstm"]
    assert parse_cells("gru", dense=True) == ["gru", "dense"]
    with pytest.raises(ConfigError, match="listed twice"):
        parse_cells("gru,gru")
    with pytest.raises(ConfigError, match="no cell given"):
        parse_cells(" , ")


def test_seconds_per_epoch_skips_the_compiling_epoch():
    assert seconds_per_epoch([9.0, 1.0, 3.0, 2.0]) == 2.0
    assert seconds_per_epoch([4.0]) == 4.0
    assert seconds_per_epoch([]) is None


def test_tables_show_mean_and_std_with_repeats():
    rec = {
        "name": "x",
        "data": "d.csv",
        "targets": ["y"],
        "epochs": 3,
        "seeds": [1, 2],
        "cells": ["lstm", "gru"],
        "ranking": ["gru", "lstm"],
        "n_test_windows": 10,
        "results": {
            c: {
                "mean": {
                    "params": p,
                    "seconds_per_epoch": 0.5,
                    "best_epoch": 2.5,
                    "val_mse": 1.0,
                    "test_mse": m,
                    "test_mae": 1.0,
                    "test_mase": 0.9,
                    "test_skill": 0.1,
                },
                "std": {
                    "params": 0.0,
                    "seconds_per_epoch": 0.1,
                    "best_epoch": 0.7071,
                    "val_mse": 0.2,
                    "test_mse": 0.25,
                    "test_mae": 0.1,
                    "test_mase": 0.05,
                    "test_skill": 0.02,
                },
                "runs": [{"run_dir": f"runs/{c}-seed1"}, {"run_dir": f"runs/{c}-seed2"}],
            }
            for c, p, m in (("lstm", 100, 2.0), ("gru", 80, 1.5))
        },
        "baselines": {"persistence": {"test_mse": 3.0, "test_mae": 1.2, "test_mase": 1.0, "test_skill": 0.0}},
    }
    table = ranked_table(rec).splitlines()
    assert "mean ± std over seeds [1, 2]" in table[0]
    assert table[2].split()[:2] == ["gru", "80"]
    assert "1.500 ± 0.25" in table[2] and "2.5 ± 0.71" in table[2]
    assert table[4].split()[0] == "(persistence)"
    assert "| gru | 80 |" in markdown(rec) and "`runs/lstm-seed2`" in markdown(rec)


def _interrupt_compare(tmp_path, weather_config, extra: list[str], hit) -> tuple[subprocess.Popen, str, Path, Path]:
    """Start a real `compare` of gru then lstm (long epochs), wait until its first run has a checkpoint, call
    ``hit(proc, run)`` (a signal to the driver or to a worker); returns the process, its stderr, --out and .partial."""
    out = tmp_path / "cmp"
    partial = artifacts.partial_of(out)
    run = partial / "runs" / artifacts.partial_of(Path("gru-seed42")).name
    args = ["compare", str(weather_config), "--cells", "gru,lstm", "--out", str(out), *extra]
    args += ["--set", "training.epochs=500", "--set", "training.early_stopping=null"]  # still training when hit
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnforecast", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint" / "state.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint of the first run within 120 s"
            time.sleep(0.1)
        hit(proc, run)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill() if proc.poll() is None else None
    return proc, err.decode(), out, partial


def _unfinished_line(err: str, partial: Path) -> None:
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()[-1:]
    assert (
        line
        == f"error: {partial}: interrupted; the comparison is unfinished. Fix: compare has no resume: remove this unfinished comparison, or run the command again with another --out."
    )


@pytest.mark.slow
def test_real_sigint_keeps_an_unfinished_comparison(tmp_path, weather_config):
    """A real Ctrl-C (SIGINT) to a compare process once its first run has a checkpoint: one clean line, exit 130,
    the comparison stays .partial with the first run's checkpoint, and nothing is promoted to --out."""
    proc, err, out, partial = _interrupt_compare(
        tmp_path, weather_config, ["--quiet"], lambda proc, run: proc.send_signal(signal.SIGINT)
    )
    run = partial / "runs" / artifacts.partial_of(Path("gru-seed42")).name
    assert proc.returncode == 130, err
    _unfinished_line(err, partial)
    assert not out.exists()
    assert (partial / artifacts.MARKER).is_file() and (partial / "config.yaml").is_file()
    assert sorted(p.name for p in (partial / "runs").iterdir()) == [run.name]  # the second cell never started
    kept = sorted(p.name for p in run.iterdir())
    # the claim's lock file and owner record stay with the unfinished run (issue 12: who made it, when)
    assert kept == sorted(["checkpoint", "config.yaml", artifacts.MARKER, ".lock", "owner.json"]), kept
    assert artifacts.committed_epoch(run) >= 1


@pytest.mark.slow
def test_repeats_and_dense_on_real_runs(tmp_path, weather_config):
    """`--dense --repeats 2`: seeds 42 and 43 per cell, each a real run; mean and sample std from those runs."""
    import statistics

    out = tmp_path / "rep"
    args = ["compare", str(weather_config), "--cells", "gru", "--dense", "--repeats", "2", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args + ["--set", "output.plots=false"])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "compare.json").read_text())
    assert rec["cells"] == ["gru", "dense"] and rec["seeds"] == [42, 43]
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        f"{c}-seed{s}" for c in ("dense", "gru") for s in (42, 43)
    ]
    for cell in ("gru", "dense"):
        mses = []
        for seed in (42, 43):
            run = out / "runs" / f"{cell}-seed{seed}"
            saved = yaml.safe_load((run / "config.yaml").read_text())
            assert saved["seed"] == seed and saved["model"]["cell"] == cell
            mses.append(json.loads((run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]["mse"])
        assert mses[0] != mses[1]  # the second repeat really is another seed
        assert rec["results"][cell]["mean"]["test_mse"] == pytest.approx(statistics.mean(mses), rel=1e-9)
        assert rec["results"][cell]["std"]["test_mse"] == pytest.approx(statistics.stdev(mses), rel=1e-9)
    assert "mean ± std over seeds [42, 43]" in result.stdout


def test_forecast_overlay_is_small_multiples_one_panel_per_cell(tmp_path):
    """Four cells on one axis were a tangle: one panel per cell, each with the actual curve, shared axes."""
    import matplotlib.image

    from rnnforecast import plots

    times = pd.date_range("2020-01-01", periods=30, freq="D")
    actual = np.sin(np.arange(30) / 3)
    cells = ["simple_rnn", "lstm", "gru", "dense"]
    forecasts = {c: actual + 0.1 * (i + 1) for i, c in enumerate(cells)}  # cell i is off by 0.1 * (i + 1)
    record = {"seeds": [1], "cells": cells, "targets": ["y"], "target_units": {"y": "°C"}}
    view = plots._Comparison.of(record, "y")
    overlay = {"starts": np.arange(30), "times": times, "target": "y", "actual": actual}
    titles = plots.forecast_overlay(view, overlay, forecasts, tmp_path / "o.png")
    assert titles == [f"{c}: MAE {0.1 * (i + 1):.3g} on these windows" for i, c in enumerate(cells)]
    tall = matplotlib.image.imread(tmp_path / "o.png").shape[0]
    plots.forecast_overlay(
        plots._Comparison.of({**record, "cells": cells[:1]}, "y"), overlay, forecasts, tmp_path / "1.png"
    )
    assert tall > 2 * matplotlib.image.imread(tmp_path / "1.png").shape[0]  # the figure grows a panel per cell


@pytest.mark.slow
def test_workers_give_the_same_numbers_from_other_processes(compared, tmp_path, weather_config):
    """`--workers 2`: the runs are tasks of the local executor (spawned processes, not this one) and compare.json
    holds the numbers of the in-process comparison (`compared`, same cells and seed). The Ray path of the same
    loop is not started here: one Ray runtime per suite is enough (tests/test_tune.py covers the Ray executor)."""
    out = tmp_path / "par"
    args = ["compare", str(weather_config), "--cells", ",".join(CELLS), "--out", str(out), "--workers", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "2 runs, 2 at a time in local processes" in result.stderr
    one = json.loads((compared[0] / "compare.json").read_text())
    two = json.loads((out / "compare.json").read_text())
    assert two["ranking"] == one["ranking"] and two["baselines"] == one["baselines"]
    for c in CELLS:
        (a,) = one["results"][c]["runs"]
        (b,) = two["results"][c]["runs"]
        assert a["pid"] == os.getpid()  # --workers 1 trains in the driver
        assert b["pid"] != os.getpid()  # --workers 2: in a worker process
        for k in ("params", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase", "test_skill"):
            assert b[k] == pytest.approx(a[k], rel=1e-6), (c, k)
        assert b["test_mse_by_lead"] == pytest.approx(a["test_mse_by_lead"], rel=1e-6)
        artifacts.open_run(out / b["run_dir"])  # a complete run directory where the driver said


@pytest.mark.slow
def test_a_killed_worker_leaves_the_comparison_unfinished(tmp_path, weather_config):
    """kill -9 of the worker process training a run: the driver says what a Ctrl-C says (exit 130, one line)."""

    def kill_worker(proc, run):
        worker = json.loads((run / artifacts.OWNER).read_text())["pid"]  # the process that claimed the run
        assert worker != proc.pid
        os.kill(worker, signal.SIGKILL)

    proc, err, out, partial = _interrupt_compare(tmp_path, weather_config, ["--workers", "2"], kill_worker)
    assert proc.returncode == 130, err
    _unfinished_line(err, partial)
    assert not out.exists() and (partial / artifacts.MARKER).is_file()


@pytest.mark.slow
def test_sigterm_to_the_driver_stops_its_workers_mid_training(tmp_path, weather_config):
    """`kill PID` reaches only the driver: it stops its worker processes (each run stops at its next batch and keeps
    its checkpoint) instead of waiting for 500 epochs in ``close``; exit 143, one line, no worker left behind."""
    import psutil

    workers = []

    def terminate_driver(proc, run):
        workers.extend(psutil.Process(proc.pid).children(recursive=True))
        proc.send_signal(signal.SIGTERM)

    proc, err, out, partial = _interrupt_compare(tmp_path, weather_config, ["--workers", "2"], terminate_driver)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"error: {partial}: interrupted (SIGTERM); the comparison is unfinished. Fix: compare has no resume: remove this unfinished comparison, or run the command again with another --out."
    )
    _, alive = psutil.wait_procs(workers, timeout=15)  # the workers, and multiprocessing's resource tracker
    assert len(workers) >= 2 and alive == []
    run = partial / "runs" / artifacts.partial_of(Path("gru-seed42")).name
    assert artifacts.committed_epoch(run) >= 1 and not out.exists()


def test_address_without_ray_is_refused_before_any_directory(tmp_path, weather_config):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(weather_config), "--out", str(out), "--address", "auto"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: --address: --address only applies to the ray executor. Fix: add --executor ray."
    )
    assert not out.exists() and not artifacts.partial_of(out).exists()

"""Reports answer first (verdict slot, headline, forecast, intervals; config last) and fit a 1280 px window."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, TINY, merge, run_cli, sine_frame, write_config
from rnnforecast.cli import cli
from rnnforecast.report import caption_for, headline, verdict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def page_width(report: Path) -> int:
    """``document.documentElement.scrollWidth`` of ``report`` in headless Chromium with a 1280 px wide window."""
    probe = report.with_name(".probe-" + report.name)  # beside it: relative links stay what they are
    html = report.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.body.dataset.sw = document.documentElement.scrollWidth</script></body>"
    )
    return int(re.search(r'data-sw="(\d+)"', _dump_dom(probe, html)).group(1))


def _dump_dom(probe: Path, html: str) -> str:
    """The DOM headless Chromium (1280 px wide) makes of ``html`` written to ``probe``, which is removed after."""
    probe.write_text(html, encoding="utf-8")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--dump-dom"]
            + [probe.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        probe.unlink()


def _weather(tmp_path: Path, **extra) -> Path:
    cfg = yaml.safe_load((CONFIGS / "weather_gru.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    return write_config(tmp_path, merge(merge(cfg, TINY), extra))


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory) -> Path:
    """A weather run with horizon 24: per-lead tables of 25 columns."""
    d = tmp_path_factory.mktemp("wide")
    r = CliRunner().invoke(cli, ["train", str(_weather(d, window={"horizon": 24})), "--run-dir", str(d / "run"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["report", str(d / "run")])
    assert r.exit_code == 0, r.output
    return d / "run"


@pytest.mark.slow
def test_a_run_report_answers_first_and_keeps_the_config_last(wide_run: Path):
    html = (wide_run.parent / "run-report.html").read_text()  # beside the run, not in it
    order = [html.index(f"<section id='{s}'>") for s in ("answer", "forecast", "intervals", "run", "data", "config")]
    assert order == sorted(order)
    metrics = json.loads((wide_run / "metrics.json").read_text())
    # the verdict line the scoring commands print leads the page (text.run_verdict: the best baseline by MAE)
    overall = metrics["test"]["original"]["overall"]
    best = min((name for name in overall if name != "model"), key=lambda name: overall[name]["mae"])
    assert verdict(metrics).startswith("verdict: ") and f"best baseline, {best} (MAE" in verdict(metrics)
    assert verdict(metrics) in html[order[0] : order[1]]
    model = metrics["test"]["original"]["overall"]["model"]
    assert f"model MAE {model['mae']:.3f}" in headline(metrics) and f"MASE {model['mase']:.3f}" in headline(metrics)
    answer = html[order[0] : order[1]]
    assert headline(metrics) in answer
    # the forecast: forecast.csv rounded to the data's 0.1 °C, beside its fan chart
    forecast_html = html[order[1] : order[2]]
    csv = pd.read_csv(wide_run / "forecast.csv")
    assert len(csv) == 24
    for _, row in csv.iterrows():
        cells = [f"<td>{row['timestamp']}</td>", f"<td>{row['step']}</td>", f"<td>{row['temp_max']:.1f}</td>"]
        assert "".join(cells) in forecast_html, cells
    assert (
        "alt='plots/forecast_next.png'" in forecast_html and escape(caption_for("forecast_next.png")) in forecast_html
    )
    # the coverage and width train printed
    m80 = metrics["intervals"]["model"]["levels"]["80"]
    shown = (
        f"<td>model, 80%</td><td>{m80['coverage']['overall']:.1f}</td><td>{m80['joint_coverage']['overall']:.1f}</td>"
    )
    assert shown in html[order[2] : order[3]]


def test_captions_name_what_their_figures_draw():
    assert "one shaded interval per level" in caption_for("forecast_next.png")
    assert "Test MAE for each lead time" in caption_for("error_by_horizon.png")  # the figure plots MAE, not MSE
    assert "interval for each level" in caption_for("forecast.png") and "lead-1" in caption_for("forecast.png")
    assert "± 1 std over seeds" in caption_for("error_by_lead.png")


@pytest.fixture(scope="module")
def report_kinds(tmp_path_factory, wide_run) -> dict[str, Path]:
    """One report of each kind: run (horizon 24), comparison (2 cells), backtest (2 folds), tune (1 trial)."""
    d = tmp_path_factory.mktemp("kinds")
    cfg = _weather(d, window={"horizon": 24})
    out = {"run": wide_run.parent / "run-report.html"}
    r = run_cli("compare", str(cfg), "--cells", "gru,lstm", "--out", str(d / "cmp"), "-q")
    assert r.returncode == 0, r.stderr
    sine_frame(300).to_csv(d / "s.csv", index=False)
    bt = {
        "name": "bt",
        "data": {"path": str(d / "s.csv"), "target": "y", "time_column": "time"},
        "window": {"input_length": 3, "horizon": 24},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 16},
    }
    r = run_cli("backtest", str(write_config(d, bt, "bt.yaml")), "--folds", "2", "--out", str(d / "bt"), "-q")
    assert r.returncode == 0, r.stderr
    from test_tune import tune_config

    (d / "tune").mkdir()
    r = run_cli("tune", str(tune_config(d / "tune")), "--trials", "1", "--out", str(d / "tn"), "-q")
    assert r.returncode == 0, r.stderr
    for kind, where in (("compare", d / "cmp"), ("backtest", d / "bt"), ("tune", d / "tn")):
        r = run_cli("report", str(where))
        assert r.returncode == 0, r.stderr
        out[kind] = where.parent / f"{where.name}-report.html"
    return out


@pytest.mark.slow
def test_the_backtest_report_has_a_mean_row_and_its_config(report_kinds):
    html = report_kinds["backtest"].read_text()
    record = json.loads((report_kinds["backtest"].parent / "bt" / "metrics.json").read_text())
    mean = record["aggregate"]["scores"]["model"]["mase"]["mean"]
    assert re.search(r"<tr><td>mean</td><td></td><td>\d+</td><td></td>.*?<td>" + f"{mean:.3f}</td>", html)
    assert html.index("<section id='backtest'>") < html.index("<section id='config'>")
    assert "name: bt" in html


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
@pytest.mark.parametrize("kind", ["run", "compare", "backtest", "tune"])
def test_every_report_kind_fits_1280_px_without_horizontal_scrolling(report_kinds, kind):
    assert page_width(report_kinds[kind]) <= 1280


FORECAST_OF = {  # what shows the forecast on each kind of page
    "run": "#forecast",
    "compare": "img[alt='plots/forecast_overlay.png']",
    "backtest": "img[alt='plots/backtest_forecast.png']",
    "tune": "#forecast",
}


def layout_in_chromium(report: Path, forecast: str) -> dict:
    """Page width and the vertical position (px from the top, -1 when absent) of the verdict line (a run's: the first
    line of its Answer), the forecast and the config, as headless Chromium lays the page out 1280 px wide."""
    probe = report.with_name(".order-" + report.name)
    script = (
        "<script>const place = s => { const e = document.querySelector(s); "
        "return e ? Math.round(e.getBoundingClientRect().top + window.scrollY) : -1; };"
        "document.body.dataset.layout = JSON.stringify({width: document.documentElement.scrollWidth, "
        f"verdict: place('p.verdict, #answer strong'), forecast: place({json.dumps(forecast)}), "
        "config: place('#config, #best-config')});"
        "</script></body>"
    )
    dom = _dump_dom(probe, report.read_text(encoding="utf-8").replace("</body>", script))
    from html import unescape

    return json.loads(unescape(re.search(r'data-layout="([^"]*)"', dom).group(1)))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
@pytest.mark.parametrize("kind", ["run", "compare", "backtest", "tune"])
def test_every_report_kind_shows_verdict_then_forecast_then_config_in_chromium(report_kinds, kind):
    at = layout_in_chromium(report_kinds[kind], FORECAST_OF[kind])
    assert at["width"] <= 1280
    assert 0 <= at["verdict"] < at["forecast"] < at["config"], at


def _write_compare_record(cmp: Path, *run_dirs: str) -> None:
    """A comparison's compare.json of gru runs at ``run_dirs`` (scores all 1.0), as a user might edit one."""
    keys = ("params", "seconds_per_epoch", "best_epoch", "val_mse", "test_mse", "test_mae", "test_mase", "test_skill")
    runs = [{"run_dir": d, "seed": 42} for d in run_dirs]
    run = {"mean": dict.fromkeys(keys, 1.0), "std": dict.fromkeys(keys), "runs": runs}
    record = {"name": "edited", "cells": ["gru"], "ranking": ["gru"], "seeds": [42], "epochs": 1}
    record |= {"n_test_windows": 1, "baselines": {}, "results": {"gru": run}}
    (cmp / "compare.json").write_text(json.dumps(record))


def test_a_compare_report_writes_run_pages_only_inside_the_comparison(weather_run, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(weather_run, outside)
    (tmp_path / "outside-report.html").unlink(missing_ok=True)
    cmp = tmp_path / "cmp"
    cmp.mkdir()
    _write_compare_record(cmp, "../outside")  # an edited compare.json pointing out of it
    r = CliRunner().invoke(cli, ["report", str(cmp)])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "cmp-report.html").read_text()
    assert not list(tmp_path.glob("*outside*.html")) and "outside" not in page.split("<h2>Runs")[-1].split("</ul>")[0]


def test_a_compare_reports_run_pages_replace_a_users_file_only_with_force(weather_run, tmp_path):
    cmp = tmp_path / "cmp"
    shutil.copytree(weather_run, cmp / "runs" / "gru-seed42")
    shutil.copytree(weather_run, cmp / "runs" / "gru-seed43")
    _write_compare_record(cmp, "runs/gru-seed42", "runs/gru-seed43")
    mine = tmp_path / "cmp-report-runs-gru-seed43.html"  # a user's file at the second run page's name
    mine.write_text("mine")
    r = CliRunner().invoke(cli, ["report", str(cmp)])
    assert r.exit_code == 1 and "a file report did not write" in r.stderr and "--force" in r.stderr
    assert mine.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["cmp", mine.name]
    r = CliRunner().invoke(cli, ["report", str(cmp), "--force"])
    assert r.exit_code == 0, r.output
    assert "rnnforecast report" in mine.read_text()[:400]
    page = (tmp_path / "cmp-report.html").read_text()
    assert "href='cmp-report-runs-gru-seed42.html'" in page and "href='cmp-report-runs-gru-seed43.html'" in page
    r = CliRunner().invoke(cli, ["report", str(cmp)])  # now both pages are report's own: replaced unasked
    assert r.exit_code == 0, r.output

"""rnnforecast report: one self-contained HTML page that embeds exactly the PNGs of the directory, captioned."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnforecast import artifacts
from rnnforecast.cli import cli
from rnnforecast.report import CAPTIONS, GENERIC, caption_for
from rnnforecast.text import column

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "wbr", "source"}


class Page(HTMLParser):
    """Parses a report, checks tags are balanced, and collects images, captions, headings and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[tuple[str, str]] = []  # (src, alt)
        self.captions: list[str] = []
        self.headings: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._text: list[str] = []
        self._capture: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith(("data:", "#"))]
        if tag == "img":
            assert self.stack[-1] == "figure", "every image sits in a figure"
            self.images.append((a["src"], a.get("alt", "")))
        if tag in ("figcaption", "h1", "h2", "h3", "h4"):
            self._capture = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()
        if tag in ("figcaption", "h1", "h2", "h3", "h4") and self._capture is not None:
            text = " ".join("".join(self._capture).split())
            (self.captions if tag == "figcaption" else self.headings).append(text)
            self._capture = None

    def handle_data(self, data):
        self._text.append(data)
        if self._capture is not None:
            self._capture.append(data)

    @property
    def text(self) -> str:
        return "".join(self._text)


def parse_report(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], f"unclosed tags {page.stack}"
    return page


def assert_embeds_exactly_the_pngs(page: Page, directory: Path) -> None:
    """The embedded images are the PNG files under ``directory`` and in its inspection beside it
    (``<directory>-inspect``, when there), each once, byte for byte."""
    embedded = []
    for src, _ in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        embedded.append(hashlib.sha256(base64.b64decode(src[len(prefix) :], validate=True)).hexdigest())
    annex = directory.parent / f"{directory.name}-inspect"
    pngs = [(p, p.relative_to(directory)) for p in directory.rglob("*.png")]
    pngs += [(p, p.relative_to(directory.parent)) for p in annex.glob("*.png")]
    files = [hashlib.sha256(p.read_bytes()).hexdigest() for p, _ in pngs]
    assert files, "the directory has PNGs to embed"
    assert sorted(embedded) == sorted(files)
    alts = sorted(alt for _, alt in page.images)
    assert alts == sorted(rel.as_posix() for _, rel in pngs)
    assert page.urls == [] and not page.tags & {"script", "link", "iframe"}  # opens from disk, no network


def test_report_on_a_run(weather_run, tmp_path):
    out = tmp_path / "weather.html"
    result = CliRunner().invoke(cli, ["report", str(weather_run), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report written to {out}"
    assert not list(tmp_path.glob("*.tmp"))
    page = parse_report(out)
    html = out.read_text()
    assert_embeds_exactly_the_pngs(page, weather_run)
    for _, alt in page.images:
        assert caption_for(Path(alt).name) in " ".join(page.captions)
    assert GENERIC not in page.text  # every plot train writes has its own caption
    m = json.loads((weather_run / "metrics.json").read_text())
    overall = m["test"]["original"]["overall"]
    text = page.text
    names = ("model", "persistence", "seasonal_naive", "window_mean")
    for shown in column([overall[name]["mse"] for name in names]):  # one format for the column
        assert f"<td>{shown}</td>" in html
    normalised = m["test"]["normalised"]["overall"]
    assert f"<td>{column([normalised[n]['mae'] for n in names])[0]}</td>" in html
    lead = m["test"]["original"]["per_lead"]["model"]["mse"]
    last = column([m["test"]["original"]["per_lead"][n]["mse"][-1] for n in names])[0]
    assert f"<td>{last}</td>" in html and f"t+{len(lead)}" in text
    assert (weather_run / "config.yaml").read_text().splitlines()[0] in text  # the config, verbatim
    assert "temp_max" in text and "day_of_year_sin" in text  # data summary from schema.json
    for h in ("Answer", "Forecast", "Config", "Data", "Diagnostics", "Training and evaluation plots"):
        assert h in page.headings


def test_unknown_and_nested_pngs_are_embedded_with_a_generic_caption(weather_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(weather_run, run)
    png = next((run / "plots").glob("*.png")).read_bytes()
    (run / "plots" / "mine.png").write_bytes(png + b"mine")  # distinct bytes
    (run / "extra" / "deeper").mkdir(parents=True)
    (run / "extra" / "deeper" / "x.png").write_bytes(png + b"deep")
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report written to {tmp_path / 'run-report.html'}"
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before  # not written in
    page = parse_report(tmp_path / "run-report.html")
    assert_embeds_exactly_the_pngs(page, run)
    assert sum(GENERIC in c for c in page.captions) == 2
    assert "Other figures in the directory" in page.headings


def test_captions_cover_the_known_plots():
    for name in ("loss.png", "forecast.png", "error_by_horizon.png", "residuals.png", "val_loss.png", "test_error.png"):
        assert caption_for(name) == CAPTIONS[name]
    assert caption_for("something_else.png") == GENERIC


@pytest.mark.parametrize("make", ["missing", "partial", "empty"])
def test_report_refuses_what_is_not_a_result(tmp_path, make):
    d = tmp_path / "d"
    if make == "partial":
        d = tmp_path / "run.partial"
        d.mkdir()
        (d / artifacts.MARKER).write_text("unfinished")
    elif make == "empty":
        d.mkdir()
    result = CliRunner().invoke(cli, ["report", str(d)])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert {"missing": "directory not found", "partial": "did not finish", "empty": "neither a run directory"}[
        make
    ] in result.stderr


def _compare_record(gru_mse: float, gru_mae: float) -> dict:
    """A compare.json body: gru ranked first with the given scores, lstm behind, persistence as the baseline."""

    def result(mse, mae):
        mean = {"params": 80.0, "seconds_per_epoch": 0.5, "best_epoch": 3.0, "val_mse": 1.0}
        mean |= {"test_mse": mse, "test_mae": mae, "test_mase": mae / 1.2, "test_skill": 1 - mse / 3.0}
        return {"mean": mean, "std": {k: None for k in mean}, "runs": []}

    return {
        "name": "t",
        "seeds": [1],
        "epochs": 1,
        "n_test_windows": 10,
        "cells": ["gru", "lstm"],
        "ranking": ["gru", "lstm"],
        "results": {"gru": result(gru_mse, gru_mae), "lstm": result(4.0, 1.5)},
        "baselines": {"persistence": {"test_mse": 3.0, "test_mae": 1.2, "test_mase": 1.0, "test_skill": 0.0}},
    }


def test_compare_table_bolds_the_best_cell_only_when_it_beats_every_baseline():
    from rnnforecast.report import _compare_body

    assert "<tr class='best'><td>gru</td>" in _compare_body(_compare_record(2.0, 1.0))
    for mse, mae in ((2.0, 1.3), (3.5, 1.0), (3.0, 1.2)):  # loses on MAE, on MSE, ties: no bold anywhere
        assert "class='best'" not in _compare_body(_compare_record(mse, mae))


def test_run_report_warns_when_mase_is_at_least_1_and_never_bolds_a_loser(weather_run, tmp_path):
    """The run report carries the terminal's MASE >= 1 warning (top of the page and in the results) exactly when the
    model's test MASE is >= 1, and bolds the model row only when it beats every baseline on MSE and MAE."""
    from rnnforecast.text import beats_every_baseline

    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(weather_run), "--output", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    overall = json.loads((weather_run / "metrics.json").read_text())["test"]["original"]["overall"]
    mase = overall["model"]["mase"]
    warning = f"warning: MASE {mase:.3f} &gt;= 1 on the test split: the model does no better than repeating the last"
    assert html.count(warning) == (2 if mase >= 1 else 0)
    wins = beats_every_baseline(overall["model"], [v for k, v in overall.items() if k != "model"])
    assert ("<tr class='best'><td>model</td>" in html) == wins
    if not wins:
        assert "class='best'" not in html


def test_run_report_warning_and_bold_on_edited_scores(weather_run, tmp_path):
    """Both branches on the same real run: scores edited to a clear loser and to a clear winner."""
    from rnnforecast.report import _metrics_body, _scores_table

    m = json.loads((weather_run / "metrics.json").read_text())
    block = m["test"]["original"]["overall"]
    loser = {**block, "model": {**block["model"], "mse": 1e9, "mae": 1e9, "mase": 3.5}}
    winner = {**block, "model": {**block["model"], "mse": 1e-9, "mae": 1e-9, "mase": 0.01}}
    assert "class='best'" not in _scores_table(loser)
    assert "<tr class='best'><td>model</td>" in _scores_table(winner)
    m["test"]["original"]["overall"] = loser
    assert "warning: MASE 3.500 &gt;= 1 on the test split" in _metrics_body(m, weather_run)
    m["test"]["original"]["overall"] = winner
    assert "warning" not in _metrics_body(m, weather_run)


def test_report_tables_scroll_in_their_box_and_align_decimals():
    """Every table sits in an overflow-x box (the page never widens past 1280 px); wide ones get the smaller font;
    numbers in a column share one number of decimals."""
    from rnnforecast.report import CSS, _compare_body

    body = _compare_body(_compare_record(2.0, 1.0))
    assert body.count("<div class='scroll'><table class='wide'>") == 1  # 9 columns
    assert ".scroll{overflow-x:auto" in CSS and "table.wide{font-size:.8rem}" in CSS
    assert "<td>1.000</td>" in body and "<td>1.500</td>" in body  # test MAE 1.0 and 1.5 beside 1.2: 3 decimals each
    assert "<td>2</td>" in body and "<td>3</td>" in body  # test MSE 2, 4, 3: whole numbers stay whole
    assert "<td>80</td>" in body and "±" not in body  # params: a whole number, no ± for one seed

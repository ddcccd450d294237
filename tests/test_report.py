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
    """The embedded images are the PNG files under ``directory``, each once, byte for byte."""
    embedded = []
    for src, _ in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        embedded.append(hashlib.sha256(base64.b64decode(src[len(prefix) :], validate=True)).hexdigest())
    files = [hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.rglob("*.png")]
    assert files, "the directory has PNGs to embed"
    assert sorted(embedded) == sorted(files)
    alts = sorted(alt for _, alt in page.images)
    assert alts == sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.png"))
    assert page.urls == [] and not page.tags & {"script", "link", "iframe"}  # opens from disk, no network


def test_report_on_a_run(weather_run, tmp_path):
    out = tmp_path / "weather.html"
    result = CliRunner().invoke(cli, ["report", str(weather_run), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report written to {out}"
    assert not list(tmp_path.glob("*.tmp"))
    page = parse_report(out)
    assert_embeds_exactly_the_pngs(page, weather_run)
    for _, alt in page.images:
        assert caption_for(Path(alt).name) in " ".join(page.captions)
    assert GENERIC not in page.text  # every plot train writes has its own caption
    m = json.loads((weather_run / "metrics.json").read_text())
    overall = m["test"]["original"]["overall"]
    text = page.text
    for name in ("model", "persistence", "seasonal_naive", "window_mean"):
        assert f"{overall[name]['mse']:.4g}" in text
    assert f"{m['test']['normalised']['overall']['model']['mae']:.4g}" in text
    lead = m["test"]["original"]["per_lead"]["model"]["mse"]
    assert f"{lead[-1]:.4g}" in text and f"t+{len(lead)}" in text
    assert (weather_run / "config.yaml").read_text().splitlines()[0] in text  # the config, verbatim
    assert "temp_max" in text and "day_of_year_sin" in text  # data summary from schema.json
    for h in ("Config", "Data", "Results", "Training and evaluation plots"):
        assert h in page.headings


def test_unknown_and_nested_pngs_are_embedded_with_a_generic_caption(weather_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(weather_run, run)
    png = next((run / "plots").glob("*.png")).read_bytes()
    (run / "plots" / "mine.png").write_bytes(png + b"mine")  # distinct bytes
    (run / "extra" / "deeper").mkdir(parents=True)
    (run / "extra" / "deeper" / "x.png").write_bytes(png + b"deep")
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = parse_report(run / "report.html")
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

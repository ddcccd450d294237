"""bench/readme_numbers.py and README.md hold the same figures (issue 23 Done-when: the README's measured numbers
come from a script in bench/ that reproduces them; the script prints each beside the README's, so the two must agree)."""

from __future__ import annotations

import re

from bench.readme_numbers import README
from conftest import ROOT


def _written(value: float) -> set[str]:
    return {f"{value:g}", f"{value:.1f}", f"{value:.2f}"}


def test_every_figure_the_script_checks_is_the_one_the_readme_gives():
    text = (ROOT / "README.md").read_text()
    numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)", text))
    missing = {f"{part}: {key} = {v}" for part, figures in README.items() for key, v in figures.items()}
    missing = {m for m in missing if not _written(float(m.rsplit("= ", 1)[1])) & numbers}
    assert not missing, f"figures in bench/readme_numbers.py that README.md does not give: {sorted(missing)}"
    assert text.count("bench.readme_numbers") >= 2  # both paragraphs say where their numbers come from

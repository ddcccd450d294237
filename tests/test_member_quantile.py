"""Issue 24 item 10: an ensemble member taken from a quantile run says "quantile" (through the real CLI)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from conftest import CONFIGS, DATA, TINY, merge, run_cli, write_config


@pytest.mark.slow
def test_a_member_from_a_quantile_run_is_named_as_a_quantile_model(tmp_path):
    base = merge(yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text()), TINY)
    base["data"]["path"] = str(DATA / "weather.csv")
    base["output"] = {"plots": False}
    base["training"] = {**base["training"], "final_fit": False}
    ens = write_config(tmp_path, merge(base, {"model": {"ensemble": 2}}), "ens.yaml")
    quant = write_config(tmp_path, merge(base, {"intervals": {"levels": [80], "method": "quantile"}}), "q.yaml")
    for cfg, run in ((ens, "ens"), (quant, "q")):
        r = run_cli("train", str(cfg), "--run-dir", str(tmp_path / run), "-q")
        assert r.returncode == 0, r.stderr
    member = tmp_path / "ens" / "members" / "1.keras"
    before = member.read_bytes()
    shutil.copyfile(tmp_path / "q" / "model.keras", member)  # a quantile run's model where a member belongs
    r = run_cli("predict", str(tmp_path / "ens"))
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(member) in lines[0]
    assert "x 3 quantiles (a quantile model)" in lines[0] and "(a point model)" in lines[0]
    assert "Fix:" in lines[0]
    assert before != member.read_bytes()  # the tool changed nothing: the file is still the one put there

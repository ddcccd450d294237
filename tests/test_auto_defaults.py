"""Defaults that adapt (issue 22 item 7): a plain config (cell and units) gets window scaling, independent
channels for several targets and segments of one season, decided for its data once, written into the run's
config.yaml, shown by `validate`; explicit values are kept as written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from rnnforecast.cli import cli
from rnnforecast.config import from_dict


def _cfg(**over):
    raw = {"data": {"path": "x.csv", "target": ["a", "b"]}, "window": {"input_length": 96, "horizon": 24}}
    for dotted, value in over.items():
        *parents, last = dotted.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return from_dict(raw)


def _shape(cfg, season):
    s = cfg.settled(season)
    return s.data.scaling, s.model.channels, s.model.segment_length


def test_a_plain_config_settles_to_window_scaling_independent_channels_and_day_segments():
    cfg = _cfg(**{"model.cell": "gru", "model.units": [64]})
    assert (cfg.data.scaling, cfg.model.channels, cfg.model.segment_length) == ("auto", "auto", "auto")
    assert _shape(cfg, 24) == ("window", "independent", 24)


@pytest.mark.parametrize(
    ("input_length", "season", "segment"),
    [
        (96, 24, 24),
        (48, 24, 24),
        (47, 24, None),
        (24, 24, None),
        (14, 7, 7),
        (13, 7, None),
        (96, 1, None),
        (24, 12, 12),
    ],
)
def test_segments_are_one_season_when_the_window_holds_two(input_length, season, segment):
    cfg = _cfg(**{"window.input_length": input_length})
    assert cfg.settled(season).model.segment_length == segment


@pytest.mark.parametrize(
    "over",
    [{"model.cell": "dense"}, {"model.bidirectional": True}],
    ids=["dense has no recurrence", "bidirectional reads backwards too"],
)
def test_no_segments_for_a_cell_that_does_not_run_forward(over):
    assert _cfg(**over).settled(24).model.segment_length is None


def test_explicit_values_are_kept_as_written():
    cfg = _cfg(
        **{"data.scaling": "standard", "model.channels": "mixed", "model.segment_length": 12, "model.cell": "gru"}
    )
    assert _shape(cfg, 24) == ("standard", "mixed", 12)
    assert _cfg(**{"model.segment_length": None}).settled(24).model.segment_length is None


def test_a_transform_keeps_standard_scaling():
    assert _shape(_cfg(**{"data.transform": "log_diff"}), 24)[0] == "standard"
    assert _shape(_cfg(**{"data.transform": {"a": "diff"}}), 24)[0] == "standard"
    assert _shape(_cfg(**{"data.transform": {"a": "none", "b": "none"}}), 24)[0] == "window"


def test_a_log_keeps_the_level_so_window_scaling_and_the_residual_stay():
    """log is not a difference: a series of logs still moves in level, so auto keeps window scaling and leaves the
    residual to the data (a differencing transform forces none)."""
    assert _shape(_cfg(**{"data.transform": "log"}), 24)[0] == "window"
    assert _cfg(**{"data.transform": "log"}).settled(24, "seasonal").model.residual == "seasonal"
    assert _cfg(**{"data.transform": "diff"}).settled(24, "seasonal").model.residual == "none"


def test_a_one_step_window_keeps_standard_scaling():
    """Relative to its own last value a one-step window is all zeros: auto does not do that to it."""
    assert _shape(_cfg(**{"window.input_length": 1}), 24)[0] == "standard"
    assert _shape(_cfg(**{"window.input_length": 2}), 24)[0] == "window"


def test_channels_mixed_for_one_target_or_a_target_left_out_of_the_inputs():
    assert _shape(_cfg(**{"data.target": ["a"]}), 24)[1] == "mixed"
    assert _shape(_cfg(**{"data.features": ["a", "c"]}), 24)[1] == "mixed"  # b is no input: no own history
    assert _shape(_cfg(**{"data.features": ["a", "b", "c"]}), 24)[1] == "independent"


def test_settling_twice_changes_nothing_and_the_hash_follows_the_settled_values():
    once = _cfg().settled(24)
    assert once.settled(24) == once and once.settled(7) == once  # nothing auto is left to decide
    assert once.hash() != _cfg().hash()


def test_a_misspelt_auto_is_one_line_naming_the_key():
    with pytest.raises(Exception) as e:
        _cfg(**{"model.segment_length": "atuo"})
    assert "model.segment_length" in str(e.value) and "\n" not in str(e.value).strip()


# --------------------------------------------------------------------------- through the CLI


def _hourly(path, n=24 * 30):
    """Two targets with a daily cycle of different phase, a slow trend and noise: not degenerate."""
    t = np.arange(n)
    rng = np.random.default_rng(3)
    a = 20 + 6 * np.sin(2 * np.pi * t / 24) + 0.01 * t + rng.normal(0, 0.5, n)
    b = 5 + 2 * np.cos(2 * np.pi * t / 24) - 0.005 * t + rng.normal(0, 0.3, n)
    df = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="h"), "a": a.round(3), "b": b.round(3)})
    df.to_csv(path, index=False)
    return path


def _write(tmp_path, **extra_model):
    _hourly(tmp_path / "load.csv")
    cfg = {
        "name": "plain",
        "data": {"path": "load.csv", "time_column": "time", "target": ["a", "b"]},
        "window": {"input_length": 48, "horizon": 6},
        "model": {"cell": "gru", "units": [8], **extra_model},
        "training": {"epochs": 1, "batch_size": 64, "final_fit": False},
        "output": {"plots": False, "runs_dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_validate_shows_what_auto_decided_and_why(tmp_path):
    path = _write(tmp_path)
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines() if line.startswith(("data.", "model."))}
    assert "window  (auto: each window relative to its last value)" in lines["data.scaling"]
    assert "independent  (auto: 2 targets, each its own sequence)" in lines["model.channels"]
    assert "24 steps (2 segments of the 48-step window)" in lines["model.segment_length"]
    assert "(auto: one season of 24 steps, the window holds 2)" in lines["model.segment_length"]
    out = CliRunner().invoke(cli, ["validate", str(_write(tmp_path, segment_length=12, channels="mixed"))])
    lines = {line.split()[0]: line for line in out.output.splitlines() if line.startswith("model.")}
    assert lines["model.segment_length"].endswith("12 steps (4 segments of the 48-step window)")  # no "auto"
    assert lines["model.channels"].split() == ["model.channels", "mixed"]


def test_a_plain_run_keeps_the_settled_config_and_predict_replays_it(tmp_path):
    path = _write(tmp_path)
    run = tmp_path / "run"
    out = CliRunner().invoke(cli, ["train", str(path), "--run-dir", str(run), "-q"])
    assert out.exit_code == 0, out.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["scaling"] == "window"
    assert saved["model"]["channels"] == "independent" and saved["model"]["segment_length"] == 24
    assert saved["model"]["residual"] == "seasonal"  # a daily cycle: seasonal naive far ahead of persistence
    assert "auto" not in json.dumps(saved["model"]) and saved["data"]["scaling"] != "auto"
    shown = CliRunner().invoke(cli, ["predict", str(run), "--json"])
    assert shown.exit_code == 0, shown.output
    forecast = pd.read_csv(run / "forecast.csv")
    payload = json.loads(shown.output)
    rows = payload["forecast"] if isinstance(payload, dict) else payload
    got = pd.DataFrame(rows)
    assert len(got) == len(forecast) == 6
    for col in ("a", "b"):
        np.testing.assert_allclose(got[col].to_numpy(float), forecast[col].to_numpy(float), rtol=1e-5, atol=1e-5)


def test_the_same_config_with_the_settled_values_written_out_trains_the_same_numbers(tmp_path):
    """auto is only a way of writing the settled values: both runs score identically."""
    plain = tmp_path / "p"
    plain.mkdir()
    explicit = tmp_path / "e"
    explicit.mkdir()
    a = _write(plain)
    b = _write(explicit, segment_length=24, channels="independent", residual="seasonal")
    raw = yaml.safe_load(b.read_text())
    raw["data"]["scaling"] = "window"
    b.write_text(yaml.safe_dump(raw))
    for path, d in ((a, plain), (b, explicit)):
        out = CliRunner().invoke(cli, ["train", str(path), "--run-dir", str(d / "run"), "-q"])
        assert out.exit_code == 0, out.output
    ma = json.loads((plain / "run" / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    mb = json.loads((explicit / "run" / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    assert ma["mae"] == pytest.approx(mb["mae"], rel=1e-6)


# --------------------------------------------------------------------------- model.residual: auto


def _shift_maes(frame: pd.DataFrame, targets, horizon: int, season: int, train_rows: int) -> tuple[float, float]:
    """(persistence, seasonal naive) MAE over leads 1..horizon on the first ``train_rows`` rows, each target
    divided by its standard deviation there, by pandas shifts (another way than metrics.naive_maes)."""
    part = frame[targets].iloc[:train_rows]
    part = part / part.std(ddof=0)
    p = pd.concat([(part - part.shift(h)).abs().stack() for h in range(1, horizon + 1)]).mean()
    s = pd.concat([(part - part.shift(season * -(-h // season))).abs().stack() for h in range(1, horizon + 1)]).mean()
    return p, s


def _series(path, cycle: float, walk: float, n=24 * 40, seed=5):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 50 + cycle * np.sin(2 * np.pi * t / 24) + walk * np.cumsum(rng.normal(0, 1, n)) + rng.normal(0, 0.2, n)
    pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y}).to_csv(path, index=False)
    return path


def _validate_residual(tmp_path, csv, horizon=12):
    cfg = {
        "data": {"path": str(csv), "time_column": "time", "target": "y"},
        "window": {"input_length": 48, "horizon": horizon},
        "model": {"cell": "gru", "units": [8]},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("model.residual"))
    splits = next(x for x in out.output.splitlines() if x.startswith("train rows"))
    return line, int(splits.split("..")[1].split()[0]) + 1


@pytest.mark.parametrize(
    ("cycle", "walk", "want"),
    [(8.0, 0.05, "seasonal"), (1.0, 1.0, "none"), (3.0, 0.3, "seasonal"), (2.0, 0.3, "none")],
    ids=[
        "a daily cycle dominates",
        "a random walk dominates",
        "seasonal naive at 54 % of persistence (taylor by the day)",
        "seasonal naive better, but not by 40 %",
    ],
)
def test_residual_auto_is_seasonal_only_when_seasonal_naive_is_at_most_60_percent(tmp_path, cycle, walk, want):
    csv = _series(tmp_path / "y.csv", cycle, walk)
    line, train_rows = _validate_residual(tmp_path, csv)
    p, s = _shift_maes(pd.read_csv(csv), ["y"], 12, 24, train_rows)
    assert (s <= 0.6 * p) == (want == "seasonal")  # the fixture is what its name says
    if cycle == 3.0:
        assert 0.5 * p < s <= 0.6 * p  # "half" (the rule until the fifth session) would choose none here
    if cycle == 2.0:
        assert 0.6 * p < s < p  # "the lower one" would choose seasonal here: the share is what decides
    assert line.split()[1] == want
    assert f"seasonal naive's MAE {s:.4g} on the training rows" in line and f"persistence's {p:.4g}" in line


def test_residual_auto_weighs_targets_by_their_spread(tmp_path):
    """Two targets in units 1000x apart: unscaled, the big one alone would decide; each by its spread, both count.
    Computed here by pandas shifts on the training rows the run reports."""
    csv = _hourly(tmp_path / "load.csv")
    frame = pd.read_csv(csv)
    frame["b"] = frame["b"] * 1000
    frame.to_csv(csv, index=False)
    from rnnforecast.pipeline import settle

    cfg = from_dict(
        {
            "data": {"path": str(csv), "time_column": "time", "target": ["a", "b"]},
            "window": {"input_length": 48, "horizon": 6},
            "model": {"cell": "gru", "units": [8]},
        }
    )
    settled, data = settle(cfg)
    from rnnforecast.series import auto_residual

    _, maes = auto_residual(data, 24)
    lo, hi = data.bounds("train")[0]
    p, s = _shift_maes(frame, ["a", "b"], 6, 24, hi - lo)
    assert maes["persistence"] == pytest.approx(p, rel=1e-9)
    assert maes["seasonal_naive"] == pytest.approx(s, rel=1e-9)
    assert settled.model.residual == ("seasonal" if s <= 0.5 * p else "none") == "seasonal"


def test_residual_auto_is_none_with_a_transform(tmp_path):
    csv = _series(tmp_path / "y.csv", 8.0, 0.05)
    cfg = {
        "data": {"path": str(csv), "time_column": "time", "target": "y", "transform": "diff"},
        "window": {"input_length": 48, "horizon": 12},
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(cli, ["validate", str(path)])
    line = next(x for x in out.output.splitlines() if x.startswith("model.residual"))
    assert line.split()[1] == "none" and "data.transform differences the series" in line


@pytest.mark.parametrize("input_length", [36, 60], ids=["1.5 seasons", "2.5 seasons: not whole"])
def test_validate_says_why_a_window_gets_no_segments(tmp_path, input_length):
    path = _write(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["window"]["input_length"] = input_length
    path.write_text(yaml.safe_dump(raw))
    out = CliRunner().invoke(cli, ["validate", str(path)])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("model.segment_length"))
    assert line == (
        f"model.segment_length  none (one step at a time)  (auto: the {input_length}-step window is not two or more "
        "whole seasons of 24 steps)"
    )

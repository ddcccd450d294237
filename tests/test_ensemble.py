"""Seed ensembles (``model.ensemble``): members saved in one run, forecast = mean of the members, reproducible;
the final fit refits every member on every row (the held-out members, which the scores are of, in heldout/)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from conftest import CONFIGS, DATA, TINY, merge, write_config
from rnnforecast import intervals as I
from rnnforecast import pipeline
from rnnforecast.cli import cli
from rnnforecast.numpy_model import NumpyModel, load_predictor, predict_windows

N = 3


@pytest.fixture(scope="module")
def ensemble_config(tmp_path_factory):
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())  # has conformal intervals
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(cfg, TINY)
    cfg = merge(cfg, {"model": {"ensemble": N}, "training": {"epochs": 2}, "output": {"plots": False}})
    return write_config(tmp_path_factory.mktemp("ens_cfg"), cfg)


def train(config, run_dir):
    result = CliRunner().invoke(cli, ["train", str(config), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, ensemble_config):
    return train(ensemble_config, tmp_path_factory.mktemp("ens") / "run")


def member_forecasts(run_dir, split, data_path=None):
    """Each member's forecasts in original units, ``(N, B, H, T)``, recomputed from its own file (on the run's data,
    or ``data_path``)."""
    run, _, data, _ = pipeline.open_run_with_data(run_dir, data_path)
    starts = data.starts(split, stride=1)
    paths = [run_dir / "model.keras", *(run_dir / "members" / f"{i}.keras" for i in range(1, N))]
    members = [load_predictor(p, run.schema) for p in paths]
    assert all(isinstance(m, NumpyModel) for m in members)  # predict stays on the numpy path per member
    return np.stack([data.invert(starts, predict_windows(m, data, starts))[..., 0] for m in members]), data, starts


@pytest.fixture(scope="module")
def heldout_run(ensemble_run, tmp_path_factory):
    """A copy of the run with its held-out members and scaler in place of the final ones and no heldout/: the
    models its scores and intervals were computed with, read as an ordinary run's."""
    copy = tmp_path_factory.mktemp("ens_heldout") / "run"
    shutil.copytree(ensemble_run, copy)
    shutil.rmtree(copy / "members")
    shutil.copytree(ensemble_run / "heldout" / "members", copy / "members")
    for name in ("model.keras", "scaler.json"):
        shutil.copy(ensemble_run / "heldout" / name, copy / name)
    shutil.rmtree(copy / "heldout")
    return copy


def test_members_are_saved_and_no_checkpoint_is_left(ensemble_run):
    assert (ensemble_run / "model.keras").is_file()
    assert sorted(p.name for p in (ensemble_run / "members").iterdir()) == ["1.keras", "2.keras"]
    assert sorted(p.name for p in (ensemble_run / "heldout" / "members").iterdir()) == ["1.keras", "2.keras"]
    assert not [p.name for p in ensemble_run.iterdir() if "checkpoint" in p.name]
    metrics = json.loads((ensemble_run / "metrics.json").read_text())
    record = metrics["ensemble"]
    assert record["members"] == N and record["seeds"] == [42, 43, 44]
    final = metrics["forecast_model"]
    assert final["model"] == "final" and final["final_fit"] is True
    assert final["member_epochs"] == record["best_epoch"] and final["epochs"] == record["best_epoch"][0]


def test_final_members_differ_from_the_heldout_ones(ensemble_run, heldout_run):
    final, _, _ = member_forecasts(ensemble_run, "test")
    held, _, _ = member_forecasts(heldout_run, "test")
    for i in range(N):  # every member was trained again, not only model.keras
        assert np.abs(final[i] - held[i]).max() > 1e-3, f"member {i}"
    for i in range(1, N):
        assert (ensemble_run / "members" / f"{i}.keras").read_bytes() != (
            ensemble_run / "heldout" / "members" / f"{i}.keras"
        ).read_bytes()


def test_a_final_member_is_the_single_run_of_its_seed(ensemble_run, ensemble_config, tmp_path):
    """Member 1's final model = the final model of a one-model run with seed 43: the same seed, the same epoch
    count (its own early stopping's), the same rows."""
    single = tmp_path / "seed43"
    args = ["train", str(ensemble_config), "--run-dir", str(single), "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--set", "model.ensemble=1", "--set", "seed=43"])
    assert result.exit_code == 0, result.output
    assert json.loads((single / "metrics.json").read_text())["forecast_model"]["model"] == "final"
    run, _, data, _ = pipeline.open_run_with_data(ensemble_run)
    starts = data.starts("test", stride=1)
    member = predict_windows(load_predictor(ensemble_run / "members" / "1.keras", run.schema), data, starts)
    alone = predict_windows(load_predictor(single / "model.keras", run.schema), data, starts)
    assert json.loads((single / "scaler.json").read_text()) == json.loads((ensemble_run / "scaler.json").read_text())
    np.testing.assert_allclose(member, alone, rtol=1e-5, atol=1e-6)


def test_scores_are_the_mean_of_the_heldout_members(ensemble_run, heldout_run):
    each, data, starts = member_forecasts(heldout_run, "test")  # (N, B, H, T)
    assert np.abs(each[0] - each[1]).max() > 1e-3  # the members differ: the mean is not one of them
    mean = each.mean(axis=0)
    ev, _ = pipeline.evaluate(str(ensemble_run))  # the run's own data: scored with the held-out members
    np.testing.assert_allclose(ev.forecasts["model"][..., 0], mean, rtol=1e-5, atol=1e-4)
    saved = json.loads((ensemble_run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]["mae"]
    assert saved == pytest.approx(np.abs(data.actual(starts) - mean).mean(), rel=1e-5)
    member_mae = [np.abs(data.actual(starts) - e).mean() for e in each]
    assert min(abs(saved - m) for m in member_mae) > 1e-4  # the saved score is the ensemble's, not a member's


def test_forecast_is_the_mean_of_the_final_members(ensemble_run, tmp_path):
    """Other data (the file without its first 30 days, so not the run's own rows): the final members score it."""
    other = tmp_path / "weather_later.csv"
    pd.read_csv(DATA / "weather.csv").iloc[30:].to_csv(other, index=False)
    each, data, starts = member_forecasts(ensemble_run, "test", str(other))
    ev, warnings = pipeline.evaluate(str(ensemble_run), str(other))
    # every scored window forecasts rows the final members trained on (the file's last day): said, as a date
    assert (
        f"warning: {len(starts)} of {len(starts)} scored windows forecast rows up to 2015-12-31, which" in warnings[0]
    )
    np.testing.assert_allclose(ev.forecasts["model"][..., 0], each.mean(axis=0), rtol=1e-5, atol=1e-4)


def test_intervals_are_calibrated_on_the_ensemble(ensemble_run, heldout_run):
    each, data, starts = member_forecasts(heldout_run, "val")
    expected = I.calibrate(data.actual(starts) - each.mean(axis=0), (80.0, 95.0))
    saved = json.loads((ensemble_run / "intervals.json").read_text())
    width = np.array(I.RunIntervals.from_dict(saved).model.width)
    np.testing.assert_allclose(width, expected.width, rtol=1e-5, atol=1e-4)


def test_predict_uses_every_member(ensemble_run, tmp_path):
    out = tmp_path / "forecast.csv"
    result = CliRunner().invoke(cli, ["predict", str(ensemble_run), "--output", str(out)])
    assert result.exit_code == 0, result.output
    run, _, data, _ = pipeline.open_run_with_data(ensemble_run)
    starts, inputs = data.forecast_inputs(run.schema["frequency"])
    paths = [ensemble_run / "model.keras", *(ensemble_run / "members" / f"{i}.keras" for i in range(1, N))]
    each = [data.invert(starts, load_predictor(p).predict_on_batch(inputs))[0, :, 0, 0] for p in paths]
    np.testing.assert_allclose(pd.read_csv(out)["temp_max"], np.mean(each, axis=0), rtol=1e-5)


def test_same_config_gives_the_same_numbers(ensemble_run, ensemble_config, tmp_path):
    again = train(ensemble_config, tmp_path / "again")
    first = json.loads((ensemble_run / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    second = json.loads((again / "metrics.json").read_text())["test"]["original"]["overall"]["model"]
    assert second["mae"] == pytest.approx(first["mae"], rel=1e-6)
    a, _, _ = member_forecasts(ensemble_run, "test")
    b, _, _ = member_forecasts(again, "test")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_export_refuses_an_ensemble(ensemble_run, tmp_path):
    result = CliRunner().invoke(
        cli, ["export", str(ensemble_run), "--format", "savedmodel", "--output", str(tmp_path / "x")]
    )
    assert result.exit_code != 0
    assert "seed ensemble of 3 members" in result.output and "Fix:" in result.output


def test_a_missing_member_is_named(ensemble_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ensemble_run, copy)
    (copy / "members" / "2.keras").unlink()
    result = CliRunner().invoke(cli, ["predict", str(copy)])
    assert result.exit_code != 0
    assert "ensemble member 2 of 3 is missing" in result.output


@pytest.mark.slow
def test_members_trained_in_worker_processes_give_the_same_numbers(ensemble_run, ensemble_config, tmp_path):
    """`runtime.workers: 2`: members 1 and 2 train in a spawned worker process while member 0 trains here;
    the members, the ensemble's metrics and its intervals equal those of the sequential run."""
    run_dir = tmp_path / "parallel"
    args = ["train", str(ensemble_config), "--run-dir", str(run_dir), "--quiet", "--set", "runtime.workers=2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ensemble members 2..3 (seeds 43..44) in 1 worker process(es)" in result.stderr
    assert "ensemble member 2 of 3" not in result.stderr  # not the sequential path
    seq = json.loads((ensemble_run / "metrics.json").read_text())
    par = json.loads((run_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        a, b = seq[split]["original"]["overall"]["model"], par[split]["original"]["overall"]["model"]
        assert b["mae"] == pytest.approx(a["mae"], rel=1e-6) and b["mse"] == pytest.approx(a["mse"], rel=1e-6)
    assert par["ensemble"]["seeds"] == seq["ensemble"]["seeds"] == [42, 43, 44]
    assert par["ensemble"]["best_epoch"] == seq["ensemble"]["best_epoch"]
    a, _, _ = member_forecasts(ensemble_run, "test")
    b, _, _ = member_forecasts(run_dir, "test")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert _same_widths(ensemble_run, run_dir)  # intervals calibrated on the same ensemble forecasts
    assert not list((run_dir / "members").glob("*.checkpoint"))


def _same_widths(a, b) -> bool:
    wa = np.array(I.RunIntervals.from_dict(json.loads((a / "intervals.json").read_text())).model.width)
    wb = np.array(I.RunIntervals.from_dict(json.loads((b / "intervals.json").read_text())).model.width)
    return bool(np.allclose(wa, wb, rtol=1e-5, atol=1e-5))

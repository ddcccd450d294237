"""No code from a file is ever run: YAML through safe_load, models in Keras safe mode; runs stay in their folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import DATA, TINY, merge, write_config
from rnnforecast.artifacts import plan_run_dir, slug
from rnnforecast.cli import cli
from rnnforecast.config import from_dict


@pytest.mark.parametrize(
    "tag",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/name:os.system",
        '!!python/object/new:pathlib.Path ["{marker}"]',
    ],
)
@pytest.mark.parametrize("command", ["validate", "train"])
def test_a_config_with_a_python_tag_is_refused(tmp_path, tag, command):
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f"name: {tag.format(marker=marker)}\ndata:\n  path: {DATA / 'weather.csv'}\n  target: temp_max\n")
    r = CliRunner().invoke(cli, [command, str(config)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    msg = r.stderr.strip()
    assert (
        "\n" not in msg and "evil.yaml:1:7" in msg and "is not allowed" in msg and "safe_load" in msg and "Fix:" in msg
    )
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yaml"]


def test_a_run_whose_config_carries_a_python_tag_is_refused(weather_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(weather_run, run)
    marker = tmp_path / "pwned"
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(f'x: !!python/object/apply:os.system ["touch {marker}"]\n' + text)
    r = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert r.exit_code == 1 and "cannot read the run's files" in r.stderr and "Traceback" not in r.output, r.output
    assert not marker.exists()


@pytest.fixture(scope="module")
def lambda_run(weather_run, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the weather run whose model.keras holds a Lambda layer with Python code that leaves a marker."""
    import keras
    import numpy as np

    d = tmp_path_factory.mktemp("lambda")
    run, marker = d / "run", d / "code-ran"
    shutil.copytree(weather_run, run)
    trained = keras.saving.load_model(weather_run / "model.keras", compile=False)
    past = keras.Input(shape=trained.inputs[0].shape[1:], name="past")
    path = str(marker)  # a plain string in the closure, so Keras can serialise the function
    x = keras.layers.Lambda(lambda t: (open(path, "w").close(), t)[1], name="sneaky")(past)
    model = keras.Model({"past": past}, trained({"past": x}))
    model({"past": np.zeros((1, *trained.inputs[0].shape[1:]), "float32")})
    model.save(run / "model.keras")
    assert marker.exists()  # calling the model runs the code
    marker.unlink()  # loading must not run it again
    return run, marker


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_model_with_a_lambda_layer_is_refused(lambda_run, command):
    run, marker = lambda_run
    r = CliRunner().invoke(cli, [command, str(run)])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    msg = r.stderr.strip()
    assert "\n" not in msg and str(run / "model.keras") in msg
    assert "refused to load the model" in msg and "Python code" in msg and "Lambda" in msg and "Fix:" in msg
    assert not marker.exists()
    assert r.stdout == ""  # no forecast, no table


def test_keras_refusal_text_is_what_the_mapping_expects(lambda_run):
    """If Keras rewords its safe-mode error, this fails before users see a vague message."""
    import keras

    from rnnforecast.artifacts import UNSAFE_MARKERS

    run, _ = lambda_run
    with pytest.raises(ValueError) as e:
        keras.saving.load_model(run / "model.keras", compile=False, safe_mode=True)
    assert any(m in str(e.value) for m in UNSAFE_MARKERS if m != "Lambda"), str(e.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../evil", "evil"),
        ("/etc/cron.d/x", "etc-cron.d-x"),
        ("a/../../b", "a-..-..-b"),
        ("..", "run"),
        ("", "run"),
        ("~root", "root"),
        ("C:\\Windows\\evil", "C-Windows-evil"),
        ("weather lstm", "weather-lstm"),
    ],
)
def test_a_run_name_is_one_safe_path_component(name, expected, tmp_path):
    assert slug(name) == expected
    cfg = from_dict(
        {"name": name or "x", "data": {"path": "d.csv", "target": "y"}, "output": {"runs_dir": str(tmp_path / "runs")}}
    )
    planned = plan_run_dir(cfg, None).resolve()
    assert planned.parent == (tmp_path / "runs").resolve()
    assert "/" not in planned.name and planned.name not in ("..", ".")


def test_a_config_cannot_write_outside_its_runs_dir(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    cfg = yaml.safe_load((Path(__file__).parents[1] / "configs" / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(cfg, merge(TINY, {"name": "../../evil", "output": {"runs_dir": "runs", "plots": False}}))
    config = write_config(work, cfg)
    monkeypatch.chdir(work)
    r = CliRunner().invoke(cli, ["train", str(config), "--quiet"])
    assert r.exit_code == 0, r.output
    made = [p for p in (work / "runs").iterdir() if not p.is_symlink()]  # beside runs/evil-latest, a relative link
    assert len(made) == 1 and made[0].name.startswith("evil-") and (made[0] / "metrics.json").exists()
    assert os.readlink(work / "runs" / "evil-latest") == made[0].name
    assert sorted(p.name for p in tmp_path.rglob("*") if "evil" in p.name and p.parent != work / "runs") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"] and sorted(
        p.name for p in (tmp_path / "a").iterdir()
    ) == ["b"]

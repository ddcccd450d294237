from pathlib import Path

import pytest

from rnnforecast.config import Config, ConfigError, default_config_yaml, from_dict, load_config, parse_override
from rnnforecast.errors import did_you_mean

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


MINIMAL = "data:\n  path: d.csv\n  target: y\n"


def test_minimal_config_gets_declared_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert isinstance(cfg, Config)
    assert cfg.data.target == ["y"]  # one name becomes a list
    assert cfg.window.input_length == 24 and cfg.window.horizon == 1 and cfg.window.stride == 1
    assert cfg.model.cell == "lstm" and cfg.model.units == [32]
    assert cfg.training.early_stopping.patience == 5
    assert cfg.runtime.backend == "auto"
    assert cfg.data_path == (tmp_path / "d.csv").resolve()  # relative to the config's folder


def test_every_shipped_config_loads():
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert {
        "weather_simple_rnn.yaml",
        "weather_lstm.yaml",
        "weather_gru.yaml",
        "stock_lstm.yaml",
        "stock_gru.yaml",
    } <= set(names)
    for p in CONFIGS.glob("*.yaml"):
        cfg = load_config(p)
        assert cfg.data_path.exists(), p


def test_overrides_are_typed_by_the_schema(tmp_path):
    cfg = load_config(
        write(tmp_path, MINIMAL), ["training.epochs=3", "model.cell=gru", "model.units=[16, 8]", "training.clipnorm=1"]
    )
    assert cfg.training.epochs == 3 and cfg.model.cell == "gru" and cfg.model.units == [16, 8]
    assert cfg.training.clipnorm == 1.0 and isinstance(cfg.training.clipnorm, float)


@pytest.mark.parametrize(
    "text, overrides, phrases",
    [
        (MINIMAL + "windw:\n  horizon: 2\n", [], ["c.yaml:4", "windw", "did you mean 'window'"]),
        (MINIMAL + "window:\n  horizon: 0\n", [], ["c.yaml:5", "window.horizon", "must be >= 1", "received 0"]),
        (MINIMAL + "window:\n  input_length: ten\n", [], ["window.input_length", "expected an integer"]),
        (MINIMAL + "model:\n  cell: lstn\n", [], ["model.cell", "did you mean 'lstm'", "simple_rnn, lstm, gru, dense"]),
        (MINIMAL + "  split: {train: 0.8, val: 0.2, test: 0.2}\n", [], ["data.split", "sum to 1", "1.2"]),
        (MINIMAL, ["training.epoch=3"], ["--set training.epoch", "did you mean 'epochs'"]),
        (MINIMAL, ["training.epochs=[oops"], ["--set training.epochs", "cannot parse"]),
        (MINIMAL, ["training.epochs"], ["KEY=VALUE"]),
        ("data:\n  path: d.csv\n", [], ["data.target", "required"]),
        ("- a\n- b\n", [], ["mapping", "list"]),
        ("", [], ["empty"]),
        ("data: [\n", [], ["not valid YAML", "c.yaml:2"]),
        (MINIMAL + "training:\n  optimizer: adamw\n", [], ["training.optimizer", "adam, rmsprop, sgd"]),
        (MINIMAL + "model:\n  units: [32, 0]\n", [], ["model.units", "at least 1 unit", "received 0"]),
        # the cross-key rules, one case each
        (MINIMAL + "model:\n  activation: relo\n", [], ["c.yaml:5", "did you mean 'relu'", "tanh, relu, sigmoid"]),
        (MINIMAL + "  split: {val_start: '2020-01-01'}\n", [], ["data.split", "both val_start and test_start"]),
        (MINIMAL, ["data.target=[y, y]"], ["--set data.target", "duplicate target columns ['y', 'y']"]),
        (MINIMAL, ["data.target=date"], ["data.target", "the time column 'date' cannot be a target"]),
        (MINIMAL, ["data.features=[]"], ["--set data.features", "must not be empty"]),
        (MINIMAL, ["data.transform={date: diff}"], ["data.transform.date", "cannot transform the time column"]),
        (MINIMAL, ["training.learning_rate=.nan"], ["training.learning_rate", "expected a finite number"]),
        (MINIMAL, ["output.plots=1"], ["output.plots", "expected true or false"]),
        (MINIMAL, ["name=' '"], ["name", "must not be empty"]),
        ("a: 1\x00\n", [], ["binary file, not YAML"]),
        (
            "a: !!python/object:os.system x\n",
            [],
            ["c.yaml:1:4", "the YAML tag !!python/object:os.system is not allowed"],
        ),
    ],
)
def test_errors_name_the_place_and_the_fix(tmp_path, text, overrides, phrases):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), overrides)
    msg = e.value.one_line()
    assert "\n" not in msg and "Fix:" in msg
    for phrase in phrases:
        assert phrase in msg, (phrase, msg)


def test_replace_revalidates():
    cfg = from_dict({"data": {"path": "x.csv", "target": "y"}})
    assert cfg.replace(**{"model.cell": "gru"}).model.cell == "gru"
    with pytest.raises(ConfigError):
        cfg.replace(**{"model.cell": "transformer"})


def test_round_trip_and_hash_are_stable(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    again = load_config(write(tmp_path, cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict() and again.hash() == cfg.hash()
    assert cfg.replace(**{"seed": 1}).hash() != cfg.hash()


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=null") == ("a", None)


def test_defaults_listing_mentions_every_section():
    text = default_config_yaml()
    for key in ("data:", "window:", "input_length:", "model:", "training:", "early_stopping:", "runtime:", "backend:"):
        assert key in text


def test_did_you_mean_offers_the_closest_option_or_nothing():
    assert did_you_mean("windw", ["data", "window", "model"]) == " (did you mean 'window'?)"
    assert did_you_mean("lstn", ("simple_rnn", "lstm", "gru")) == " (did you mean 'lstm'?)"
    assert did_you_mean(123, [124, "x"]) == " (did you mean '124'?)"  # non-text keys are compared as text
    assert did_you_mean("zzz", ["window", "model"]) == ""
    assert did_you_mean("a", []) == ""


def _cli(*args):
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_config_command_lists_the_allowed_values_of_every_closed_key():
    out = _cli("config").output
    line = {ln.split(":")[0].strip().lstrip("# "): ln for ln in out.splitlines()}
    assert line["missing"].endswith("(interpolate | ffill | drop | error)")
    assert line["cell"].endswith("(simple_rnn | lstm | gru | dense)")
    assert line["scaling"].endswith("(auto | standard | minmax | none | window | instance)")
    assert line["channels"].endswith("(auto | mixed | independent)")
    assert line["residual"].endswith("(auto | none | persistence | seasonal)")
    assert line["lr_schedule"].endswith("(constant | cosine | step)")
    assert line["time_unit"].endswith("(year | s | ms | us | ns | null)")
    assert line["jit_compile"].endswith("(true | false | auto)")
    assert line["activation"].endswith("(tanh | relu | sigmoid | linear | elu | selu | softsign)")
    assert line["method"].endswith("(conformal | quantile | cqr)")
    assert "|" not in line["epochs"] and "|" not in line["target"]  # open keys list nothing


def test_set_a_scalar_where_a_list_is_expected_suggests_the_list_of_that_value(tmp_path):
    cfg = write(tmp_path, MINIMAL)
    r = _cli("validate", str(cfg), "--set", "model.units=64")
    assert r.exit_code != 0
    assert "--set model.units: received 64 (integer); expected a list. Fix: write a list: [64]." in r.output
    r = _cli("validate", str(cfg), "--set", "model.units=abc")  # not a possible entry: a generic example
    assert "Fix: write a list like [an integer]" in r.output


def test_set_a_far_off_choice_lists_the_allowed_values_without_a_wrong_guess(tmp_path):
    cfg = write(tmp_path, MINIMAL)
    r = _cli("validate", str(cfg), "--set", "data.missing=zero")
    assert r.exit_code != 0
    assert "received 'zero' (string). Fix: use one of: interpolate, ffill, drop, error." in r.output
    assert "did you mean" not in r.output
    r = _cli("validate", str(cfg), "--set", "data.missing=interpolat")
    assert "(did you mean 'interpolate'?)" in r.output
    assert did_you_mean("zero", ["interpolate", "ffill", "drop", "error"]) == ""
    assert did_you_mean("gur", ["lstm", "gru"]) == " (did you mean 'gru'?)"  # a swap is one edit


def test_validate_prints_units_as_unicode(tmp_path):
    data = Path(__file__).resolve().parents[1] / "data" / "weather.csv"
    cfg = write(tmp_path, f"data:\n  path: {data}\n  target: temp_max\n  units: {{temp_max: °C}}\n")
    r = _cli("validate", "--show-config", str(cfg))  # the resolved config (and its units) only on request
    assert r.exit_code == 0, r.output
    assert "temp_max: °C" in r.output and "\\xB0" not in r.output


@pytest.mark.parametrize("name", ["0\x85", "a\nb", "tab\there", "bell\x07"])
def test_a_name_with_a_control_character_is_refused_in_one_line(name):
    """Found by the fuzz test: YAML folds U+0085 to a space, so such a name would not survive config.yaml."""
    from rnnforecast.config import from_dict
    from rnnforecast.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        from_dict({"name": name, "data": {"path": "d.csv", "target": "y"}}, source="c.yaml", base_dir="/tmp")
    assert str(e.value) == (
        f"c.yaml: name: contains the control character U+{ord(next(c for c in name if not c.isprintable())):04X}. "
        "Fix: use letters, digits, spaces and punctuation."
    )


@pytest.mark.parametrize(
    "written,want",
    [("1e-4", 1e-4), ("2E+1", 20.0), ("5e0", 5.0), ("1.0e-4", 1e-4), ("0.001", 0.001)],
)
def test_a_number_with_an_exponent_and_no_dot_is_a_number(tmp_path, written, want):
    """PyYAML (YAML 1.1) reads 1e-4 as the text '1e-4'; YAML 1.2 and JSON read a number, and so does a config."""
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{path: x.csv, target: y}}\ntraining:\n  learning_rate: {written}\n")
    assert load_config(str(path)).training.learning_rate == want
    assert load_config(str(path), (f"training.learning_rate={written}",)).training.learning_rate == want


@pytest.mark.parametrize("written", ["1e-4x", "e-4", "1e", "'1e-4 1'"])
def test_text_that_only_looks_like_a_number_is_refused(tmp_path, written):
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{path: x.csv, target: y}}\ntraining:\n  learning_rate: {written}\n")
    with pytest.raises(ConfigError, match="expected a number"):
        load_config(str(path))

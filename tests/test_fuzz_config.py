"""Fuzz the config loader: whatever the mapping, types or text, it returns a Config or raises ConfigError."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnforecast.config import Config, ConfigError, _hints, _schema_fields, from_dict, load_config

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "lstm",
            "gru",
            "adam",
            "D",
            "h",
            "y",
            "standard",
            "interpolate",
            "log_diff",
            "auto",
            "jax",
            "2020-01-01",
            "",
            " ",
        ]
    ),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
)
keys = st.one_of(st.text(max_size=10), st.integers(-3, 3), st.none(), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def _mostly(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` about 5 times in 6 (st.one_of would pick each branch equally often)."""
    return st.integers(0, 5).flatmap(lambda i: rare if i == 0 else usual)


def _typed(tp, depth: int) -> st.SearchStrategy:
    """Values of roughly the right type (so generation gets past the first key), often out of range."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _section(tp, depth + 1) if depth < 3 else st.just({})
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_typed(a, depth) for a in args if a is not type(None)], st.none())
    if origin is typing.Literal:
        return st.one_of(st.sampled_from(args), st.text(max_size=6))
    if origin is list:
        return st.lists(_typed(args[0], depth), max_size=3)
    if origin is dict:
        return st.dictionaries(st.sampled_from(["y", "x", "date", "*"]), _typed(args[1], depth), max_size=2)
    if tp is int:
        return st.integers(-2, 60)
    if tp is float:
        return st.one_of(st.floats(-1, 2), st.sampled_from([0.0, 0.15, 0.7, 1e-3, 1.0]))
    if tp is bool:
        return st.booleans()
    if tp is str:
        return st.one_of(st.sampled_from(["y", "x", "date", "d.csv", "2020-01-01", "runs", "exp"]), st.text(max_size=6))
    return values


def _section(cls: type, depth: int = 0) -> st.SearchStrategy:
    """A mapping of ``cls``'s known keys (each maybe present, mostly well typed) plus, sometimes, unknown keys."""
    hints = _hints(cls)
    parts = {name: _mostly(_typed(hints[name], depth), values) for name in _schema_fields(cls)}
    known = st.fixed_dictionaries({}, optional=parts)
    unknown = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=2)
    return st.tuples(known, unknown, st.integers(0, 19)).map(lambda t: {**t[0], **t[1]} if t[2] == 0 else t[0])


VALID_DATA = {"path": "d.csv", "target": "y"}
with_data = _section(Config).map(
    lambda d: {**d, "data": {**VALID_DATA, **(d["data"] if isinstance(d.get("data"), dict) else {})}}
)
configs = _mostly(with_data, st.one_of(_section(Config), values))


def _outcome(fn, *args, **kwargs):
    try:
        cfg = fn(*args, **kwargs)
    except ConfigError as e:
        msg = e.one_line()
        assert msg and "\n" not in msg
        return None
    assert isinstance(cfg, Config)
    # A config that loads is fully typed and survives a round trip through YAML.
    again = from_dict(yaml.safe_load(cfg.to_yaml()))
    assert dataclasses.asdict(again) == dataclasses.asdict(cfg) or again.to_dict() == cfg.to_dict()
    return cfg


@FUZZ
@given(raw=configs)
def test_from_dict_returns_a_config_or_raises_config_error(raw):
    _outcome(from_dict, raw, source="fuzz.yaml")


overrides = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.tuples(
            st.sampled_from(
                [
                    "training.epochs",
                    "model.cell",
                    "window.horizon",
                    "model.units",
                    "data.split.train",
                    "seed",
                    "training",
                    "nope.x",
                    "training.early_stopping.patience",
                    "data.target.x",
                ]
            ),
            st.text(max_size=10),
        ).map("=".join),
    ),
    max_size=3,
)


@FUZZ
@given(raw=configs, sets=overrides, as_text=st.booleans(), text=st.text(max_size=80))
def test_load_config_from_yaml_text_and_overrides(tmp_path_factory, raw, sets, as_text, text):
    path = tmp_path_factory.mktemp("fuzz", numbered=True) / "c.yaml"
    if as_text:
        path.write_text(text, encoding="utf-8", errors="surrogatepass") if _encodable(text) else path.write_bytes(
            text.encode("utf-8", "replace")
        )
    else:
        path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    _outcome(load_config, path, sets)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@FUZZ
@given(data=st.binary(max_size=64))
def test_load_config_from_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzzb", numbered=True) / "c.yaml"
    path.write_bytes(data)
    _outcome(load_config, path)

"""Shared fixtures: tiny configs on real files, and trained runs shared across tests (session scope)."""

from __future__ import annotations

import ast
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
DATA = ROOT / "data"

TINY = {  # overrides that keep a training to a second or two
    "window": {"input_length": 7, "horizon": 2},
    "model": {"units": [8]},
    "training": {"epochs": 1, "batch_size": 64},
}


# --------------------------------------------------------------------------- parallel runs (pytest-xdist)
# `make test` runs `pytest -n auto --dist loadgroup`. A module-scoped fixture (a trained run, a running server) is
# built once per worker process, so the tests that use one must go to the same worker: each forms one work unit. With
# pytest 9, xdist 3.8 cannot rename a test after its xdist_group mark (Item.nodeid became read-only), so the scheduler
# below reads the groups from the test module's source instead: a test's explicit xdist_group("name") first, else the
# module's name when the test needs a fixture of that module whose scope is wider than a function. Other tests spread
# one by one. Without xdist none of this runs.


@functools.cache
def _work_units(module: Path) -> dict[str, str]:
    """Test function name -> work unit name, for the tests of ``module`` that must share a worker."""
    fixtures: dict[str, tuple[bool, list[str]]] = {}  # name -> (wider than a function, arguments)
    tests: dict[str, tuple[str | None, list[str]]] = {}  # name -> (its xdist_group, arguments)
    everywhere = False  # an autouse fixture wider than a function: every test of the module shares it
    for node in ast.walk(ast.parse(module.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = [a.arg for a in node.args.args + node.args.kwonlyargs]
        wide, group = None, None
        for dec in node.decorator_list:
            call = dec if isinstance(dec, ast.Call) else None
            name = ast.unparse(call.func if call else dec)
            kw = {k.arg: k.value for k in call.keywords} if call else {}
            if name.endswith("fixture"):
                scope = kw.get("scope")
                wide = isinstance(scope, ast.Constant) and scope.value != "function"
                everywhere = everywhere or (
                    wide and isinstance(kw.get("autouse"), ast.Constant) and kw["autouse"].value
                )
            elif name.endswith("xdist_group") and call:
                group = ast.literal_eval(call.args[0] if call.args else kw["name"])
        if wide is not None:
            fixtures[node.name] = (wide, args)
        elif node.name.startswith("test"):
            tests[node.name] = (group, args)

    def shares(names: list[str], seen: set[str]) -> bool:
        for n in set(names) - seen:
            if n in fixtures:
                seen.add(n)
                if fixtures[n][0] or shares(fixtures[n][1], seen):
                    return True
        return False

    unit = str(module)
    return {name: group or unit for name, (group, args) in tests.items() if group or everywhere or shares(args, set())}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FixtureGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            unit = super()._split_scope(nodeid)
            if unit != nodeid:  # the xdist_group suffix, where xdist could add it (pytest 8)
                return unit
            module, _, rest = nodeid.partition("::")
            path = config.rootpath / module
            if not path.suffix == ".py" or not path.exists():
                return nodeid
            return _work_units(path).get(rest.split("[")[0].split("::")[-1], nodeid)

    return FixtureGroupScheduling(config, log)


def write_config(directory: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def merge(base: dict, extra: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_cli(
    *args: str, env: dict | None = None, timeout: int = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process (a new process can choose another Keras backend)."""
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rnnforecast", *args], capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd
    )


def checkpoint_epoch(partial: Path) -> int:
    """The last committed epoch index (0-based) in a run's checkpoint, -1 before the first."""
    try:
        return json.loads((partial / "checkpoint" / "state.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


def kill_9_after(proc: subprocess.Popen, partial: Path, epoch: int, output=lambda: "", timeout: float = 300) -> int:
    """SIGKILL ``proc`` once its checkpoint holds epoch index ``epoch`` (polling the file, no timer); the index the
    checkpoint holds after the kill. ``output()`` says what the process printed when it ends too soon."""
    deadline = time.monotonic() + timeout
    while checkpoint_epoch(partial) < epoch:
        assert proc.poll() is None, f"ended before epoch {epoch + 1} was checkpointed:\n{output()}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return checkpoint_epoch(partial)


def sine_frame(n: int = 1200, seed: int = 0, noise: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 25) + noise * rng.standard_normal(n)
    return pd.DataFrame({"time": pd.date_range("2020-01-01", periods=n, freq="h"), "y": y})


@pytest.fixture(scope="session")
def weather_config(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("weather_cfg")
    cfg = yaml.safe_load((CONFIGS / "weather_lstm.yaml").read_text())
    cfg["data"]["path"] = str(DATA / "weather.csv")
    cfg = merge(cfg, TINY)
    return write_config(d, cfg)


@pytest.fixture(scope="session")
def weather_run(tmp_path_factory, weather_config) -> Path:
    """One trained weather LSTM run (1 epoch), trained in-process on the default backend."""
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    run_dir = tmp_path_factory.mktemp("runs") / "weather"
    result = CliRunner().invoke(cli, ["train", str(weather_config), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    return run_dir


# --------------------------------------------------------------------------- PostgreSQL (tune storage, data.sql)

PG_CANDIDATES = (
    [os.environ["RNNFORECAST_TEST_PG"]]
    if os.environ.get("RNNFORECAST_TEST_PG")
    else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"]
)
PG = PG_CANDIDATES[0]


def _pg_answers(url: str) -> str | None:
    import sqlalchemy

    try:
        eng = sqlalchemy.create_engine(
            "postgresql+psycopg://" + url.split("://", 1)[1], connect_args={"connect_timeout": 3}
        )
        with eng.connect() as c:
            c.execute(sqlalchemy.text("select 1"))
        return None
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (parallel test workers must not share a fixed one)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")  # a started PostgreSQL serves every test of this process (each makes its own names)
def pg_url(tmp_path_factory):
    why = ""
    for url in PG_CANDIDATES:
        why = _pg_answers(url)
        if why is None:
            yield url
            return
    import shutil

    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip(f"no PostgreSQL at {PG} ({why}) and no initdb/pg_ctl to start one")
    d = tmp_path_factory.mktemp("pg")
    port = free_port()
    subprocess.run(["initdb", "-D", str(d / "data"), "-U", "postgres", "--auth=trust"], check=True, capture_output=True)
    subprocess.run(
        ["pg_ctl", "-D", str(d / "data"), "-o", f"-p {port} -k {d}", "-l", str(d / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(["pg_ctl", "-D", str(d / "data"), "-m", "fast", "stop"], capture_output=True)

"""data.sql: SQLite from a real file and PostgreSQL on the real server; passwords never printed."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import DATA, TINY, merge, run_cli, write_config


def _weather_db(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        pd.read_csv(DATA / "weather.csv").to_sql("weather", con, index=False)
    return path


def _config(directory: Path, sql: dict, **extra) -> Path:
    cfg = merge(
        {
            "name": "sql",
            "data": {"sql": sql, "target": "temp_max", "categorical": ["weather"]},
            "output": {"plots": False},
        },
        TINY,
    )
    return write_config(directory, merge(cfg, extra))


def test_sqlite_file_validates_like_the_csv(tmp_path: Path):
    _weather_db(tmp_path / "w.db")
    r = run_cli("validate", str(_config(tmp_path, {"url": "w.db", "table": "weather"})))  # relative to the config
    assert r.returncode == 0, r.stderr
    csv = tmp_path / "csv"
    csv.mkdir()
    c = run_cli(
        "validate",
        str(
            write_config(
                csv,
                merge(
                    yaml.safe_load((tmp_path / "config.yaml").read_text()),
                    {"data": {"sql": None, "path": str(DATA / "weather.csv")}},
                ),
            )
        ),
    )
    assert c.returncode == 0, c.stderr
    part = lambda out: out[out.index("rows:") : out.index("ready to train")]  # noqa: E731  (source line, config path)
    assert part(r.stdout) == part(c.stdout)  # same rows, splits, windows as the CSV
    assert f"sqlite:///{tmp_path / 'w.db'} (table weather)" in r.stdout


def test_sqlite_query_goes_through_the_same_checks(tmp_path: Path):
    _weather_db(tmp_path / "w.db")
    q = "SELECT date, temp_max, weather FROM weather ORDER BY date DESC"
    r = run_cli("validate", str(_config(tmp_path, {"url": "w.db", "query": q})))
    assert r.returncode == 1
    assert "timestamps are out of order" in r.stderr and "data.sort: true" in r.stderr
    r = run_cli("validate", str(_config(tmp_path, {"url": "w.db", "table": "wether"})))
    assert r.returncode == 1 and "table 'wether' not found (did you mean 'weather'?)" in r.stderr
    r = run_cli("validate", str(_config(tmp_path, {"url": "missing.db", "table": "weather"})))
    assert r.returncode == 1 and "SQLite database file not found" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("validate", str(_config(tmp_path, {"url": "w.db", "table": "weather", "query": q})))
    assert r.returncode == 1 and "exactly one of `query` and `table`" in r.stderr


def test_a_password_is_never_printed(tmp_path: Path):
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/db"
    r = run_cli("validate", str(_config(tmp_path, {"url": url, "table": "weather"})))
    assert r.returncode == 1 and "alice:***@127.0.0.1:1" in r.stderr
    assert "s3cr3t" not in r.stdout + r.stderr
    r = run_cli(
        "validate",
        str(_config(tmp_path, {"url": "postgresql://alice@127.0.0.1:1/db", "table": "t", "password_env": "RF_PW"})),
        env={"RF_PW": "s3cr3t-pw"},
    )
    assert r.returncode == 1 and "alice:***@" in r.stderr and "s3cr3t" not in r.stdout + r.stderr
    r = run_cli("validate", str(_config(tmp_path, {"url": "postgresql://alice:${RF_PW}@127.0.0.1:1/db", "table": "t"})))
    assert r.returncode == 1 and "environment variable RF_PW is not set" in r.stderr


@pytest.mark.slow
def test_a_run_trained_from_sqlite_predicts_by_reading_the_source_again(tmp_path: Path):
    db = _weather_db(tmp_path / "w.db")
    run = tmp_path / "run"
    r = run_cli("train", str(_config(tmp_path, {"url": "w.db", "table": "weather"})), "--run-dir", str(run), "-q")
    assert r.returncode == 0, r.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["sql"]["url"] == str(db) and saved["data"]["path"] is None
    p = run_cli("predict", str(run), "-o", str(tmp_path / "f.csv"))  # full precision (the printed CSV is rounded)
    assert p.returncode == 0, p.stderr
    assert "changed since training" not in p.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "f.csv"), pd.read_csv(run / "forecast.csv"))
    # new rows in the table: predict reads them, and says the source changed
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM weather WHERE date >= '2015-12-01'")
    p = run_cli("predict", str(run))
    assert p.returncode == 0 and "changed since training" in p.stderr
    assert pd.read_csv(pd.io.common.StringIO(p.stdout))["timestamp"].iloc[0] == "2015-12-01"
    # --data FILE works for a SQL run as for a CSV one
    p = run_cli("predict", str(run), "--data", str(DATA / "weather.csv"))
    assert p.returncode == 0, p.stderr
    assert pd.read_csv(pd.io.common.StringIO(p.stdout))["timestamp"].iloc[0] == "2016-01-01"


@pytest.mark.slow
def test_postgresql_table_trains_and_predicts(tmp_path: Path, pg_url: str):
    import sqlalchemy

    table = f"weather_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine("postgresql+psycopg://" + pg_url.split("://", 1)[1])
    df = pd.read_csv(DATA / "weather.csv", parse_dates=["date"])
    df.to_sql(table, engine, index=False)
    try:
        user, rest = pg_url.split("://", 1)[1].split("@", 1)
        cfg = _config(tmp_path, {"url": f"postgresql://{user}:${{RF_PG_PW}}@{rest}", "table": table})
        env = {"RF_PG_PW": "unused-with-trust-auth"}
        v = run_cli("validate", str(cfg), env=env)
        assert v.returncode == 0, v.stderr
        assert "rows:       1461" in v.stdout and "unused-with-trust" not in v.stdout + v.stderr
        run = tmp_path / "run"
        r = run_cli("train", str(cfg), "--run-dir", str(run), "-q", "--json", env=env)
        assert r.returncode == 0, r.stderr
        assert "${RF_PG_PW}" in (run / "config.yaml").read_text()  # the reference is kept, never the secret
        e = run_cli("evaluate", str(run), "--json", env=env)
        assert e.returncode == 0, e.stderr
        doc = json.loads(e.stdout)
        assert doc["data"].startswith(f"postgresql+psycopg://{user}:***@") and doc["split"] == "test"
        assert doc["metrics"]["original"]["overall"]["model"]["mse"] == pytest.approx(
            json.loads(r.stdout)["metrics"]["original"]["overall"]["model"]["mse"], rel=1e-5
        )
    finally:
        with engine.begin() as c:
            c.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()

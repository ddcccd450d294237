"""Issue 24, round 4: time zones (items 8, 11), full disks (item 5), Ray under an address-space limit (item 9).

Each case goes through the real CLI (CliRunner in this process, or a subprocess where a resource limit or a kill
is the point) and asserts the exit code, the one line naming the culprit with its Fix, and what is left on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import write_config

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from rnnforecast.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_error(stderr: str, rc: int, *parts: str) -> str:
    """Exit 1, no traceback, exactly one ``error:`` line holding every part (in order); returns it."""
    assert rc == 1, (rc, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    at = 0
    for part in parts:
        at = lines[0].find(part, at)
        assert at >= 0, (part, lines[0])
    return lines[0]


def zoned_csv(d: Path, name: str, start: str, periods: int, freq: str, tz: str) -> tuple[Path, pd.DatetimeIndex]:
    """A series as pandas writes a tz-aware column: ``2020-03-29 00:00:00+02:00``."""
    t = pd.date_range(start, periods=periods, freq=freq, tz=tz)
    y = np.sin(np.arange(periods) / 3.0) + 0.01 * np.arange(periods)
    path = d / f"{name}.csv"
    pd.DataFrame({"time": t, "y": y}).to_csv(path, index=False)
    return path, t


def config_for(d: Path, data: dict, name: str = "config.yaml", **extra) -> Path:
    raw = {
        "name": "r4",
        "data": {"target": "y", "time_column": "time", **data},
        "window": {"input_length": 7, "horizon": 3},
        "model": {"cell": "gru", "units": [4]},
        "training": {"epochs": 1, "batch_size": 32},
        "output": {"runs_dir": str(d / "runs"), "plots": False},
        **extra,
    }
    return write_config(d, raw, name)


def files_under(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


# --------------------------------------------------------------------------- 8: time zones


def test_the_written_csv_really_carries_two_offsets(tmp_path):
    """The fixture is what the issue describes: a Berlin daily series crossing the March switch, +01:00 then +02:00."""
    path, _ = zoned_csv(tmp_path, "b", "2020-03-20", 20, "D", "Europe/Berlin")
    text = path.read_text()
    assert "2020-03-29 00:00:00+01:00" in text and "2020-03-30 00:00:00+02:00" in text


@pytest.fixture(scope="module")
def berlin_run(tmp_path_factory) -> Path:
    """One run on a daily Europe/Berlin series that crosses both switches (March and October 2020)."""
    d = tmp_path_factory.mktemp("berlin")
    path, _ = zoned_csv(d, "berlin", "2020-02-01", 300, "D", "Europe/Berlin")
    cfg = config_for(d, {"path": str(path)})
    rc, out, err = invoke("train", cfg, "--run-dir", d / "run", "--quiet")
    assert rc == 0, err
    return d / "run"


@pytest.mark.slow
def test_a_daily_berlin_series_trains_and_forecasts_the_next_local_dates(berlin_run, tmp_path):
    """It was refused ("timestamps are irregular"); now the local dates are the steps: the forecast starts the day
    after the last local date, at midnight, and predict on the same file agrees with forecast.csv."""
    fc = pd.read_csv(berlin_run / "forecast.csv")
    last = pd.Timestamp("2020-02-01") + pd.Timedelta(days=299)  # 2020-11-26, local
    expected = [str((last + pd.Timedelta(days=k)).date()) for k in (1, 2, 3)]
    assert fc["timestamp"].tolist() == expected
    assert yaml.safe_load((berlin_run / "config.yaml").read_text())["data"]["frequency"] in (None, "D")
    out = tmp_path / "p.csv"
    rc, _, err = invoke("predict", berlin_run, "--data", berlin_run.parent / "berlin.csv", "-o", out)
    assert rc == 0, err
    assert pd.read_csv(out)["timestamp"].tolist() == expected


@pytest.mark.slow
def test_a_tokyo_midnight_series_is_forecast_at_tokyo_dates_not_15h_utc(berlin_run, tmp_path):
    """Tokyo midnight is 15:00 UTC the day before; the forecast keeps the Tokyo calendar: the next dates, at 00:00."""
    path, t = zoned_csv(tmp_path, "tokyo", "2021-01-01", 60, "D", "Asia/Tokyo")
    out = tmp_path / "p.csv"
    rc, _, err = invoke("predict", berlin_run, "--data", path, "-o", out)
    assert rc == 0, err
    assert pd.read_csv(out)["timestamp"].tolist() == ["2021-03-02", "2021-03-03", "2021-03-04"]  # 2021-03-01 + k
    assert t[-1].strftime("%Y-%m-%d %H:%M%z") == "2021-03-01 00:00+0900"  # the input's last row, for the record


@pytest.mark.parametrize(
    "zone, freq, start, first, zone_words",
    [
        ("Europe/Berlin", "D", "2020-03-01", "2020-03-01", "UTC offsets +01:00, +02:00, every one at local midnight"),
        (
            "America/New_York",
            "D",
            "2020-02-01",
            "2020-02-01",
            "UTC offsets -05:00, -04:00, every one at local midnight",
        ),
        ("Asia/Kolkata", "D", "2020-03-01", "2020-03-01", "UTC offsets +05:30, every one at local midnight"),
        ("Europe/Berlin", "MS", "2015-01-01", "2015-01-01", "UTC offsets +01:00, +02:00, every one at local midnight"),
        # hourly: UTC, so the March gap (02:00-03:00 local) and the October overlap (02:00 twice) are no gap at all
        (
            "Europe/Berlin",
            "h",
            "2020-03-28",
            "2020-03-27 23:00:00",
            "UTC offsets +01:00, +02:00, not all at local midnight",
        ),
        (
            "Europe/Berlin",
            "h",
            "2020-10-24",
            "2020-10-23 22:00:00",
            "UTC offsets +02:00, +01:00, not all at local midnight",
        ),
        ("Asia/Kolkata", "h", "2020-03-01", "2020-02-29 18:30:00", "UTC offsets +05:30, not all at local midnight"),
    ],
)
def test_validate_reads_zoned_series_by_the_one_rule(tmp_path, zone, freq, start, first, zone_words):
    """validate says which reading applied ("time zone:" line) and finds a regular grid with no invented rows."""
    path, _ = zoned_csv(tmp_path, "z", start, 120, freq, zone)
    rc, out, err = invoke("validate", config_for(tmp_path, {"path": str(path)}))
    assert rc == 0, err
    assert f"time zone:  {zone_words}" in out
    expected_freq = {"D": "D", "MS": "MS", "h": "h"}[freq]
    assert f"frequency:  {expected_freq} (inferred; regular; 0 gap rows added)" in out
    assert f"time range: {first} .." in out


@pytest.mark.parametrize("given", [None, "D"])
def test_daily_data_off_local_midnight_names_the_zone_rule(tmp_path, given):
    """Berlin noon: read in UTC, so 11:00 then 10:00 after the switch. The error says so, quotes the rule and
    proposes local midnights; nothing is written."""
    path, _ = zoned_csv(tmp_path, "noon", "2020-03-01 12:00", 60, "D", "Europe/Berlin")
    data = {"path": str(path), **({"frequency": given} if given else {})}
    cfg = config_for(tmp_path, data)
    before = files_under(tmp_path)
    rc, _, err = invoke("validate", cfg)
    what = "cannot infer the frequency: timestamps are irregular" if given is None else "is not on the 'D' grid"
    one_error(
        err,
        rc,
        what,
        "(UTC offsets +01:00, +02:00, not all at local midnight: read in UTC; the zone rule: local midnights keep "
        "their dates, other times are read in UTC). Fix:",
        "for daily data give local midnights or plain dates (2020-03-29).",
    )
    assert files_under(tmp_path) == before


def test_init_on_an_hourly_berlin_file_across_dst_writes_a_config_read_in_utc(tmp_path):
    """It was an internal error ("Mixed timezones detected"); now init says the data is read in UTC, writes the
    config, and that config validates with 0 invented rows (the 23-hour day has no hole in UTC)."""
    path, _ = zoned_csv(tmp_path, "h", "2020-03-27", 24 * 5, "h", "Europe/Berlin")
    out = tmp_path / "c.yaml"
    rc, stdout, err = invoke("init", path, "-o", out)
    assert rc == 0, err
    text = stdout + err
    assert "time zone:   UTC offsets +01:00, +02:00, not all at local midnight: read in UTC" in text
    assert "# time zone: UTC offsets +01:00, +02:00, not all at local midnight: read in UTC" in out.read_text()
    rc, vout, err = invoke("validate", out)
    assert rc == 0, err
    assert "frequency:  h (given; regular; 0 gap rows added)" in vout
    assert "time range: 2020-03-26 23:00:00 .. 2020-03-31 22:00:00" in vout  # 120 UTC hours, end to end


def test_init_on_a_daily_berlin_file_keeps_local_dates(tmp_path):
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 90, "D", "Europe/Berlin")
    out = tmp_path / "c.yaml"
    rc, stdout, err = invoke("init", path, "-o", out)
    assert rc == 0, err
    assert "time:        time, daily, 2020-03-01 .. 2020-05-29" in stdout + err
    assert yaml.safe_load(out.read_text())["data"]["frequency"] == "D"


def test_a_zone_in_a_sql_source_follows_the_same_rule(tmp_path):
    """SQLite keeps the text pandas wrote (+01:00/+02:00): the loader reads it as it reads the CSV."""
    import sqlite3

    t = pd.date_range("2020-03-01", periods=80, freq="D", tz="Europe/Berlin")
    with sqlite3.connect(tmp_path / "z.db") as con:
        pd.DataFrame({"time": t.astype(str), "y": np.arange(80.0)}).to_sql("t", con, index=False)
    cfg = config_for(tmp_path, {"sql": {"url": f"sqlite:///{tmp_path / 'z.db'}", "table": "t"}})
    rc, out, err = invoke("validate", cfg)
    assert rc == 0, err
    assert "time range: 2020-03-01 .. 2020-05-19" in out
    assert "every one at local midnight: local dates kept" in out


def test_postgresql_timestamptz_midnights_come_back_in_utc_and_the_readme_query_fixes_it(tmp_path, pg_url):
    """PostgreSQL hands timestamptz back in the session's zone (UTC here), where Berlin midnights are 23:00/22:00:
    the error names the rule; selecting the local date, as the README says, reads the series."""
    import sqlalchemy

    table = f"r4_zone_{os.getpid()}"
    eng = sqlalchemy.create_engine("postgresql+psycopg://" + pg_url.split("://", 1)[1])
    t = pd.date_range("2020-03-01", periods=60, freq="D", tz="Europe/Berlin")
    with eng.begin() as c:
        c.execute(sqlalchemy.text("SET TIME ZONE 'UTC'"))
        pd.DataFrame({"time": t, "y": np.arange(60.0)}).to_sql(table, c, index=False)
    try:
        url = pg_url + ("&" if "?" in pg_url else "?") + "options=-c%20TimeZone%3DUTC"
        cfg = config_for(tmp_path, {"sql": {"url": url, "table": table}})
        rc, _, err = invoke("validate", cfg)
        one_error(err, rc, "timestamps are irregular", "not all at local midnight: read in UTC", "local midnights")
        query = f"SELECT (time AT TIME ZONE 'Europe/Berlin')::date AS time, y FROM {table} ORDER BY 1"
        cfg = config_for(tmp_path, {"sql": {"url": url, "query": query}}, "local.yaml")
        rc, out, err = invoke("validate", cfg)
        assert rc == 0, err
        assert "time range: 2020-03-01 .. 2020-04-29" in out
    finally:
        with eng.begin() as c:
            c.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))


# --------------------------------------------------------------------------- 11: the API and the CLI, one rule


@pytest.mark.slow
def test_the_api_and_the_cli_give_the_same_timestamps_for_zoned_data(berlin_run, tmp_path):
    """A tz-aware DataFrame through the API and the same rows as CSV through the CLI: identical, naive timestamps
    (daily Tokyo: local dates; it kept the zone in the API and converted to UTC in the CLI before)."""
    from rnnforecast import api

    path, t = zoned_csv(tmp_path, "tokyo", "2021-01-01", 60, "D", "Asia/Tokyo")
    frame = pd.read_csv(path)
    frame["time"] = t  # the zone as a pandas dtype, not text
    table = api.predict(berlin_run, frame).table
    assert table["timestamp"].dt.tz is None
    out = tmp_path / "cli.csv"
    rc, _, err = invoke("predict", berlin_run, "--data", path, "-o", out)
    assert rc == 0, err
    cli_times = pd.to_datetime(pd.read_csv(out)["timestamp"])
    assert (
        table["timestamp"].tolist()
        == cli_times.tolist()
        == list(pd.to_datetime(["2021-03-02", "2021-03-03", "2021-03-04"]))
    )


def test_the_zone_rule_for_hourly_data_is_utc_for_text_and_dtype_alike():
    """The one function both paths call: hourly Berlin as text with offsets and as a tz-aware dtype, and Kolkata's
    half-hour offset, end in the same naive UTC instants (checked against tz_convert)."""
    from rnnforecast.data import parse_times

    for zone in ("Europe/Berlin", "Asia/Kolkata", "America/St_Johns"):  # St John's: -03:30 / -02:30
        t = pd.date_range("2020-03-07", periods=24 * 40, freq="h", tz=zone)
        utc = t.tz_convert("UTC").tz_localize(None)
        as_text, note_text = parse_times(pd.Series(t.astype(str)), "time", "x.csv")
        as_dtype, note_dtype = parse_times(pd.Series(t), "time", "x.csv")
        assert as_text.tolist() == as_dtype.tolist() == utc.tolist()
        assert note_text.endswith("not all at local midnight: read in UTC")
        assert note_dtype == f"time zone {zone}, not all at local midnight: read in UTC"


# --------------------------------------------------------------------------- 5: full disk (RLIMIT_FSIZE)


LAUNCHER = """
import os, resource, signal, sys
fsize, space = (int(v) if v != "-" else None for v in sys.argv[1:3])
if fsize is not None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited across exec: the write fails (EFBIG), not the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
if space is not None:
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
os.execv(sys.executable, [sys.executable, "-m", "rnnforecast", *sys.argv[3:]])
"""


def limited(*args: str, fsize: int | None = None, address_space: int | None = None, timeout: int = 300, cwd=None):
    """The real CLI in a subprocess under a file-size limit (writes beyond it fail with EFBIG, as on a full disk)
    or an address-space limit, set by a small launcher that then execs the CLI (no preexec_fn: this test process
    runs JAX threads, and fork + Python code in the child can deadlock)."""
    # the shared JAX compilation cache is off: a write cut short there would leave a truncated entry for others
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RNNFORECAST_JAX_CACHE": "off"}
    limits = [str(v) if v is not None else "-" for v in (fsize, address_space)]
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *limits, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


DISK_FIX = "Fix: free disk space (or raise the file-size limit, ulimit -f) and run the command again."


def test_init_on_a_full_disk_writes_nothing(tmp_path):
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 90, "D", "Europe/Berlin")
    before = files_under(tmp_path)
    r = limited("init", path, "-o", tmp_path / "c.yaml", fsize=100)
    one_error(r.stderr, r.returncode, "c.yaml", "File too large", "Fix:")
    assert files_under(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(berlin_run, tmp_path, fmt):
    """It was `internal error: OSError: [Errno 27]` (onnx) and TensorFlow's OutOfRangeError (savedmodel)."""
    pytest.importorskip("onnx" if fmt == "onnx" else "tensorflow")
    before = files_under(tmp_path)
    r = limited("export", berlin_run, "--format", fmt, "-o", tmp_path / "exp", fsize=5000)
    one_error(r.stderr, r.returncode, "disk full (File too large).", DISK_FIX)
    assert files_under(tmp_path) == before  # no exp/, no exp.partial, no hidden temporary


@pytest.mark.slow
def test_compare_on_a_full_disk_removes_its_unfinished_directory(tmp_path):
    """compare has no resume: a comparison that fills the disk is removed (it left cmp.partial before)."""
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 150, "D", "Europe/Berlin")
    cfg = config_for(tmp_path, {"path": str(path)})
    before = files_under(tmp_path)
    r = limited("compare", cfg, "--cells", "gru,lstm", "--out", tmp_path / "cmp", "--quiet", fsize=30_000)
    one_error(
        r.stderr,
        r.returncode,
        f"error: {tmp_path / 'cmp.partial'}: disk full while writing the comparison (File too large);",
        "the unfinished comparison was removed.",
        DISK_FIX,
    )
    assert files_under(tmp_path) == before


@pytest.mark.slow
def test_backtest_on_a_full_disk_keeps_its_folds_and_says_how_to_resume(tmp_path):
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 150, "D", "Europe/Berlin")
    cfg = config_for(tmp_path, {"path": str(path)})
    r = limited("backtest", cfg, "--folds", "2", "--out", tmp_path / "bt", "--quiet", fsize=30_000)
    line = one_error(
        r.stderr,
        r.returncode,
        f"error: {tmp_path / 'bt.partial'}: disk full while writing the backtest (File too large);",
        "finished folds are kept. Fix: free disk space, then resume with: rnnforecast backtest",
        f"--out {tmp_path / 'bt'}.",
    )
    assert (tmp_path / "bt.partial").is_dir() and not (tmp_path / "bt").exists()
    assert not [p for p in tmp_path.rglob(".*") if p.name[1:2].isdigit()]  # no half-written .<pid>.name temporary
    assert "Traceback" not in line
    resume = line.split("resume with: ", 1)[1].rstrip(".").split()[1:]  # the command it printed, run as printed
    r = limited(*resume, "--quiet", cwd=Path.cwd())
    assert r.returncode == 0, r.stderr
    assert "(resumed)" in r.stderr and (tmp_path / "bt" / "predictions.csv").is_file()
    assert not (tmp_path / "bt.partial").exists()


# --------------------------------------------------------------------------- 9: Ray under an address-space limit


def ray_processes(since: set[int]) -> list[str]:
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.info["pid"] in since:
            continue
        words = " ".join([p.info["name"] or "", *(p.info["cmdline"] or [])[:2]])
        if "ray" in words.lower() or "gcs_server" in words:
            out.append(f"{p.info['pid']} {words[:80]}")
    return out


@pytest.mark.parametrize("command", ["tune", "compare"])
def test_ray_under_an_address_space_limit_fails_fast_in_one_line(tmp_path, command):
    """It hung 300 s or printed a 55-line native stack, and left ray::DashboardAgent / RuntimeEnvAgent behind."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 120, "D", "Europe/Berlin")
    cfg = config_for(tmp_path, {"path": str(path)}, tune={"model.cell": ["gru", "lstm"]})
    before_files = files_under(tmp_path)
    before = {p.pid for p in psutil.process_iter()}
    extra = ["--trials", "2"] if command == "tune" else ["--cells", "gru,lstm"]
    t0 = time.monotonic()
    r = limited(
        command, cfg, *extra, "--executor", "ray", "--workers", "2", "--out", tmp_path / "out", "--quiet",
        address_space=4 * 2**30, timeout=120,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    one_error(
        r.stderr,
        r.returncode,
        "error: --executor ray: the address-space limit (ulimit -v) is 4.0 GiB;",
        "Fix: use --executor local, or raise the limit (ulimit -v unlimited).",
    )
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert seconds < 60, seconds  # refused before Ray starts (2.5 s measured), not after a 300 s wait
    assert files_under(tmp_path) == before_files  # no tune or comparison directory
    time.sleep(1)
    assert ray_processes(before) == []


@pytest.mark.slow
def test_a_ray_tune_leaves_no_ray_process_and_no_ray_log_line(tmp_path):
    """A normal local Ray run: Ray's own log lines stay off the terminal and every Ray process (raylet, GCS,
    dashboard and runtime-env agents, workers) is gone within seconds of the driver's exit."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 120, "D", "Europe/Berlin")
    cfg = config_for(tmp_path, {"path": str(path)}, tune={"model.cell": ["gru"]})
    before = {p.pid for p in psutil.process_iter()}
    r = limited("tune", cfg, "--trials", "1", "--executor", "ray", "--out", tmp_path / "t", "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr
    assert not [line for line in r.stderr.splitlines() if " INFO " in line or " WARNING " in line], r.stderr
    assert json.loads((tmp_path / "t" / "tune.json").read_text())["driver_pid"]
    deadline = time.monotonic() + 10
    while ray_processes(before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_processes(before) == []


# --------------------------------------------------------------------------- 6: new data far outside the training


@pytest.mark.slow
def test_predict_on_data_1000x_the_training_range_warns(berlin_run, tmp_path):
    """Values 1000x the training data were forecast without a word; now one warning names the column, the value
    and the training statistics (computed here from the training split), and the same rows unscaled raise none."""
    src = berlin_run.parent / "berlin.csv"
    df = pd.read_csv(src)
    df["y"] *= 1000
    df.to_csv(tmp_path / "x1000.csv", index=False)
    scaler = json.loads((berlin_run / "scaler.json").read_text())
    train_rows = pd.read_csv(src)["y"].to_numpy()  # the final model (the default) is refitted on every row
    assert scaler["shift"][0][0] == pytest.approx(train_rows.mean(), rel=1e-6)
    rc, _, err = invoke("predict", berlin_run, "--data", tmp_path / "x1000.csv", "-o", tmp_path / "p.csv")
    assert rc == 0, err
    warned = [line for line in err.splitlines() if "far outside" in line]
    peak = df["y"].to_numpy()[np.argmax(np.abs(df["y"].to_numpy()))]
    assert warned == [
        f"warning: {tmp_path / 'x1000.csv'}: 'y' reaches {peak:.6g}, far outside what the run was trained on"
        f" (training mean {train_rows.mean():.4g}, standard deviation {train_rows.std():.4g}): the forecast is an"
        " extrapolation. Fix: check the data's units (a factor of 1000?), or train on data that covers this range."
    ]
    rc, _, err = invoke("predict", berlin_run, "--data", src, "-o", tmp_path / "q.csv")
    assert rc == 0 and "far outside" not in err, err


@pytest.mark.slow
def test_bands_calibrated_on_a_filled_validation_split_are_warned_about(tmp_path):
    """A validation split that is one interpolated gap: train said "calibrated on N validation windows" and nothing
    else. Now one warning counts the filled values (45 of 45 here, counted from the file) and names the fix; a split
    with 10 % filled raises none."""
    n = 300
    t = pd.date_range("2020-01-01", periods=n, freq="h")
    y = np.sin(np.arange(n) / 4.0)
    val = slice(int(0.7 * n), int(0.85 * n))  # rows 210..254: the default split's validation rows
    gap = y.copy()
    gap[val] = np.nan
    pd.DataFrame({"time": t, "y": gap}).to_csv(tmp_path / "gap.csv", index=False)
    bands = {"intervals": {"levels": [80, 95]}}
    cfg = config_for(tmp_path, {"path": str(tmp_path / "gap.csv")}, **bands)
    rc, _, err = invoke("train", cfg, "--run-dir", tmp_path / "run", "--quiet")
    assert rc == 0, err
    k = int(np.isnan(gap[val]).sum())
    assert k == 45
    assert (
        f"warning: {k} of the {k} validation values of 'y' (100%) were missing and filled (data.missing: "
        "interpolate): the intervals are calibrated against values nobody observed. Fix: move the validation split"
        " onto observed rows (data.split.val_start), or fill the gap in the data"
    ) in err.splitlines()

    from rnnforecast.config import load_config
    from rnnforecast.pipeline import filled_validation_warnings, load_data

    few = y.copy()
    few[val.start : val.start + 5] = np.nan  # 5 of 45: observed values dominate
    pd.DataFrame({"time": t, "y": few}).to_csv(tmp_path / "few.csv", index=False)
    c = load_config(config_for(tmp_path, {"path": str(tmp_path / "few.csv")}, "few.yaml", **bands))
    assert filled_validation_warnings(load_data(c), c) == []
    c = load_config(cfg)
    assert len(filled_validation_warnings(load_data(c), c)) == 1
    c = load_config(config_for(tmp_path, {"path": str(tmp_path / "gap.csv")}, "nobands.yaml"))
    assert filled_validation_warnings(load_data(c), c) == []  # no bands, nothing calibrated


def test_tune_whose_study_file_cannot_be_written_says_so_not_check_the_url(tmp_path):
    """The default SQLite study under a file-size limit: it said "check the URL, the server and the credentials"
    (there is no URL the user gave); now it names the disk. The tune directory stays, resumable, as Ctrl-C leaves it."""
    path, _ = zoned_csv(tmp_path, "d", "2020-03-01", 120, "D", "Europe/Berlin")
    cfg = config_for(tmp_path, {"path": str(path)}, tune={"model.cell": ["gru", "lstm"]})
    r = limited("tune", cfg, "--trials", "1", "--out", tmp_path / "t", "--quiet", fsize=20_000)
    line = one_error(
        r.stderr,
        r.returncode,
        f"error: --storage sqlite:///{tmp_path / 't.partial' / 'study.db'}: cannot write the study file (SQLite: disk"
        " I/O error): a full disk, a file-size limit (ulimit -f) or a folder that cannot be written.",
        "Fix: free disk space (or raise the file-size limit, ulimit -f) and run the command again, or choose a"
        " writable --out.",
    )
    assert "check the URL" not in line
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_predict_says_its_timestamps_are_utc_when_the_zone_rule_read_the_data_in_utc(tmp_path, berlin_run):
    """Hourly Berlin times across the October switch are read in UTC (the zone rule); the forecast's naive
    timestamps are UTC too, which a person reads as local unless told: predict says so in a note. The last row,
    2020-10-25 22:00+01:00 (264 hours from 00:00+02:00 with the switch's extra hour), is 21:00 UTC; the forecast
    starts at 22:00 UTC (by hand)."""
    path, t = zoned_csv(tmp_path, "hourly", "2020-10-15 00:00", 264, "h", "Europe/Berlin")
    assert str(t[-1]) == "2020-10-25 22:00:00+01:00"
    cfg = config_for(tmp_path, {"path": str(path)})
    rc, _, err = invoke("train", cfg, "--run-dir", tmp_path / "run", "--quiet")
    assert rc == 0, err
    rc, out, err = invoke("predict", tmp_path / "run")
    assert rc == 0, err
    assert "note: timestamps are UTC, not local time: the data's times carry UTC offsets +02:00, +01:00" in err
    assert out.splitlines()[1].startswith("2020-10-25 22:00:00,")
    rc, _, err = invoke("predict", berlin_run)  # daily: local dates kept, nothing to say
    assert rc == 0 and "timestamps are UTC" not in err


def test_far_outside_means_beyond_the_training_rows_range():
    """By hand: training values 0..9 and a spike of 100 (the range's end); a value of the range is never far, one
    more than 10 standard deviations past either end is; a scaler saved before the range was kept falls back to 10
    standard deviations from the mean."""
    from rnnforecast.scaling import Scaler

    x = np.array([*range(10), 100.0])[:, None]
    sc = Scaler.fit("standard", ["y"], x, [("*", 0, 11)], per_series=False)
    mean, sd = x.mean(), x.std()
    assert sc.low[0, 0] == pytest.approx((0 - mean) / sd) and sc.high[0, 0] == pytest.approx((100 - mean) / sd)
    probe = (np.array([100.0, 100 + 10.5 * sd, 100 + 9.5 * sd, -11 * sd]) - mean) / sd
    assert sc.far_outside(probe, 0, 0).tolist() == [False, True, False, True]
    again = Scaler.from_json(json.loads(json.dumps(sc.to_json())))
    assert again.far_outside(probe, 0, 0).tolist() == [False, True, False, True]
    old = {k: v for k, v in sc.to_json().items() if k not in ("low", "high")}
    assert Scaler.from_json(old).far_outside(probe, 0, 0).tolist() == [False, True, True, True]  # |z| > 10


@pytest.mark.slow
def test_new_timestamps_read_in_another_time_reference_than_the_runs_are_warned_about(tmp_path):
    """An hourly Kolkata file (+05:30) is read in UTC; the same rows without their offsets (local wall times) were
    forecast without a word, every calendar feature 5.5 hours off. schema.json keeps the zone rule's note; predict
    warns both ways, and says nothing when the new rows are read as the run's were."""
    path, t = zoned_csv(tmp_path, "kol", "2020-03-01", 24 * 20, "h", "Asia/Kolkata")
    cfg = config_for(tmp_path, {"path": str(path), "time_features": ["hour_of_day"]})
    rc, _, err = invoke("train", cfg, "--run-dir", tmp_path / "run", "--quiet")
    assert rc == 0, err
    zone = json.loads((tmp_path / "run" / "schema.json").read_text())["zone"]
    assert zone == "UTC offsets +05:30, not all at local midnight: read in UTC"
    local = pd.read_csv(path)
    local["time"] = t.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")  # the same wall times, offsets cut off
    local.to_csv(tmp_path / "local.csv", index=False)
    rc, _, err = invoke("predict", tmp_path / "run", "--data", tmp_path / "local.csv", "-o", tmp_path / "a.csv")
    assert rc == 0, err
    assert (
        f"warning: {tmp_path / 'local.csv'}: the run's timestamps had UTC offsets and were read in UTC ({zone}); "
        "these have none: if one of the two is local time, the calendar features and the forecast's timestamps are "
        "shifted by the offset. Fix: give the timestamps with their UTC offsets, as the training data had them, or "
        "in UTC." in err.splitlines()
    ), err
    rc, _, err = invoke("predict", tmp_path / "run", "--data", path, "-o", tmp_path / "b.csv")  # as trained: quiet
    assert rc == 0 and "warning" not in err and "note: timestamps are UTC" in err, err

    from rnnforecast.forecaster import zone_warnings

    naive = {"zone": ""}  # the other way: the run's timestamps had no offsets, the new ones do
    (line,) = zone_warnings(zone, naive, "new.csv")
    assert line.startswith(f"warning: new.csv: these timestamps are read in UTC ({zone}); the run's were read as")
    assert zone_warnings("", naive, "x") == zone_warnings(zone, {"zone": zone}, "x") == []
    daily = "UTC offsets +01:00, +02:00, every one at local midnight: local dates kept"
    assert zone_warnings("", {"zone": daily}, "x") == []  # local dates either way
    assert zone_warnings(zone, {}, "x") == []  # a run written before schema.json kept the zone

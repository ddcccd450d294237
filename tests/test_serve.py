"""rnnforecast serve: the real server in a subprocess on a free 127.0.0.1 port, called over HTTP."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, DATA, TINY, merge, run_cli, sine_frame, write_config

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEATHER = DATA / "weather.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m rnnforecast serve`` in a subprocess; its stdout and stderr go to ``log``."""

    def __init__(self, runs: list[Path], log: Path, *args: str, env: dict | None = None, start_timeout: float = 120):
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "rnnforecast", "serve", *map(str, runs), "--port", str(self.port), *args]
        with log.open("wb") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.client = httpx.Client(base_url=self.url, timeout=30, headers=AUTH)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited {self.proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the server did not answer /health within {start_timeout} s:\n{log.read_text()}")

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def tail_rows(n: int) -> tuple[list[str], list[list[str]]]:
    with WEATHER.open() as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[-n:]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def records(header: list[str], rows: list[list[str]]) -> list[dict]:
    """JSON records as a client would send them: numbers as numbers, text as text."""

    def value(v: str):
        try:
            return float(v)
        except ValueError:
            return v

    return [{h: value(v) for h, v in zip(header, row)} for row in rows]


@pytest.fixture(scope="module")
def stock_run(tmp_path_factory) -> Path:
    """A business-day run whose rows are steps (calendar: steps) and whose target is log-differenced."""
    d = tmp_path_factory.mktemp("stock")
    cfg = merge(yaml.safe_load((CONFIGS / "stock_gru.yaml").read_text()), TINY)
    cfg["data"]["path"] = str(DATA / "stock.csv")
    run = d / "stock"
    r = run_cli("train", str(write_config(d, cfg)), "--run-dir", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    return run


@pytest.fixture(scope="module")
def many_run(tmp_path_factory) -> Path:
    """Three hourly series in long format (column ``id``), each with its own level: one request forecasts all."""
    d = tmp_path_factory.mktemp("many")
    frames = [sine_frame(400, seed=k).assign(id=f"s{k}", y=lambda f, k=k: f["y"] + 3 * k) for k in range(3)]
    pd.concat(frames).to_csv(d / "many.csv", index=False)
    cfg = merge(
        {
            "name": "many",
            "data": {"path": str(d / "many.csv"), "target": "y", "series_id": "id", "time_column": "time"},
        },
        TINY,
    )
    run = d / "many"
    r = run_cli("train", str(write_config(d, cfg)), "--run-dir", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    return run


@pytest.fixture(scope="module")
def server(weather_run, stock_run, many_run, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    srv = Server([weather_run, stock_run, many_run], log, "--token-env", "SERVE_TOKEN", "--max-rows", "400", "--max-bytes", "60000",
                 env={"SERVE_TOKEN": TOKEN})  # fmt: skip
    try:
        yield srv
    finally:
        srv.stop()


def predict_json(run: Path, data: Path) -> dict:
    r = run_cli("predict", str(run), "--data", str(data), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_forecast_equals_predict_json(server, weather_run, tmp_path):
    header, rows = tail_rows(30)
    path = write_csv(tmp_path / "recent.csv", header, rows)
    want = predict_json(weather_run, path)
    by_json = server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows)})
    by_csv = server.client.post(
        "/v1/runs/weather/forecast", content=path.read_bytes(), headers={"Content-Type": "text/csv"}
    )
    as_text = server.client.post(  # numbers sent as JSON strings read as a CSV reader reads them
        "/v1/runs/weather/forecast", json={"data": [dict(zip(header, r)) for r in rows]}
    )
    for r in (by_json, by_csv, as_text):
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["columns"] == want["columns"]
        assert doc["forecast"] == want["forecast"]  # the same floats, to the last bit
    assert [f["timestamp"] for f in want["forecast"]] == ["2016-01-01T00:00:00", "2016-01-02T00:00:00"]
    # two windows ending at different rows give different numbers: the server does not answer from a cache
    other = server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows[:-1])}).json()
    assert other["forecast"][0]["timestamp"] == "2015-12-31T00:00:00"
    assert other["forecast"][0]["temp_max"] != want["forecast"][0]["temp_max"]
    assert server.client.get("/health").json()["keras"] is False  # the numpy path: no Keras in the server


def test_steps_calendar_and_transform_run(server, stock_run, tmp_path):
    """Business days as steps, a log-differenced target: the numbers and the note of predict, one more row needed."""
    with (DATA / "stock.csv").open() as fh:
        table = list(csv.reader(fh))
    header, rows = table[0], table[-40:]
    path = write_csv(tmp_path / "recent.csv", header, rows)
    want = predict_json(stock_run, path)
    r = server.client.post("/v1/runs/stock/forecast", json={"data": records(header, rows)})
    assert r.status_code == 200, r.text
    assert r.json()["forecast"] == want["forecast"]
    assert [f["timestamp"][:10] for f in want["forecast"]] == ["2017-11-13", "2017-11-14"]  # Friday -> Mon, Tue
    assert r.json()["warnings"][0].startswith("note: rows are steps")
    items = [{"data": records(header, rows[k : k + 20])} for k in range(0, 20, 5)]
    batch = server.client.post("/v1/runs/stock/forecast/batch", json={"items": items}).json()
    for item, result in zip(items, batch["results"]):
        single = server.client.post("/v1/runs/stock/forecast", json=item).json()
        assert (result["forecast"], result["warnings"]) == (single["forecast"], single["warnings"])
    short = server.client.post("/v1/runs/stock/forecast", json={"data": records(header, rows[-7:])})
    assert short.status_code == 422 and "fewer than input_length=7 + 1 (for the transform)" in short.json()["message"]


def test_a_runs_own_file_is_never_far_outside_what_it_trained_on(stock_run):
    """MSFT's log returns hold the 1987 crash (-0.357, about 15 training standard deviations): predict --data of the
    run's own file said 'close' reached 0.23483 (a price quoted beside log-return statistics), far outside the
    training data. A value as extreme as the training rows' is never far; a warning quotes the transform's units."""
    proc = run_cli("predict", str(stock_run), "--data", str(DATA / "stock.csv"))
    assert proc.returncode == 0 and "far outside" not in proc.stderr, proc.stderr
    scaler = json.loads((stock_run / "scaler.json").read_text())
    returns = np.diff(np.log(pd.read_csv(DATA / "stock.csv")["close"].to_numpy()))  # the final fit's rows: every row
    close = scaler["columns"].index("close")
    by_hand = (returns.min() - scaler["shift"][0][close]) / scaler["scale"][0][close]
    assert scaler["low"][0][close] == pytest.approx(by_hand, rel=1e-6) and by_hand < -10


def test_many_series_in_one_request(server, many_run, tmp_path):
    """A run with series_id: the last rows of every series in one request, one forecast per series, as predict."""
    df = pd.read_csv(many_run.parent / "many.csv").groupby("id").tail(30)
    path = tmp_path / "recent.csv"
    df.to_csv(path, index=False)
    want = predict_json(many_run, path)
    before = _samples(server.client.get("/metrics").text, "rnnforecast_series_forecast_total", run="many")
    r = server.client.post("/v1/runs/many/forecast", content=path.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["forecast"] == want["forecast"]
    assert [f["series"] for f in want["forecast"]] == ["s0", "s0", "s1", "s1", "s2", "s2"]
    levels = [f["y"] for f in want["forecast"][::2]]
    assert levels[0] < levels[1] < levels[2]  # each series keeps its own level (+3 per series)
    after = _samples(server.client.get("/metrics").text, "rnnforecast_series_forecast_total", run="many")
    assert after - before == 3


def test_batch_matches_single_forecasts(server):
    header, rows = tail_rows(40)
    items = [{"id": f"end-{k}", "data": records(header, rows[k : k + 20])} for k in range(0, 20, 5)]
    items.append({"id": "short", "data": records(header, rows[:3])})
    r = server.client.post("/v1/runs/weather/forecast/batch", json={"items": items})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["failed"] == 1 and [x["id"] for x in doc["results"]] == [i["id"] for i in items]
    for item, result in zip(items[:-1], doc["results"]):
        single = server.client.post("/v1/runs/weather/forecast", json={"data": item["data"]}).json()
        assert result["forecast"] == single["forecast"]
    short = doc["results"][-1]["problem"]
    assert short["status"] == 422 and "fewer than input_length=7" in short["detail"]
    # only good items: forecast as the series of one frame (one pass of the checks), the same numbers as one by one
    good = server.client.post("/v1/runs/weather/forecast/batch", json={"items": items[:-1]}).json()
    assert good["failed"] == 0
    assert [r["forecast"] for r in good["results"]] == [r["forecast"] for r in doc["results"][:-1]]
    assert len({r["forecast"][0]["temp_max"] for r in good["results"]}) == len(items) - 1  # distinct windows


@pytest.mark.parametrize("fast", [True, False])
def test_concurrent_requests_answer_as_alone(server, fast):
    """Requests that arrive together get the numbers each gets alone: clean JSON rows on the fast path
    (fastframe), rows the full path must read (numbers as text) answered together (one frame)."""
    header, rows = tail_rows(60)
    as_sent = records if fast else (lambda h, rs: [dict(zip(h, r)) for r in rs])
    bodies = [{"data": as_sent(header, rows[k : k + 30])} for k in range(0, 24, 3)]  # 8 distinct windows
    counter = "rnnforecast_fast_series_total" if fast else "rnnforecast_stacked_requests_total"
    alone = [server.client.post("/v1/runs/weather/forecast", json=b).json()["forecast"] for b in bodies]
    before = _samples(server.client.get("/metrics").text, counter, run="weather")
    answers = {}

    def client(k: int):
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
            for _ in range(5):
                r = c.post("/v1/runs/weather/forecast", json=bodies[k])
                answers.setdefault(k, []).append((r.status_code, r.json().get("forecast")))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == list(range(len(bodies)))
    for k, got in answers.items():
        assert got == [(200, alone[k])] * 5, k
    after = _samples(server.client.get("/metrics").text, counter, run="weather")
    assert after - before == 40 if fast else after > before  # all on arrays; or some of the 40 answered together


def _cli_error(run: Path, path: Path) -> str:
    r = run_cli("predict", str(run), "--data", str(path), "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    return r.stderr.strip().removeprefix("error: ")


def _damaged_tables():
    header, rows = tail_rows(30)
    no_column = [[v for h, v in zip(header, r) if h != "temp_min"] for r in rows]
    word = [list(r) for r in rows]
    word[8][header.index("temp_max")] = "warm"  # line 10 of the file (header is line 1)
    tail = [list(r) for r in rows]
    tail[-1][header.index("temp_max")] = ""
    feature = [list(r) for r in rows]
    feature[10][header.index("precipitation")] = "lots"  # an input column, not the target: line 12
    return {
        "missing column": ([h for h in header if h != "temp_min"], no_column, "temp_min"),
        "too few rows": (header, rows[-5:], "fewer than input_length=7"),
        "non-numeric value": (header, word, ":10"),
        "non-numeric input value": (header, feature, ":12: column 'precipitation' is not numeric: value 'lots'"),
        "trailing missing target": (header, tail, "no temp_max value"),
    }


@pytest.mark.parametrize("case", list(_damaged_tables()))
def test_data_errors_are_the_cli_messages(server, weather_run, tmp_path, case):
    header, rows, needle = _damaged_tables()[case]
    path = write_csv(tmp_path / "bad.csv", header, rows)
    r = server.client.post("/v1/runs/weather/forecast", content=path.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["type"].endswith(":data-error") or doc["type"].endswith(":run-error")
    assert doc["status"] == 422 and doc["title"] and needle in doc["message"] and "Fix:" in doc["message"]
    # the CLI's one line on the same rows, with the file's path where the server says "body"
    assert doc["message"].replace("body", str(path), 1) == _cli_error(weather_run, path)
    js = server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows)})
    assert js.status_code == 422 and js.json()["where"].startswith("data")


def test_json_cells_of_input_columns(server):
    """Numbers sent as JSON text in an input column are numbers (docs/serve.md), the same forecast as numbers; a
    number past float64 (400 digits), true/false and a word are named with their row and column, 422 (never 500)."""
    header, rows = tail_rows(30)
    want = server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows)})
    assert want.status_code == 200
    as_text = records(header, rows)
    for r in as_text[::3]:
        r["precipitation"], r["temp_max"] = str(r["precipitation"]), str(r["temp_max"])
    got = server.client.post("/v1/runs/weather/forecast", json={"data": as_text})
    assert got.status_code == 200 and got.json()["forecast"] == want.json()["forecast"]
    for value, needle in [
        (10**400, "column 'precipitation' holds a number beyond the float range (401 digits)"),
        (True, "column 'precipitation' is not numeric: value 'True'"),
        ("lots", "column 'precipitation' is not numeric: value 'lots'"),
    ]:
        bad = records(header, rows)
        bad[4]["precipitation"] = value
        raw = json.dumps({"data": bad}).encode()  # json.dumps writes the 400-digit integer as it is
        r = server.client.post("/v1/runs/weather/forecast", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (value, r.text[:300])
        assert needle in r.json()["message"] and r.json()["where"] == "data:4", r.json()  # the record's index


def test_request_errors(server):
    header, rows = tail_rows(30)
    c = server.client
    cases = [
        (c.post("/v1/runs/weather/forecast", content=b'{"data": [', headers={"Content-Type": "application/json"}), 400, "bad-json"),
        (c.post("/v1/runs/weather/forecast", json={"rows": []}), 422, "bad-request"),
        (c.post("/v1/runs/weather/forecast", json={"data": [1, 2]}), 422, "bad-request"),
        (c.post("/v1/runs/nosuch/forecast", json={"data": records(header, rows)}), 404, "unknown-run"),
        (c.post("/v1/runs/weather/forecast", content=b"x" * 70000, headers={"Content-Type": "text/csv"}), 413, "too-large"),
        (c.post("/v1/runs/weather/forecast", json={"data": records(header, tail_rows(401)[1])}), 413, "too-many-rows"),
        (c.post("/v1/runs/weather/forecast", content=b"a=1", headers={"Content-Type": "text/plain"}), 415, "unsupported-media-type"),
        (c.get("/v1/nothing"), 404, "not-found"),
        (httpx.get(server.url + "/v1/runs"), 401, "unauthorized"),
        (httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"),
        # nested deeper than Python's stack (orjson refuses at 1024 levels, the stdlib raised RecursionError: a 500)
        (c.post("/v1/runs/weather/forecast", content=b'{"data": ' + b"[" * 25000 + b"]" * 25000 + b"}", headers={"Content-Type": "application/json"}), 400, "bad-json"),
    ]  # fmt: skip
    for r, status, kind in cases:
        doc = r.json()
        assert (r.status_code, doc["type"]) == (status, f"urn:rnnforecast:problem:{kind}"), r.text
        assert doc["status"] == status and doc["title"] and doc["detail"] and "Traceback" not in r.text
    assert "nosuch" in cases[3][0].json()["detail"] and "weather" in cases[3][0].json()["fix"]
    assert cases[8][0].headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/health").status_code == 200  # open without the token


def test_runs_listing(server, weather_run):
    doc = server.client.get("/v1/runs").json()
    assert sorted(r["name"] for r in doc["runs"]) == ["many", "stock", "weather"]
    (run,) = [r for r in doc["runs"] if r["name"] == "weather"]
    metrics = json.loads((weather_run / "metrics.json").read_text())
    assert run["name"] == "weather" and run["targets"] == ["temp_max"]
    assert (run["horizon"], run["input_length"], run["frequency"]) == (2, 7, "D")
    assert run["columns"] == ["date", "precipitation", "temp_max", "temp_min", "weather", "wind"]
    assert run["intervals"]["levels"] == [80.0, 95.0] and run["engine"] == "numpy"
    assert run["metrics"]["model"]["mae"] == metrics["test"]["original"]["overall"]["model"]["mae"]
    spec = server.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/runs/{name}/forecast" in spec["paths"]


def _samples(text: str, name: str, **labels) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_and_access_log(server):
    header, rows = tail_rows(20)
    before = server.client.get("/metrics").text
    for _ in range(3):
        assert server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows)}).status_code == 200
    assert server.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows[:2])}).status_code == 422
    after = server.client.get("/metrics").text

    def delta(name, **labels):
        return _samples(after, name, **labels) - _samples(before, name, **labels)

    assert delta("rnnforecast_requests_total", route="forecast_endpoint", run="weather", status="200") == 3
    assert delta("rnnforecast_requests_total", route="forecast_endpoint", run="weather", status="422") == 1
    assert delta("rnnforecast_errors_total", kind="data-error", run="weather") == 1
    assert delta("rnnforecast_request_seconds_count", route="forecast_endpoint", run="weather") == 4
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    last = [x for x in lines if x["path"] == "/v1/runs/weather/forecast"][-1]
    assert (last["status"], last["run"], last["problem"], last["method"]) == (422, "weather", "data-error", "POST")
    assert last["ms"] > 0


def test_reload_under_load_and_a_damaged_directory(server, weather_run, tmp_path):
    header, rows = tail_rows(20)
    body = {"data": records(header, rows)}
    want = server.client.post("/v1/runs/weather/forecast", json=body).json()["forecast"]
    damaged = tmp_path / "damaged"
    shutil.copytree(weather_run, damaged)
    (damaged / "model.keras").write_bytes(b"not a model")
    results, stop = [], threading.Event()

    def client_loop():
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
            for _ in range(200):  # bounded
                if stop.is_set():
                    return
                r = c.post("/v1/runs/weather/forecast", json=body)
                results.append((r.status_code, r.json().get("forecast") == want))

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        first = server.client.get("/v1/runs").json()["runs"][0]["loaded_at"]
        reloads = [server.client.post("/v1/runs/weather/reload") for _ in range(3)]
        refused = server.client.post("/v1/runs/weather/reload", json={"path": str(damaged)})
        time.sleep(0.5)
        os.kill(server.proc.pid, signal.SIGHUP)  # reloads every run
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert all(r.status_code == 200 for r in reloads), [r.text for r in reloads]
    assert refused.status_code == 409 and refused.json()["type"].endswith(":reload-refused")
    assert "model.keras" in refused.json()["message"] and "Fix:" in refused.json()["message"]
    assert len(results) >= 8 and all(results[i] == (200, True) for i in range(len(results))), results
    run = server.client.get("/v1/runs").json()["runs"][0]
    assert run["path"] == str(weather_run.resolve()) and run["loaded_at"] >= first
    metrics = server.client.get("/metrics").text
    assert _samples(metrics, "rnnforecast_reloads_total", run="weather", outcome="ok") >= 4  # 3 + SIGHUP
    assert _samples(metrics, "rnnforecast_reloads_total", run="weather", outcome="refused") == 1
    assert server.client.post("/v1/runs/weather/forecast", json=body).json()["forecast"] == want


def test_reload_swaps_in_another_directory(server, weather_run, tmp_path):
    """``{"path": ...}`` serves another directory under the same name; reloading the first brings its numbers back."""
    header, rows = tail_rows(20)
    body = {"data": records(header, rows)}
    before = server.client.post("/v1/runs/weather/forecast", json=body).json()["forecast"][0]
    wider = tmp_path / "weather-wider"
    shutil.copytree(weather_run, wider)
    doc = json.loads((wider / "intervals.json").read_text())
    doc["model"]["width"] = [[[2 * w for w in t] for t in h] for h in doc["model"]["width"]]  # twice as wide
    (wider / "intervals.json").write_text(json.dumps(doc))
    try:
        r = server.client.post("/v1/runs/weather/reload", json={"path": str(wider)})
        assert r.status_code == 200, r.text
        assert r.json()["reloaded"]["path"] == str(wider.resolve())
        after = server.client.post("/v1/runs/weather/forecast", json=body).json()["forecast"][0]
        assert after["temp_max"] == before["temp_max"]
        for q in ("temp_max_p10", "temp_max_p90"):
            assert after[q] - after["temp_max"] == pytest.approx(2 * (before[q] - before["temp_max"]), rel=1e-9)
    finally:
        back = server.client.post("/v1/runs/weather/reload", json={"path": str(weather_run)})
    assert back.status_code == 200
    assert server.client.post("/v1/runs/weather/forecast", json=body).json()["forecast"][0] == before


def test_sigterm_finishes_the_request_in_flight(weather_run, tmp_path):
    srv = Server([weather_run], tmp_path / "server.log")
    try:
        header, rows = tail_rows(20)
        body = json.dumps({"data": records(header, rows)}).encode()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            head = "POST /v1/runs/weather/forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            s.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])
            time.sleep(0.5)  # the request is in flight: headers read, body half sent
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.TransportError):  # no new connections while it drains
                httpx.get(srv.url + "/health", timeout=2)
            s.sendall(body[100:])
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"forecast"' in answer
        assert srv.proc.wait(timeout=60) == 0
        assert "stopped" in srv.log.read_text()
    finally:
        srv.stop()


def test_damaged_run_refused_at_start(weather_run, tmp_path):
    damaged = tmp_path / "weather"
    shutil.copytree(weather_run, damaged)
    (damaged / "scaler.json").write_text("{")
    r = run_cli("serve", str(damaged), "--port", str(free_port()), timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: ") and "scaler.json" in r.stderr and "Fix:" in r.stderr
    r = run_cli("serve", str(weather_run), "--token-env", "NO_SUCH_VARIABLE_SET", timeout=120)
    assert r.returncode == 1 and "NO_SUCH_VARIABLE_SET" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("serve", str(weather_run), "--port", str(port), timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        f"error: --host/--port: cannot listen on 127.0.0.1:{port} (Address already in use). Fix: stop the program "
        "that holds the port or pass another --port; --host must be an address of this machine."
    )


def test_help_imports_neither_keras_nor_starlette():
    code = (
        "import sys\nfrom rnnforecast.cli import main\ntry:\n main(['serve', '--help'])\nexcept SystemExit:\n pass\n"
        "print(sorted(m for m in ('keras', 'starlette', 'uvicorn', 'pandas') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--token-env" in r.stdout and r.stdout.strip().endswith("[]")


def test_page_has_no_external_assets(server):
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and "<svg" in r.text and "/v1/runs" in r.text
    assert "http://" not in r.text and "https://" not in r.text and "src=" not in r.text


def test_fuzzed_bodies_never_answer_5xx(server):
    """A property test in schemathesis' place: bodies near and far from the OpenAPI schema get 2xx or a 4xx
    problem document, never a 5xx or a trace."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    header, rows = tail_rows(12)
    good = records(header, rows)
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(["2016-01-01", "2015-12-31T12:00:00+05:00", "1e400", "nan", "", "sun"]),
    )
    mutated = st.builds(
        lambda i, col, v, drop: [
            {k: (v if (n == i and k == col) else x) for k, x in r.items() if not (drop and k == col)}
            for n, r in enumerate(good)
        ],
        st.integers(0, len(good) - 1),
        st.sampled_from([*header, "extra"]),
        scalar,
        st.booleans(),
    )
    anything = st.recursive(
        scalar,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
        max_leaves=12,
    )
    body = st.one_of(
        st.builds(lambda d: {"data": d}, mutated),
        st.builds(lambda d: {"items": [{"id": "x", "data": d}, {"data": good}]}, mutated),
        st.builds(lambda d: {"data": d}, anything),
        anything,
    )
    seen = []

    @settings(
        max_examples=int(os.environ.get("SERVE_FUZZ_EXAMPLES", "60")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(body=body, batch=st.booleans(), as_csv=st.booleans())
    def check(body, batch, as_csv):
        url = "/v1/runs/weather/forecast" + ("/batch" if batch else "")
        if as_csv and isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
            lines = [",".join(header)] + [
                ",".join(str(r.get(h, "")) if isinstance(r, dict) else str(r) for h in header) for r in body["data"]
            ]
            r = server.client.post(url, content="\n".join(lines).encode(), headers={"Content-Type": "text/csv"})
        else:
            r = server.client.post(url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        seen.append(r.status_code)
        assert r.status_code < 500, r.text
        assert "Traceback" not in r.text
        if r.status_code >= 400:
            doc = r.json()
            assert doc["status"] == r.status_code and doc["type"].startswith("urn:rnnforecast:problem:")

    check()
    assert any(s == 200 for s in seen) and any(400 <= s < 500 for s in seen)  # both sides were reached


@pytest.mark.slow
def test_workers_share_metrics_and_stop_on_sigterm(weather_run, tmp_path):
    srv = Server([weather_run], tmp_path / "server.log", "--workers", "2")

    def worker_pids() -> set[str]:
        lines = srv.log.read_text().splitlines()
        return {
            ln.split("[")[1].split("]")[0] for ln in lines if ln.startswith("INFO:") and "Started server process" in ln
        }

    try:
        header, rows = tail_rows(20)
        deadline = time.monotonic() + 60  # the second worker may start later than the first answers (a busy machine)
        while len(worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker_pids()) == 2, srv.log.read_text()
        for _ in range(6):
            with httpx.Client(base_url=srv.url, timeout=30) as c:  # a new connection may land on either worker
                assert c.post("/v1/runs/weather/forecast", json={"data": records(header, rows)}).status_code == 200
        text = httpx.get(srv.url + "/metrics", timeout=30).text
        assert _samples(text, "rnnforecast_requests_total", route="forecast_endpoint", status="200") == 6
        # SIGHUP to the main process: each worker is replaced by a new one that reads the runs again
        first = httpx.get(srv.url + "/v1/runs", timeout=30).json()["runs"][0]["loaded_at"]
        time.sleep(1.1)  # loaded_at counts whole seconds
        srv.proc.send_signal(signal.SIGHUP)
        fresh, resets, deadline = 0, 0, time.monotonic() + 120
        while fresh < 4 and time.monotonic() < deadline:
            try:
                with httpx.Client(base_url=srv.url, timeout=30) as c:
                    assert c.post("/v1/runs/weather/forecast", json={"data": records(header, rows)}).status_code == 200
                    fresh = fresh + 1 if c.get("/v1/runs").json()["runs"][0]["loaded_at"] > first else 0
            except httpx.TransportError:  # uvicorn closing a replaced worker's keep-alive connection (docs/serve.md)
                resets += 1
        assert fresh == 4, srv.log.read_text()[-3000:]
        assert resets <= 2, f"{resets} connections reset while the workers were replaced"
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=60) == 0
    finally:
        srv.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (apt-get install chromium) for the page test")
def test_page_draws_the_fan_chart_in_chromium(weather_run, tmp_path):
    """The page at / in headless Chromium: a link with the rows in its #csv= fragment lists the run, posts the
    rows and draws history, forecast and the two bands (80 %, 95 %); the screenshot holds the bands' colour."""
    from urllib.parse import quote

    from matplotlib.image import imread

    srv = Server([weather_run], tmp_path / "server.log")
    try:
        header, rows = tail_rows(30)
        url = srv.url + "/#csv=" + quote("\n".join(",".join(r) for r in [header, *rows]))
        base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
        r = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert 'data-done="1"' in r.stdout, r.stdout[-3000:]
        svg = r.stdout.split("<svg", 1)[1].split("</svg>", 1)[0]
        assert svg.count("<polygon") == 2 and svg.count("<polyline") == 2
        shot = tmp_path / "page.png"
        r = subprocess.run(
            [*base, f"--screenshot={shot}", "--window-size=900,900", url], capture_output=True, timeout=120
        )
        assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
        img = (imread(shot)[..., :3] * 255).round()  # (H, W, 3)

        def near(rgb):
            return int((abs(img - rgb) <= 6).all(axis=-1).sum())

        # the 95 % band alone (18 % of #1f77b4 over white), inside it the 80 % band (two layers), the forecast line
        assert near((215, 231, 242)) > 1000 and near((181, 211, 231)) > 1000 and near((31, 119, 180)) > 20
    finally:
        srv.stop()


HOSTILE = "<img src=x onerror=document.body.setAttribute('data-pwned',1)>"  # a column name that is markup


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (apt-get install chromium) for the page test")
def test_page_shows_a_column_name_as_text_never_as_markup(tmp_path):
    """A run whose target column is named like an HTML element with a handler: the page's chart title shows the
    name literally and no script runs (the page needs no token, and a #csv= link forecasts on open)."""
    from urllib.parse import quote

    frame = sine_frame(200).rename(columns={"y": HOSTILE})
    frame.to_csv(tmp_path / "hostile.csv", index=False)
    cfg = merge({"data": {"path": str(tmp_path / "hostile.csv"), "target": HOSTILE, "time_column": "time"}}, TINY)
    cfg = merge(cfg, {"name": "hostile", "output": {"plots": False}})
    run = tmp_path / "hostile"
    proc = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    srv = Server([run], tmp_path / "server.log")
    try:
        lines = (tmp_path / "hostile.csv").read_text().splitlines()
        url = srv.url + "/#csv=" + quote("\n".join([lines[0], *lines[-20:]]))
        base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
        r = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert 'data-done="1"' in r.stdout, r.stdout[-3000:]  # the forecast was drawn
        assert 'data-pwned="1"' not in r.stdout and "<img" not in r.stdout  # the name shows, escaped, elsewhere too
        title = r.stdout.split("<svg", 1)[1].split("</text>", 1)[0]
        assert "&lt;img src=x onerror=document.body.setAttribute('data-pwned',1)&gt;: history and forecast" in title
    finally:
        srv.stop()


def _ray_serve() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("ray.serve") is not None and importlib.util.find_spec("fastapi") is not None
    except ImportError:
        return False


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray runtime at a time under xdist
@pytest.mark.skipif(not _ray_serve(), reason='Ray Serve not installed (pip install "ray[serve]")')
def test_ray_serve_deployment_answers_like_the_server(weather_run, tmp_path):
    """``serve --ray`` on a local Ray: the same forecast numbers and error documents, and SIGTERM stops it."""
    header, rows = tail_rows(30)
    path = write_csv(tmp_path / "recent.csv", header, rows)
    want = predict_json(weather_run, path)
    srv = Server([weather_run], tmp_path / "server.log", "--ray", start_timeout=300)
    try:
        r = srv.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows)})
        assert r.status_code == 200, r.text
        assert r.json()["forecast"] == want["forecast"]
        bad = srv.client.post("/v1/runs/weather/forecast", json={"data": records(header, rows[:3])})
        assert bad.status_code == 422 and "fewer than input_length=7" in bad.json()["message"]
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=120) == 0
    finally:
        srv.stop()


@pytest.mark.slow
def test_a_run_numpy_cannot_replay_is_served_through_keras(weather_config, tmp_path):
    """A quantile-head run (a custom Keras layer): loaded through Keras once at start, the numbers of predict."""
    cfg = yaml.safe_load(weather_config.read_text())
    cfg["intervals"] = {"levels": [80], "method": "quantile"}
    run = tmp_path / "quantile"
    r = run_cli("train", str(write_config(tmp_path, cfg)), "--run-dir", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    header, rows = tail_rows(20)
    want = predict_json(run, write_csv(tmp_path / "recent.csv", header, rows))
    srv = Server([run], tmp_path / "server.log")
    try:
        assert srv.client.get("/v1/runs").json()["runs"][0]["engine"] == "keras"
        assert srv.client.get("/health").json()["keras"] is True
        results = []

        def client():
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                for _ in range(3):
                    results.append(c.post("/v1/runs/quantile/forecast", json={"data": records(header, rows)}).json())

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(results) == 9 and all(x["forecast"] == want["forecast"] for x in results)
        assert "temp_max_p10" in want["columns"] and want["forecast"][0]["quantile"] == "median"
    finally:
        srv.stop()


def test_batch_items_equal_predict_json(server, weather_run, tmp_path):
    """A batch of clean items (answered in one pass) gives each item the numbers `predict --json` prints for its
    rows, and the series-forecast metric counts every item."""
    header, rows = tail_rows(60)
    ends = [60, 51, 37, 30]  # windows ending at different rows, of different lengths
    items = [{"id": f"to-{e}", "data": records(header, rows[e - 20 - k : e])} for k, e in enumerate(ends)]
    before = _samples(server.client.get("/metrics").text, "rnnforecast_series_forecast_total", run="weather")
    r = server.client.post("/v1/runs/weather/forecast/batch", json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for k, (e, result) in enumerate(zip(ends, results)):
        want = predict_json(weather_run, write_csv(tmp_path / f"{e}.csv", header, rows[e - 20 - k : e]))
        assert result["id"] == f"to-{e}" and result["columns"] == want["columns"]
        assert result["forecast"] == want["forecast"]  # the same floats, to the last bit
    assert len({res["forecast"][0]["temp_max"] for res in results}) == len(ends)
    after = _samples(server.client.get("/metrics").text, "rnnforecast_series_forecast_total", run="weather")
    assert after - before == len(ends)

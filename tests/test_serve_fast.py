"""The server's fast path (fastframe.py): clean JSON rows on arrays give the numbers of the full path, to the bit;
anything the full path refuses, converts or fills is left to it."""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA
from rnnforecast import serve, windows

WEATHER = DATA / "weather.csv"


def weather_records(n: int, offset: int = 0) -> list[dict]:
    """``n`` rows of data/weather.csv ending ``offset`` rows before its end, as a client sends them."""
    with WEATHER.open() as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    body = body[len(body) - n - offset : len(body) - offset]

    def value(v: str):
        try:
            return float(v)
        except ValueError:
            return v

    return [{h: value(v) for h, v in zip(header, r)} for r in body]


@pytest.fixture(scope="module")
def loaded(weather_run):
    return serve.load_run(weather_run)


def full_path(loaded, rows: list[dict]) -> dict:
    """The answer of the full path (load_frame, build, forecast table), as JSON text."""
    table, _ = serve.forecast(loaded, serve.records_table(copy.deepcopy(rows)), "data")
    return json.loads(json.dumps(serve.forecast_records(table)))


def fast_path(loaded, items: list[list[dict]]) -> list[dict] | None:
    answers = serve.forecast_fast(loaded, copy.deepcopy(items), "items" if len(items) > 1 else "data")
    return None if answers is None else [json.loads(json.dumps(a)) for a in answers]


def test_the_demo_kind_of_run_has_a_plan(loaded):
    assert loaded.engine == "numpy" and loaded.plan is not None
    assert loaded.plan.step_ns == 86_400 * 10**9 and loaded.plan.categories == {
        "weather": loaded.run.schema["categories"]["weather"]
    }


@pytest.mark.parametrize("n, offset", [(7, 0), (8, 3), (30, 0), (60, 0), (60, 100), (200, 500)])
def test_clean_rows_give_the_full_paths_numbers(loaded, n, offset):
    rows = weather_records(n, offset)
    fast = fast_path(loaded, [rows])
    assert fast is not None
    assert fast[0] == full_path(loaded, rows)  # every float to the last bit, timestamps, columns
    last = pd.Timestamp(rows[-1]["date"])  # the next horizon days, by hand
    horizon = loaded.run.schema["horizon"]
    assert [f["timestamp"] for f in fast[0]["forecast"]] == [
        (last + pd.Timedelta(days=k)).isoformat() for k in range(1, horizon + 1)
    ]
    band = [(f["temp_max_p10"], f["temp_max"], f["temp_max_p90"]) for f in fast[0]["forecast"]]
    assert all(lo < mid < hi for lo, mid, hi in band)


def test_integer_values_and_other_iso_spellings_stay_on_the_fast_path(loaded):
    rows = weather_records(20)
    for r in rows:
        r["wind"] = int(round(r["wind"]))
    rows[3]["date"] += " 00:00"
    rows[4]["date"] += "T00:00:00"
    assert fast_path(loaded, [rows])[0] == full_path(loaded, rows)


def test_items_in_one_pass_equal_each_alone(loaded):
    items = [weather_records(30, k) for k in range(0, 48, 3)]
    together = fast_path(loaded, items)
    assert [a["forecast"] for a in together] == [fast_path(loaded, [i])[0]["forecast"] for i in items]
    assert [a["forecast"] for a in together] == [full_path(loaded, i)["forecast"] for i in items]
    assert len({a["forecast"][0]["temp_max"] for a in together}) == len(items)  # distinct windows, no cache
    assert "series" not in together[0]["columns"]


def test_items_of_other_lengths_and_overlapping_times_equal_each_alone(loaded):
    """Items' rows are checked and cut all at once: an item may start before the previous one ends, and each
    keeps only its own last rows."""
    items = [weather_records(60), weather_records(7, 3), weather_records(25, 1), weather_records(8, 500)]
    together = fast_path(loaded, items)
    assert together is not None
    assert [a["forecast"] for a in together] == [full_path(loaded, i)["forecast"] for i in items]
    assert [a["forecast"][0]["timestamp"] for a in together] == [
        (pd.Timestamp(i[-1]["date"]) + pd.Timedelta(days=1)).isoformat() for i in items
    ]


def test_calendar_fields_equal_pandas():
    """fastframe.Calendar: the integers pandas' .dt gives, and so the same sin/cos bits, across datetime64[ns]."""
    from rnnforecast.data import PERIODS
    from rnnforecast.fastframe import Calendar

    lo, hi = pd.Timestamp.min.value, pd.Timestamp.max.value
    ticks = np.random.default_rng(0).integers(lo, hi, 20_000)
    edges = pd.DatetimeIndex(["1969-12-31 23:59", "1970-01-01", "1900-02-28 13:45", "2000-02-29 23:59:59.999999"])
    ticks = np.concatenate([ticks, [lo, hi], edges.as_unit("ns").asi8])
    times = ticks.view("datetime64[ns]")
    ours, theirs = Calendar(times), pd.Series(times).dt
    for field in ("hour", "minute", "day", "month"):
        assert getattr(ours, field).tolist() == getattr(theirs, field).tolist(), field
    assert ours.dayofweek.tolist() == theirs.day_of_week.tolist()
    assert ours.dayofyear.tolist() == theirs.day_of_year.tolist()
    for name, (fn, _) in PERIODS.items():
        if name in ("day_of_week", "day_of_year"):
            continue  # pandas' old names warn; their integers are compared above
        assert np.array_equal(np.asarray(fn(ours), dtype="float64"), np.asarray(fn(theirs), dtype="float64")), name


def _dirty():
    """Rows the full path refuses, converts or fills: the fast path must leave every one of them to it."""
    clean = weather_records(20)

    def edit(i, key, value):
        rows = copy.deepcopy(clean)
        if value is KeyError:
            del rows[i][key]
        else:
            rows[i][key] = value
        return rows

    swapped = copy.deepcopy(clean)
    swapped[5], swapped[6] = swapped[6], swapped[5]
    gap = clean[:10] + clean[11:]
    reordered = [dict(reversed(list(r.items()))) for r in clean]  # model columns in another order: a RunError
    return {
        "missing value": edit(19, "temp_max", None),
        "bool": edit(2, "wind", True),
        "number as text": edit(2, "wind", "4.5"),
        "word": edit(8, "temp_max", "warm"),
        "nan": edit(3, "wind", float("nan")),
        "infinity": edit(3, "wind", float("inf")),
        "huge": edit(3, "wind", 1e31),
        "int beyond int64": edit(3, "wind", 10**20),
        "int beyond float64": edit(3, "wind", 10**400),
        "category that reads as a number": edit(4, "weather", "07"),
        "far outside, in a row before the window": edit(0, "temp_max", 5000.0),  # the full path warns
        "offset": edit(0, "date", "2015-12-12T00:00:00+01:00"),
        "utc z": edit(0, "date", "2015-12-12T00:00:00Z"),
        "compact date": edit(0, "date", "20151212"),
        "now": edit(0, "date", "now"),
        "number as time": edit(0, "date", 1449878400),
        "empty time": edit(0, "date", ""),
        "year 2300": edit(0, "date", "2300-01-01"),
        "category as number": edit(4, "weather", 3),
        "missing category": edit(4, "weather", None),
        "missing key": edit(7, "wind", KeyError),
        "extra key": edit(7, "extra", 1.0),
        "out of order": swapped,
        "duplicate": clean[:10] + [clean[9]] + clean[10:],
        "gap": gap,
        "too few rows": clean[-6:],
        "reordered columns": reordered,
    }


@pytest.mark.parametrize("case", list(_dirty()))
def test_rows_the_full_path_must_see_are_left_to_it(loaded, case):
    rows = _dirty()[case]
    assert loaded.plan.data([copy.deepcopy(rows)]) is None
    assert fast_path(loaded, [weather_records(20), rows]) is None  # one such item sends the whole batch the full way


def test_a_far_outside_value_before_the_window_is_warned_about_by_the_full_path(loaded):
    rows = _dirty()["far outside, in a row before the window"]
    _, warnings = serve.forecast(loaded, serve.records_table(copy.deepcopy(rows)), "data")
    assert [w for w in warnings if "far outside" in w] == [
        "warning: data: 'temp_max' reaches 5000, far outside what the run was trained on (training mean "
        f"{loaded.scaler.shift[0][loaded.scaler.columns.index('temp_max')]:.4g}, standard deviation "
        f"{loaded.scaler.scale[0][loaded.scaler.columns.index('temp_max')]:.4g}): the forecast is an extrapolation. "
        "Fix: check the data's units (a factor of 1000?), or train on data that covers this range."
    ]


def test_reordered_columns_are_read_by_name_on_the_full_path(loaded):
    """Keys in another order: the full path reads the run's columns by name (schema.json's features), as predict
    reads a file with its columns swapped; the same answer as the rows in order (it was an error)."""
    assert full_path(loaded, _dirty()["reordered columns"]) == full_path(loaded, weather_records(20))


CLEAN = weather_records(16)
NUMERIC = ["precipitation", "temp_max", "temp_min", "wind"]


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(CLEAN) - 1),
            st.sampled_from([*NUMERIC, "weather", "date"]),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(-(10**20), 10**20),
                st.sampled_from(["sun", "rain", "hail", "", "2015-12-20", "2015-12-20 00:00", "12.5", None, True]),
            ),
        ),
        max_size=3,
    )
)
def test_fast_answers_only_what_the_full_path_answers_the_same(loaded, edits):
    """Random edits of clean rows: where the fast path answers, the full path answers identically."""
    rows = copy.deepcopy(CLEAN)
    for i, key, value in edits:
        rows[i][key] = value
    fast = fast_path(loaded, [rows])
    if fast is None:
        return
    assert fast[0] == full_path(loaded, rows)


@pytest.mark.parametrize("freq", ["h", "15min", "D", "2D", "MS", "B", "W-SUN", "QE"])
def test_future_timestamps_of_many_series_equal_each_alone(freq):
    last = pd.DatetimeIndex(pd.date_range("2020-01-31", periods=5, freq=freq).as_unit("ns"))
    got = windows.target_times_of(last, 4, freq)
    want = np.concatenate([windows.target_times(t, 4, freq).as_unit("ns").asi8 for t in last])
    assert got.as_unit("ns").asi8.tolist() == want.tolist() and len(got) == 20
    assert got.unit == windows.target_times(last[0], 4, freq).unit  # the table's timestamp column keeps its dtype


@pytest.mark.parametrize("freq", ["h", "15min", "D", "2D", "MS", "B", "W-SUN", "QE", "250ms", "7us"])
def test_future_timestamps_as_text_equal_isoformat(freq):
    """windows.target_times_iso (numpy alone for a step of one length) writes what Timestamp.isoformat writes."""
    last = pd.date_range("2020-01-31 23:00", periods=5, freq=freq).as_unit("ns")
    want = [t.isoformat() for t in windows.target_times_of(last, 4, freq)]
    assert windows.target_times_iso(last.to_numpy(), 4, freq) == want and len(want) == 20
    assert windows.iso_times(last.to_numpy()) == [t.isoformat() for t in last]


def test_future_timestamps_past_2262_are_refused_not_wrapped():
    with pytest.raises(pd.errors.OutOfBoundsDatetime):  # as target_times raises it, never a wrapped year 1677
        windows.target_times_of(pd.DatetimeIndex(["2000-01-01", "2262-04-10"]).as_unit("ns"), 3, "D")


def test_the_request_path_imports_no_keras(weather_run):
    """A numpy-replayable run: loading it and answering on the fast path imports neither Keras nor JAX."""
    code = (
        "import sys, json, csv\n"
        "from rnnforecast import serve\n"
        f"loaded = serve.load_run({str(weather_run)!r})\n"
        "rows, _, _ = serve.request_rows(sys.stdin.buffer.read(), 'application/json', 1000)\n"
        "assert serve.forecast_fast(loaded, [rows]) is not None\n"
        "print(json.dumps(sorted(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules)))\n"
    )
    body = json.dumps({"data": weather_records(30)}).encode()
    r = subprocess.run([sys.executable, "-c", code], input=body, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"a": 1, "b": -0.0, "c": 1e2, "d": "x\\u00e9", "a": 2}]}',
        b'{"x": 18446744073709551616, "y": -9223372036854775809, "z": 0.1234567890123456789}',  # beyond 64 bits
        b'{"x": NaN, "y": -Infinity, "z": 1e400}',  # the stdlib reads them; orjson refuses
        '{"x": "\u00e9"}'.encode("utf-16"),
        b'"\\ud800"',
        b" [] ",
    ],
)
def test_request_json_reads_as_the_stdlib_reads_it(body):
    got, want = serve.parse_json(body), json.loads(body)
    assert repr(got) == repr(want)  # types too: an integer beyond 64 bits stays an int
    assert [type(v) for v in (got.values() if isinstance(got, dict) else [])] == [
        type(v) for v in (want.values() if isinstance(want, dict) else [])
    ]


@pytest.mark.parametrize("body", [b"{", b"{}x", b"\xff\xfe\xfd", b'{"a": 01}', b""])
def test_bad_json_gets_the_stdlibs_message(body):
    with pytest.raises(serve.Problem) as e:
        serve.parse_json(body)
    try:
        json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as stdlib:
        assert e.value.detail == f"not JSON: {stdlib}"
    assert e.value.status == 400 and e.value.kind == "bad-json"


@pytest.mark.parametrize("depth", [2000, 200_000])
def test_json_nested_too_deeply_is_a_400_not_a_crash(depth):
    """orjson stops at 1024 levels; the stdlib then recurses until RecursionError: one 400, like any bad JSON."""
    body = b'{"data": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(serve.Problem) as e:
        serve.parse_json(body)
    assert e.value.status == 400 and e.value.kind == "bad-json" and "nested too deeply" in e.value.detail


def test_response_json_writes_nan_as_null_and_numpy_numbers_as_numbers():
    doc = {"a": np.float64("nan"), "b": float("inf"), "c": np.float64(0.1) + np.float64(0.2), "d": [np.int64(3), 1e16]}
    assert json.loads(serve.dump_json(doc)) == {"a": None, "b": None, "c": 0.1 + 0.2, "d": [3, 1e16]}
    assert json.loads(serve.dump_json({"p": pd.Timestamp("2020-01-02 03:00")})) == {"p": "2020-01-02T03:00:00"}


def _asgi(app, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]], direct: bool = False):
    """One POST through ``app`` as uvicorn calls it (``direct``: Starlette's router alone, no fast lane):
    status, headers and body of the answer."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http"}
    scope |= {"path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers}
    scope |= {"client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "app": app}
    messages = [{"type": "http.request", "body": c, "more_body": k < len(chunks) - 1} for k, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run((app.router if direct else app)(scope, receive, send))
    head = dict(sent[0]["headers"])
    return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_fast_lane_answers_as_the_app_does(weather_run):
    """fast_lane (in the Observe middleware) answers the common request without Starlette: the same bytes and
    headers as the forecast route; a body in several chunks is read whole."""
    app = serve.create_app(serve.Options([str(weather_run)]))
    name = weather_run.name
    body = json.dumps({"data": weather_records(30)}).encode()
    json_type = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    path = f"/v1/runs/{name}/forecast"
    lane = _asgi(app, path, [body], json_type)
    route = _asgi(app, path, [body], json_type, direct=True)
    assert lane == route and lane[0] == 200
    assert lane[1][b"content-type"] == b"application/json" and int(lane[1][b"content-length"]) == len(lane[2])
    assert _asgi(app, path, [body[:10], body[10:500], body[500:]], json_type[:1]) == lane
    doc = json.loads(lane[2])
    want = fast_path(serve.load_run(weather_run), [weather_records(30)])[0]
    assert {k: doc[k] for k in ("columns", "forecast")} == want and doc["warnings"] == [] and doc["run"] == name


def test_what_the_fast_lane_leaves_reaches_the_app_whole(weather_run):
    """A body over the limit sent without a length, JSON that is no JSON, rows the full path must word, and CSV:
    each reaches the app with its body as sent, and gets the app's answer."""
    app = serve.create_app(serve.Options([str(weather_run)], max_bytes=4000))
    path = f"/v1/runs/{weather_run.name}/forecast"
    json_type = [(b"content-type", b"application/json")]
    rows = weather_records(30)
    status, _, body = _asgi(app, path, [json.dumps({"data": rows}).encode()[:3000]] * 2, json_type)
    assert status == 413 and json.loads(body)["type"].endswith("too-large")
    status, _, body = _asgi(app, path, [b'{"data": [', b"1,]}"], json_type)
    assert status == 400 and json.loads(body)["detail"].startswith("not JSON: Expecting value: line 1 column 13")
    rows[-5]["temp_max"] = "warm"
    status, _, body = _asgi(app, path, [json.dumps({"data": rows[-12:]}).encode()], json_type)
    assert status == 422 and "'warm'" in json.loads(body)["detail"]
    with WEATHER.open() as fh:
        csv_body = "".join([fh.readline(), *fh.readlines()[-20:]]).encode()
    status, _, body = _asgi(app, path, [csv_body[:100], csv_body[100:]], [(b"content-type", b"text/csv")])
    horizon = json.loads((weather_run / "schema.json").read_text())["horizon"]
    assert status == 200 and len(json.loads(body)["forecast"]) == horizon


def test_the_fast_lane_answers_batches_as_the_app_does(weather_run):
    """A clean batch is answered in the fast lane (one pass, no thread): the bytes the batch route answers; each
    item's numbers are those of the item sent alone through the full path."""
    app = serve.create_app(serve.Options([str(weather_run)]))
    path = f"/v1/runs/{weather_run.name}/forecast/batch"
    items = [{"id": f"w{k}", "data": weather_records(20 + k, offset=3 * k)} for k in range(12)]
    body = json.dumps({"items": items}).encode()
    json_type = [(b"content-type", b"application/json")]
    lane = _asgi(app, path, [body[:700], body[700:]], json_type)
    route = _asgi(app, path, [body], json_type, direct=True)
    assert lane == route and lane[0] == 200
    assert int(lane[1][b"content-length"]) == len(lane[2])
    doc = json.loads(lane[2])
    assert doc["failed"] == 0 and [r["id"] for r in doc["results"]] == [i["id"] for i in items]
    loaded = serve.load_run(weather_run)
    for item, result in zip(items, doc["results"]):
        assert {k: result[k] for k in ("columns", "forecast")} == full_path(loaded, item["data"])
    assert len({r["forecast"][0]["timestamp"] for r in doc["results"]}) == len(items)  # 12 distinct windows
    metrics = _asgi_get(app, "/metrics").decode()  # 12 series in the lane, then 12 through the route
    assert f'rnnforecast_fast_series_total{{run="{weather_run.name}"}} 24.0' in metrics
    assert f'rnnforecast_series_forecast_total{{run="{weather_run.name}"}} 24.0' in metrics


def _asgi_get(app, path: str) -> bytes:
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http"}
    scope |= {"path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": []}
    scope |= {"client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "app": app}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return b"".join(m.get("body", b"") for m in sent[1:])


def test_batch_ids_orjson_would_misread_are_read_by_the_app(weather_run):
    """orjson reads an integer beyond 64 bits as a float; the fast lane reads without the scan that catches it, so
    a batch with a float id goes to the app, whose reading (the stdlib's) keeps the id as sent."""
    app = serve.create_app(serve.Options([str(weather_run)]))
    path = f"/v1/runs/{weather_run.name}/forecast/batch"
    rows = json.dumps(weather_records(20))
    body = f'{{"items": [{{"id": 123456789012345678901234, "data": {rows}}}, {{"id": 2.5, "data": {rows}}}]}}'
    status, _, answer = _asgi(app, path, [body.encode()], [(b"content-type", b"application/json")])
    assert status == 200
    assert [r["id"] for r in json.loads(answer)["results"]] == ["123456789012345678901234", "2.5"]
    assert serve.parse_lane(body.encode())["items"][0]["id"] == 1.2345678901234569e23  # what the lane would read


def test_the_server_process_freezes_what_it_loaded_and_a_reload_still_frees_the_old_run(weather_run):
    """freeze_loaded (the server's entry points) hides what was loaded from the garbage collector; the run a reload
    replaces is still freed. In a child process: freezing is process-wide."""
    code = """
import gc, sys, weakref
from rnnforecast import serve
runs = serve.Runs([sys.argv[1]])
runs.load_all()
app = serve.create_app(serve.Options([sys.argv[1]]), runs)
assert gc.get_freeze_count() == 0
serve.freeze_loaded()
name = next(iter(runs.loaded))
old = weakref.ref(runs.loaded[name].forecaster.model)
runs.reload(name)
print(gc.get_freeze_count(), old() is None, runs.loaded[name].forecaster.model is not None)
"""
    r = subprocess.run([sys.executable, "-c", code, str(weather_run)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    frozen, freed, loaded = r.stdout.split()
    assert int(frozen) > 10_000 and freed == "True" and loaded == "True"

"""``rnnforecast serve``: forecasts over HTTP from run directories loaded once (Starlette on uvicorn).

Each run is read once at start (``load_run``) into an object that holds the model, scaler and intervals; a
request parses its rows and calls ``forecast`` on that object, on the numpy path (no Keras in request
handling unless a run needs Keras, which is then loaded once at start). The routes, the error documents
and the metrics are described in docs/serve.md and served as OpenAPI at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hmac
import io
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

try:  # the serve extra installs it; without it the stdlib's json reads and writes the bodies
    import orjson
except ImportError:  # pragma: no cover - the extra declares it
    orjson = None

from . import artifacts
from .data import SERIES, load_frame
from .errors import RnnForecastError, RunError
from .forecaster import filled_history_warnings, new_data_config, new_data_warnings
from .series import build
from .text import _plain

ENV = "RNNFORECAST_SERVE"  # the options, as JSON, for the worker processes of --workers N
MAX_BYTES = 1 << 20  # request body limit (1 MiB): 60 rows of a 10-column table are ~4 KiB
MAX_ROWS = 10_000  # rows per request, all batch items together
GRACE_SECONDS = 30  # SIGTERM: in-flight requests get this long to finish
PROBLEM = "urn:rnnforecast:problem:"  # + kind: the RFC 7807 ``type`` of each error document

log = logging.getLogger("rnnforecast.serve")
access = logging.getLogger("rnnforecast.access")


# --------------------------------------------------------------------------- loading and forecasting


@dataclass(frozen=True)
class LoadedRun:
    """Everything a forecast needs, read once from a run directory."""

    name: str
    path: Path
    run: artifacts.Run
    model: object  # predict_on_batch({"past": x, ...}) -> (B, H, T, Q)
    scaler: object
    intervals: object  # intervals.RunIntervals or None
    engine: str  # "numpy" or "keras"
    forecaster: object = None  # the Forecaster loaded once (forecaster.py): what every request asks
    plan: object = None  # fastframe.Plan: clean JSON rows on arrays (None: every request takes the full path)
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict:
        """The run as ``GET /v1/runs`` lists it."""
        schema, metrics = self.run.schema, self.run.metrics
        overall = (metrics.get(metrics.get("split", "test")) or {}).get("original", {}).get("overall", {})
        iv = self.intervals
        return {
            "name": self.name,
            "path": str(self.path),
            "targets": schema["targets"],
            "horizon": schema["horizon"],
            "input_length": schema["input_length"],
            "time_column": schema["time_column"],
            "series_column": schema.get("series_id"),
            "columns": [c for c in schema["source_columns"] if c != "__line__"],
            "frequency": schema["frequency"],
            "intervals": {"method": iv.method, "levels": list(iv.levels)} if iv else None,
            "trained_at": _iso((self.path / "metrics.json").stat().st_mtime),
            "loaded_at": _iso(self.loaded_at),
            "engine": self.engine,
            "metrics": {"split": metrics.get("split", "test"), "model": overall.get("model", {})},
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds")


class _Serialized:
    """A Keras model behind a lock: its predict step is not safe to call from several threads at once."""

    def __init__(self, model):
        self.model, self.lock = model, threading.Lock()

    def predict_on_batch(self, inputs):
        with self.lock:
            return self.model.predict_on_batch(inputs)


def load_run(path: str | Path, name: str | None = None) -> LoadedRun:
    """Open a run directory as ``rnnforecast predict`` does (numpy model when every layer replays, else Keras)."""
    from .forecaster import Forecaster
    from .numpy_model import Ensemble, NumpyModel

    f = Forecaster.load(path)
    model = f.model
    numpy = isinstance(model, NumpyModel) or (isinstance(model, Ensemble) and model.numpy)
    if not numpy:
        f = dataclasses.replace(f, model=_Serialized(model))
    from .fastframe import Plan

    p = Path(path).resolve()
    plan = Plan.of(f) if numpy else None  # a Keras step may round differently for another batch size
    engine = "numpy" if numpy else "keras"
    return LoadedRun(name or p.name, p, f.run, f.model, f.scaler, f.calibration, engine, forecaster=f, plan=plan)


def forecast(
    loaded: LoadedRun, table: pd.DataFrame, where: str = "data", line_of=None, per_series_step: bool = False
) -> tuple[pd.DataFrame, list]:
    """The forecast table ``rnnforecast predict RUN --data FILE`` prints for these rows, and its warnings.

    ``where`` names the rows in error messages, ``line_of(row numbers)`` the row a message points at;
    ``per_series_step``: check the time step of each series on its own (a batch's items).
    """
    run, cfg = loaded.run, new_data_config(loaded.run)
    artifacts.check_against_schema(where, run.schema, table.columns)
    frame = load_frame(cfg.data, where, run.schema.get("categories"), table=table, line_of=line_of)
    if per_series_step:
        for _, g in frame.df.groupby(SERIES, sort=False):
            artifacts.check_step(dataclasses.replace(frame, df=g), run.schema, where)
    else:
        artifacts.check_step(frame, run.schema, where)
    warnings = artifacts.check_tail(frame, False, cfg.window.horizon if cfg.data.future else 0)
    if frame.columns != run.schema["columns"]:
        raise RunError(
            f"the data gives model columns {frame.columns}, the run was trained on {run.schema['columns']}",
            where=where,
            fix="pass rows with the same columns as the training data",
        )
    data = build(frame, cfg, scaler=loaded.scaler, check_splits=False)
    warnings += filled_history_warnings(data) + new_data_warnings(data, run.schema)
    if run.schema.get("calendar") == "steps":  # the note `predict` prints
        warnings.append(
            f"note: rows are steps; future timestamps follow the {run.schema['frequency']!r} calendar "
            "(e.g. business days), holidays not excluded"
        )
    return loaded.forecaster.forecast(data), warnings


ITEM = "__item__"  # the column that tells a batch's items apart when they are forecast as the series of one frame


def forecast_stacked(loaded: LoadedRun, tables: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], list] | None:
    """The items of a batch as the series of one frame: the frame's checks run once for all of them.

    Returns each item's forecast table and the notes every item gets. Only for a run without ``series_id`` (one
    global scaler) on the numpy path (a compiled Keras step may round differently for another batch size), and only
    when every item passes cleanly: on any error or warning the answer is None, and the caller forecasts item by
    item so that each item gets its own message.
    """
    run = loaded.run
    if run.config.data.series_id or len(tables) < 2 or loaded.scaler.groups != ["*"] or loaded.engine != "numpy":
        return None
    keys = [f"{k:06d}" for k in range(len(tables))]
    rows = pd.concat([t.assign(**{ITEM: key}) for t, key in zip(tables, keys)], ignore_index=True)
    try:
        config = run.config.replace(**{"data.series_id": ITEM})
        stacked = dataclasses.replace(loaded, run=dataclasses.replace(run, config=config))
        table, warnings = forecast(stacked, rows, "items", per_series_step=True)
    except RnnForecastError:
        return None
    if any(not w.startswith("note:") for w in warnings):
        return None
    parts = dict(tuple(table.groupby("series", sort=False)))
    return [parts[k].drop(columns="series").reset_index(drop=True) for k in keys], warnings


def forecast_records(table: pd.DataFrame) -> dict:
    """The ``columns`` and ``forecast`` fields, as ``predict --json`` prints them."""
    return {"columns": list(table.columns), "forecast": _plain(table.to_dict(orient="records"))}


def forecast_fast(loaded: LoadedRun, items: list[list], where: str = "data") -> list[dict] | None:
    """Each item's ``columns`` and ``forecast`` fields (as :func:`forecast_records`), all items' windows in one
    forward pass, when every item is clean JSON rows for a run ``fastframe`` covers; else None (the full path,
    :func:`forecast`, answers and words any error). The same numbers as :func:`forecast` on the same rows."""
    from .forecaster import forecast_rows

    f = loaded.forecaster
    try:
        data = loaded.plan.data(items, where) if loaded.plan is not None else None
        if data is None:
            return None
        # the items are the series of one frame: each gets its own rows, without the series column
        rows = forecast_rows(f.model, data, f.schema.frequency, f.calibration, iso=True, series=False)
    except RnnForecastError:  # e.g. a value beyond float32 once scaled: the full path words it, item by item
        return None
    H = data.horizon
    parts = [rows[k * H : (k + 1) * H] for k in range(len(items))]
    return [{"columns": list(p[0]), "forecast": p} for p in parts]


class Batcher:
    """Forecast requests that arrive while others are being answered wait, then go together as the series of one
    frame (``forecast_stacked``): under concurrent load the frame's checks run once per group, not per request.

    One thread does the work (the GIL lets pandas use one core anyway; ``--workers`` adds cores). A group that
    cannot be stacked (an error, a warning, a run with ``series_id``) is answered request by request, as alone.
    """

    MAX_GROUP = 64

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    async def forecast(self, loaded: LoadedRun, table: pd.DataFrame, where: str, line_of) -> tuple[pd.DataFrame, list]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._start()
        self.queue.put((loaded, table, where, line_of, future, loop))
        return await future

    def _start(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, name="rnnforecast-batcher", daemon=True)
                self.thread.start()

    def _work(self) -> None:
        while True:
            group = [self.queue.get()]
            while len(group) < self.MAX_GROUP:
                try:
                    group.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            by_run: dict[int, list] = {}
            for job in group:
                by_run.setdefault(id(job[0]), []).append(job)
            for jobs in by_run.values():
                self._answer(jobs)

    def _answer(self, jobs: list) -> None:
        stacked = forecast_stacked(jobs[0][0], [j[1] for j in jobs]) if len(jobs) > 1 else None
        if stacked is not None:
            self.metrics.stacked.labels(jobs[0][0].name).inc(len(jobs))
        for k, (loaded, table, where, line_of, future, loop) in enumerate(jobs):
            try:
                result = (stacked[0][k], stacked[1]) if stacked is not None else forecast(loaded, table, where, line_of)
                loop.call_soon_threadsafe(_settle, future, result, None)
            except Exception as e:  # the request's own error (or a bug), raised in its handler
                loop.call_soon_threadsafe(_settle, future, None, e)


class Grouper:
    """Clean JSON requests that are ready together go through :func:`forecast_fast` as the items of one call
    (one forward pass), in the event loop: the flush is scheduled behind the handlers already runnable, so
    requests that arrived together are answered together, and a lone request waits for nothing. A group the fast
    path declines is tried request by request; a request it declines is answered None (the full path's turn)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.pending: list[tuple[LoadedRun, list, asyncio.Future]] = []

    async def forecast(self, loaded: LoadedRun, rows: list[dict]) -> dict | None:
        future = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append((loaded, rows, future))
        return await future

    def _flush(self) -> None:
        jobs, self.pending = self.pending, []
        by_run: dict[int, list] = {}
        for job in jobs:
            by_run.setdefault(id(job[0]), []).append(job)
        for group in by_run.values():
            loaded = group[0][0]
            try:
                answers = forecast_fast(loaded, [rows for _, rows, _ in group], "data") if len(group) > 1 else None
                if answers is None:
                    answers = [(forecast_fast(loaded, [rows]) or [None])[0] for _, rows, _ in group]
                elif len(group) > 1:
                    self.metrics.stacked.labels(loaded.name).inc(len(group))
            except Exception as e:  # a bug: each request answers it (500, logged), none waits forever
                for *_, future in group:
                    _settle(future, None, e)
                continue
            for (*_, future), answer in zip(group, answers):
                _settle(future, answer, None)


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Runs:
    """The loaded runs by name; a reload replaces one entry at once, so a request sees the old or the new run."""

    def __init__(self, paths: list[str]):
        self.paths: dict[str, Path] = {}
        for p in paths:
            name = Path(p).resolve().name
            if name in self.paths:
                raise RunError(
                    f"two runs are named {name!r}", where=str(p), fix="serve run directories with different names"
                )
            self.paths[name] = Path(p)
        self.loaded: dict[str, LoadedRun] = {}
        self.lock = threading.Lock()  # one reload at a time

    def load_all(self) -> None:
        for name, path in self.paths.items():
            self.loaded[name] = load_run(path, name)

    def get(self, name: str) -> LoadedRun:
        loaded = self.loaded.get(name)
        if loaded is None:
            raise Problem(
                404,
                "unknown-run",
                "Unknown run",
                f"no run named {name!r} is served",
                fix=f"use one of: {', '.join(self.loaded) or '(none)'} (GET /v1/runs)",
            )
        return loaded

    def reload(self, name: str, path: str | None = None) -> LoadedRun:
        """Load ``name`` again (from ``path`` when given); a directory that fails to load leaves the old one."""
        self.get(name)
        with self.lock:
            new = load_run(Path(path) if path else self.paths[name], name)
            self.loaded[name] = new
            self.paths[name] = new.path
        return new


def freeze_loaded() -> None:
    """Move everything loaded so far (modules, runs, the app) out of the garbage collector's sight (``gc.freeze``):
    a full collection in the server then walks only what requests allocate, instead of pausing the event loop to
    walk some 75,000 objects that live as long as the process (about 6 % of the server's CPU per request, and
    pauses of tens of ms). A server process's entry points call it once the runs are loaded. Frozen objects are still
    freed when nothing refers to them: a reload frees the run it replaces (tests/test_serve_fast.py)."""
    gc.collect()
    gc.freeze()


# --------------------------------------------------------------------------- errors as RFC 7807 documents


class Problem(Exception):
    """An error answered as a problem document: ``status``, a ``kind`` (the type's tail), title and detail."""

    def __init__(self, status: int, kind: str, title: str, detail: str, fix: str | None = None, where=None):
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.fix, self.where = status, kind, title, detail, fix, where

    @classmethod
    def of(cls, e: RnnForecastError, status: int = 422) -> Problem:
        kind = {"DataError": "data-error", "RunError": "run-error", "ConfigError": "config-error"}
        p = cls(status, kind.get(type(e).__name__, "error"), "The rows cannot be forecast", e.message, e.fix, e.where)
        p.one_line = e.one_line()
        return p

    def document(self) -> dict:
        message = (
            getattr(self, "one_line", None) or RnnForecastError(self.detail, where=self.where, fix=self.fix).one_line()
        )
        doc = {"type": PROBLEM + self.kind, "title": self.title, "status": self.status, "detail": self.detail}
        return doc | {"message": message, "where": self.where, "fix": self.fix}


def problem_response(p: Problem, scope: dict | None = None) -> Response:
    if scope is not None:
        scope.setdefault("state", {})["problem"] = p.kind
    headers = {"WWW-Authenticate": "Bearer"} if p.status == 401 else None
    body = json.dumps(p.document())
    return Response(body, p.status, headers=headers, media_type="application/problem+json")


async def _on_problem(request: Request, e: Problem) -> Response:
    return problem_response(e, request.scope)


async def _on_library_error(request: Request, e: RnnForecastError) -> Response:
    return problem_response(Problem.of(e), request.scope)


async def _on_http(request: Request, e: HTTPException) -> Response:
    kind = {404: "not-found", 405: "method-not-allowed"}.get(e.status_code, "http-error")
    return problem_response(
        Problem(e.status_code, kind, str(e.detail), f"{request.method} {request.url.path}"), request.scope
    )


async def _on_bug(request: Request, e: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=e)
    detail = f"internal error: {type(e).__name__} (the server log has the trace)"
    return problem_response(Problem(500, "internal", "Internal error", detail, fix="report it"), request.scope)


# --------------------------------------------------------------------------- request bodies


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise _too_large(n, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(n: int, limit: int) -> Problem:
    return Problem(
        413, "too-large", "Body too large", f"the body has over {limit} bytes ({n} seen)", fix="send fewer rows"
    )


def _bad(detail: str, fix: str, where: str = "body", kind: str = "bad-request", status: int = 422) -> Problem:
    return Problem(status, kind, "Bad request body", detail, fix=fix, where=where)


# 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float and the stdlib as an int (the
# full path's messages quote it as sent); a scan of digits mapped to "0" (C speed: a regex costs 10x more)
DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
LONG_INTEGER = b"0" * 19


def parse_json(body: bytes):
    """The body's JSON: orjson when installed (~5x faster on a batch), else, or when orjson refuses the body or it
    holds a long integer, the stdlib's reading and error message (it also reads NaN, Infinity and UTF-16)."""
    if orjson is not None and body.translate(DIGITS).find(LONG_INTEGER) < 0:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(f"not JSON: {e}", 'send {"data": [{...}, ...]} as UTF-8 JSON', kind="bad-json", status=400) from None
    except RecursionError:  # arrays or objects nested deeper than the interpreter's stack (orjson stops at 1024)
        raise _bad(
            "not JSON this server reads: nested too deeply",
            'send {"data": [{...}, ...]}: rows are objects of values',
            kind="bad-json",
            status=400,
        ) from None


def parse_lane(body: bytes):
    """The body's JSON for ``fast_lane``: orjson without ``parse_json``'s scan for long integers (about 5 % of a
    batch's time). orjson reads an integer beyond 64 bits as a float of magnitude >= 2**63, where the stdlib keeps the
    int: as a row's value it is refused by the fast path (``fastframe``: at most 2**63), as a batch item's id by
    ``batch_fast``; the app then reads the body again with ``parse_json``. Raises when orjson refuses the body."""
    return orjson.loads(body) if orjson is not None else parse_json(body)


def check_records(records, where: str, max_rows: int) -> list[dict]:
    """``[{"date": ..., "temp_max": ...}, ...]``: a non-empty list of objects, within the row limit."""
    if not isinstance(records, list) or not records:
        raise _bad(f"{where} must be a non-empty list of records", 'send {"data": [{"date": ..., ...}, ...]}', where)
    check_rows(len(records), max_rows)
    if not all(type(r) is dict for r in records):
        i = next(i for i, r in enumerate(records) if not isinstance(r, dict))
        raise _bad(f"{where}[{i}] is a {type(records[i]).__name__}, not an object", "send one object per row", where)
    return records


def records_table(records: list[dict]) -> pd.DataFrame:
    """Checked records (:func:`check_records`) as the DataFrame the full path reads."""
    return _numbers_from_text(pd.DataFrame.from_records(records))


def _numbers_from_text(df: pd.DataFrame) -> pd.DataFrame:
    """JSON numbers sent as text (``"12.8"``) read as numbers, as a CSV reader reads them; a column with any
    value that is no number stays as sent, so the frame's checks name that value and its row."""
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) or not _number_text(next((v for v in s if v not in (None, "")), None)):
            continue  # numbers already, or text whose first value is no number (times, categories): cheap to skip
        if not all(v is None or (isinstance(v, (str, int, float)) and not isinstance(v, bool)) for v in s):
            continue  # a list, an object or a bool: left as sent, for the frame's checks to name
        text = s.replace("", None)
        conv = pd.to_numeric(text, errors="coerce")
        if (conv.isna() == text.isna()).all():
            df[col] = conv
    return df


def _number_text(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise Problem(
            413, "too-many-rows", "Too many rows", f"{n} rows, over the limit of {max_rows}", fix="send fewer rows"
        )


def csv_table(body: bytes, max_rows: int) -> pd.DataFrame:
    """A CSV body read as ``--data FILE`` reads a file."""
    try:
        df = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("the CSV is not UTF-8", "send UTF-8 text", kind="bad-csv", status=400) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise _bad(f"cannot parse CSV: {first}", "send a header line and rows", kind="bad-csv", status=400) from None
    check_rows(len(df), max_rows)
    return df


def csv_line(rows):
    return rows + 2  # the header is line 1 of the body


def request_rows(body: bytes, content_type: str, max_rows: int) -> tuple[pd.DataFrame | list[dict], str, object]:
    """The rows of a forecast request (a CSV body's table, or a JSON body's checked records), the name messages
    give them, and how they number a row."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/csv":
        return csv_table(body, max_rows), "body", csv_line
    if kind not in ("application/json", ""):
        raise Problem(415, "unsupported-media-type", "Unsupported media type", f"cannot read {kind}", fix=_MEDIA_FIX)
    doc = parse_json(body)
    if not isinstance(doc, dict) or "data" not in doc:
        raise _bad('the JSON has no "data" field', 'send {"data": [{...}, ...]}')
    return check_records(doc["data"], "data", max_rows), "data", None


_MEDIA_FIX = "send application/json ({'data': [records]}) or text/csv"


# --------------------------------------------------------------------------- the app


@dataclass(frozen=True)
class Options:
    runs: list[str]
    token_env: str | None = None
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS

    def token(self) -> str | None:
        return os.environ.get(self.token_env) if self.token_env else None


class Metrics:
    """Prometheus metrics of one app (its own registry; a multiprocess directory for --workers N)."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rnnforecast_requests", "HTTP requests", ["route", "run", "status"], registry=r)
        self.latency = Histogram(
            "rnnforecast_request_seconds",
            "Request latency",
            ["route", "run"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.errors = Counter("rnnforecast_errors", "Error documents by kind", ["kind", "run"], registry=r)
        self.forecasts = Counter("rnnforecast_series_forecast", "Series forecast", ["run"], registry=r)
        self.reloads = Counter("rnnforecast_reloads", "Run reloads", ["run", "outcome"], registry=r)
        self.fast = Counter(
            "rnnforecast_fast_series", "Series forecast from clean JSON rows on arrays (fastframe)", ["run"], registry=r
        )
        self.stacked = Counter(
            "rnnforecast_stacked_requests", "Requests answered together with others in one frame", ["run"], registry=r
        )
        self.in_flight = Gauge(
            "rnnforecast_in_flight", "Requests being answered", registry=r, multiprocess_mode="livesum"
        )

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


OPEN = {"/health", "/"}  # answered without the token


class Observe:
    """ASGI middleware: bearer token, metrics and one JSON access-log line per request."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        m = self.state.metrics
        m.in_flight.inc()
        try:
            denied = self.denied(scope)
            if denied is not None:
                await denied(scope, receive, send_status)
            elif (receive := await fast_lane(self.state, scope, receive, send_status)) is not None:
                await self.app(scope, receive, send_status)
        finally:
            m.in_flight.dec()
            self.record(scope, status[0], time.perf_counter() - t0)

    def denied(self, scope) -> Response | None:
        token = self.state.token
        if token is None or scope["path"] in OPEN:
            return None
        given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
            return None
        p = Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "a valid bearer token is required",
            fix="send Authorization: Bearer TOKEN",
        )
        return problem_response(p, scope)

    def record(self, scope, status: int, seconds: float) -> None:
        params = scope.get("path_params") or {}
        run = params.get("name", "")
        run = run if run in self.state.runs.loaded else ("" if not run else "?")
        endpoint = scope.get("endpoint")
        route = getattr(endpoint, "__name__", "none") if endpoint else "none"
        m = self.state.metrics
        m.requests.labels(route, run, str(status)).inc()
        m.latency.labels(route, run).observe(seconds)
        kind = (scope.get("state") or {}).get("problem")
        if kind:
            m.errors.labels(kind, run).inc()
        line = {
            "ts": _iso(time.time()),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round(seconds * 1000, 2),
            "run": run or None,
            "problem": kind,
            "client": (scope.get("client") or ("", 0))[0],
        }
        access.info(json.dumps(line))


FORECAST_PATH = re.compile(r"/v1/runs/([^/]+)/forecast(/batch)?")  # the forecast routes' paths, as Starlette's


async def fast_lane(state: State, scope, receive, send):
    """The common requests answered without Starlette's request, routing and response objects: a POST of clean
    JSON rows (``{"data": [...]}``) to ``/v1/runs/<name>/forecast``, or of clean items (``{"items": [...]}``) to
    ``.../forecast/batch``, of a run on the fast path (``forecast_fast``).

    Returns None when it answered; else the ``receive`` the app reads the request from (the body as read here, then
    the rest): everything else (an error to word, a CSV body, rows the full path must see) is the app's, as before.
    """
    match = FORECAST_PATH.fullmatch(scope["path"]) if scope["method"] == "POST" else None
    loaded = state.runs.loaded.get(match[1]) if match else None
    if loaded is None or loaded.plan is None:
        return receive
    kind = _first_header(scope, b"content-type").split(b";")[0].strip().lower()
    declared = _first_header(scope, b"content-length")
    if kind not in (b"application/json", b"") or (declared.isdigit() and int(declared) > state.options.max_bytes):
        return receive
    messages, body = await _read_within(receive, state.options.max_bytes)
    replay = _replaying(messages, receive)
    if body is None:
        return replay  # over the limit, or the client left: the app says so
    try:
        if match[2]:
            answer = batch_fast(state, loaded, body)
        else:
            doc = parse_lane(body)
            data = doc.get("data") if type(doc) is dict else None
            rows = check_records(data, "data", state.options.max_rows) if data is not None else None
            answer = await answer_fast(state, loaded, rows) if rows is not None else None
    except Exception:  # a problem document (or a bug) is the app's to answer, from the same body
        return replay
    if answer is None:
        return replay
    endpoint = batch_endpoint if match[2] else forecast_endpoint
    scope["endpoint"], scope["path_params"] = endpoint, {"name": match[1]}  # what the metrics read
    head = [(b"content-length", b"%d" % len(answer)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": answer})
    return None


async def _read_within(receive, limit: int) -> tuple[list[dict], bytes | None]:
    """The request's messages as received, and its body; None as body when it passes ``limit`` bytes or the
    client disconnects (then only what was read until then is in the messages)."""
    messages, chunks, n = [], [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        n += len(chunk)
        if n > limit:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _first_header(scope, name: bytes) -> bytes:
    """The first value of header ``name`` (lower case), as Starlette's ``request.headers.get`` reads it."""
    return next((v for k, v in scope["headers"] if k == name), b"")


def _replaying(messages: list[dict], receive):
    """A ``receive`` that gives ``messages`` again, then what ``receive`` gives."""
    pending = list(messages)

    async def replay():
        return pending.pop(0) if pending else await receive()

    return replay


async def answer_fast(state: State, loaded: LoadedRun, rows: list[dict]) -> bytes | None:
    """The answer (JSON) to clean rows on the fast path, with requests ready together (``Grouper``); else None."""
    fast = await state.grouper.forecast(loaded, rows)
    if fast is None:
        return None
    state.metrics.forecasts.labels(loaded.name).inc()
    state.metrics.fast.labels(loaded.name).inc()
    return dump_json({"run": loaded.name, **fast, "warnings": []})


def batch_fast(state: State, loaded: LoadedRun, body: bytes) -> bytes | None:
    """The answer (JSON) to a batch whose items are all clean rows on the fast path, forecast together in the
    event loop (as ``Grouper`` does: one forward pass, no thread hand-off); else None."""
    doc = parse_lane(body)
    items = doc.get("items") if type(doc) is dict else None
    if not isinstance(items, list) or any(type(i) is dict and type(i.get("id")) is float for i in items):
        return None  # no items (the app words it), or an id orjson may read otherwise than the stdlib
    items = _batch_items(body, state.options.max_rows, doc)
    if any(isinstance(rows, Problem) for _, rows in items):
        return None
    fast = forecast_fast(loaded, [rows for _, rows in items], "items")
    if fast is None:
        return None
    state.metrics.forecasts.labels(loaded.name).inc(len(items))
    state.metrics.fast.labels(loaded.name).inc(len(items))
    results = [{"id": name, **answer, "warnings": []} for (name, _), answer in zip(items, fast)]
    return dump_json({"run": loaded.name, "results": results, "failed": 0})


class State:
    def __init__(self, options: Options, runs: Runs):
        self.options, self.runs, self.metrics, self.token = options, runs, Metrics(), options.token()
        self.batcher = Batcher(self.metrics)
        self.grouper = Grouper(self.metrics)


def _state(request: Request) -> State:
    return request.app.state.serve


async def health(request: Request) -> Response:
    s = _state(request)
    ready = len(s.runs.loaded) == len(s.runs.paths)
    body = {"status": "ok" if ready else "loading", "runs": sorted(s.runs.loaded), "keras": "keras" in sys.modules}
    return _json(body, 200 if ready else 503)


async def list_runs(request: Request) -> Response:
    return _json({"runs": [r.describe() for r in _state(request).runs.loaded.values()]})


def _json(doc, status: int = 200) -> Response:
    """``doc`` as JSON; a NaN or infinity (a forecast the model could not make) as null, the CLI's convention."""
    return Response(dump_json(doc), status, media_type="application/json")


def dump_json(doc) -> bytes:
    """``doc`` as JSON bytes, NaN and infinity as null: orjson when installed (it writes them as null), else the
    stdlib; numpy floats are floats to both (no copy of a big answer); anything else through ``_plain``."""
    if orjson is not None:
        try:
            return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:
            pass
    try:
        return json.dumps(doc, allow_nan=False).encode()
    except (ValueError, TypeError):
        return json.dumps(_plain(doc)).encode()


async def forecast_endpoint(request: Request) -> Response:
    s = _state(request)
    loaded = s.runs.get(request.path_params["name"])
    body = await read_body(request, s.options.max_bytes)
    rows, where, line_of = request_rows(body, request.headers.get("content-type", ""), s.options.max_rows)
    fast = await answer_fast(s, loaded, rows) if isinstance(rows, list) and loaded.plan else None
    if fast is not None:  # arrays, in the event loop (usually answered by fast_lane before Starlette)
        return Response(fast, media_type="application/json")
    table = records_table(rows) if isinstance(rows, list) else rows
    result, warnings = await s.batcher.forecast(loaded, table, where, line_of)
    s.metrics.forecasts.labels(loaded.name).inc(result["series"].nunique() if "series" in result else 1)
    return _json({"run": loaded.name, **forecast_records(result), "warnings": warnings})


def _batch_items(body: bytes, max_rows: int, doc=None) -> list[tuple[str, list[dict] | Problem]]:
    """Each item's id (as text) and its checked records or its problem; ``doc``: the body already read."""
    doc = parse_json(body) if doc is None else doc
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad('the JSON has no "items" list', 'send {"items": [{"id": "a", "data": [{...}, ...]}, ...]}')
    check_rows(sum(len(i.get("data") or []) if isinstance(i, dict) else 0 for i in items), max_rows)
    out = []
    for k, item in enumerate(items):
        name = str(item.get("id", k)) if isinstance(item, dict) else str(k)
        try:
            rows = item.get("data") if isinstance(item, dict) else None
            out.append((name, check_records(rows, f"items[{k}].data", max_rows)))
        except Problem as p:
            out.append((name, p))
    return out


def forecast_many(loaded: LoadedRun, items: list) -> tuple[list[dict], int]:
    """Each item's forecast, or its problem document: one bad item does not fail the others; and how many items
    the fast path answered."""
    if not any(isinstance(t, Problem) for _, t in items):
        fast = forecast_fast(loaded, [t for _, t in items], "items")
        if fast is not None:
            return [{"id": n, **answer, "warnings": []} for (n, _), answer in zip(items, fast)], len(items)
        tables = [records_table(t) for _, t in items]
        stacked = forecast_stacked(loaded, tables)
        if stacked is not None:
            parts, notes = stacked
            return [{"id": n, **forecast_records(t), "warnings": notes} for (n, _), t in zip(items, parts)], 0
    results, n_fast = [], 0
    for k, (name, rows) in enumerate(items):
        try:
            if isinstance(rows, Problem):
                raise rows
            fast = forecast_fast(loaded, [rows])
            if fast is not None:
                results.append({"id": name, **fast[0], "warnings": []})
                n_fast += 1
                continue
            result, warnings = forecast(loaded, records_table(rows), f"items[{k}].data")
            results.append({"id": name, **forecast_records(result), "warnings": warnings})
        except RnnForecastError as e:
            results.append({"id": name, "problem": Problem.of(e).document()})
        except Problem as p:
            results.append({"id": name, "problem": p.document()})
    return results, n_fast


async def batch_endpoint(request: Request) -> Response:
    s = _state(request)
    loaded = s.runs.get(request.path_params["name"])
    body = await read_body(request, s.options.max_bytes)
    items = _batch_items(body, s.options.max_rows)
    results, n_fast = await run_in_threadpool(forecast_many, loaded, items)
    s.metrics.forecasts.labels(loaded.name).inc(sum("forecast" in r for r in results))
    s.metrics.fast.labels(loaded.name).inc(n_fast)
    failed = sum("problem" in r for r in results)
    return _json({"run": loaded.name, "results": results, "failed": failed})


async def reload_endpoint(request: Request) -> Response:
    s = _state(request)
    name = request.path_params["name"]
    s.runs.get(name)
    body = await read_body(request, s.options.max_bytes)
    doc = parse_json(body) if body.strip() else {}
    path = doc.get("path") if isinstance(doc, dict) else None
    if path is not None and not isinstance(path, str):
        raise _bad('"path" must be a string: a run directory on the server', 'send {"path": "runs/<run>"} or no body')
    try:
        new = await run_in_threadpool(s.runs.reload, name, path)
    except RnnForecastError as e:
        s.metrics.reloads.labels(name, "refused").inc()
        p = Problem.of(e, 409)
        p.kind, p.title = "reload-refused", "Reload refused; the loaded run keeps serving"
        raise p from None
    s.metrics.reloads.labels(name, "ok").inc()
    return _json({"reloaded": new.describe()})


async def metrics_endpoint(request: Request) -> Response:
    return Response(_state(request).metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi_endpoint(request: Request) -> Response:
    from .serve_docs import openapi

    return _json(openapi(sorted(_state(request).runs.loaded)))


async def page_endpoint(request: Request) -> Response:
    from .serve_docs import PAGE

    return HTMLResponse(PAGE)


def reload_all(state: State) -> None:
    """SIGHUP: reload every run; one that fails keeps its old version (and is logged)."""
    for name in list(state.runs.paths):
        try:
            state.runs.reload(name)
            state.metrics.reloads.labels(name, "ok").inc()
            log.warning("reloaded %s", name)
        except RnnForecastError as e:
            state.metrics.reloads.labels(name, "refused").inc()
            log.error("reload of %s refused, the old run keeps serving: %s", name, e.one_line())


def create_app(options: Options, runs: Runs | None = None) -> Starlette:
    """The app for ``options``; ``runs`` already loaded, or loaded here."""
    if runs is None:
        runs = Runs(options.runs)
        runs.load_all()
    state = State(options, runs)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        hup = threading.current_thread() is threading.main_thread()
        if hup:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reload_all, state))
        yield
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)

    routes = [
        Route("/", page_endpoint),
        Route("/health", health),
        Route("/metrics", metrics_endpoint),
        Route("/openapi.json", openapi_endpoint),
        Route("/v1/runs", list_runs),
        Route("/v1/runs/{name}/forecast", forecast_endpoint, methods=["POST"]),
        Route("/v1/runs/{name}/forecast/batch", batch_endpoint, methods=["POST"]),
        Route("/v1/runs/{name}/reload", reload_endpoint, methods=["POST"]),
    ]
    handlers = {Problem: _on_problem, RnnForecastError: _on_library_error, HTTPException: _on_http, Exception: _on_bug}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.serve = state
    app.add_middleware(Observe, state=state)
    return app


def app_from_env() -> Starlette:
    """The uvicorn factory of each ``--workers`` process: the options come in ``RNNFORECAST_SERVE``."""
    _log_setup()
    app = create_app(Options(**json.loads(os.environ[ENV])))
    freeze_loaded()
    return app


def _log_setup() -> None:
    if not access.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(h)
        access.setLevel(logging.INFO)
        access.propagate = False


def check_address(host: str, port: int) -> None:
    """Refuse, before the runs load, an address this process cannot listen on (in use, not this machine's)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(infos[0][4])
    except OSError as e:
        raise RnnForecastError(
            f"cannot listen on {host}:{port} ({e.strerror or e})",
            where="--host/--port",
            fix="stop the program that holds the port or pass another --port; --host must be an address of this machine",
        ) from None


def serve(options: Options, host: str, port: int, workers: int = 1) -> None:
    """Load every run (errors name the run), then answer on ``host:port`` until SIGTERM or Ctrl-C."""
    import tempfile

    import uvicorn

    if options.token_env and not options.token():
        raise RunError(
            f"--token-env {options.token_env}: the variable is not set or empty",
            where="--token-env",
            fix=f"export {options.token_env}=<a long random token> before starting",
        )
    check_address(host, port)
    runs = Runs(options.runs)
    runs.load_all()  # before listening: a damaged run is one clean error line
    _log_setup()
    common = dict(host=host, port=port, access_log=False, timeout_graceful_shutdown=GRACE_SECONDS, log_level="info")
    if workers == 1:
        app = create_app(options, runs)
        freeze_loaded()
        uvicorn.run(app, **common)
        return
    with tempfile.TemporaryDirectory(prefix="rnnforecast-metrics-") as d:
        os.environ.update({ENV: json.dumps(asdict(options)), "PROMETHEUS_MULTIPROC_DIR": d})
        uvicorn.run("rnnforecast.serve:app_from_env", factory=True, workers=workers, **common)

"""A property test driven by the server's own /openapi.json (schemathesis' idea, without the dependency): for every
operation it documents, requests built from its parameter and body schemas (plus realistic rows and near misses)
get a status the document lists, never a 5xx, and a problem document for every 4xx."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve_fast import weather_records

TOKEN = "openapi-fuzz-token"


@pytest.fixture(scope="module")
def server(weather_run, tmp_path_factory):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("openapi") / "server.log"
    cmd = [sys.executable, "-m", "rnnforecast", "serve", str(weather_run), "--port", str(port), "--token-env", "T"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "T": TOKEN})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    try:
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def from_schema(schema: dict, doc: dict, depth: int = 0) -> st.SearchStrategy:
    """Values of a JSON schema (the subset /openapi.json uses: $ref, type or types, enum, object, array)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return from_schema(doc["components"]["schemas"][name], doc, depth)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type", ["null", "boolean", "number", "string"])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return st.one_of([_of_type(k, schema, doc, depth) for k in kinds])


def _of_type(kind: str, schema: dict, doc: dict, depth: int) -> st.SearchStrategy:
    if kind == "object":
        props = {k: from_schema(v, doc, depth + 1) for k, v in schema.get("properties", {}).items()}
        required = [k for k in schema.get("required", []) if k in props]
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(
            {k: props[k] for k in required}, optional={k: v for k, v in props.items() if k not in required}
        )
        if isinstance(extra, dict) and depth < 4:
            more = st.dictionaries(
                st.sampled_from(["date", "temp_max", "wind", "weather", "x"]), from_schema(extra, doc)
            )
            return st.builds(lambda a, b: {**b, **a}, base, more)
        return base
    if kind == "array":
        items = from_schema(schema.get("items", {}), doc, depth + 1) if depth < 4 else st.none()
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=4)
    return {
        "string": st.text(max_size=12),
        "number": st.floats(allow_nan=False, allow_infinity=False, width=64),
        "integer": st.integers(-(2**40), 2**40),
        "boolean": st.booleans(),
        "null": st.none(),
    }[kind]


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_documented_operation_answers_a_documented_status(server):
    doc = server.get("/openapi.json").json()
    ops = operations(doc)
    assert {(p, m) for p, m, _ in ops} >= {
        ("/v1/runs/{name}/forecast", "post"),
        ("/v1/runs/{name}/forecast/batch", "post"),
        ("/health", "get"),
    }
    good = weather_records(20)

    def request(op_index: int):
        path, method, op = ops[op_index]
        params = {
            p["name"]: st.one_of(from_schema(p["schema"], doc), st.text("abc-_.%", min_size=1, max_size=8))
            for p in op.get("parameters", [])
            if p["in"] == "path"
        }
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        body_st = st.none() if body is None else from_schema(body, doc)
        if "forecast" in path:  # rows the schema allows and the run can read, and near misses of them
            near = st.builds(lambda i, v: [dict(r, temp_max=v) if n == i else r for n, r in enumerate(good)],
                             st.integers(0, len(good) - 1), from_schema({"type": ["number", "string", "null"]}, doc))  # fmt: skip
            rows = st.one_of(st.just(good), near)
            wrap = (lambda d: {"items": [{"data": d}]}) if path.endswith("batch") else (lambda d: {"data": d})
            body_st = st.one_of(body_st, st.builds(wrap, rows))
        return st.tuples(st.just(path), st.just(method), st.just(op), st.fixed_dictionaries(params), body_st)

    seen = []

    @settings(max_examples=int(os.environ.get("SERVE_FUZZ_EXAMPLES", "50")), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.integers(0, len(ops) - 1).flatmap(request))
    def check(case):
        path, method, op, params, body = case
        if path.endswith("/reload") and isinstance(body, dict) and "path" in body:
            body = {"path": "/nonexistent/" + str(body["path"])[:20]}  # never a directory of this machine's
        url = path
        for k, v in params.items():
            url = url.replace("{" + k + "}", httpx.URL("/" + str(v)).raw_path.decode()[1:] or "x")
        content = None if body is None else json.dumps(body).encode()
        r = server.request(method.upper(), url, content=content, headers={"Content-Type": "application/json"})
        seen.append((path, r.status_code))
        assert r.status_code < 500, r.text
        allowed = set(op["responses"]) | {"404", "405"}  # an unknown run name, or a route it does not match
        assert str(r.status_code) in allowed, (method, url, r.status_code, r.text[:300])
        if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/problem+json"):
            problem = r.json()
            assert problem["status"] == r.status_code and "Traceback" not in r.text

    check()
    statuses = {s for _, s in seen}
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)  # both sides were reached
    assert any(p.endswith("/forecast") and s == 200 for p, s in seen)

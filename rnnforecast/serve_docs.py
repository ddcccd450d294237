"""What ``rnnforecast serve`` shows about itself: the OpenAPI 3 document and the page at ``/`` (no external assets)."""

from __future__ import annotations

from . import __version__

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_RECORDS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}},
    "description": "Rows with the run's columns (GET /v1/runs), the time column included; the last row ends the history.",
}


def _problems(*codes: int) -> dict:
    return {
        str(c): {"description": "problem document", "content": {"application/problem+json": {"schema": _PROBLEM}}}
        for c in codes
    }


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SECURED = [{"bearer": []}]  # the bearer token, when serve has --token-env


def _post(summary: str, name: dict, schema: dict, responses: dict, *, required: bool = True, csv: bool = False) -> dict:
    """A secured POST on one run (the path parameter ``name``) whose body is ``schema`` as JSON (or CSV text)."""
    content = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "security": SECURED,
            "parameters": [name],
            "requestBody": {"required": required, "content": content},
            "responses": responses,
        }
    }


def openapi(runs: list[str]) -> dict:
    """The OpenAPI 3.1 document of the server; ``runs`` the names it serves."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": runs or ["none"]}}
    forecast = {
        "type": "object",
        "required": ["run", "columns", "forecast", "warnings"],
        "properties": {
            "run": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "forecast": {
                "type": "array",
                "items": {"type": "object"},
                "description": "timestamp, [series], step, quantile, one column per target and per target and quantile "
                "(temp_max_p10): the records `rnnforecast predict RUN --data FILE --json` prints",
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "rnnforecast serve", "version": __version__, "description": "Forecasts from trained runs."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "message"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "message": {"type": "string", "description": "the CLI's one-line error, with its Fix"},
                        "where": {"type": ["string", "null"]},
                        "fix": {"type": ["string", "null"]},
                    },
                }
            },
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "200 when every run is loaded",
                    "responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"}, "loading")},
                }
            },
            "/v1/runs": {
                "get": {
                    "summary": "The runs served",
                    "security": SECURED,
                    "responses": {"200": _json({"type": "object"}), **_problems(401)},
                }
            },
            "/v1/runs/{name}/forecast": _post(
                "Forecast the horizon steps after the last row",
                name,
                {"type": "object", "required": ["data"], "properties": {"data": _RECORDS}},
                {"200": _json(forecast), **_problems(400, 401, 404, 413, 415, 422)},
                csv=True,
            ),
            "/v1/runs/{name}/forecast/batch": _post(
                "Many series or windows in one request; each item answers with its forecast or its problem",
                name,
                {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["data"],
                                "properties": {"id": {"type": "string"}, "data": _RECORDS},
                            },
                        }
                    },
                },
                {"200": _json({"type": "object"}), **_problems(400, 401, 404, 413, 422)},
            ),
            "/v1/runs/{name}/reload": _post(
                'Load the run directory again (or {"path": another}); refused (409) when it is damaged',
                name,
                {"type": "object", "properties": {"path": {"type": "string"}}},
                {"200": _json({"type": "object"}), **_problems(400, 401, 404, 409)},
                required=False,
            ),
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": SECURED,
                    "responses": {"200": {"description": "text exposition"}, **_problems(401)},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": SECURED,
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/": {
                "get": {
                    "summary": "A page: pick a run, paste rows, see the fan chart",
                    "responses": {"200": {"description": "HTML"}},
                }
            },
        },
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rnnforecast serve</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;max-width:60em;color:#222}
textarea{width:100%;height:12em;font:12px monospace}
#err{color:#b00020;white-space:pre-wrap}
svg{border:1px solid #ddd;background:#fff}
</style></head><body>
<h1>rnnforecast serve</h1>
<p><label>Run <select id="run"></select></label>
<label>Token <input id="token" type="password" placeholder="only with --token-env"></label>
<button id="load">load runs</button></p>
<p id="about"></p>
<p><label>Recent rows (CSV with a header, the time column included)<br>
<textarea id="csv"></textarea></label><br>
<input id="file" type="file" accept=".csv,text/csv"> <button id="go">Forecast</button></p>
<p id="err"></p>
<svg id="chart" width="800" height="320" role="img" aria-label="forecast fan chart"></svg>
<pre id="out"></pre>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let runs = [];
function headers(extra) {
  const h = Object.assign({}, extra || {});
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
}
async function loadRuns() {
  $("err").textContent = "";
  const r = await fetch("/v1/runs", {headers: headers()});
  const doc = await r.json();
  if (!r.ok) { $("err").textContent = doc.message || doc.detail; return; }
  runs = doc.runs;
  $("run").innerHTML = "";
  for (const run of runs) { const o = document.createElement("option"); o.value = o.textContent = run.name; $("run").appendChild(o); }
  about();
}
function about() {
  const run = runs.find((r) => r.name === $("run").value);
  $("about").textContent = run ? `targets ${run.targets.join(", ")}; horizon ${run.horizon}; ` +
    `needs ${run.input_length} rows of ${run.columns.join(", ")}; every ${run.frequency}` : "";
}
function parseCsv(text) {
  const lines = text.trim().split(/\\r?\\n/);
  const head = lines[0].split(",");
  return lines.slice(1).map((l) => { const v = l.split(","); const o = {}; head.forEach((h, i) => o[h] = v[i]); return o; });
}
function draw(history, forecast, run) {
  const svg = $("chart"), W = 800, H = 320, P = 40, t = run.targets[0];
  const hist = history.slice(-5 * run.input_length).map((r) => ({x: Date.parse(r[run.time_column]), y: parseFloat(r[t])}));
  const fc = forecast.filter((r) => !("series" in r) || r.series === forecast[0].series)
    .map((r) => ({x: Date.parse(r.timestamp), y: r[t], q: Object.keys(r).filter((k) => k.startsWith(t + "_p")).map((k) => r[k])}));
  const xs = hist.concat(fc).map((p) => p.x);
  const ys = hist.map((p) => p.y).concat(fc.flatMap((p) => [p.y].concat(p.q))).filter((y) => Number.isFinite(y));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const X = (x) => P + (W - 2 * P) * (x - x0) / ((x1 - x0) || 1), Y = (y) => H - P - (H - 2 * P) * (y - y0) / ((y1 - y0) || 1);
  const line = (pts, color) => `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => X(p.x) + "," + Y(p.y)).join(" ")}"/>`;
  let bands = "";
  const nq = fc.length ? fc[0].q.length : 0;
  for (let k = 0; k < Math.floor(nq / 2); k++) {
    const lo = fc.map((p) => X(p.x) + "," + Y(p.q[k])), hi = fc.map((p) => X(p.x) + "," + Y(p.q[nq - 1 - k])).reverse();
    bands += `<polygon fill="#1f77b4" fill-opacity="0.18" stroke="none" points="${lo.concat(hi).join(" ")}"/>`;
  }
  // numbers only in markup; the column name (the run's, any text) goes in as text, never as HTML
  svg.innerHTML = `<text x="${P}" y="20"></text>` +
    `<text x="4" y="${Y(y1) + 4}" font-size="11">${y1.toFixed(1)}</text><text x="4" y="${Y(y0)}" font-size="11">${y0.toFixed(1)}</text>` +
    bands + line(hist, "#444") + line(hist.slice(-1).concat(fc), "#1f77b4");
  svg.querySelector("text").textContent = `${t}: history and forecast`;
}
async function go() {
  $("err").textContent = ""; $("out").textContent = "";
  const run = runs.find((r) => r.name === $("run").value);
  if (!run) { $("err").textContent = "load the runs first"; return; }
  const text = $("csv").value;
  const r = await fetch(`/v1/runs/${encodeURIComponent(run.name)}/forecast`, {method: "POST", headers: headers({"Content-Type": "text/csv"}), body: text});
  const doc = await r.json();
  if (!r.ok) { $("err").textContent = doc.message || doc.detail; return; }
  draw(parseCsv(text), doc.forecast, run);
  $("out").textContent = JSON.stringify(doc.forecast, null, 1);
  document.body.dataset.done = "1";
}
$("load").onclick = loadRuns; $("run").onchange = about; $("go").onclick = go;
$("file").onchange = async () => { const f = $("file").files[0]; if (f) $("csv").value = await f.text(); };
// a link to /#csv=<rows, URL-encoded> (optionally ?run=NAME) forecasts those rows as soon as the runs are listed
loadRuns().then(() => {
  const run = new URLSearchParams(location.search).get("run");
  if (run) $("run").value = run;
  if (location.hash.startsWith("#csv=")) { $("csv").value = decodeURIComponent(location.hash.slice(5)); go(); }
});
</script></body></html>
"""

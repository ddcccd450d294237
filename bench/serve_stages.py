"""Where a forecast request's time goes in the server, stage by stage: ``python -m bench.serve_stages RUN [MANY]``.

Calls the server's own functions (rnnforecast/serve.py, fastframe.py, forecaster.py) in this process, without HTTP,
on the bodies ``bench.serve`` sends: one series of 60 rows, a batch of 32 windows of 60 rows, a batch of 128 windows
of ``input_length`` rows, and (``MANY``, a run trained by ``bench.serve.train_many``, its ``many.csv`` beside it) one
request of every series of a ``series_id`` run, which takes the full path (``load_frame``). Each figure is CPU time
(``time.process_time``: what other processes on a shared machine take is not counted), the best of 5 means over
repeated calls, in microseconds per request. Prints JSON; not part of the test suite.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.common import load_average
from bench.serve import ROWS, many_body, recent_rows, records


def best(fn, n: int) -> float:
    """CPU microseconds per call: the best of 5 means of ``n`` calls."""
    fn()
    means = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        means.append((time.process_time() - t0) / n * 1e6)
    return round(min(means), 1)


def fast_stages(loaded, body: bytes, batch: bool, n: int) -> dict:
    """A clean JSON request on the fast path: read, frame, model, answer rows, JSON out."""
    from rnnforecast import serve as S
    from rnnforecast.forecaster import forecast_rows

    f = loaded.forecaster
    lane = getattr(S, "parse_lane", None)  # the fast lane's reading (since issue 25's third round), else parse_json
    if batch and lane is not None:
        read = lambda: S._batch_items(body, S.MAX_ROWS, lane(body))  # noqa: E731
    elif batch:
        read = lambda: S._batch_items(body, S.MAX_ROWS)  # noqa: E731
    else:
        read = lambda: S.check_records((lane or S.parse_json)(body)["data"], "data", S.MAX_ROWS)  # noqa: E731
    items = [rows for _, rows in read()] if batch else [read()]
    data = loaded.plan.data(items, "items")
    inputs = data.forecast_inputs(f.schema.frequency)[1]
    answers = S.forecast_fast(loaded, items, "items")
    doc = {"run": loaded.name, "results": answers, "failed": 0}
    out = {
        "read_json": best(read, n),
        "frame_rows (fastframe)": best(lambda: loaded.plan.data(items, "items"), n),
        "model": best(lambda: f.model.predict_on_batch(inputs), n),
        "forecast_rows (model included)": best(
            lambda: forecast_rows(f.model, data, f.schema.frequency, f.calibration, iso=True), n
        ),
        "forecast_fast (frame + forecast_rows)": best(lambda: S.forecast_fast(loaded, items, "items"), n),
        "write_json": best(lambda: S.dump_json(doc), n),
    }
    out["total (read + forecast_fast + write)"] = round(
        out["read_json"] + out["forecast_fast (frame + forecast_rows)"] + out["write_json"], 1
    )
    return out


def full_stages(loaded, body: bytes, n: int) -> dict:
    """A request of a run the fast path does not cover (``series_id``): rows to a table, load_frame, forecast."""
    from rnnforecast import serve as S
    from rnnforecast.data import load_frame

    run = loaded.run

    def read():
        rows, where, line_of = S.request_rows(body, "application/json", S.MAX_ROWS)
        return S.records_table(rows), where, line_of

    table, where, line_of = read()
    categories = run.schema.get("categories")
    result, warnings = S.forecast(loaded, table.copy(), where, line_of)
    doc = {"run": loaded.name, **S.forecast_records(result), "warnings": warnings}
    out = {
        "read_json (to a DataFrame)": best(read, n),
        "load_frame": best(lambda: load_frame(run.config.data, where, categories, table=table.copy()), n),
        "forecast (load_frame, build, model, table)": best(lambda: S.forecast(loaded, table.copy(), where), n),
        "write_json": best(lambda: S.dump_json({**doc, "forecast": S.forecast_records(result)["forecast"]}), n),
    }
    out["total (read + forecast + write)"] = round(
        out["read_json (to a DataFrame)"] + out["forecast (load_frame, build, model, table)"] + out["write_json"], 1
    )
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m bench.serve_stages RUN [MANY_SERIES_RUN]")
    from rnnforecast import serve as S

    run = Path(argv[0])
    loaded = S.load_run(run)
    length = json.loads((run / "schema.json").read_text())["input_length"]
    single = [{"data": records(*recent_rows(run, ROWS, k))} for k in range(16)]
    out = {"load_before": load_average()}
    out["single_60_rows"] = fast_stages(loaded, json.dumps(single[0]).encode(), False, 400)
    batch = json.dumps({"items": single * 2}).encode()
    out["batch_32x60"] = fast_stages(loaded, batch, True, 40)
    short = json.dumps({"items": [{"data": records(*recent_rows(run, length, k))} for k in range(128)]}).encode()
    out[f"batch_128x{length}"] = fast_stages(loaded, short, True, 40)
    if len(argv) > 1:
        many = Path(argv[1])
        body, n_series = many_body(many, ROWS)
        out[f"many_{n_series}_series_x{ROWS}"] = full_stages(S.load_run(many), body, 5)
    out["load_after"] = load_average()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

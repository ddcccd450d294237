"""Load the real ``rnnforecast serve`` on 127.0.0.1: ``python -m bench.serve [--run DIR] [--seconds S]``.

Trains the demo config (configs/weather_gru.yaml, a few epochs) unless ``--run`` names a run, starts the server in a
subprocess and measures, with two load generators in turn (``--client``), each a real HTTP/1.1 keep-alive client
that reads every response whole and counts any status but 200 as failed: ``threads`` (``http.client`` connections,
one thread each, as before; its figures keep the old keys) and ``asyncio`` (``bench/loadgen.py``: every connection
in one uvloop event loop, requests encoded once, much less CPU per request on the cores the server shares; its
figures under ``"asyncio"``):

- one-series forecasts of 60 recent rows: p50/p99 latency and requests/s with ``--connections`` (8) connections,
  and with one connection (latency without queueing);
- the batch endpoint: series forecast per second (``--batch`` items of 60 rows per request, and ``--batch-short``
  items of ``input_length`` rows, the least a forecast reads);
- the server's CPU time per request (``server_cpu_ms``, psutil) beside each;
- memory: the server's RSS with one run, and what a second loaded run adds (psutil);
- beside them, ``rnnforecast predict RUN --data FILE --json`` from a fresh process (median of 3).

Prints the figures and writes ``bench/results/serve-<date>T<HHMM>-<host>.json`` (UTC). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, load_average, machine, series_config, worker_env, write_many_series

ROWS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_demo(directory: Path) -> Path:
    run = directory / "weather_gru"
    cmd = [sys.executable, "-m", "rnnforecast", "train", str(ROOT / "configs/weather_gru.yaml"), "--run-dir", str(run)]
    subprocess.run([*cmd, "--set", "training.epochs=3", "--quiet"], check=True, env=worker_env(), capture_output=True)
    return run


def train_many(directory: Path, n_series: int) -> Path:
    """A run over ``n_series`` hourly series (long format, column ``id``): one request forecasts many series."""
    import yaml

    csv = write_many_series(directory / "many.csv", n_series, 200)
    cfg = series_config(csv, "many", data={"series_id": "id"}, training={"epochs": 1})
    (directory / "many.yaml").write_text(yaml.safe_dump(cfg))
    run = directory / "many"
    cmd = [sys.executable, "-m", "rnnforecast", "train", str(directory / "many.yaml"), "--run-dir", str(run), "--quiet"]
    subprocess.run(cmd, check=True, env=worker_env(), capture_output=True)
    return run


def many_body(run: Path, rows: int) -> tuple[bytes, int]:
    """The last ``rows`` rows of every series of the many-series run, as one forecast request."""
    import pandas as pd

    df = pd.read_csv(run.parent / "many.csv").groupby("id").tail(rows)
    return json.dumps({"data": df.to_dict(orient="records")}).encode(), df["id"].nunique()


def start(runs: list[Path], workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "rnnforecast",
        "serve",
        *map(str, runs),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, env=worker_env())
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def recent_rows(run: Path, n: int = ROWS, offset: int = 0) -> tuple[list[str], list[list[str]]]:
    import csv

    with (ROOT / "data/weather.csv").open() as fh:
        rows = list(csv.reader(fh))
    end = len(rows) - offset
    return rows[0], rows[end - n : end]


def records(header: list[str], rows: list[list[str]]) -> list[dict]:
    def value(v: str):
        try:
            return float(v)
        except ValueError:
            return v

    return [{h: value(v) for h, v in zip(header, r)} for r in rows]


def load(port: int, path: str, bodies: list[bytes], connections: int, seconds: float) -> dict:
    """``connections`` threads, each on one keep-alive connection, posting the bodies in turn for ``seconds``."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine, i = [], k
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                c.request("POST", path, body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):  # a timeout: counted, and a new connection
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    failures[0] += 1
        c.close()
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "requests": len(latencies),
        "failed": failures[0],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


def measured(pid: int, client: str, port: int, path: str, bodies: list[bytes], connections: int, seconds: float):
    """``load`` with the ``client`` generator (threads or asyncio), and the server's CPU seconds per request."""
    import psutil

    from bench import loadgen

    server = psutil.Process(pid)
    processes = [server, *server.children(recursive=True)]  # with --workers N, the workers are its children

    def cpu() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    before = cpu()
    if client == "asyncio":
        out = loadgen.load("127.0.0.1", port, path, bodies, connections, seconds)
    else:
        out = load(port, path, bodies, connections, seconds)
    out["server_cpu_ms"] = round((cpu() - before) / max(out["requests"], 1) * 1000, 3)
    return out


def commit() -> str | None:
    """The checked-out commit measured (``+`` when the work tree has changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    except OSError:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def rss_mib(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20


def predict_fresh(run: Path, data: Path) -> list[float]:
    out = []
    cmd = [sys.executable, "-m", "rnnforecast", "predict", str(run), "--data", str(data), "--json"]
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=worker_env())
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a run directory (default: train the demo config for 3 epochs)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of load per measurement")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="items (windows of 60 rows) per batch request")
    ap.add_argument("--batch-short", type=int, default=128, help="items of input_length rows per batch request")
    ap.add_argument("--series", type=int, default=100, help="series of the many-series run")
    ap.add_argument(
        "--client",
        choices=["both", "threads", "asyncio"],
        default="both",
        help="load generator: http.client in threads (the old keys), asyncio/uvloop (under 'asyncio'), or both",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        run = args.run or train_demo(tmp)
        result = {"run": str(run), "rows_per_request": ROWS, "load_before": load_average(), "machine": machine()}
        result["commit"] = commit()
        header, rows = recent_rows(run)
        data = tmp / "recent.csv"
        data.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
        single = [json.dumps({"data": records(*recent_rows(run, ROWS, k))}).encode() for k in range(16)]
        batch = [json.dumps({"items": [{"data": json.loads(b)["data"]} for b in single] * (args.batch // 16)}).encode()]
        n_items = len(json.loads(batch[0])["items"])
        length = json.loads((run / "schema.json").read_text())["input_length"]
        short = [{"data": records(*recent_rows(run, length, k))} for k in range(args.batch_short)]
        batch_short = [json.dumps({"items": short}).encode()]

        second = tmp / "second" / (run.name + "-copy")
        shutil.copytree(run, second)
        many = train_many(tmp, args.series)
        many_request, n_series = many_body(many, ROWS)
        proc, port = start([run], args.workers, tmp / "server.log")
        try:
            result["rss_one_run_mib"] = round(rss_mib(proc.pid), 1)  # before any request
        finally:
            stop(proc)
        proc, port = start([run, second, many], args.workers, tmp / "server2.log")
        clients = ["threads", "asyncio"] if args.client == "both" else [args.client]
        try:
            result["rss_two_runs_mib"] = round(rss_mib(proc.pid), 1)
            path = f"/v1/runs/{run.name}/forecast"
            load(port, path, single, args.connections, 2.0)  # warm-up
            for client in clients:
                out = result if client == "threads" else result.setdefault("asyncio", {})

                def measure(path, bodies, connections, client=client):
                    return measured(proc.pid, client, port, path, bodies, connections, args.seconds)

                out["single"] = measure(path, single, args.connections)
                out["single_one_connection"] = measure(path, single, 1)  # latency without a queue
                b = measure(path + "/batch", batch, 2)  # 2 connections: a request is many forecasts
                b["items_per_request"] = n_items
                b["series_per_s"] = round(b["requests_per_s"] * n_items, 1)
                out["batch"] = b
                b = measure(path + "/batch", batch_short, 2)
                b["items_per_request"], b["rows_per_item"] = len(short), length
                b["series_per_s"] = round(b["requests_per_s"] * len(short), 1)
                out["batch_short"] = b
                m = measure(f"/v1/runs/{many.name}/forecast", [many_request], 2)
                m["series_per_request"] = n_series
                m["series_per_s"] = round(m["requests_per_s"] * n_series, 1)
                out["many_series"] = m
        finally:
            stop(proc)
        result["per_run_mib"] = round(result["rss_two_runs_mib"] - result["rss_one_run_mib"], 1)
        fresh = predict_fresh(run, data)
        result["predict_fresh_process_s"] = round(statistics.median(fresh), 3)
        result["load_after"] = load_average()
    result["clients"] = {
        "threads": "http.client, one keep-alive connection per thread, in the bench process (the old keys)",
        "asyncio": "bench/loadgen.py: keep-alive connections as asyncio protocols on uvloop, one event loop in the "
        "bench process, requests encoded once; status 200 and the whole body by Content-Length checked",
    }
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M")  # one file per run, none overwritten
    out = ROOT / "bench" / "results" / f"serve-{stamp}-{socket.gethostname()}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for client in clients:
        report(result if client == "threads" else result["asyncio"], client, args)
    print(
        f"memory: {result['rss_one_run_mib']} MiB with one run, +{result['per_run_mib']} MiB for the copy and the many-series run"
    )
    print(f"rnnforecast predict from a fresh process: {result['predict_fresh_process_s']} s")
    print(f"load average before {result['load_before']}, after {result['load_after']}; written to {out}")


def report(r: dict, client: str, args) -> None:
    """Print one generator's figures."""
    s, o, b, bs, m = (r[k] for k in ("single", "single_one_connection", "batch", "batch_short", "many_series"))
    print(f"[{client}] one series, {ROWS} rows, {args.connections} connections, {args.workers} worker(s):")
    print(f"  p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, {s['requests_per_s']} requests/s, {s['failed']} failed")
    print(f"  one connection: p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, {o['requests_per_s']} requests/s")
    print(
        f"  batch of {b['items_per_request']}, 2 connections: {b['series_per_s']} series/s "
        f"(p50 {b['p50_ms']} ms per request)"
    )
    print(
        f"  batch of {bs['items_per_request']} x {bs['rows_per_item']} rows, 2 connections: {bs['series_per_s']} "
        f"series/s (p50 {bs['p50_ms']} ms per request)"
    )
    print(
        f"  one request of {m['series_per_request']} series x {ROWS} rows (a run with series_id): "
        f"{m['series_per_s']} series/s (p50 {m['p50_ms']} ms per request)"
    )
    cpu = ", ".join(f"{k} {r[k]['server_cpu_ms']}" for k in ("single", "single_one_connection", "batch", "batch_short"))
    print(f"  server CPU ms per request: {cpu}, many_series {m['server_cpu_ms']}")


if __name__ == "__main__":
    main()

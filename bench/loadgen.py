"""A cheap HTTP/1.1 keep-alive load generator: asyncio protocols on uvloop, requests encoded once.

``bench.serve``'s first client (``http.client`` in threads) spends about as much CPU per request as the server it
measures, on the same 2 cores, and its threads take turns on the GIL. This one runs ``connections`` keep-alive
connections in one event loop (uvloop when installed): each sends a request (bytes built once per body), reads the
response, checks it (status 200, a ``Content-Length`` header, exactly that many body bytes, then the next response
on the same connection) and sends the next request at once. A response that fails a check counts as failed and its
connection is opened again. No pipelining: one request in flight per connection, as with ``http.client``.
"""

from __future__ import annotations

import asyncio
import statistics
import time

HEAD_END = b"\r\n\r\n"
LENGTH = b"\r\ncontent-length:"


def encode(host: str, port: int, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    """One POST request, headers and body, as bytes on the wire."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, read one whole response, check it, send the next, until ``stop_at``."""

    def __init__(self, requests: list[bytes], first: int, stop_at: float, latencies: list, counts: dict, done):
        self.requests, self.i, self.stop_at = requests, first, stop_at
        self.latencies, self.counts, self.done = latencies, counts, done
        self.buffer = bytearray()
        self.need = None  # bytes of the whole response once its head is read
        self.status = 0
        self.t0 = 0.0
        self.waiting = False  # a request sent, its response not yet read whole
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.perf_counter() >= self.stop_at:
            self.transport.close()
            return
        request = self.requests[self.i % len(self.requests)]
        self.i += 1
        self.t0 = time.perf_counter()
        self.waiting = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(HEAD_END)
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                at = head.find(LENGTH)
                if not head.startswith(b"http/1.1 ") or at < 0:  # no Content-Length: a response this client refuses
                    self._fail()
                    return
                value = head[at + len(LENGTH) :].split(b"\r\n", 1)[0].strip()
                if not value.isdigit():
                    self._fail()
                    return
                self.status = int(head[9:12])
                self.need = end + len(HEAD_END) + int(value)
            if len(self.buffer) < self.need:
                return
            del self.buffer[: self.need]
            self.need, self.waiting = None, False
            self.latencies.append(time.perf_counter() - self.t0)
            if self.status != 200:
                self.counts["failed"] += 1
            if self.buffer:  # bytes after a whole response when only one request was sent: the stream is wrong
                self._fail()
                return
            self._send()

    def _fail(self) -> None:
        self.counts["failed"] += 1
        self.counts["broken"] += 1
        self.waiting = False
        self.transport.abort()

    def connection_lost(self, exc) -> None:
        if self.waiting:  # the server closed the connection with a request unanswered
            self.counts["failed"] += 1
            self.waiting = False
        if not self.done.done():
            self.done.set_result(self.i)


async def _run(host: str, port: int, requests: list[bytes], connections: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counts = {"failed": 0, "broken": 0}
    stop_at = time.perf_counter() + seconds

    async def one(k: int) -> None:
        first = k
        while time.perf_counter() < stop_at:  # a broken connection is opened again, on with the next request
            done = loop.create_future()
            await loop.create_connection(
                lambda first=first, done=done: _Connection(requests, first, stop_at, latencies, counts, done),
                host,
                port,
            )
            first = await done

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(connections)))
    return {"latencies": latencies, "seconds": time.perf_counter() - t0, **counts}


def load(host: str, port: int, path: str, bodies: list[bytes], connections: int, seconds: float) -> dict:
    """Post ``bodies`` in turn on ``connections`` keep-alive connections for ``seconds``: the figures of
    ``bench.serve.load`` (requests, failed, seconds, requests/s, p50 and p99 in ms)."""
    requests = [encode(host, port, path, b) for b in bodies]
    try:
        import uvloop

        out = uvloop.run(_run(host, port, requests, connections, seconds))
    except ImportError:  # pragma: no cover - the serve extra installs uvloop
        out = asyncio.run(_run(host, port, requests, connections, seconds))
    latencies = out["latencies"]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99 or [float("nan")] * 99
    return {
        "requests": len(latencies),
        "failed": out["failed"],
        "seconds": round(out["seconds"], 2),
        "requests_per_s": round(len(latencies) / out["seconds"], 1),
        "p50_ms": round(q[49] * 1000, 2),  # NaN when no response was read whole
        "p99_ms": round(q[98] * 1000, 2),
    }

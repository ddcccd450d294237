"""bench/loadgen.py, the cheap load generator of bench.serve: a real HTTP/1.1 keep-alive client that counts every
response it reads whole, and counts as failed any status but 200 and any response cut short.

Checked against a small stdlib HTTP server on 127.0.0.1 that counts what it answers; values and counts only,
never speed."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT

if str(ROOT) not in sys.path:  # bench/ is a folder of scripts at the repository root, not part of the package
    sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    answered: list = []
    bodies: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.bodies.append(body)
        if self.path == "/cut":  # says 100 bytes, sends 10, closes: a response the client must not count whole
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            Handler.answered.append(self.path)
            return
        status = 200 if self.path == "/ok" else 422
        answer = b'{"echo": %d}' % len(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        Handler.answered.append(self.path)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.answered, Handler.bodies = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_answer_is_read_whole_and_counted(server):
    bodies = [b'{"data": [1, 2, 3]}', b'{"data": []}']
    out = loadgen.load("127.0.0.1", server, "/ok", bodies, 3, 0.5)
    assert out["requests"] > 10 and out["failed"] == 0
    assert out["requests"] == len(Handler.answered)  # one counted request per answer the server sent
    assert set(Handler.bodies) == set(bodies)  # both bodies sent, byte for byte
    assert 0 < out["p50_ms"] <= out["p99_ms"]
    assert out["requests_per_s"] == pytest.approx(out["requests"] / out["seconds"], rel=0.01)


def test_a_status_other_than_200_is_a_failure(server):
    out = loadgen.load("127.0.0.1", server, "/bad", [b"{}"], 2, 0.3)
    assert out["requests"] > 0 and out["failed"] == out["requests"] == len(Handler.answered)


def test_a_response_cut_short_is_a_failure_not_a_request(server):
    out = loadgen.load("127.0.0.1", server, "/cut", [b"{}"], 1, 0.3)
    assert out["requests"] == 0  # no response was read whole
    assert out["failed"] == len(Handler.answered) > 0  # each cut one counted failed; a new connection each time


def test_the_request_on_the_wire():
    wire = loadgen.encode("127.0.0.1", 8000, "/v1/runs/r/forecast", b'{"data": []}')
    head, body = wire.split(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /v1/runs/r/forecast HTTP/1.1",
        b"Host: 127.0.0.1:8000",
        b"Content-Type: application/json",
        b"Content-Length: 12",
    ]
    assert body == b'{"data": []}'
    with socket.socket() as s:  # a port nothing listens on: a refused connection raises, it is no figure
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        loadgen.load("127.0.0.1", port, "/ok", [b"{}"], 1, 0.2)

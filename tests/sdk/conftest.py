"""Fixtures of the SDK tests: a real, misbehaving HTTP collector on a loopback port.

``FakeCollector`` speaks the collector's wire protocol (Basic auth, gzip, /v1/batch,
per-index rejects) and keeps what it accepted, deduplicated on ``messageId`` like the
real one. Tests script its misbehaviour: statuses with ``Retry-After``, hanging
(accept and never answer), slowness, dropping connections, being down.
The real collector is used through the lead's ``collector`` fixture when it exists.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import gzip
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from collector.limits import MAX_BATCH_BYTES

WRITE_KEY = "wk_sdk_test"

Behaviour = tuple[Any, ...]


class FakeCollector:
    """A threaded HTTP/1.1 server on 127.0.0.1 that behaves as scripted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}  # accepted, deduplicated on messageId
        self.seen: collections.Counter[str] = collections.Counter()  # accepted, with re-sends
        self.requests: list[dict[str, Any]] = []  # one record per request received
        self.script: collections.deque[Behaviour] = collections.deque()
        self.reject: Callable[[dict[str, Any]], str | None] | None = None
        self.release = threading.Event()  # releases hanging requests
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()
        self.start()

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on the same port."""
        fake = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with fake.lock:
                    fake._conns.add(request)
                super().process_request(request, client_address)

        self._server = Server(("127.0.0.1", self.port), _handler_for(self))
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        """Stop listening and cut every open connection (the collector is down)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self.lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def close(self) -> None:
        """Stop for good and release hanging handlers."""
        self.release.set()
        self.stop()

    def wait_for(self, n: int, timeout: float = 60.0) -> bool:
        """Wait until ``n`` distinct events were accepted (a guard, not a measurement)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events) >= n:
                return True
            time.sleep(0.02)
        return len(self.events) >= n

    def statuses(self) -> list[int]:
        """HTTP statuses answered so far, in order (0 for no answer)."""
        with self.lock:
            return [r["status"] for r in self.requests]


def _handler_for(fake: FakeCollector) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, doc: dict[str, Any],
                    headers: dict[str, str] | None = None) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record: dict[str, Any] = {"path": self.path, "status": 0, "time": time.monotonic(),
                                      "raw_bytes": len(raw),
                                      "encoding": self.headers.get("Content-Encoding"),
                                      "auth": self.headers.get("Authorization")}
            with fake.lock:
                fake.requests.append(record)
                behaviour = fake.script.popleft() if fake.script else ("ok",)
            if behaviour[0] == "hang":
                fake.release.wait(60)
                self.close_connection = True
                return
            if behaviour[0] == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if behaviour[0] == "slow":
                time.sleep(behaviour[1])
            if behaviour[0] == "status":
                status, retry_after = behaviour[1], behaviour[2] if len(behaviour) > 2 else None
                record["status"] = status
                hdrs = {"Retry-After": str(retry_after)} if retry_after is not None else None
                self._answer(status, {"success": False, "error": f"scripted {status}"}, hdrs)
                return
            expected = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
            if record["auth"] != expected:
                record["status"] = 401
                self._answer(401, {"success": False, "error": "bad write key"})
                return
            if record["encoding"] == "gzip":
                raw = gzip.decompress(raw)
            record["body_bytes"] = len(raw)
            if len(raw) > MAX_BATCH_BYTES:
                record["status"] = 413
                self._answer(413, {"success": False, "error": "batch too large"})
                return
            try:
                doc = json.loads(raw)
                batch = doc["batch"]
                assert isinstance(batch, list)
            except (ValueError, KeyError, AssertionError):
                record["status"] = 400
                self._answer(400, {"success": False, "error": "malformed body"})
                return
            record["sentAt"] = doc.get("sentAt")
            record["count"] = len(batch)
            rejected = []
            with fake.lock:
                for i, ev in enumerate(batch):
                    reason = fake.reject(ev) if fake.reject else None
                    if reason:
                        rejected.append({"index": i, "messageId": ev.get("messageId"),
                                         "reason": reason})
                        continue
                    mid = ev["messageId"]
                    fake.seen[mid] += 1
                    fake.events.setdefault(mid, ev)
            record["status"] = 200
            self._answer(200, {"success": True, "accepted": len(batch) - len(rejected),
                               "rejected": rejected})

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeCollector]:
    """A fresh fake collector per test."""
    server = FakeCollector()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def real_collector(request: pytest.FixtureRequest) -> Any:
    """The lead's real collector (tests/conftest.py ``collector``), or skip if absent."""
    try:
        return request.getfixturevalue("collector")
    except pytest.FixtureLookupError:
        pytest.skip("real collector fixture `collector` (tests/conftest.py) is not available")

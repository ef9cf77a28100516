"""Test helpers: a real collector process on a loopback port, and plain-HTTP calls to it."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNING: list[subprocess.Popen[bytes]] = []  # collector processes started and not yet stopped


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic(key: str) -> str:
    """An HTTP Basic header value with the key as user name and an empty password."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@dataclass
class Response:
    """Status, headers and parsed JSON body of one HTTP exchange."""

    status: int
    headers: dict[str, str]
    body: Any


def http(method: str, url: str, body: Any = None, *, key: str | None = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60) -> Response:
    """One HTTP request with urllib; JSON in and out."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and "Content-Type" not in request.headers:
        request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", basic(key))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, head, payload = reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        status, head, payload = exc.code, dict(exc.headers), exc.read()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload
    return Response(status, head, parsed)


@dataclass
class Collector:
    """A `reise serve` process on a loopback port over an embedded chDB directory."""

    data_dir: Path
    write_key: str = "wk_test"
    admin_key: str = "ak_test"
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the collector."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        """The collector's embedded DSN."""
        return f"chdb://{self.data_dir}"

    def env(self) -> dict[str, str]:
        """Environment for the collector and the CLI."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
        env.update(
            REISE_DSN=self.dsn,
            REISE_WRITE_KEYS=f"test={self.write_key},other=wk_other,till=wk_till@pos,site=pk_site@web+email",
            REISE_ADMIN_KEY=self.admin_key,
            REISE_URL=self.url,
            REISE_FLUSH_INTERVAL="0.2",
            REISE_LOG_FORMAT="json",
            # every test client is on loopback: tests that send wrong keys on purpose must not lock the others out
            # (tests/collector/test_guessing.py runs its own collectors with the default limit)
            REISE_AUTH_FAILURES="100000",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> None:
        """Start the process and wait until /readyz answers 200."""
        self.log_path = self.data_dir.parent / f"collector-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector", "serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        RUNNING.append(self.process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if http("GET", self.url + "/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"collector did not become ready: {self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Stop the process (SIGTERM drains; SIGKILL does not) and return its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        RUNNING.remove(self.process)
        self.process = None
        return code

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.stop()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the process logged."""
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def post(self, path: str, body: Any = None, *, key: str | None = None, **kwargs: Any) -> Response:
        """POST to the collector, with the test write key unless another key is given."""
        return http("POST", self.url + path, body, key=self.write_key if key is None else key, **kwargs)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run read-only SQL through the admin query endpoint; rows as dicts."""
        reply = http("POST", self.url + "/v1/query", {"sql": sql, "params": params or {}}, key=self.admin_key)
        if reply.status != 200:
            raise AssertionError(f"query failed ({reply.status}): {reply.body}")
        return [dict(zip(reply.body["columns"], row, strict=True)) for row in reply.body["rows"]]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first value of the first row, or None when there is no row."""
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def wait_settled(self, timeout: float = 60) -> None:
        """Wait until the spool is empty: every accepted event inserted and its identity links resolved."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = http("GET", self.url + "/readyz", timeout=5)
            if ready.status == 200 and ready.body["spool"]["rows"] == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the spool did not drain in {timeout} s: {self.log_tail()}")

    def wait_for(self, sql: str, expected: Any, params: dict[str, Any] | None = None,
                 timeout: float = 30) -> Any:
        """Poll a scalar query until it equals ``expected``; return the last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(sql, params)
            if value == expected:
                return value
            time.sleep(0.1)
        return value

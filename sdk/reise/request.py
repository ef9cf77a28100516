"""The request module: one keep-alive HTTP connection to the collector, gzip bodies.

It only sends and classifies; the retry policy lives in the consumer.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import email.utils
import gzip
import http.client
import logging
import socket
import ssl
import urllib.parse

from reise._version import __version__

__all__ = ["Response", "Transport", "TransportError", "parse_retry_after"]

log = logging.getLogger("reise")

USER_AGENT = f"reise-python/{__version__}"


class TransportError(Exception):
    """A network-level failure: refused, reset, timed out, malformed response."""


class Response:
    """Status, ``Retry-After`` (seconds or None) and body of one collector answer."""

    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, retry_after: float | None, body: bytes) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body


def parse_retry_after(value: str | None) -> float | None:
    """Parse ``Retry-After`` given as seconds or as an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        secs = (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
    if secs != secs:  # NaN
        return None
    return max(0.0, secs)


class _HTTPConnection(http.client.HTTPConnection):
    """HTTP connection with Nagle off: http.client sends headers and body separately,
    which with delayed ACKs costs 40 ms a request."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS connection with Nagle off (see ``_HTTPConnection``)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Transport:
    """Posts batches to ``{host}/v1/batch`` over one persistent connection."""

    def __init__(self, host: str, write_key: str, *, timeout: float, gzip_level: int) -> None:
        url = urllib.parse.urlsplit(host if "://" in host else f"http://{host}")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"host must be an http(s) URL, got {host!r}")
        self.scheme = url.scheme
        self.hostname = url.hostname
        self.port = url.port
        self.path = url.path.rstrip("/") + "/v1/batch"
        self.timeout = timeout
        self.gzip_level = gzip_level
        token = base64.b64encode(f"{write_key}:".encode()).decode()
        self._headers = {
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if gzip_level > 0:
            self._headers["Content-Encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return _HTTPSConnection(self.hostname, self.port, timeout=self.timeout,
                                    context=ssl.create_default_context())
        return _HTTPConnection(self.hostname, self.port, timeout=self.timeout)

    def encode(self, body: bytes) -> bytes:
        """Compress a request body as configured."""
        if self.gzip_level > 0:
            return gzip.compress(body, compresslevel=self.gzip_level, mtime=0)
        return body

    def post(self, body: bytes) -> Response:
        """POST an (already encoded) body; raise ``TransportError`` on network failure.

        A request on a reused connection that the server had closed is retried once at
        once on a fresh connection (the collector deduplicates on ``messageId``).
        """
        reused = self._conn is not None
        try:
            return self._post(body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            self.close()
            if not reused:
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(_describe(exc)) from exc
        try:
            return self._post(body)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(_describe(exc)) from exc

    def _post(self, body: bytes) -> Response:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        headers = dict(self._headers)
        headers["Content-Length"] = str(len(body))
        conn.request("POST", self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.close()
        return Response(resp.status, parse_retry_after(resp.getheader("Retry-After")), data)

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def abandon(self) -> None:
        """Forget an inherited connection without touching its socket (after fork)."""
        self._conn = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out waiting for the collector"
    return f"{type(exc).__name__}: {exc}"

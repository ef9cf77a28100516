"""A lean HTTP/1.1 client for webhooks: POST only, keep-alive connections pooled per destination.

The deliverer sends many small POSTs to few destinations; a general client (aiohttp's) spends most of a
delivery's CPU on features webhooks do not need (cookies, redirects, tracing, multipart, URL objects). This
one writes the request in one ``bytes``, parses the answer's status line and headers once, reads a body of
``Content-Length`` or ``chunked`` (or to the close), and keeps the connection for the next request unless the
answer says ``Connection: close``. Redirects are never followed: a 3xx is an answer like any other.

Safety: a connection is opened only to an address the destination check allowed. ``Pool`` resolves a name
with ``SafeResolver`` (which drops addresses that are not public unless allowed) and connects to the
address it returned, so a name re-pointed after a check gets no connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass

from collector.triggers.destinations import SafeResolver

__all__ = ["HttpError", "Pool", "Reply"]

MAX_HEAD = 64 * 1024  # bytes of status line and headers an answer may have
MAX_BODY = 64 * 1024  # bytes of an answer's body kept (the rest is read and dropped, or the connection closed)
IDLE_SECONDS = 30.0  # an idle connection older than this is closed instead of reused


class HttpError(OSError):
    """The destination did not answer with a well-formed HTTP/1.1 response (an OSError, like a refused connect)."""


@dataclass(frozen=True)
class Reply:
    """An answer: its status, headers (names lower case, the last of a repeated name) and the body's start."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` writes a request and waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: Exception | None = None
        self.reusable = False
        self.answered = False  # some bytes of an answer to the current request arrived
        self._timed_out = False
        self.used_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: connected."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """asyncio: bytes of an answer."""
        self._buffer += data
        self.answered = True
        self._wake()

    def eof_received(self) -> bool:
        """asyncio: the destination closed its side."""
        self._closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: the connection is gone."""
        self._closed = True
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def open(self) -> bool:
        """True while the connection can carry another request."""
        return not self._closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Close the connection."""
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        """The request's time is up: the waiting read raises TimeoutError and the connection is dropped."""
        self._timed_out = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimeoutError("no answer within the timeout"))
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    async def _more(self) -> None:
        """Wait until more bytes arrived; HttpError when the peer closed instead (TimeoutError when expired)."""
        if self._timed_out:
            raise TimeoutError("no answer within the timeout")
        if self._closed:
            raise HttpError(f"connection closed by the destination{f': {self._error}' if self._error else ''}")
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def request(self, data: bytes) -> Reply:
        """Write one request (its bytes) and read the answer; the connection stays reusable if the answer allows."""
        assert self.transport is not None
        self.reusable = self.answered = False
        self._buffer.clear()
        self.transport.write(data)
        while True:
            status, headers, body_at = await self._head()
            if status >= 200 or status < 100:
                break
            del self._buffer[:body_at]  # an interim 1xx answer: the real one follows
        del self._buffer[:body_at]
        keep = headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, complete = await self._chunked()
            keep = keep and complete
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise HttpError("a malformed Content-Length") from None
            if length < 0:
                raise HttpError("a malformed Content-Length")
            if length > MAX_BODY:  # not worth reading: close instead
                body, keep = bytes(self._buffer[:MAX_BODY]), False
            else:
                while len(self._buffer) < length:
                    await self._more()
                body = bytes(self._buffer[:length])
                del self._buffer[:length]
        else:  # delimited by the close: take what comes (up to MAX_BODY), then the connection is done
            keep = False
            while len(self._buffer) < MAX_BODY and not self._closed:
                await self._more()
            body = bytes(self._buffer[:MAX_BODY])
        if self._timed_out:  # expired while a body delimited by the close was read
            raise TimeoutError("no answer within the timeout")
        self.reusable = keep and not self._buffer
        return Reply(status, headers, body)

    async def _head(self) -> tuple[int, dict[str, str], int]:
        """Status, headers and where the body starts, once the whole head arrived."""
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_HEAD:
                raise HttpError("an answer's head over 64 KiB")
            await self._more()
        if end > MAX_HEAD:
            raise HttpError("an answer's head over 64 KiB")
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise HttpError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(f"a malformed header line: {line[:80]!r}")
            headers[name.lower()] = value.strip()
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        return int(code), headers, end + 4

    async def _chunked(self) -> tuple[bytes, bool]:
        """A chunked body (its first MAX_BODY bytes) and whether it was read to its end (trailers skipped).

        Chunks are consumed as they arrive, never held whole: once MAX_BODY bytes are kept the rest is not
        read (the connection is then not reused), so a destination cannot make the collector buffer more.
        """
        body = bytearray()
        while True:
            while (eol := self._buffer.find(b"\r\n")) < 0:
                if len(self._buffer) > 1024:
                    raise HttpError("a malformed chunk size")
                await self._more()
            size_text = bytes(self._buffer[:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError("a malformed chunk size") from None
            if size < 0:
                raise HttpError("a malformed chunk size")
            del self._buffer[:eol + 2]
            if size == 0:
                while (end := self._buffer.find(b"\r\n")) != 0:  # trailers, then the empty line
                    if end > 0:
                        del self._buffer[:end + 2]
                    else:
                        if len(self._buffer) > MAX_HEAD:
                            raise HttpError("trailers over 64 KiB")
                        await self._more()
                del self._buffer[:2]
                return bytes(body), True
            while size:
                if not self._buffer:
                    await self._more()
                take = min(size, len(self._buffer))
                body += self._buffer[:min(take, MAX_BODY - len(body))]
                del self._buffer[:take]
                size -= take
                if len(body) >= MAX_BODY:
                    return bytes(body), False
            while len(self._buffer) < 2:
                await self._more()
            if self._buffer[:2] != b"\r\n":
                raise HttpError("a chunk not ended by CRLF")
            del self._buffer[:2]


class Pool:
    """Keep-alive connections to one destination (scheme, host, port); at most ``size`` open at once."""

    def __init__(self, *, scheme: str, host: str, port: int, resolver: SafeResolver, size: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._scheme = scheme
        self._host = host
        self._port = port
        self._resolver = resolver
        self._ssl = (ssl_context or ssl.create_default_context()) if scheme == "https" else None
        self._idle: list[_Connection] = []
        self._size = max(1, size)
        self.opened = 0  # connections opened so far (a measure of reuse)
        default = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        self._host_header = (bracketed if port == default else f"{bracketed}:{port}").encode("idna").decode()

    def request_bytes(self, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """The bytes of a POST of ``body`` to ``target`` (a path with its query) with these headers."""
        lines = [f"POST {target} HTTP/1.1", f"Host: {self._host_header}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1") + body

    async def post(self, data: bytes, timeout: float) -> Reply:
        """Send one request (``request_bytes``) on an idle connection or a new one; its answer.

        A reused connection the destination closed while idle fails before any byte of an answer: the
        request is then sent again on another (or a new) connection; a duplicate carries the same idempotency
        key anyway.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._idle:
            conn = self._idle.pop()
            if not conn.open or loop.time() - conn.used_at > IDLE_SECONDS:
                conn.close()
                continue
            try:
                return await self._exchange(conn, data, deadline)
            except HttpError:
                if conn.answered:
                    raise
                continue  # closed while idle, before answering: try another (or a new) connection
        async with asyncio.timeout_at(deadline):
            conn = await self._connect()
        return await self._exchange(conn, data, deadline)

    async def _exchange(self, conn: _Connection, data: bytes, deadline: float) -> Reply:
        loop = asyncio.get_running_loop()
        timer = loop.call_at(deadline, conn.expire)  # cheaper than a timeout context for every request
        try:
            reply = await conn.request(data)
        except BaseException:
            conn.close()
            raise
        finally:
            timer.cancel()
        conn.used_at = loop.time()
        if conn.reusable and len(self._idle) < self._size:
            self._idle.append(conn)
        else:
            conn.close()
        return reply

    async def _connect(self) -> _Connection:
        """A new connection to an address the resolver allowed (the name's, or the literal's)."""
        loop = asyncio.get_running_loop()
        found = await self._resolver.resolve(self._host, self._port, socket.AF_UNSPEC)
        error: OSError | None = None
        for address in found:
            try:
                _transport, conn = await loop.create_connection(
                    lambda: _Connection(loop), address["host"], self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None)
            except OSError as exc:
                error = exc
                continue
            self.opened += 1
            return conn
        raise error or HttpError(f"no address to connect to for {self._host}")

    def close(self) -> None:
        """Close the idle connections."""
        for conn in self._idle:
            with contextlib.suppress(Exception):
                conn.close()
        self._idle.clear()

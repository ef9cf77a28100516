"""The pixel's prebuilt answer (GifAnswer) is what aiohttp's own response would have sent, byte for byte but Date.

Both are served by one aiohttp server on loopback and read raw from a socket, for each kind of request a mail
client or a proxy may send: HTTP/1.1 and 1.0, keep-alive or close, GET and HEAD, with or without a request id.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from collector.edge.pixel import GIF, NO_CACHE, GifAnswer
from collector.edge.requestid import REQUEST_ID_HEADER, request_id
from collector.edge.snippet import CORS_HEADERS

REQUESTS = [
    ("GET", "HTTP/1.1", ""),
    ("GET", "HTTP/1.1", "Connection: close\r\n"),
    ("GET", "HTTP/1.0", ""),
    ("GET", "HTTP/1.0", "Connection: keep-alive\r\n"),
    ("HEAD", "HTTP/1.1", ""),
    ("HEAD", "HTTP/1.0", ""),
    ("GET", "HTTP/1.1", f"{REQUEST_ID_HEADER}: mail-42\r\n"),
]


async def _prebuilt(request: web.Request) -> web.StreamResponse:
    return GifAnswer(request.headers.get(REQUEST_ID_HEADER, "rid-1"))


async def _aiohttp(request: web.Request) -> web.StreamResponse:
    """The answer as the pixel built it before: aiohttp's Response, the headers the middleware added."""
    return web.Response(body=GIF, headers={"Content-Type": "image/gif", **NO_CACHE,
                                           REQUEST_ID_HEADER: request.headers.get(REQUEST_ID_HEADER, "rid-1"),
                                           **CORS_HEADERS})


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/prebuilt", _prebuilt)
    app.router.add_get("/aiohttp", _aiohttp)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _exchange(port: int, method: str, version: str, extra: str, path: str) -> tuple[str, dict[str, str], bytes, bool]:
    """Status line, headers (Date left out), body, and whether the server closed the connection after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {path}?k=pk_x {version}\r\nHost: x\r\n{extra}\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        expected = 0 if method == "HEAD" else int(headers["Content-Length"])
        while len(body) < expected:
            body += sock.recv(65536)
        sock.settimeout(0.2)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    headers.pop("Date")
    return status, headers, body, closed


@pytest.mark.parametrize(("method", "version", "extra"), REQUESTS)
async def test_the_prebuilt_answer_is_aiohttps_own(server: int, method: str, version: str, extra: str) -> None:
    mine = await asyncio.to_thread(_exchange, server, method, version, extra, "/prebuilt")
    theirs = await asyncio.to_thread(_exchange, server, method, version, extra, "/aiohttp")
    assert mine == theirs
    status, headers, body, _closed = mine
    assert status.endswith("200 OK") and headers["Content-Type"] == "image/gif"
    assert body == (b"" if method == "HEAD" else GIF)


def test_only_a_plain_request_id_is_echoed_into_the_prebuilt_answer() -> None:
    """The id goes into the answer's bytes as it is, so a trailing newline must not pass as plain."""
    assert request_id("mail-42") == "mail-42"
    for unsafe in ("mail-42\n", "mail 42", "x" * 129, "é"):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id(unsafe)), unsafe


async def test_the_prebuilt_answer_reads_as_a_response_to_aiohttps_access_log(caplog: pytest.LogCaptureFixture) -> None:
    """GifAnswer sets up less than StreamResponse does: what aiohttp reads of an answer afterwards is still there."""
    app = web.Application()
    app.router.add_get("/prebuilt", _prebuilt)
    runner = web.AppRunner(app, access_log_format="%s %b %r")  # aiohttp's access logger
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        with caplog.at_level("INFO", logger="aiohttp.access"):
            status, _headers, body, _closed = await asyncio.to_thread(
                _exchange, runner.addresses[0][1], "GET", "HTTP/1.1", "", "/prebuilt")
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert status.endswith("200 OK") and body == GIF
    logged = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(logged) == 1 and re.fullmatch(r"200 (\d+) GET /prebuilt\?k=pk_x HTTP/1.1", logged[0]), logged
    assert int(logged[0].split()[1]) > len(GIF)  # the bytes written, headers and GIF

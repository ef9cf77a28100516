"""The tracking pixel: ``GET /p.gif`` notes a hit for recording and always answers a GIF.

The hit is recorded with the others of the same loop tick by collector.ingest.pixels (parsing, key, rate
limit, validation, dedup and the spool write all happen there, off the answer's path); the answer does not
wait for the spool's fdatasync unless the spool's queue is long (back-pressure).

The pixel is the hottest route, so it does what ``collector.edge.middleware.http_handler`` does for the
other routes itself, in fewer steps: a request id (echoed, not bound for logging: nothing is logged per
hit), CORS, the request metrics, and a JSON answer should anything fail. Its answer is written as bytes
built once (``GifAnswer``) instead of headers assembled and serialised per request.
"""

from __future__ import annotations

import base64
import functools
import time

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion
from multidict import CIMultiDict, istr

from collector.edge.appkeys import INGESTOR
from collector.edge.clientip import client_address, is_prefetch
from collector.edge.metrics import METRICS
from collector.edge.middleware import error_response, method_label
from collector.edge.requestid import REQUEST_ID_HEADER, log_refusal, request_id
from collector.edge.snippet import CORS_HEADERS

__all__ = ["GIF", "NO_CACHE", "PIXEL_ROUTE", "GifAnswer", "pixel"]

PIXEL_ROUTE = "/p.gif"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")  # 43 bytes, transparent
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
# Every header of the answer but Date, X-Request-ID and Connection, in aiohttp's wire format
_HEADERS = "".join(f"{name}: {value}\r\n" for name, value in {
    "Content-Type": "image/gif", **NO_CACHE, **CORS_HEADERS, "Content-Length": str(len(GIF)),
    "Server": SERVER_SOFTWARE}.items()).encode("latin-1")
_date: tuple[str, bytes] = ("", b"")
_RID = f"{REQUEST_ID_HEADER}: ".encode("latin-1")
_END, _END_GIF = b"\r\n\r\n", b"\r\n\r\n" + GIF
# the request headers the pixel reads, as istr: looked up without case-folding the name each time
_USER_AGENT, _REFERER, _REQUEST_ID = hdrs.USER_AGENT, hdrs.REFERER, istr(REQUEST_ID_HEADER)


@functools.lru_cache(maxsize=8)
def _head(version: HttpVersion, keep_alive: bool) -> bytes:
    """Status line and fixed headers for an HTTP version and connection choice (as aiohttp would write them)."""
    connection = b""
    if keep_alive and version == (1, 0):
        connection = b"Connection: keep-alive\r\n"
    elif not keep_alive and version == (1, 1):
        connection = b"Connection: close\r\n"
    return f"HTTP/{version[0]}.{version[1]} 200 OK\r\n".encode("latin-1") + _HEADERS + connection


def _date_header() -> bytes:
    """``Date: ...\\r\\n``, formatted once per second (aiohttp's own formatter and cache)."""
    global _date
    now = rfc822_formatted_time()
    if now != _date[0]:
        _date = (now, f"Date: {now}\r\n".encode("latin-1"))
    return _date[1]


class GifAnswer(web.StreamResponse):
    """The pixel's 200 answer: the GIF with its headers, written as one prepared block of bytes.

    What aiohttp's own response would send (tests/channels/test_pixel_answer.py compares them): the
    same headers, no body for HEAD, and the connection kept alive or closed as the request asks.
    """

    def __init__(self, rid: str) -> None:
        # What StreamResponse.__init__ sets (its class attributes hold the other defaults), without parsing a
        # status and headers that are fixed: the pixel makes one of these per hit.
        self._state = {}
        self._headers = CIMultiDict()
        self._status = 200
        self._reason = "OK"
        self._rid = rid

    async def _start(self, request: web.BaseRequest) -> AbstractStreamWriter:
        self._req = request
        writer = self._payload_writer = request.writer
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = self._keep_alive = request.keep_alive
        head = b"%b%b%b%b" % (_head(request.version, keep_alive), _date_header(), _RID, self._rid.encode("latin-1"))
        await writer.write_eof(head + (_END if self._must_be_empty_body else _END_GIF))
        return writer


async def pixel(request: web.Request) -> web.StreamResponse:
    """``GET /p.gif``: note the hit for recording; answer the 43-byte transparent GIF whatever happens."""
    started = time.perf_counter()
    headers = request.headers
    rid = request_id(headers.get(_REQUEST_ID))
    method = request.method
    try:
        ingestor = request.app[INGESTOR]  # the one application lookup: the ingestor holds the rest
        hits = ingestor.pixels
        behaviour = "HEAD" if method == "HEAD" else "prefetch" if is_prefetch(headers) else ""
        hits.add(request.rel_url.raw_query_string, headers.get(_USER_AGENT, ""), headers.get(_REFERER, ""),
                 client_address(request.remote, headers, ingestor.settings.trusted_proxies), behaviour)
        if hits.backlogged:
            await hits.written()
        response: web.StreamResponse = GifAnswer(rid)
        metrics = ingestor.metrics
    except Exception as exc:  # a bug: answered, logged and counted as the other routes would (500, JSON)
        response = error_response(request, exc, rid)
        response.headers[REQUEST_ID_HEADER] = rid
        response.headers.update(CORS_HEADERS)
        log_refusal(request, response.status)
        metrics = request.app[METRICS]
    metrics.observe_request(PIXEL_ROUTE, method_label(method), response.status, time.perf_counter() - started)
    return response

"""The tracking pixel: ``GET /p.gif`` notes a hit for recording and always answers a GIF.

The hit is recorded with the others of the same loop tick by collector.ingest.pixels (parsing, key, rate
limit, validation, dedup and the spool write all happen there, off the answer's path); the answer does not
wait for the spool's fdatasync unless the spool's queue is long (back-pressure).
"""

from __future__ import annotations

import base64

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from collector.edge.appkeys import INGESTOR, SETTINGS
from collector.edge.clientip import client_address, is_prefetch

__all__ = ["GIF", "NO_CACHE", "pixel"]

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")  # 43 bytes, transparent
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
# The answer's headers, built once: web.Response copies a multidict (in C) instead of parsing a dict
_GIF_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "image/gif", **NO_CACHE}))


async def pixel(request: web.Request) -> web.Response:
    """``GET /p.gif``: note the hit for recording; answer the 43-byte transparent GIF whatever happens."""
    hits = request.app[INGESTOR].pixels
    headers = request.headers
    behaviour = "HEAD" if request.method == "HEAD" else "prefetch" if is_prefetch(headers) else ""
    hits.add(request.rel_url.raw_query_string, headers.get("User-Agent", ""), headers.get("Referer", ""),
             client_address(request.remote, headers, request.app[SETTINGS].trusted_proxies), behaviour)
    if hits.backlogged:
        await hits.written()
    return web.Response(body=GIF, headers=_GIF_HEADERS)

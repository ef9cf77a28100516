"""The browser snippet (``GET /t.js``) and CORS, so a shop on another origin can post events."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["CORS_HEADERS", "CORS_PATHS", "SNIPPET", "SNIPPET_PATH", "preflight", "snippet"]

SNIPPET_PATH = Path(__file__).resolve().parents[1] / "static" / "t.js"
SNIPPET = web.AppKey("snippet", bytes)
# Public ingestion endpoints a browser may post to; the admin endpoints are left out on purpose.
CORS_PATHS = frozenset({"/v1/batch", "/v1/track", "/v1/page", "/v1/identify", "/v1/alias", "/v1/screen",
                        "/v1/group", "/p.gif", "/t.js",
                        "/v1/t", "/v1/p", "/v1/i", "/v1/a", "/v1/g", "/v1/s"})  # analytics.js (collector/edge/ajs.py)
# Allow any origin on the ingestion endpoints (no credentials: keys travel in the body or a header); added to
# their answers by collector.edge.middleware.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    # RudderStack's browser library adds AnonymousId, SentAt and its retry headers (Rsa-...)
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization, AnonymousId, SentAt, "
                                    "Rsa-Recovered, Rsa-Retry-Attempt, Rsa-Since-Last-Attempt, "
                                    "Rsa-Since-First-Attempt, Rsa-Retry-Reason",
    "Access-Control-Max-Age": "86400",
}


async def snippet(request: web.Request) -> web.Response:
    """``GET /t.js``: the dependency-free tracking script."""
    return web.Response(body=request.app[SNIPPET], content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


async def preflight(request: web.Request) -> web.Response:
    """``OPTIONS`` on an ingestion endpoint: the CORS preflight answer (headers: the routes' wrapper)."""
    if request.path not in CORS_PATHS:
        raise web.HTTPNotFound()
    return web.Response(status=204)

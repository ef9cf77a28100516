"""The HTTP side of the metrics: the application's registry key, a request middleware and ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from collector.metrics import Metrics

__all__ = ["METRICS", "metrics_handler", "metrics_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS = web.AppKey("metrics", Metrics)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route, method and final status, and time it."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in ("GET", "POST", "HEAD", "OPTIONS") else "other"
        request.app[METRICS].observe_request(_route(request), method, status, time.perf_counter() - started)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: every metric in the Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

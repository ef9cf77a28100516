"""The HTTP side of the metrics: the application's registry key and ``/metrics`` (requests are counted by
collector.edge.middleware)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from collector.metrics import Metrics

__all__ = ["METRICS", "metrics_handler"]

METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: every metric in the Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

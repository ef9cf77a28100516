"""Channels where no SDK runs: the pixel, signed click links and the browser snippet, wired into the app."""

from __future__ import annotations

from aiohttp import web

from collector.edge.middleware import with_http
from collector.edge.pixel import PIXEL_ROUTE, pixel
from collector.edge.redirect import redirect
from collector.edge.snippet import SNIPPET, SNIPPET_PATH, preflight, snippet

__all__ = ["channel_routes", "install_channels"]


def channel_routes() -> list[web.RouteDef]:
    """The routes of the click redirect, the snippet and the CORS preflight (the pixel's: ``install_channels``)."""
    return [
        web.get("/r/{token}", redirect),
        web.get("/t.js", snippet),
        web.options("/{path:v1/[a-z]+}", preflight),
    ]


def install_channels(app: web.Application) -> None:
    """Add the channel routes and the snippet to the collector application (CORS: collector.edge.middleware).

    The pixel's route is not wrapped by ``with_http``: the pixel does that work itself (collector.edge.pixel).
    """
    app[SNIPPET] = SNIPPET_PATH.read_bytes()
    app.router.add_get(PIXEL_ROUTE, pixel)
    app.add_routes(with_http(channel_routes()))

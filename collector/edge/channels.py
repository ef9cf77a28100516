"""Channels where no SDK runs: the pixel, signed click links and the browser snippet, wired into the app."""

from __future__ import annotations

from aiohttp import web

from collector.edge.pixel import pixel
from collector.edge.redirect import redirect
from collector.edge.snippet import SNIPPET, SNIPPET_PATH, preflight, snippet

__all__ = ["channel_routes", "install_channels"]


def channel_routes() -> list[web.RouteDef]:
    """The routes of the pixel, the click redirect, the snippet and the CORS preflight."""
    return [
        web.get("/p.gif", pixel),
        web.get("/r/{token}", redirect),
        web.get("/t.js", snippet),
        web.options("/{path:v1/[a-z]+}", preflight),
    ]


def install_channels(app: web.Application) -> None:
    """Add the channel routes and the snippet to the collector application (CORS: collector.edge.middleware)."""
    app[SNIPPET] = SNIPPET_PATH.read_bytes()
    app.add_routes(channel_routes())

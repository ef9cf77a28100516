"""Request id, errors as JSON, CORS on the public endpoints and the request metrics, wrapped around each route.

Each route's handler is wrapped (``with_http``) instead of the application getting a middleware: aiohttp
runs its middleware chain around every request, the pixel's too, and the pixel (collector.edge.pixel),
which does this work itself in a few microseconds, would pay for the chain (bench/pixel.py). Requests no
route takes get the same treatment from the last route, a catch-all (``fallback_route``: JSON 404 or 405).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web

from collector.edge.answers import error_body, json_response, refusal_answer
from collector.edge.metrics import METRICS
from collector.edge.requestid import REQUEST_ID_HEADER, log_refusal, request_id
from collector.edge.snippet import CORS_HEADERS, CORS_PATHS
from collector.errors import ReiseError
from collector.logs import REQUEST_ID

__all__ = ["UNMATCHED", "error_response", "fallback_route", "http_handler", "method_label", "with_http"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("reise.http")
UNMATCHED = "unmatched"  # the route label of requests no route takes (404, 405)
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})


def method_label(method: str) -> str:
    """The metrics' method label: GET, POST, HEAD, OPTIONS or ``other`` (bounded)."""
    return method if method in _METHODS else "other"


def _answer(request: web.Request, exc: Exception) -> web.Response | None:
    """The JSON answer for a refusal or an error; None for an HTTPException to raise on as it is."""
    if isinstance(exc, ReiseError):
        answer = refusal_answer(exc)
        if answer is not None:
            return answer
    elif isinstance(exc, web.HTTPException):
        if exc.empty_body or exc.status < 400:
            return None
        return json_response(error_body(exc.status, exc.reason), exc.status)
    log.exception("unhandled error", path=request.path)
    return json_response(error_body(500, "internal error"), 500)


def error_response(request: web.Request, exc: Exception, rid: str) -> web.Response:
    """The answer to an exception a handler raised, with the request id (and CORS); logged when 4xx/5xx.

    An HTTPException without a body (or a redirect) is raised on as it is, with the same headers added.
    """
    answer = _answer(request, exc)
    if answer is None:  # an HTTPException without a body, or a redirect: raised on as it is
        assert isinstance(exc, web.HTTPException)
        exc.headers[REQUEST_ID_HEADER] = rid
        if request.path in CORS_PATHS:
            exc.headers.update(CORS_HEADERS)
        log_refusal(request, exc.status)
        raise exc
    return answer


def http_handler(handler: Handler, route: str | None = None) -> Handler:
    """``handler`` run with its request id bound for logging, refusals answered as JSON, CORS added, and
    counted and timed in the metrics under ``route`` (default: the path of the resource that matched)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        token = REQUEST_ID.set(rid)
        status = 500
        try:
            try:
                response = await handler(request)
            except Exception as exc:  # a domain error, an HTTPException, or a bug: see _answer
                try:
                    response = error_response(request, exc, rid)
                except web.HTTPException as raised:
                    status = raised.status
                    raise
            status = response.status
            if not response.prepared:
                headers = response.headers
                headers[REQUEST_ID_HEADER] = rid
                if request.path in CORS_PATHS:
                    headers.update(CORS_HEADERS)
            if status >= 400:
                log_refusal(request, status)
            return response
        finally:
            # a keep-alive connection serves its requests in one task: leave nothing behind for the next
            REQUEST_ID.reset(token)
            label = route
            if label is None:
                resource = request.match_info.route.resource
                label = resource.canonical if resource is not None else UNMATCHED
            request.app[METRICS].observe_request(label, method_label(request.method), status,
                                                 time.perf_counter() - started)

    return functools.update_wrapper(wrapped, handler)


def _static_route(static: web.StaticDef) -> web.RouteDef:
    """A static directory as a route whose handler is aiohttp's own static handler (so it can be wrapped)."""
    resource = web.StaticResource(static.prefix, str(static.path), **static.kwargs)
    serve = next(route.handler for route in resource if route.method == "GET")
    # the static handler reads the file's path from the match's "filename", as under its own resource
    return web.get(f"{resource.canonical}/{{filename:.+}}", http_handler(serve, resource.canonical))


def with_http(routes: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """Route definitions with their handlers wrapped by ``http_handler`` (a static directory included)."""
    wrapped: list[web.AbstractRouteDef] = []
    for route in routes:
        if isinstance(route, web.StaticDef):
            wrapped.append(_static_route(route))
        elif isinstance(route, web.RouteDef) and not isinstance(route.handler, type):
            wrapped.append(web.RouteDef(route.method, route.path, http_handler(route.handler), route.kwargs))
        else:
            raise TypeError(f"cannot wrap {route!r}: a handler function or a static directory is expected")
    return wrapped


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """What aiohttp answers when no route takes a request: 405 when a route has the path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            _match, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def fallback_route() -> web.RouteDef:
    """The catch-all route for requests no other route takes (JSON 404 or 405); register it last."""
    return web.route("*", "/{path:.*}", http_handler(_unmatched, UNMATCHED))

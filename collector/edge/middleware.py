"""The one request middleware: request id, errors as JSON, CORS on the public endpoints, and the request metrics.

One coroutine per request instead of three middlewares and a response-prepare signal: the pixel's answer
costs little more than aiohttp's own work, so every layer around it shows (bench/pixel.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from collector.edge.answers import error_body, json_response, refusal_answer
from collector.edge.metrics import METRICS
from collector.edge.requestid import REQUEST_ID_HEADER, log_refusal, request_id
from collector.edge.snippet import CORS_HEADERS, CORS_PATHS
from collector.errors import ReiseError
from collector.logs import REQUEST_ID

__all__ = ["http_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("reise.http")
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})


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


@web.middleware
async def http_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a request with its id bound for logging; answer refusals as JSON; add CORS; count and time it."""
    started = time.perf_counter()
    rid = request_id(request.headers.get(REQUEST_ID_HEADER))
    token = REQUEST_ID.set(rid)
    status = 500
    try:
        try:
            response = await handler(request)
        except Exception as exc:  # a domain error, an HTTPException, or a bug: see _answer
            answer = _answer(request, exc)
            if answer is None:  # an HTTPException without a body, or a redirect: raised on as it is
                assert isinstance(exc, web.HTTPException)
                status = exc.status
                exc.headers[REQUEST_ID_HEADER] = rid
                if request.path in CORS_PATHS:
                    exc.headers.update(CORS_HEADERS)
                log_refusal(request, status)
                raise
            response = answer
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
        resource = request.match_info.route.resource
        request.app[METRICS].observe_request(resource.canonical if resource is not None else "unmatched",
                                             request.method if request.method in _METHODS else "other", status,
                                             time.perf_counter() - started)

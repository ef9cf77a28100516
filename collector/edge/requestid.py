"""A request id on every log line of a request, taken from ``X-Request-ID`` when sane, returned in the answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

__all__ = ["REQUEST_ID_HEADER", "request_id", "request_id_middleware"]

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("reise.http")


def request_id(incoming: str | None) -> str:
    """The caller's id when it is short and plain (letters, digits, ``._:/+=@-``), else a fresh one."""
    return incoming if incoming and _SANE.match(incoming) else uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id to the log context for the request, log refusals, and echo the id back."""
    rid = request_id(request.headers.get(REQUEST_ID_HEADER))
    structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[REQUEST_ID_HEADER] = rid
            _log_refusal(request, exc.status)
            raise
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
        _log_refusal(request, response.status)
        return response
    finally:
        # a keep-alive connection serves its requests in one task: leave nothing behind for the next
        structlog.contextvars.unbind_contextvars("request_id")


def _log_refusal(request: web.Request, status: int) -> None:
    if status >= 500:
        log.warning("request failed", status=status, method=request.method, path=request.path)
    elif status >= 400:
        log.info("request refused", status=status, method=request.method, path=request.path)

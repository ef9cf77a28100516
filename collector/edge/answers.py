"""How the edge answers: JSON bodies, and the one table from domain errors to HTTP statuses."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import structlog
from aiohttp import web

from collector.errors import (
    LinkInvalid,
    NotFound,
    PayloadInvalid,
    QueryForbidden,
    QueryRefused,
    RateLimited,
    ReiseError,
    RequestRejected,
    SignatureInvalid,
    StoreError,
    StoreUnavailable,
    TryLater,
)

__all__ = ["ERROR_CODES", "HTTP_ERRORS", "error_answer", "error_body", "json_response", "refusal_answer"]

log = structlog.get_logger("reise.http")

# Domain error -> (status, Retry-After in seconds when the error names none, prefix of the answer's message).
# The first row whose class matches wins, so subclasses come before their bases.
HTTP_ERRORS: tuple[tuple[type[ReiseError], int, float | None, str], ...] = (
    (RateLimited, 429, 1, ""),
    (TryLater, 503, 5, ""),  # spool full, spool write failed, shutting down
    (StoreUnavailable, 503, 5, "store: "),
    (StoreError, 503, 30, "store: "),
    (QueryForbidden, 403, None, "sql: refused: "),
    (QueryRefused, 400, None, "sql: "),
    (LinkInvalid, 400, None, ""),
    (NotFound, 404, None, ""),
    (SignatureInvalid, 401, None, "signature: "),
    (PayloadInvalid, 400, None, "payload: "),
)

# The ``code`` of an error answer, by status (Segment's and RudderStack's clients read ``code`` and ``message``).
ERROR_CODES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited", 500: "internal_error",
    503: "unavailable",
}  # fmt: skip


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """An error answer's body: ``success`` false, ``error`` and ``message`` (the reason) and ``code``."""
    code = ERROR_CODES.get(status, "client_error" if status < 500 else "server_error")
    return {"success": False, "error": message, "code": code, "message": message, **extra}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response encoded with orjson (naive datetimes are UTC)."""
    body = orjson.dumps(payload, default=_json_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def error_answer(exc: ReiseError) -> tuple[int, float | None, str] | None:
    """Status, Retry-After and message for a refusal; None for an error that is a bug (answered 500)."""
    if isinstance(exc, RequestRejected):
        return exc.status, exc.retry_after, exc.reason
    for kind, status, retry_after, prefix in HTTP_ERRORS:
        if isinstance(exc, kind):
            return status, exc.retry_after if exc.retry_after is not None else retry_after, prefix + str(exc)
    return None


def refusal_answer(exc: ReiseError) -> web.Response | None:
    """The JSON answer for a refusal, with its status and headers; None for an error that is a bug (a 500).

    The routes' wrapper (collector.edge.middleware) answers every domain error through this.
    """
    answer = error_answer(exc)
    if answer is None:
        return None
    status, retry_after, message = answer
    headers = {"Retry-After": str(int(retry_after))} if retry_after else None
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Basic realm="reise"'}
    return json_response(error_body(status, message), status, headers)

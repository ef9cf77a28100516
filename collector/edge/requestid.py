"""A request id on every log line of a request, taken from ``X-Request-ID`` when sane, returned in the answer.

The id lives in a ContextVar of its own (``collector.logs.REQUEST_ID``, one set and one reset per request) that
the log processor ``collector.logs.add_request_id`` reads; the route wrapper that sets it is collector.edge.middleware.
"""

from __future__ import annotations

import itertools
import os
import re

import structlog
from aiohttp import web

__all__ = ["REQUEST_ID_HEADER", "log_refusal", "request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")  # the whole id (fullmatch: no trailing newline either)
# Fresh ids: a random prefix per process and a counter, 32 hex digits (unique, not secret; no syscall per request)
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)

log = structlog.get_logger("reise.http")


def request_id(incoming: str | None) -> str:
    """The caller's id when it is short and plain (letters, digits, ``._:/+=@-``), else a fresh one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def log_refusal(request: web.Request, status: int) -> None:
    """Log a 4xx answer (info) or a 5xx one (warning)."""
    if status >= 500:
        log.warning("request failed", status=status, method=request.method, path=request.path)
    elif status >= 400:
        log.info("request refused", status=status, method=request.method, path=request.path)

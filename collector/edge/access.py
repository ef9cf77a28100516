"""Who may do what: the admin key administers, read keys (and the admin key) read, every failure is counted.

Each check first asks the per-address limit on failed authentications (collector.edge.authlimit), so an
address that guessed too often gets 429 before its key is looked at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from aiohttp import web

from collector.edge.appkeys import AUTH_FAILURES, QUERY_SLOTS, READERS, SETTINGS
from collector.edge.auth import ADMIN, bearer_or_basic, is_admin, reader_name
from collector.edge.metrics import METRICS
from collector.errors import QueryBusy, QueryForbidden, RequestRejected

__all__ = ["address_of", "authentication_failed", "check_address", "read_as", "require_admin", "require_reader"]

log = structlog.get_logger("reise.access")
T = TypeVar("T")


def address_of(request: web.Request) -> str:
    """The client address failures are counted against (the peer's; behind a proxy, the proxy's)."""
    return request.remote or ""


def check_address(request: web.Request) -> None:
    """429 with Retry-After when the client's address failed to authenticate too often in the last minute."""
    failures = request.app[AUTH_FAILURES]
    if failures.idle:
        return
    try:
        failures.check(address_of(request))
    except RequestRejected:
        request.app[METRICS].auth_limited.inc()
        raise


def authentication_failed(request: web.Request, kind: str) -> None:
    """Count a failed authentication (``write``, ``read``, ``admin`` or ``dashboard``) against the address."""
    request.app[AUTH_FAILURES].failed(address_of(request))
    request.app[METRICS].auth_failed(kind)


def require_admin(request: web.Request) -> str:
    """The admin key's name, or 401 (403 for a read key, which may read but not administer)."""
    check_address(request)
    settings = request.app[SETTINGS]
    candidate = bearer_or_basic(request.headers.get("Authorization"))
    if is_admin(settings.admin_key, candidate):
        return ADMIN
    if reader_name(settings.admin_key, settings.read_keys, candidate) is not None:
        raise RequestRejected(403, "admin key required: a read key may only read")
    authentication_failed(request, "admin")
    raise RequestRejected(401, "admin key required")


def require_reader(request: web.Request) -> str:
    """The name of the read key (or ``admin``) the request carries, or 401."""
    check_address(request)
    settings = request.app[SETTINGS]
    name = reader_name(settings.admin_key, settings.read_keys, bearer_or_basic(request.headers.get("Authorization")))
    if name is None:
        authentication_failed(request, "read")
        raise RequestRejected(401, "read key or admin key required")
    return name


async def read_as(request: web.Request, name: str, work: Callable[[], T], *, what: str = "query") -> T:
    """Run an analyst's reads for the key ``name`` in the reader pool, within its concurrent-query limit.

    Logged and counted by the key's name and the outcome.
    """
    app = request.app
    started = time.perf_counter()
    outcome = "failed"
    try:
        with app[QUERY_SLOTS].hold(name):
            result = await asyncio.get_running_loop().run_in_executor(app[READERS], work)
        outcome = "ok"
        return result
    except QueryBusy:
        outcome = "busy"
        raise
    except QueryForbidden as exc:
        outcome = "refused"
        log.warning("query refused", key=name, what=what, reason=str(exc))
        raise
    finally:
        app[METRICS].query_done(name, outcome)
        log.info("query", key=name, what=what, outcome=outcome, ms=round((time.perf_counter() - started) * 1000, 1))

"""The collector's one error hierarchy.

Below the HTTP edge every refusal is a domain error that knows nothing of HTTP; the edge maps them to a
status and a Retry-After in one table (``collector.edge.answers``). ``RequestRejected`` is the edge's own
refusal of a malformed or unauthorised request and is the only error that carries a status.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EventRejected",
    "EventWithoutConsent",
    "LinkInvalid",
    "NotFound",
    "QueryBusy",
    "QueryForbidden",
    "QueryRefused",
    "RateLimited",
    "ReiseError",
    "RequestRejected",
    "ShuttingDown",
    "SpoolFull",
    "SpoolWriteFailed",
    "StoreError",
    "StoreUnavailable",
    "TryLater",
]


class ReiseError(Exception):
    """Base class of every error the collector raises on purpose."""

    retry_after: float | None = None  # seconds after which the same request may succeed, when known


class ConfigError(ReiseError):
    """A setting or a rules file is invalid."""


class RequestRejected(ReiseError):
    """The HTTP edge refuses a whole request (bad body, unknown key ...); carries the status to answer with."""

    def __init__(self, status: int, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class EventRejected(ReiseError):
    """One event is invalid; the reason names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventWithoutConsent(ReiseError):
    """The event says its person did not consent: it is not stored at all, not even as a dead letter."""


class LinkInvalid(ReiseError):
    """A link token is malformed, unsigned, tampered with, expired or leads somewhere it may not."""


class NotFound(ReiseError):
    """An id names no customer, or (for an unlink) no link."""


class TryLater(ReiseError):
    """Nothing of the request was kept, but the same request may succeed later (``retry_after`` seconds)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RateLimited(TryLater):
    """A write key sent more events per second than its limit allows."""


class SpoolFull(TryLater):
    """The spool is at its disk limit while the store catches up."""


class SpoolWriteFailed(TryLater):
    """Appending to the spool failed (disk error)."""


class ShuttingDown(TryLater):
    """The collector is draining before it stops and takes nothing new."""


class StoreError(ReiseError):
    """ClickHouse refused an operation; retrying the same data will not help."""


class StoreUnavailable(StoreError):
    """ClickHouse could not be reached or is overloaded; the operation may be retried."""


class QueryRefused(ReiseError):
    """A read-only query was refused (it writes, is malformed, or exceeded a limit)."""


class QueryForbidden(QueryRefused):
    """The query guard refused a query: it reaches outside Reise's tables, writes, kills or changes settings."""


class QueryBusy(RateLimited):
    """A key already runs as many queries at once as it may; the same query may be sent again shortly."""

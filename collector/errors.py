"""The collector's one error hierarchy."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EventRejected",
    "EventWithoutConsent",
    "QueryRefused",
    "ReiseError",
    "RequestRejected",
    "StoreError",
    "StoreUnavailable",
]


class ReiseError(Exception):
    """Base class of every error the collector raises on purpose."""


class ConfigError(ReiseError):
    """A setting or a rules file is invalid."""


class RequestRejected(ReiseError):
    """A whole HTTP request is refused; carries the status to answer with."""

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


class StoreError(ReiseError):
    """ClickHouse refused an operation; retrying the same data will not help."""


class StoreUnavailable(StoreError):
    """ClickHouse could not be reached or is overloaded; the operation may be retried."""


class QueryRefused(ReiseError):
    """A read-only query was refused (it writes, is malformed, or exceeded a limit)."""

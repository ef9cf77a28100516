"""The one error hierarchy of the SDK.

``ValidationError`` and ``ConfigurationError`` are raised in the caller's thread, at
the call. The ``DeliveryError`` family is never raised into the host: the background
sender hands these objects to the ``on_error`` callback (and logs them).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BatchRejected",
    "ConfigurationError",
    "DeliveryError",
    "EventRejected",
    "EventsDropped",
    "ReiseError",
    "ValidationError",
]


class ReiseError(Exception):
    """Base class of every error of the reise SDK."""


class ValidationError(ReiseError, ValueError):
    """An argument of a tracking call is invalid; raised at once in the caller."""


class ConfigurationError(ReiseError, ValueError):
    """A client option is invalid; raised by the constructor."""


class DeliveryError(ReiseError):
    """Events could not be delivered; passed to ``on_error``, never raised into the host."""

    def __init__(self, reason: str, events: list[dict[str, Any]] | None = None,
                 status: int | None = None, count: int | None = None) -> None:
        self.reason = reason
        self.events: list[dict[str, Any]] = events if events is not None else []
        self.status = status
        self.count = count if count is not None else len(self.events)
        super().__init__(reason)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(reason={self.reason!r}, count={self.count}, "
                f"status={self.status!r})")


class EventRejected(DeliveryError):
    """The collector accepted the batch but rejected this one event (not retried)."""

    @property
    def event(self) -> dict[str, Any]:
        """The rejected event as it was sent."""
        return self.events[0]

    @property
    def message_id(self) -> str | None:
        """The ``messageId`` of the rejected event."""
        mid = self.events[0].get("messageId") if self.events else None
        return mid if isinstance(mid, str) else None


class BatchRejected(DeliveryError):
    """The collector refused a whole batch with a non-retryable status (400, 401, 4xx)."""


class EventsDropped(DeliveryError):
    """Events were dropped by the overflow policy or left undelivered at shutdown."""

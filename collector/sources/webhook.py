"""What every webhook provider module shares: the request it reads, its interface, and small field helpers.

A provider verifies its signature over the raw request, then turns the payload into Segment-shaped events, which
take the one ingest path (``collector.ingest.protocol.normalise`` through the Ingestor) like any SDK's. Each
provider event id becomes the ``messageId`` (``<kind>:<id>``), so a provider's retry or a replay is stored once;
order events are keyed by order id as well (collector.ingest.dedup), so an order sent both by webhook and by
the SDK, under the same source name, counts once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.errors import EventRejected, PayloadInvalid
from collector.sources.config import Source

__all__ = [
    "Event", "Mapped", "Provider", "Rejected", "WebhookRequest", "each", "ids_of", "iso_from_unix", "json_body", "obj",
    "text",
]

Event = dict[str, Any]  # a Segment-shaped event


@dataclass(frozen=True)
class Rejected:
    """A payload item the provider's mapping could not read: kept as a dead letter with the reason."""

    reason: str
    payload: Any


Mapped = Event | Rejected


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook request as received: method, the URL the provider called, headers, query and the raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Provider:
    """A provider: ``verify`` raises SignatureInvalid unless the request is signed by the source's secret;
    ``events`` returns its Segment-shaped events (PayloadInvalid when the body is not the provider's shape)."""

    verify: Callable[[Source, WebhookRequest], None]
    events: Callable[[Source, WebhookRequest], list[Mapped]]


def each(items: Iterable[Any], read: Callable[[Any], list[Event]]) -> list[Mapped]:
    """Map every payload item (to no, one or several events), keeping the ones ``read`` rejects with the reason."""
    found: list[Mapped] = []
    for item in items:
        try:
            found.extend(read(item))
        except EventRejected as exc:
            found.append(Rejected(exc.reason, item))
    return found


def json_body(body: bytes) -> Any:
    """The body as JSON, or PayloadInvalid."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadInvalid(f"not JSON: {exc}") from None


def obj(value: Any) -> dict[str, Any]:
    """A JSON object field, or an empty one when it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """A string field as text ('' for missing; numbers as their digits)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else ""


def iso_from_unix(value: Any) -> str | None:
    """An ISO 8601 time from Unix seconds (or milliseconds, when the number is that large); None if not a number."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value or None  # already a date string: normalise checks it
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    seconds = value / 1000 if value > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


_ID_FIELDS = ("userId", "user_id", "customer_id", "customerId")


def ids_of(email: Any, custom: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The person of an email event: the shop's own id from the message's custom fields, else the address.

    With both, the address is the anonymous id, so the two link. Addresses are lower-cased.
    """
    address = text(email).strip().lower()
    own = next((text(custom.get(f)) for f in _ID_FIELDS if custom and text(custom.get(f))), "")
    if own:
        return {"userId": own, "anonymousId": address} if address else {"userId": own}
    return {"userId": address} if address else {}

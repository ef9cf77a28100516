"""What the shop and till providers share: orders as ``Order Completed``, refunds as ``Order Refunded``.

An order event's idempotency key is its source, order id and event (collector.ingest.dedup): give the webhook
source the same name as the write key whose SDK sends the same orders, and each order counts once however it
arrives. Refunds carry their refund id as ``return_id`` and are stored with negative revenue
(collector.ingest.orders). The person is the customer's e-mail address (lower-cased), else the provider's
customer id; the order's own id (``<provider>-order:<id>``) is the anonymous id, so a refund, which names only
the order, folds into the same customer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPLETED", "REFUNDED", "order_event", "person"]

COMPLETED, REFUNDED, CANCELLED = "Order Completed", "Order Refunded", "Order Cancelled"


def person(provider: str, order_id: str, email: str = "", customer_id: str = "") -> dict[str, str]:
    """The ids of an order's buyer: their address (or provider customer id) and the order's own id."""
    user = email.strip().lower() or (f"{provider}-customer:{customer_id}" if customer_id else "")
    ids = {"anonymousId": f"{provider}-order:{order_id}"}
    if user:
        ids["userId"] = user
    return ids


def order_event(name: str, *, provider: str, message_id: str, order_id: str, revenue: float, currency: str,
                channel: str, timestamp: str | None, ids: dict[str, str], store_id: str = "",
                properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Segment-shaped order event (``Order Completed``, ``Order Refunded``, ``Order Cancelled``)."""
    props: dict[str, Any] = {"provider": provider, "order_id": order_id, "revenue": revenue, "currency": currency,
                             **{k: v for k, v in (properties or {}).items() if v not in (None, "", [], {})}}
    if store_id:
        props["store_id"] = store_id
    event: dict[str, Any] = {"type": "track", "event": name, "messageId": message_id, "channel": channel,
                             "properties": props, **ids}
    if timestamp:
        event["timestamp"] = timestamp
    return event

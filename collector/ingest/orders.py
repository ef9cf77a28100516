"""Orders: one idempotency key per order and event kind, and returns that net out revenue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ORDER_KEY_SQL", "REVERSAL_EVENTS", "order_key", "signed_revenue"]

# Event names (case-insensitive) that take money back: their revenue is stored negative, so sums net out.
REVERSAL_EVENTS: frozenset[str] = frozenset({
    "order refunded", "order cancelled", "order canceled", "order returned", "product returned",
    "return", "refund", "cancellation", "order_refunded", "order_cancelled", "order_canceled", "order_returned",
})

# A till or shop may re-send an order with a new messageId (after reconnecting, or from an import): the key of
# an order event is its source, order id and event kind (plus a return id, so partial returns stay apart).
_SEP = "\x1f"


def order_key(source: str, order_id: str, event: str, properties: Mapping[str, Any]) -> str:
    """The idempotency key of a track event that carries an order id."""
    return_id = properties.get("return_id")
    extra = return_id if isinstance(return_id, str) else str(return_id) if isinstance(return_id, int) else ""
    return _SEP.join(("order", source, order_id, event.lower(), extra))


# The same key in SQL over the touchpoints table (properties hold non-string values as their JSON text).
ORDER_KEY_SQL = (
    "concat('order', '\\x1F', source, '\\x1F', order_id, '\\x1F', lowerUTF8(event), '\\x1F', "
    "properties['return_id'])"
)


def signed_revenue(event: str, revenue: float) -> float:
    """Revenue as stored: negative for returns, refunds and cancellations, as given otherwise."""
    return -abs(revenue) if revenue and event.lower() in REVERSAL_EVENTS else revenue

"""Orders: returns, refunds and cancellations net out revenue (an order's idempotency key: collector.ingest.dedup)."""

from __future__ import annotations

__all__ = ["REVERSAL_EVENTS", "signed_revenue"]

# Event names (case-insensitive) that take money back: their revenue is stored negative, so sums net out.
REVERSAL_EVENTS: frozenset[str] = frozenset({
    "order refunded", "order cancelled", "order canceled", "order returned", "product returned",
    "return", "refund", "cancellation", "order_refunded", "order_cancelled", "order_canceled", "order_returned",
})


def signed_revenue(event: str, revenue: float) -> float:
    """Revenue as stored: negative for returns, refunds and cancellations, as given otherwise."""
    return -abs(revenue) if revenue and event.lower() in REVERSAL_EVENTS else revenue

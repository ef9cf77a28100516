"""Shopify's order webhooks: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body by the app's secret.

Topics kept: ``orders/create`` and ``orders/paid`` (one ``Order Completed`` per order), ``orders/cancelled``
(``Order Cancelled``, no revenue: the money comes back with the refund) and ``refunds/create``
(``Order Refunded``, negative revenue). A POS order (``source_name`` ``pos``) is channel ``pos`` with its
``location_id`` as ``store_id``; other orders are channel ``web``. ``X-Shopify-Webhook-Id`` is the id.
"""

from __future__ import annotations

from typing import Any

from collector.errors import EventRejected, PayloadInvalid
from collector.sources.config import Source
from collector.sources.shop import CANCELLED, COMPLETED, REFUNDED, order_event, person
from collector.sources.signatures import check_hmac, header
from collector.sources.webhook import Mapped, Provider, WebhookRequest, json_body, obj, text

__all__ = ["HMAC_HEADER", "PROVIDER"]

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
_ORDER_TOPICS = {"orders/create": COMPLETED, "orders/paid": COMPLETED, "orders/cancelled": CANCELLED}


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify the base64 HMAC-SHA256 of the raw body."""
    check_hmac(header(request.headers, HMAC_HEADER), source.option("secret"), request.body, encoding="base64",
               what=HMAC_HEADER)


def _money(value: Any, field: str) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        raise EventRejected(f"{field}: not an amount: {str(value)[:40]!r}") from None


def _order(topic: str, doc: dict[str, Any], message_id: str) -> dict[str, Any]:
    order_id = text(doc.get("id"))
    if not order_id:
        raise EventRejected("id: an order needs its id")
    customer = obj(doc.get("customer"))
    pos = text(doc.get("source_name")) == "pos"
    items = [{"sku": text(i.get("sku")), "name": text(i.get("title")), "price": _money(i.get("price"), "price"),
              "quantity": i.get("quantity")} for i in doc.get("line_items") or () if isinstance(i, dict)]
    name = _ORDER_TOPICS[topic]
    return order_event(
        name, provider="shopify", message_id=message_id, order_id=order_id,
        revenue=0.0 if name == CANCELLED else _money(doc.get("total_price"), "total_price"),
        currency=text(doc.get("currency")), channel="pos" if pos else "web",
        timestamp=text(doc.get("cancelled_at" if name == CANCELLED else "created_at")) or None,
        ids=person("shopify", order_id, text(doc.get("email")) or text(customer.get("email")),
                   text(customer.get("id"))),
        store_id=text(doc.get("location_id")) if pos else "",
        properties={"order_name": doc.get("name"), "products": items, "source_name": doc.get("source_name"),
                    "cancel_reason": doc.get("cancel_reason")})


def _refund(doc: dict[str, Any], message_id: str, channel: str) -> dict[str, Any]:
    order_id, refund_id = text(doc.get("order_id")), text(doc.get("id"))
    if not order_id or not refund_id:
        raise EventRejected("order_id and id: a refund names its order and itself")
    refunds = [t for t in doc.get("transactions") or () if isinstance(t, dict) and t.get("kind") == "refund"
               and t.get("status", "success") == "success"]
    if refunds:
        amount = sum(_money(t.get("amount"), "transactions.amount") for t in refunds)
        currency = text(refunds[0].get("currency"))
    else:
        lines = [i for i in doc.get("refund_line_items") or () if isinstance(i, dict)]
        amount = sum(_money(i.get("subtotal"), "refund_line_items.subtotal") for i in lines)
        currency = text(obj(obj(lines[0].get("subtotal_set")).get("shop_money")).get("currency_code")) if lines else ""
    return order_event(REFUNDED, provider="shopify", message_id=message_id, order_id=order_id, revenue=amount,
                       currency=currency, channel=channel, timestamp=text(doc.get("created_at")) or None,
                       ids=person("shopify", order_id), properties={"return_id": refund_id, "note": doc.get("note")})


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The order or refund of the request (none for another topic)."""
    topic = request.headers.get("X-Shopify-Topic", "")
    if topic not in _ORDER_TOPICS and topic != "refunds/create":
        return []
    doc = json_body(request.body)
    if not isinstance(doc, dict):
        raise PayloadInvalid("Shopify posts one JSON object")
    webhook_id = request.headers.get("X-Shopify-Webhook-Id") or request.headers.get("X-Shopify-Event-Id") or ""
    message_id = f"shopify:{webhook_id or topic + ':' + text(doc.get('id'))}"
    if topic != "refunds/create":
        return [_order(topic, doc, message_id)]
    # a refund does not say where it was made: web, unless the source may only write another channel
    channels = source.channels or frozenset({"web"})
    return [_refund(doc, message_id, "web" if "web" in channels else min(channels))]


PROVIDER = Provider(verify=verify, events=events)

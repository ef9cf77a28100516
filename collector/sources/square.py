"""Square's payment webhooks: ``x-square-hmacsha256-signature`` = base64 HMAC-SHA256 of the notification URL
followed by the raw body, by the subscription's signature key.

The source's ``notification_url`` is the URL exactly as registered with Square (a proxy in front of the
collector changes what the collector sees, so the URL is configured, not guessed). ``payment.created`` and
``payment.updated`` with status ``COMPLETED`` are an ``Order Completed`` (order id: the payment's order, else
the payment), ``refund.created`` and ``refund.updated`` with status ``COMPLETED`` an ``Order Refunded``; both
at the payment's location as ``store_id``, channel ``pos``. Amounts are in the currency's smallest unit.
``event_id`` is the id.
"""

from __future__ import annotations

from typing import Any

from collector.errors import EventRejected, PayloadInvalid
from collector.sources.config import Source
from collector.sources.shop import COMPLETED, REFUNDED, order_event, person
from collector.sources.signatures import check_hmac, header
from collector.sources.webhook import Mapped, Provider, WebhookRequest, json_body, obj, text

__all__ = ["PROVIDER", "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
# ISO 4217 currencies without minor units (Square's amounts are in the smallest unit)
_ZERO_DECIMALS = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND",
                            "VUV", "XAF", "XOF", "XPF"})


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify the base64 HMAC-SHA256 of notification URL + raw body."""
    check_hmac(header(request.headers, SIGNATURE_HEADER), source.option("signature_key"),
               source.option("notification_url").encode() + request.body, encoding="base64", what=SIGNATURE_HEADER)


def _amount(money: Any) -> tuple[float, str]:
    money = obj(money)
    amount, currency = money.get("amount"), text(money.get("currency")).upper()
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise EventRejected("amount_money.amount: expected an integer amount in the currency's smallest unit")
    return (float(amount) if currency in _ZERO_DECIMALS else amount / 100), currency


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The completed payment or refund of the notification (none for other types and statuses)."""
    doc = json_body(request.body)
    if not isinstance(doc, dict):
        raise PayloadInvalid("Square posts one JSON object")
    kind = text(doc.get("type"))
    data = obj(obj(doc.get("data")).get("object"))
    record = obj(data.get("payment") if kind.startswith("payment.") else data.get("refund"))
    if kind not in ("payment.created", "payment.updated", "refund.created", "refund.updated") or \
            record.get("status") != "COMPLETED":
        return []
    event_id = text(doc.get("event_id"))
    if not event_id:
        raise EventRejected("event_id: every Square event needs its id")
    refund = kind.startswith("refund.")
    order_id = text(record.get("order_id")) or text(record.get("payment_id" if refund else "id"))
    if not order_id:
        raise EventRejected("order_id: the payment names no order and has no id")
    revenue, currency = _amount(record.get("amount_money") if refund else
                                record.get("total_money") or record.get("amount_money"))
    ids = person("square", order_id, text(record.get("buyer_email_address")), text(record.get("customer_id")))
    return [order_event(
        REFUNDED if refund else COMPLETED, provider="square", message_id=f"square:{event_id}", order_id=order_id,
        revenue=revenue, currency=currency, channel="pos", timestamp=text(record.get("created_at")) or None,
        ids=ids, store_id=text(record.get("location_id")),
        properties={"return_id": text(record.get("id")) if refund else None, "payment_id": record.get("id"),
                    "receipt_number": record.get("receipt_number"), "source_type": record.get("source_type")})]


PROVIDER = Provider(verify=verify, events=events)

"""Mailgun's webhooks: JSON events signed with HMAC-SHA256 (hex) over ``timestamp + token`` by the signing key.

The signature travels in the body (``signature.timestamp``, ``.token``, ``.signature``); ``event-data.id`` is
the id. ``opened``, ``clicked``, ``delivered``, permanent ``failed`` (a bounce), ``unsubscribed`` and
``complained`` are kept; temporary failures are not (Mailgun retries the delivery).
"""

from __future__ import annotations

from typing import Any

from collector.errors import EventRejected, PayloadInvalid, SignatureInvalid
from collector.sources.config import Source
from collector.sources.email import email_event
from collector.sources.signatures import check_hmac
from collector.sources.webhook import Mapped, Provider, WebhookRequest, ids_of, iso_from_unix, json_body, obj, text

__all__ = ["PROVIDER"]

_KINDS = {"opened": "open", "clicked": "click", "delivered": "delivered", "failed": "bounce",
          "unsubscribed": "unsubscribe", "complained": "spam"}


def _doc(request: WebhookRequest) -> dict[str, Any]:
    doc = json_body(request.body)
    if not isinstance(doc, dict):
        raise PayloadInvalid("Mailgun posts a JSON object with signature and event-data")
    return doc


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify ``signature.signature`` = HMAC-SHA256(signing key, timestamp + token), in hex."""
    try:
        signature = _doc(request).get("signature")
    except PayloadInvalid:
        raise SignatureInvalid("the body is not JSON, so it carries no signature") from None
    if not isinstance(signature, dict):
        raise SignatureInvalid("missing the signature object")
    timestamp, token, given = (text(signature.get(k)) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise SignatureInvalid("signature needs timestamp, token and signature")
    check_hmac(given, source.option("signing_key"), (timestamp + token).encode(), encoding="hex")


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The one event of the request (none for a temporary failure or an event Reise does not keep)."""
    data = _doc(request).get("event-data")
    if not isinstance(data, dict):
        raise PayloadInvalid("event-data: expected an object")
    kind = _KINDS.get(text(data.get("event")))
    if kind is None or (kind == "bounce" and data.get("severity") == "temporary"):
        return []
    event_id = text(data.get("id"))
    if not event_id:
        raise EventRejected("event-data.id: every Mailgun event needs its id")
    custom = obj(data.get("user-variables"))
    client = obj(data.get("client-info"))
    message = obj(data.get("message"))
    headers = obj(message.get("headers"))
    tags, campaigns = data.get("tags"), data.get("campaigns")
    campaign = text(custom.get("campaign")) or (
        text(campaigns[0].get("name")) if isinstance(campaigns, list) and campaigns and isinstance(campaigns[0], dict)
        else text(tags[0]) if isinstance(tags, list) and tags else "")
    properties = {"provider": "mailgun", "url": data.get("url"), "message_id": headers.get("message-id"),
                  "reason": text(data.get("reason")) or None,
                  **{k: v for k, v in custom.items() if isinstance(v, str | int | float)}}
    return [email_event(kind, message_id=f"mailgun:{event_id}", ids=ids_of(data.get("recipient"), custom),
                        timestamp=iso_from_unix(data.get("timestamp")), properties=properties,
                        user_agent=text(client.get("user-agent")), ip=text(data.get("ip")), campaign=campaign)]


PROVIDER = Provider(verify=verify, events=events)

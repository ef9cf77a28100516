"""Postmark's webhooks: one JSON event per request, authenticated by HTTP Basic credentials on the webhook URL.

Configure the URL as ``https://USER:PASSWORD@collect.example.com/hooks/<source>``; Postmark sends them as Basic
auth. Postmark events carry no event id: the id is the record type, the message id and the event's time (and
the link, for clicks), so a retry is stored once.
"""

from __future__ import annotations

from typing import Any

from collector.errors import EventRejected, PayloadInvalid
from collector.sources.config import Source
from collector.sources.email import email_event
from collector.sources.signatures import check_basic
from collector.sources.webhook import Mapped, Provider, WebhookRequest, ids_of, json_body, obj, text

__all__ = ["PROVIDER"]

# RecordType -> (kind, the field holding its time)
_KINDS = {"Open": ("open", "ReceivedAt"), "Click": ("click", "ReceivedAt"), "Delivery": ("delivered", "DeliveredAt"),
          "Bounce": ("bounce", "BouncedAt"), "SpamComplaint": ("spam", "BouncedAt"),
          "SubscriptionChange": ("unsubscribe", "ChangedAt")}


def verify(source: Source, request: WebhookRequest) -> None:
    """Check the Basic credentials against the source's ``username`` and ``password``."""
    check_basic(request.headers.get("Authorization"), source.option("username"), source.option("password"))


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The request's one event (none for a record type Reise does not keep, or a re-subscription)."""
    doc: Any = json_body(request.body)
    if not isinstance(doc, dict):
        raise PayloadInvalid("Postmark posts one JSON object per event")
    record = text(doc.get("RecordType"))
    if record not in _KINDS or (record == "SubscriptionChange" and doc.get("SuppressSending") is False):
        return []
    kind, time_field = _KINDS[record]
    message = text(doc.get("MessageID"))
    when = text(doc.get(time_field))
    if not message:
        raise EventRejected("MessageID: every Postmark event names its message")
    key = ":".join(filter(None, (record, message, when, text(doc.get("OriginalLink")))))
    metadata = obj(doc.get("Metadata"))
    client = obj(doc.get("Client"))
    properties = {"provider": "postmark", "url": doc.get("OriginalLink"), "message_id": message,
                  "message_stream": doc.get("MessageStream"), "reason": doc.get("Description"),
                  "first_open": doc.get("FirstOpen"), "platform": doc.get("Platform"), "client": client.get("Name"),
                  **{k: v for k, v in metadata.items() if isinstance(v, str | int | float)}}
    return [email_event(kind, message_id=f"postmark:{key}", ids=ids_of(doc.get("Recipient") or doc.get("Email"),
                                                                        metadata),
                        timestamp=when or None, properties=properties, user_agent=text(doc.get("UserAgent")),
                        campaign=text(metadata.get("campaign")) or text(doc.get("Tag")))]


PROVIDER = Provider(verify=verify, events=events)

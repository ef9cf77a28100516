"""SendGrid's Event Webhook: ECDSA-signed (P-256, SHA-256) batches of delivery, open, click, bounce and unsubscribe.

SendGrid signs ``timestamp + raw body`` and sends the signature (base64 DER) in
``X-Twilio-Email-Event-Webhook-Signature`` and the timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``; the
source's ``public_key`` is the verification key SendGrid shows (base64 DER, or PEM). ``sg_event_id`` is the id.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from collector.errors import ConfigError, EventRejected, PayloadInvalid, SignatureInvalid
from collector.sources.config import Source
from collector.sources.email import email_event
from collector.sources.signatures import header
from collector.sources.webhook import (
    Event,
    Mapped,
    Provider,
    WebhookRequest,
    each,
    ids_of,
    iso_from_unix,
    json_body,
    text,
)

__all__ = ["PROVIDER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "public_key"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_KINDS = {"open": "open", "click": "click", "delivered": "delivered", "bounce": "bounce", "dropped": "bounce",
          "unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe", "spamreport": "spam"}
_OWN = frozenset({"email", "timestamp", "event", "sg_event_id", "sg_message_id", "smtp-id", "useragent", "ip",
                  "category", "url", "url_offset", "sg_machine_open", "reason", "status", "type", "response",
                  "attempt", "tls", "cert_err", "asm_group_id", "marketing_campaign_id", "marketing_campaign_name",
                  "bounce_classification"})


def public_key(text_key: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form (as SendGrid shows it) or PEM."""
    try:
        key = (load_pem_public_key(text_key.encode()) if "BEGIN PUBLIC KEY" in text_key
               else load_der_public_key(base64.b64decode(text_key)))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"REISE_SOURCES: SendGrid public_key is not a public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("REISE_SOURCES: SendGrid public_key must be an ECDSA key")
    return key


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify the ECDSA signature over the timestamp header and the raw body."""
    signature = header(request.headers, SIGNATURE_HEADER)
    timestamp = header(request.headers, TIMESTAMP_HEADER)
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is not base64") from None
    try:
        public_key(source.option("public_key")).verify(raw, timestamp.encode() + request.body,
                                                        ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureInvalid("does not verify with the source's public key") from None


def _event(item: Any) -> list[Event]:
    if not isinstance(item, dict):
        raise EventRejected("event: expected a JSON object")
    kind = _KINDS.get(text(item.get("event")))
    if kind is None:
        return []  # processed, deferred ...: nothing happened between the shop and the person
    event_id = text(item.get("sg_event_id"))
    if not event_id:
        raise EventRejected("sg_event_id: every SendGrid event needs its id")
    category = item.get("category")
    campaign = text(item.get("campaign")) or text(item.get("marketing_campaign_name")) or (
        text(category[0]) if isinstance(category, list) and category else text(category))
    custom = {k: v for k, v in item.items() if k not in _OWN}
    properties = {"sg_message_id": item.get("sg_message_id"), "url": item.get("url"), "reason": item.get("reason"),
                  "provider": "sendgrid", **{k: v for k, v in custom.items() if isinstance(v, str | int | float)}}
    if item.get("sg_machine_open") is True:
        properties["machine_open"] = True
    return [email_event(kind, message_id=f"sendgrid:{event_id}", ids=ids_of(item.get("email"), custom),
                       timestamp=iso_from_unix(item.get("timestamp")), properties=properties,
                       user_agent=text(item.get("useragent")), ip=text(item.get("ip")), campaign=campaign)]


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The batch's events (processed and deferred are skipped: nothing happened between shop and person)."""
    doc = json_body(request.body)
    if not isinstance(doc, list):
        raise PayloadInvalid("SendGrid posts a JSON array of events")
    return each(doc, _event)


PROVIDER = Provider(verify=verify, events=events)

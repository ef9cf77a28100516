"""Meta's webhooks (Instagram comments and mentions, Facebook lead ads), ``X-Hub-Signature-256`` signed.

The signature is ``sha256=`` and the hex HMAC-SHA256 of the raw body by the app secret. Subscribing, Meta
first sends a GET with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge``: the collector echoes
the challenge when the token is the source's ``verify_token`` (``handshake``).

Every change becomes a social touchpoint. The person, where the payload names one, is the anonymous id
``instagram:<id of the commenter>``; an alias or identify from the shop (an account linking its Instagram)
folds it into the customer. A mention or a lead names nobody: it is kept under its own id
(``instagram-mention:<comment or media id>``, ``facebook-lead:<leadgen id>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import EventRejected, PayloadInvalid, SignatureInvalid
from collector.sources.config import Source
from collector.sources.signatures import check_hmac, check_token, header
from collector.sources.webhook import Event, Mapped, Provider, WebhookRequest, each, iso_from_unix, json_body, obj, text

__all__ = ["PROVIDER", "SIGNATURE_HEADER", "handshake"]

SIGNATURE_HEADER = "X-Hub-Signature-256"


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify ``sha256=<hex HMAC-SHA256(app secret, body)>``."""
    check_hmac(header(request.headers, SIGNATURE_HEADER), source.option("app_secret"), request.body,
               encoding="hex", prefix="sha256=", what=SIGNATURE_HEADER)


def handshake(source: Source, query: Mapping[str, str]) -> str:
    """The challenge to answer a subscription request with; SignatureInvalid for a wrong verify token."""
    if query.get("hub.mode") != "subscribe":
        raise SignatureInvalid("hub.mode: expected subscribe")
    check_token(query.get("hub.verify_token"), source.option("verify_token"), "hub.verify_token")
    return query.get("hub.challenge", "")


def _change(obj_kind: str, entry: dict[str, Any], change: dict[str, Any]) -> list[Event]:
    field, value = text(change.get("field")), obj(change.get("value"))
    when = iso_from_unix(value.get("created_time") or entry.get("time"))
    props: dict[str, Any] = {"provider": "meta", "account_id": text(entry.get("id"))}
    if obj_kind == "instagram" and field == "comments":
        commenter, media = obj(value.get("from")), obj(value.get("media"))
        comment_id = text(value.get("id"))
        name, message_id = "Instagram Comment", f"meta:comment:{comment_id}"
        ids = {"anonymousId": f"instagram:{text(commenter.get('id'))}"} if text(commenter.get("id")) else \
            {"anonymousId": f"instagram-comment:{comment_id}"}
        props.update(comment_id=comment_id, media_id=text(media.get("id")), username=text(commenter.get("username")),
                     parent_id=text(value.get("parent_id")), media_product_type=text(media.get("media_product_type")))
    elif obj_kind == "instagram" and field == "mentions":
        comment_id, media_id = text(value.get("comment_id")), text(value.get("media_id"))
        name, message_id = "Instagram Mention", f"meta:mention:{comment_id or media_id}"
        ids = {"anonymousId": f"instagram-mention:{comment_id or media_id}"}
        props.update(comment_id=comment_id, media_id=media_id)
    elif obj_kind == "page" and field == "leadgen":
        lead = text(value.get("leadgen_id"))
        name, message_id = "Lead Form Submitted", f"meta:leadgen:{lead}"
        ids = {"anonymousId": f"facebook-lead:{lead}"}
        props.update(leadgen_id=lead, form_id=text(value.get("form_id")), ad_id=text(value.get("ad_id")),
                     page_id=text(value.get("page_id")), adgroup_id=text(value.get("adgroup_id")))
    else:
        return []
    if message_id.endswith(":"):
        raise EventRejected(f"{field}: the change names no id")
    event: Event = {"type": "track", "event": name, "messageId": message_id, "channel": "social",
                    "properties": {k: v for k, v in props.items() if v}, **ids}
    if when:
        event["timestamp"] = when
    return [event]


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The social touchpoints of every entry's changes (changes of other fields are skipped)."""
    doc = json_body(request.body)
    if not isinstance(doc, dict) or not isinstance(doc.get("entry"), list):
        raise PayloadInvalid("Meta posts a JSON object with an entry list")
    kind = text(doc.get("object"))
    pairs = [(entry, change) for entry in doc["entry"] if isinstance(entry, dict)
             for change in entry.get("changes") or () if isinstance(change, dict)]
    return each(pairs, lambda pair: _change(kind, pair[0], pair[1]))


PROVIDER = Provider(verify=verify, events=events)

"""What the e-mail providers share: their event kinds as Reise events, and bounces as facts about the address.

Opens and clicks are contacts (``Email Opened``, ``Email Link Clicked``: consideration by the stage rules), a
delivery reaches the person (``Email Delivered``: awareness), an unsubscribe or a spam complaint is their act.
A bounce or a dropped message reached nobody: it is kept as an ``identify`` (not a contact) with the trait
``email_bounced``. A machine open (Apple Mail Privacy Protection's proxy, a scanner), where the provider says
so, carries ``properties.machine_open = true``; the user agent goes to ``context.userAgent`` for the
collector's own bot and mail-machine flags.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BOUNCE", "EMAIL_EVENTS", "email_event"]

BOUNCE = "Email Bounced"
EMAIL_EVENTS = {
    "open": "Email Opened",
    "click": "Email Link Clicked",
    "delivered": "Email Delivered",
    "unsubscribe": "Email Unsubscribed",
    "spam": "Email Marked as Spam",
    "bounce": BOUNCE,
}


def email_event(kind: str, *, message_id: str, ids: dict[str, str], timestamp: str | None,
                properties: dict[str, Any], user_agent: str = "", ip: str = "", campaign: str = "") -> dict[str, Any]:
    """A Segment-shaped event for one e-mail event of a kind in EMAIL_EVENTS."""
    name = EMAIL_EVENTS[kind]
    context: dict[str, Any] = {}
    if user_agent:
        context["userAgent"] = user_agent
    if ip:
        context["ip"] = ip
    props = {k: v for k, v in properties.items() if v not in (None, "", [], {})}
    if campaign:
        props["campaign"] = campaign
    event: dict[str, Any] = {"messageId": message_id, "channel": "email", "context": context, **ids}
    if timestamp:
        event["timestamp"] = timestamp
    if kind == "bounce":  # reached nobody: a fact about the address, not a contact
        event.update(type="identify", name=name, traits={"email_bounced": True, **props})
    else:
        event.update(type="track", event=name, properties=props)
    return event

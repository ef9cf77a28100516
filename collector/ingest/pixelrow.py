"""The pixel's common hit built straight into its touchpoint row, without the general event path.

A pixel hit stands for a Segment-shaped event of a fixed shape (``collector.ingest.pixels.pixel_event``):
a few top-level fields from the query, a context of library, user agent, client address, UTM campaign and
page, and the query's other fields as properties. ``normalise`` reads dozens of fields of any event; for a
track hit of that shape most of them cannot be there, so ``pixel_row`` builds the row from the query's fields
directly. It answers None for anything it does not cover (another type, consent, identity verification, a
property ``normalise`` reads, any value it would refuse or treat specially): the caller then takes the
general path, ``normalise(pixel_event(...))``, which stays the one place that rejects and explains.
tests/channels/test_pixel_row.py holds the two paths to the same rows over many generated hits.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from collector.enrich.mail import is_click
from collector.enrich.pipeline import NOT_ENRICHED, Enricher
from collector.errors import EventRejected
from collector.ingest.protocol import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MIN_EVENT_MS,
    IngestContext,
    Row,
    anonymise_ip,
    channel_of_words,
)
from collector.ingest.stages import STAGE_RANK

__all__ = ["LIBRARY", "PIXEL_LIBRARY", "pixel_row", "split_params"]

# Query parameter -> event field; everything else except cache busters becomes a property.
FIELDS = {
    "type": "type", "event": "event", "e": "event", "channel": "channel", "ch": "channel", "stage": "stage",
    "userId": "userId", "uid": "userId", "anonymousId": "anonymousId", "aid": "anonymousId",
    "messageId": "messageId", "mid": "messageId", "campaign": "campaign", "c": "campaign", "name": "name",
    "userHash": "userHash", "uh": "userHash", "consent": "consent",
}  # fmt: skip
UTM = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name", "utm_term": "term",
       "utm_content": "content"}
IGNORED = frozenset({"writeKey", "k", "cb", "_", "rnd", "url", "ref"})
LIBRARY = {"name": "reise-pixel", "version": "1"}
PIXEL_LIBRARY = "reise-pixel/1"  # LIBRARY as normalise writes it
# Properties normalise (or the enrichment) reads for a track event: a hit with one of them takes the general path.
_READ_PROPERTIES = frozenset({"channel", "url", "referrer", "name", "revenue", "total", "currency", "campaign",
                              "store_id", "order_id", "orderId", "category", "machine_open", "sent_at"})
_NO_CONTEXT: dict[str, Any] = {}  # what the enrichment reads of a pixel's context (device, os): never there
MEMO_SIZE = 4096  # enrichments remembered (mail proxies and a visitor's hits repeat them)


def split_params(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The query's fields as event fields, UTM campaign fields and properties (cache busters left out)."""
    fields: dict[str, str] = {}
    campaign: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, value in params.items():
        if name in FIELDS:
            fields[FIELDS[name]] = value
        elif name in UTM:
            campaign[UTM[name]] = value
        elif name not in IGNORED:
            properties[name] = value
    return fields, campaign, properties


def pixel_row(
    params: dict[str, str], *, page_url: str, user_agent: str, ip: str, ctx: IngestContext, received_ms: int
) -> Row | None:
    """The row ``normalise(pixel_event(params, ...), None, ctx)`` gives, for a plain track hit; else None.

    ``ctx`` stands for the key and the request's behaviour (its own ``received_ms`` is not read: the hit's
    is ``received_ms``). None means: not covered here, take the general path (which may also refuse the hit).
    """
    fields, utm, properties = split_params(params)
    get = fields.get
    if (get("type", "track") != "track" or "consent" in fields or ctx.verify_secret or ctx.batch_context
            or ctx.batch_integrations or received_ms < MIN_EVENT_MS or not _READ_PROPERTIES.isdisjoint(properties)):
        return None
    customer_id = get("userId", "")
    anonymous_id = get("anonymousId", "")
    if (not customer_id and not anonymous_id) or len(customer_id) > MAX_ID_CHARS or len(anonymous_id) > MAX_ID_CHARS:
        return None
    raw_channel = get("channel")
    name = get("event") or ("email_opened" if raw_channel == "email" else "")
    if not name or len(name) > MAX_NAME_CHARS:
        return None
    message_id = get("messageId") or uuid.uuid4().hex
    if len(message_id) > MAX_ID_CHARS:
        return None
    try:
        named, hint = channel_of_words(raw_channel, None, None)  # normalise's rule for a top-level channel
    except EventRejected:
        return None
    channel = named if named is not None else \
        ctx.default_channel if ctx.single_channel else hint or ctx.default_channel
    if ctx.channels is not None and channel not in ctx.channels:
        return None
    stage = get("stage")
    if stage is not None and stage not in STAGE_RANK:
        return None
    if utm:
        source, medium = utm.get("source", ""), utm.get("medium", "")
        utm_campaign, term, content = utm.get("name", ""), utm.get("term", ""), utm.get("content", "")
        if max(len(source), len(medium), len(utm_campaign), len(term), len(content)) > MAX_NAME_CHARS:
            return None
    else:
        source = medium = utm_campaign = term = content = ""
    url = params.get("url") or page_url
    referrer = params.get("ref", "")
    if len(url) > 4096 or len(referrer) > 4096 or len(ip) > 64:
        return None
    campaign = get("campaign") or utm_campaign
    if len(campaign) > MAX_NAME_CHARS:
        return None
    stage = stage or ctx.rules.stage_for("track", name, channel)
    if stage and stage not in ctx.scope.stages:
        return None
    journey_id = ctx.identity.journey_id(customer_id, anonymous_id)
    user_agent = user_agent[:1024]
    enricher = ctx.enricher
    if enricher is None:
        enriched = NOT_ENRICHED
    elif channel == "email" and is_click(name):  # a click's timing depends on the clicks before it
        enriched = enricher.live("track", channel, name, user_agent, ip or ctx.client_ip, _NO_CONTEXT, journey_id,
                                 campaign, url, received_ms, properties, ctx.behaviour)
    else:
        enriched = _enriched(enricher, channel, name, user_agent, ip or ctx.client_ip, ctx.behaviour)
    at = received_ms / 1000
    page = {"page": {"url": url, "referrer": referrer}} if url or referrer else {}
    return (  # noqa: RUF005 - as in normalise: one tuple concatenation is cheaper than unpacking
        message_id, "track", name, journey_id, customer_id, anonymous_id, channel, stage, STAGE_RANK.get(stage, 0),
        at, at, None, at, 0.0, "", campaign, source, medium, utm_campaign, term, content, "", "", ctx.source,
        url, referrer, anonymise_ip(ip, ctx.ip_mode) if ip else ctx.kept_client_ip, user_agent, PIXEL_LIBRARY,
        properties, {}, "", "", "", "", "", "", "", page, {},
    ) + enriched


@lru_cache(maxsize=MEMO_SIZE)
def _enriched(enricher: Enricher, channel: str, name: str, user_agent: str, ip: str, behaviour: str) -> tuple[Any, ...]:
    """The enrichment of a hit that is not an e-mail click: it depends on these values only (properties a
    pixel_row hit may carry are none the enrichment reads), so repeats are answered from memory."""
    return enricher.live("track", channel, name, user_agent, ip, _NO_CONTEXT, "", "", "", 0, None, behaviour)

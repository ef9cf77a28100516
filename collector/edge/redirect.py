"""Signed click links: ``GET /r/{token}`` records the click and redirects; never an open redirect."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from collector.edge.appkeys import INGESTOR
from collector.edge.clientip import client_address, is_prefetch
from collector.edge.pixel import NO_CACHE
from collector.errors import LinkInvalid, TryLater
from collector.ingest.linktoken import verify
from collector.settings import WriteKey

__all__ = ["ANONYMOUS_COOKIE", "LINKS_SOURCE", "click_event", "redirect"]

log = structlog.get_logger("reise.links")

LINKS_SOURCE = WriteKey(source="links", key="")  # the source recorded on clicks; links are signed, not keyed
ANONYMOUS_COOKIE = "reise_aid"
MAX_QUERY_CHARS = 1024
_CLICK_EVENTS = {"email": "email_clicked", "sms": "sms_clicked", "social": "social_clicked", "ads": "ad_clicked"}
_INVALID_PAGE = b"<!doctype html><title>Invalid link</title><p>This link is invalid or has expired.</p>\n"


def click_event(payload: dict[str, Any], query: dict[str, str], anonymous_id: str, user_agent: str) -> dict[str, Any]:
    """The touchpoint of one click: the token's fields; ids from the query string only when the token has none."""
    channel = payload.get("channel") or "email"
    properties = dict(payload.get("properties") or {}) if isinstance(payload.get("properties"), dict) else {}
    properties["url"] = payload["url"]
    event: dict[str, Any] = {
        "type": "track",
        "event": payload.get("event") or _CLICK_EVENTS.get(channel, "link_clicked"),
        "channel": channel,
        "properties": properties,
        "context": {"library": {"name": "reise-link", "version": "1"}, "userAgent": user_agent[:1024]},
    }
    for field in ("campaign", "stage"):
        if payload.get(field):
            event[field] = payload[field]
    user_id, anon = payload.get("userId"), payload.get("anonymousId")
    if not user_id and not anon:  # newsletter tools fill ids in per recipient, after the link was signed
        # one id at most from the unsigned query: two would link them, and anyone can edit a query string
        user_id = query.get("uid") or query.get("userId")
        anon = None if user_id else query.get("aid") or query.get("anonymousId")
    event["userId"], event["anonymousId"] = user_id, anon or (None if user_id else anonymous_id)
    return event


async def redirect(request: web.Request) -> web.Response:
    """``GET /r/{token}``: 302 to the signed target after recording the click; 400 and no Location otherwise."""
    ingestor, token = request.app[INGESTOR], request.match_info["token"]
    settings = ingestor.settings
    raw_query = request.rel_url.raw_query_string
    try:
        if len(raw_query) > MAX_QUERY_CHARS:
            raise LinkInvalid(f"query: longer than {MAX_QUERY_CHARS} characters")
        payload = verify(token, settings.link_keys, now=time.time(), domains=settings.link_domains)
    except LinkInvalid as exc:
        await ingestor.keep_dead_letter(source=LINKS_SOURCE.source, endpoint="link",
                                        payload=f"{request.path[:2048]}?{raw_query[:MAX_QUERY_CHARS]}",
                                        reason=str(exc))
        return web.Response(status=400, body=_INVALID_PAGE, content_type="text/html", headers=NO_CACHE)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, max_num_fields=8):
        query.setdefault(name, value[:256])
    cookie = request.cookies.get(ANONYMOUS_COOKIE, "")
    anonymous_id = cookie if 0 < len(cookie) <= 64 else uuid.uuid4().hex
    event = click_event(payload, query, anonymous_id, request.headers.get("User-Agent", ""))
    try:
        ctx = ingestor.context(LINKS_SOURCE, int(time.time() * 1000), method=request.method,
                               prefetch=is_prefetch(request.headers),
                               client_ip=client_address(request.remote, request.headers, settings.trusted_proxies))
        await ingestor.accept(ctx, "link", [event], None)
    except TryLater as exc:  # the link is valid: the reader still gets where it leads
        log.warning("click not recorded", error=exc.reason)
    response = web.Response(status=302, headers={**NO_CACHE, "Location": payload["url"],
                                                 "Referrer-Policy": "no-referrer-when-downgrade"})
    if event["anonymousId"] == anonymous_id and cookie != anonymous_id:
        response.set_cookie(ANONYMOUS_COOKIE, anonymous_id, max_age=365 * 24 * 3600, httponly=True,
                            samesite="Lax", path="/r/")
    return response

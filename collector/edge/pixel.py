"""The tracking pixel: ``GET /p.gif`` records a touchpoint from its query string and always answers a GIF."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from collector.edge.appkeys import INGESTOR
from collector.edge.auth import find_write_key
from collector.errors import TryLater
from collector.ingest.ingestor import Ingestor

__all__ = ["GIF", "MAX_QUERY_CHARS", "NO_CACHE", "pixel", "pixel_event"]

log = structlog.get_logger("reise.pixel")

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")  # 43 bytes, transparent
MAX_QUERY_CHARS = 4096
MAX_PARAMS = 64
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
# Query parameter -> event field; everything else except cache busters becomes a property.
_FIELDS = {
    "type": "type", "event": "event", "e": "event", "channel": "channel", "ch": "channel", "stage": "stage",
    "userId": "userId", "uid": "userId", "anonymousId": "anonymousId", "aid": "anonymousId",
    "messageId": "messageId", "mid": "messageId", "campaign": "campaign", "c": "campaign", "name": "name",
}  # fmt: skip
_UTM = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name", "utm_term": "term",
        "utm_content": "content"}
_IGNORED = frozenset({"writeKey", "k", "cb", "_", "rnd", "url", "ref"})


def pixel_event(params: dict[str, str], *, page_url: str = "", user_agent: str = "") -> dict[str, Any]:
    """The Segment-shaped event a pixel hit stands for (validation is left to the protocol)."""
    event: dict[str, Any] = {"type": "track"}
    properties: dict[str, str] = {}
    campaign: dict[str, str] = {}
    for name, value in params.items():
        if name in _FIELDS:
            event[_FIELDS[name]] = value
        elif name in _UTM:
            campaign[_UTM[name]] = value
        elif name not in _IGNORED:
            properties[name] = value
    if event["type"] == "track" and not event.get("event") and event.get("channel") == "email":
        event["event"] = "email_opened"
    context: dict[str, Any] = {"library": {"name": "reise-pixel", "version": "1"}}
    if user_agent:
        context["userAgent"] = user_agent[:1024]
    if campaign:
        context["campaign"] = campaign
    url = params.get("url") or page_url
    if url or params.get("ref"):
        context["page"] = {"url": url, "referrer": params.get("ref", "")}
    event["context"] = context
    if properties:
        event["properties"] = properties
    return event


async def _record(request: web.Request, ingestor: Ingestor) -> None:
    """Record the hit, or keep it as a dead letter; never raises for bad input."""
    raw = request.rel_url.raw_query_string
    if len(raw) > MAX_QUERY_CHARS:
        kept = raw if len(raw) <= 2 * MAX_QUERY_CHARS else f"{raw[:MAX_QUERY_CHARS]}...{raw[-MAX_QUERY_CHARS:]}"
        await ingestor.keep_dead_letter(source="", endpoint="pixel", payload=kept,
                                        reason=f"query: longer than {MAX_QUERY_CHARS} characters ({len(raw)})")
        return
    pairs = parse_qsl(raw, keep_blank_values=False, max_num_fields=MAX_PARAMS)
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    key = find_write_key(ingestor.settings.write_keys, params.get("writeKey") or params.get("k"))
    if key is None or not key.public:
        reason = "write key: unknown or missing" if key is None else "write key: the pixel takes a public key (pk_)"
        await ingestor.keep_dead_letter(source=key.source if key else "", endpoint="pixel", payload=raw,
                                        reason=reason)
        return
    event = pixel_event(params, page_url=request.headers.get("Referer", ""),
                        user_agent=request.headers.get("User-Agent", ""))
    await ingestor.accept(ingestor.context(key, int(time.time() * 1000)), "pixel", [event], None)


async def pixel(request: web.Request) -> web.Response:
    """``GET /p.gif``: record a touchpoint; answer the 43-byte transparent GIF whatever happens."""
    ingestor = request.app[INGESTOR]
    try:
        await _record(request, ingestor)
    except ValueError as exc:  # more than MAX_PARAMS fields, undecodable query
        raw = request.rel_url.raw_query_string[:MAX_QUERY_CHARS]
        await ingestor.keep_dead_letter(source="", endpoint="pixel", payload=raw, reason=f"query: {exc}")
    except TryLater as exc:
        log.warning("pixel hit not kept", error=exc.reason)
    except Exception:
        log.exception("pixel hit failed")
    return web.Response(body=GIF, content_type="image/gif", headers=NO_CACHE)

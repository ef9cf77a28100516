"""The Snowplow collector endpoints: ``GET /i`` (one payload in the query string, answered with a GIF) and
``POST /com.snowplowanalytics.snowplow/tp2`` (a payload_data batch), with CORS for browser trackers.

Each payload's source is the write key of the request's ``writeKey`` query parameter, else the Snowplow source of
REISE_SOURCES whose ``app_ids`` hold its ``aid``. As Snowplow's own collector keeps failed events, a payload
that cannot be read, or names no source, is kept as a dead letter with the reason; the tracker is answered 200
either way (it would only send the same bad payload again). A body that is no payload_data at all is a 400.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from collector.edge.answers import json_response
from collector.edge.appkeys import INGESTOR
from collector.edge.auth import find_write_key
from collector.edge.body import read_body
from collector.edge.metrics import METRICS
from collector.edge.pixel import GIF, NO_CACHE
from collector.errors import PayloadInvalid
from collector.ingest.ingestor import Accepted, Ingestor
from collector.ingest.protocol import IngestContext
from collector.limits import MAX_BATCH_BYTES
from collector.sources.context import source_context
from collector.sources.snowplow import payloads_of_post, to_events

__all__ = ["POST_PATH", "snowplow_routes"]

POST_PATH = "/com.snowplowanalytics.snowplow/tp2"
ENDPOINT = "snowplow"
_KEY_PARAMS = ("writeKey", "wk")


def _cors(request: web.Request) -> dict[str, str]:
    """Snowplow's browser tracker posts with credentials: the origin is echoed, never ``*``."""
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS", "Vary": "Origin",
            "Access-Control-Allow-Headers": "Content-Type, SP-Anonymous", "Access-Control-Max-Age": "86400"}


class _Request:
    """One request's payloads grouped by the source that takes them."""

    def __init__(self, request: web.Request, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.received_ms = int(time.time() * 1000)
        settings = ingestor.settings
        given = next((request.query[p] for p in _KEY_PARAMS if request.query.get(p)), None)
        key = find_write_key(settings.write_keys, given)
        self.bad_key = given is not None and key is None
        self.key_ctx = ingestor.context(key, self.received_ms) if key is not None else None
        self.groups: dict[str, tuple[IngestContext, str, list[Any]]] = {}  # source -> (ctx, kind, events)
        self.dead: list[tuple[str, Any, str]] = []  # (source, payload, reason)

    def add(self, payload: Any, event: dict[str, Any] | str) -> None:
        ctx, kind = self._context(payload)
        if isinstance(event, str) or ctx is None:
            reason = event if isinstance(event, str) else kind
            self.dead.append((ctx.source if ctx is not None else ENDPOINT, payload, reason))
            return
        self.groups.setdefault(ctx.source, (ctx, kind, []))[2].append(event)

    def _context(self, payload: Any) -> tuple[IngestContext | None, str]:
        if self.key_ctx is not None:
            return self.key_ctx, "writekey"
        if self.bad_key:
            return None, "writeKey: unknown write key"
        app_id = str(payload.get("aid", "")) if isinstance(payload, dict) else ""
        source = self.ingestor.settings.sources.for_app_id(app_id) if app_id else None
        if source is None:
            return None, (f"aid: no Snowplow source takes the app id {app_id[:64]!r} (REISE_SOURCES app_ids), and "
                          "the request names no writeKey")
        return source_context(self.ingestor, source, self.received_ms), "snowplow"

    async def ingest(self, metrics: Any) -> Accepted:
        total = Accepted()
        for ctx, kind, events in self.groups.values():
            outcome = await self.ingestor.accept(ctx, ENDPOINT, events, None)
            metrics.record_source(ctx.source, kind, "ok", outcome)
            total.accepted += outcome.accepted
            total.duplicates += outcome.duplicates
            total.without_consent += outcome.without_consent
            total.rejected += outcome.rejected
        for source, payload, reason in self.dead:
            metrics.record_source(source, ENDPOINT, "bad_payload")
            total.rejected.append({"index": -1, "messageId": None, "reason": reason})
            await self.ingestor.keep_dead_letter(source=source, endpoint=ENDPOINT, reason=reason,
                                                 payload=orjson.dumps(payload, default=str).decode())
        return total


async def pixel(request: web.Request) -> web.Response:
    """``GET /i``: one tracker payload in the query string; always answered with the 43-byte GIF."""
    ingestor = request.app[INGESTOR]
    batch = _Request(request, ingestor)
    payload = {k: v for k, v in request.query.items() if k not in _KEY_PARAMS}
    for item, event in to_events([payload], ip=request.remote or "", user_agent=request.headers.get(
            "User-Agent", "")):
        batch.add(item, event)
    await batch.ingest(request.app[METRICS])
    return web.Response(body=GIF, content_type="image/gif", headers={**NO_CACHE, **_cors(request)})


async def post(request: web.Request) -> web.Response:
    """``POST /com.snowplowanalytics.snowplow/tp2``: a payload_data batch."""
    ingestor = request.app[INGESTOR]
    raw = await read_body(request, MAX_BATCH_BYTES)
    try:
        payloads = payloads_of_post(raw)
    except PayloadInvalid as exc:
        await ingestor.keep_dead_letter(source=ENDPOINT, endpoint=ENDPOINT, payload=raw.decode("utf-8", "replace"),
                                        reason=f"payload: {exc}")
        request.app[METRICS].record_source(ENDPOINT, ENDPOINT, "bad_payload")
        return json_response({"success": False, "error": f"payload: {exc}"}, 400, _cors(request))
    batch = _Request(request, ingestor)
    for item, event in to_events(payloads, ip=request.remote or "", user_agent=request.headers.get("User-Agent", "")):
        batch.add(item, event)
    outcome = await batch.ingest(request.app[METRICS])
    return json_response(outcome.as_json(), headers=_cors(request))


async def preflight(request: web.Request) -> web.Response:
    """The CORS preflight of the browser tracker's POST."""
    return web.Response(status=204, headers=_cors(request))


def snowplow_routes() -> list[web.RouteDef]:
    """The Snowplow collector routes."""
    return [web.get("/i", pixel), web.post(POST_PATH, post), web.options(POST_PATH, preflight)]

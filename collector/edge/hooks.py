"""Signed webhooks at ``/hooks/{source}``: verify the provider's signature, map, ingest; Meta's GET handshake.

A request whose signature does not verify is answered 401, counted as a failed authentication and kept as a
dead letter with the reason; nothing of it is ingested. A signed body that is not the provider's shape is a 400
and a dead letter; payload items the mapping cannot read are dead letters within a 200, as with a batch.
"""

from __future__ import annotations

import time

import orjson
import structlog
from aiohttp import web

from collector.edge.access import authentication_failed, check_address
from collector.edge.answers import json_response
from collector.edge.appkeys import INGESTOR
from collector.edge.body import read_body
from collector.edge.metrics import METRICS
from collector.errors import EventRejected, PayloadInvalid, RequestRejected, SignatureInvalid
from collector.ingest.ingestor import Accepted
from collector.sources import meta
from collector.sources.config import Source
from collector.sources.context import source_context
from collector.sources.providers import PROVIDERS
from collector.sources.webhook import Mapped, Rejected, WebhookRequest

__all__ = ["MAX_WEBHOOK_BYTES", "hook_routes"]

log = structlog.get_logger("reise.hooks")
MAX_WEBHOOK_BYTES = 1024 * 1024  # a SendGrid batch or a large order, uncompressed


def _source(request: web.Request) -> Source:
    source = request.app[INGESTOR].settings.sources.get(request.match_info["source"])
    if source is None or source.kind not in PROVIDERS:
        authentication_failed(request, "webhook")  # guessing source names costs like guessing keys
        raise RequestRejected(404, "no webhook source of that name (REISE_SOURCES)")
    return source


def _events(source: Source, call: WebhookRequest) -> list[Mapped]:
    """The provider's events; a request that is one unreadable event (no id, say) is that event rejected."""
    try:
        return PROVIDERS[source.kind].events(source, call)
    except EventRejected as exc:
        return [Rejected(exc.reason, call.body.decode("utf-8", "replace"))]


async def webhook(request: web.Request) -> web.Response:
    """``POST /hooks/{source}``: one provider request, verified, then its events ingested."""
    check_address(request)
    source = _source(request)
    ingestor, metrics = request.app[INGESTOR], request.app[METRICS]
    provider = PROVIDERS[source.kind]
    raw = await read_body(request, MAX_WEBHOOK_BYTES)
    call = WebhookRequest(method=request.method, url=str(request.url), headers=request.headers,
                          query=request.query, body=raw)
    try:
        provider.verify(source, call)
        mapped = _events(source, call)
    except (SignatureInvalid, PayloadInvalid) as exc:
        signature = isinstance(exc, SignatureInvalid)
        if signature:
            authentication_failed(request, "webhook")
        metrics.record_source(source.name, source.kind, "bad_signature" if signature else "bad_payload")
        reason = f"{'signature' if signature else 'payload'}: {exc}"
        await ingestor.keep_dead_letter(source=source.name, endpoint=source.kind, public=False,
                                        payload=raw.decode("utf-8", "replace"), reason=reason)
        raise
    ctx = source_context(ingestor, source, int(time.time() * 1000))
    events = [m for m in mapped if not isinstance(m, Rejected)]
    try:
        outcome = await ingestor.accept(ctx, source.kind, events, None) if events else Accepted()
    except Exception:
        metrics.record_source(source.name, source.kind, "refused")
        raise
    for item in (m for m in mapped if isinstance(m, Rejected)):
        outcome.rejected.append({"index": -1, "messageId": None, "reason": item.reason})
        payload = item.payload if isinstance(item.payload, str) else orjson.dumps(item.payload, default=str).decode()
        await ingestor.keep_dead_letter(source=source.name, endpoint=source.kind, public=False, reason=item.reason,
                                        payload=payload)
    metrics.record_source(source.name, source.kind, "ok", outcome)
    return json_response(outcome.as_json())


async def subscribe(request: web.Request) -> web.Response:
    """``GET /hooks/{source}``: Meta's subscription handshake (echo ``hub.challenge`` for the verify token)."""
    check_address(request)
    source = _source(request)
    if source.kind != "meta":
        raise RequestRejected(405, "this source takes POST only")
    try:
        challenge = meta.handshake(source, request.query)
    except SignatureInvalid as exc:
        authentication_failed(request, "webhook")
        request.app[METRICS].record_source(source.name, source.kind, "bad_signature")
        raise RequestRejected(403, f"signature: {exc}") from None
    log.info("meta subscription verified", source=source.name)
    return web.Response(text=challenge, content_type="text/plain")


def hook_routes() -> list[web.RouteDef]:
    """The webhook routes."""
    return [web.post("/hooks/{source}", webhook), web.get("/hooks/{source}", subscribe)]

"""Admin endpoints for dead letters (admin key): list them by reason, replay them (collector.ingest.replay)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aiohttp import web

from collector.edge.answers import json_response
from collector.edge.appkeys import INGESTOR, READERS, STORE
from collector.edge.body import parse_json, read_body
from collector.edge.handlers import require_admin
from collector.errors import EventRejected, RequestRejected
from collector.ingest.protocol import parse_time_ms
from collector.ingest.replay import ReplayRequest, parse_assignments, replay_dead_letters
from collector.store.deadletters import Filters, list_reasons

__all__ = ["dead_letter_routes", "filters_of"]

MAX_LIMIT = 1_000_000


def filters_of(doc: dict[str, Any], *, limit: int) -> Filters:
    """Filters from an admin body: ``reason`` (text the reason contains), ``since`` (ISO date), ``limit``."""
    reason, since = doc.get("reason", ""), doc.get("since", "")
    if not isinstance(reason, str) or not isinstance(since, str):
        raise RequestRejected(400, "reason and since: expected strings")
    try:
        since_ms = parse_time_ms(since, "since") if since else 0
    except EventRejected as exc:
        raise RequestRejected(400, exc.reason) from None
    limit = doc.get("limit", limit)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise RequestRejected(400, f"limit: expected 1 to {MAX_LIMIT}")
    return Filters(reason=reason, since_ms=since_ms, include_replayed=doc.get("include_replayed") is True,
                   limit=limit)


async def _body(request: web.Request) -> dict[str, Any]:
    require_admin(request)
    raw = await read_body(request, 64 * 1024)
    doc = parse_json(raw) if raw else {}
    if not isinstance(doc, dict):
        raise RequestRejected(400, "body: expected a JSON object")
    return doc


async def list_dead_letters(request: web.Request) -> web.Response:
    """``POST /v1/admin/dead-letters`` ``{"reason", "since"}``: dead letters not replayed, by reason."""
    filters = filters_of(await _body(request), limit=100)
    store = request.app[STORE]
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(request.app[READERS], list_reasons, store, filters)
    return json_response({"columns": result.columns, "rows": result.rows})


async def replay(request: web.Request) -> web.Response:
    """``POST /v1/admin/dead-letters/replay``: ``{"reason", "since", "set": ["f=v", "f:=json"], "dry_run",
    "delete", "include_replayed", "limit"}``; answers what was replayed, and samples of what was not."""
    doc = await _body(request)
    assignments = doc.get("set", [])
    if not isinstance(assignments, list) or not all(isinstance(a, str) for a in assignments):
        raise RequestRejected(400, "set: expected a list of FIELD=VALUE strings")
    replay_request = ReplayRequest(filters=filters_of(doc, limit=100_000), assignments=parse_assignments(assignments),
                                   dry_run=doc.get("dry_run") is True, delete=doc.get("delete") is True)
    outcome = await replay_dead_letters(request.app[INGESTOR], request.app[STORE], replay_request)
    return json_response(asdict(outcome))


def dead_letter_routes() -> list[web.RouteDef]:
    """The dead-letter admin routes."""
    return [web.post("/v1/admin/dead-letters", list_dead_letters),
            web.post("/v1/admin/dead-letters/replay", replay)]

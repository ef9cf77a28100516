"""The triggers' HTTP side: admin endpoints for parked deliveries, and the dashboard's triggers panel."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.edge.access import read_as, require_admin
from collector.edge.answers import json_response
from collector.edge.appkeys import TRIGGERS
from collector.edge.body import parse_json, read_body
from collector.edge.dashboard import _require_session as require_session
from collector.edge.handlers import readonly_runner
from collector.errors import RequestRejected
from collector.triggers.service import TriggerService

__all__ = ["TRIGGERS", "trigger_routes"]

DELIVERIES_SQL = """
SELECT trigger,
       countIf(outcome = 'delivered') AS delivered,
       countIf(outcome != 'delivered') AS failed_attempts,
       countIf(outcome IN ('parked', 'refused')) AS parked,
       round(quantileIf(0.5)(since_queued_ms, outcome = 'delivered')) AS p50_ms,
       round(quantileIf(0.95)(since_queued_ms, outcome = 'delivered')) AS p95_ms,
       max(attempted_at) AS last_attempt
FROM trigger_attempts
WHERE attempted_at >= now() - INTERVAL 7 DAY
GROUP BY trigger
ORDER BY trigger
"""
HOURLY_SQL = """
SELECT toStartOfHour(attempted_at) AS hour, countIf(outcome = 'delivered') AS delivered,
       countIf(outcome != 'delivered') AS failed
FROM trigger_attempts
WHERE attempted_at >= now() - INTERVAL 2 DAY
GROUP BY hour
ORDER BY hour
"""
SEGMENT_SIZES_SQL = """
SELECT segment, hour, sum(delta) OVER (PARTITION BY segment ORDER BY hour) AS size
FROM
(
    SELECT segment, toStartOfHour(at) AS hour, sum(if(change = 'enter', 1, -1)) AS delta
    FROM segment_changes
    GROUP BY segment, hour
)
ORDER BY segment, hour
"""


def _service(request: web.Request) -> TriggerService:
    service = request.app.get(TRIGGERS)
    if service is None:
        raise RequestRejected(404, "no triggers or segments are configured (REISE_TRIGGERS)")
    return service


async def _admin_body(request: web.Request) -> dict[str, Any]:
    require_admin(request)
    raw = await read_body(request, 16 * 1024)
    doc = parse_json(raw) if raw else {}
    if not isinstance(doc, dict) or not all(isinstance(doc.get(f, ""), str) for f in ("trigger", "key")):
        raise RequestRejected(400, "body: expected {\"trigger\": name, \"key\": idempotency key} (both optional)")
    return doc


async def failed(request: web.Request) -> web.Response:
    """``POST /v1/admin/triggers/failed`` ``{"trigger"}``: parked deliveries, oldest first."""
    doc = await _admin_body(request)
    limit = doc.get("limit", 1000)
    if not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise RequestRejected(400, "limit: expected 1 to 100000")
    rows = await _service(request).deliverer.parked(doc.get("trigger", ""), limit)
    return json_response({"parked": rows})


async def replay(request: web.Request) -> web.Response:
    """``POST /v1/admin/triggers/replay`` ``{"trigger", "key"}``: parked deliveries go out again."""
    doc = await _admin_body(request)
    count = await _service(request).deliverer.replay(doc.get("trigger", ""), doc.get("key", ""))
    return json_response({"replayed": count})


async def api_triggers(request: web.Request) -> web.Response:
    """The dashboard's triggers panel: deliveries, failures and latency per trigger; segment sizes over time."""
    name = await require_session(request)
    run = readonly_runner(request.app)

    def panel() -> dict[str, Any]:
        return {"triggers": run(DELIVERIES_SQL, {}).records(), "hourly": run(HOURLY_SQL, {}).records(),
                "segments": run(SEGMENT_SIZES_SQL, {}).records()}

    payload = await read_as(request, name, panel, what="dashboard")
    return json_response(payload, headers={"Cache-Control": "no-store"})


def trigger_routes() -> list[web.RouteDef]:
    """The triggers' routes."""
    return [web.post("/v1/admin/triggers/failed", failed), web.post("/v1/admin/triggers/replay", replay),
            web.get("/dashboard/api/triggers", api_triggers)]

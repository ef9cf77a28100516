"""The dashboard's source list: every configured source (write keys, Snowplow apps, webhooks) with what it sent.

``GET /dashboard/api/sources`` (a dashboard session) answers each source's name, kind, where it sends and its
touchpoints and dead letters of the last 30 days; a source that sent nothing yet is listed with zeros, and one
that sent something but is no longer configured is listed as ``unconfigured``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.edge.access import read_as
from collector.edge.appkeys import SETTINGS
from collector.edge.dashboard import _no_store, _require_session
from collector.edge.handlers import readonly_runner
from collector.edge.snowplow import POST_PATH
from collector.settings import Settings

__all__ = ["SOURCES_SQL", "configured_sources", "source_list_routes"]

SOURCES_SQL = """
SELECT source, sum(touchpoints) AS touchpoints, sum(dead_letters) AS dead_letters, max(last_seen) AS last_seen FROM
(
    SELECT source, count() AS touchpoints, 0 AS dead_letters, max(received_at) AS last_seen FROM touchpoints
    WHERE received_at >= now64(3) - INTERVAL 30 DAY GROUP BY source
    UNION ALL
    SELECT source, 0, count(), max(received_at) FROM dead_letters
    WHERE received_at >= now64(3) - INTERVAL 30 DAY GROUP BY source
)
GROUP BY source
"""


def configured_sources(settings: Settings) -> list[dict[str, Any]]:
    """Every source the settings name: write-key sources and REISE_SOURCES entries (no secrets)."""
    found: dict[str, dict[str, Any]] = {}
    for key in settings.write_keys.values():
        entry = found.setdefault(key.source, {"source": key.source, "kinds": [], "endpoints": []})
        kind = "public key" if key.public else "secret key"
        if kind not in entry["kinds"]:
            entry["kinds"].append(kind)
            entry["endpoints"].append("/v1/batch")
    for source in settings.sources.by_name.values():
        entry = found.setdefault(source.name, {"source": source.name, "kinds": [], "endpoints": []})
        entry["kinds"].append(source.kind)
        entry["endpoints"].append(f"/i, {POST_PATH}" if source.kind == "snowplow" else f"/hooks/{source.name}")
    return [{**e, "kinds": sorted(set(e["kinds"])), "endpoints": sorted(set(e["endpoints"]))} for e in found.values()]


async def api_sources(request: web.Request) -> web.Response:
    """The source list with the last 30 days' touchpoints and dead letters of each."""
    name = await _require_session(request)
    run = readonly_runner(request.app)
    result = await read_as(request, name, lambda: run(SOURCES_SQL, {}), what="dashboard")
    counts = {row["source"]: row for row in result.records()}
    sources = configured_sources(request.app[SETTINGS])
    for entry in sources:
        seen = counts.pop(entry["source"], None)
        entry.update(touchpoints=int(seen["touchpoints"]) if seen else 0,
                     dead_letters=int(seen["dead_letters"]) if seen else 0,
                     last_seen=seen["last_seen"] if seen else None)
    for source, seen in counts.items():
        sources.append({"source": source, "kinds": ["unconfigured"], "endpoints": [],
                        "touchpoints": int(seen["touchpoints"]), "dead_letters": int(seen["dead_letters"]),
                        "last_seen": seen["last_seen"]})
    return _no_store({"sources": sorted(sources, key=lambda s: (-s["touchpoints"], s["source"]))})


def source_list_routes() -> list[web.RouteDef]:
    """The source list's route."""
    return [web.get("/dashboard/api/sources", api_sources)]

"""analytics.js unchanged: the settings Segment's ``@segment/analytics-next`` and RudderStack's
``@rudderstack/analytics-js`` fetch at load, answered by Reise for a public write key, and Segment's short
browser endpoints (``/v1/t``, ``/v1/p`` ...).

Segment's library asks ``{cdnURL}/v1/projects/{writeKey}/settings``; the answer points its ``Segment.io``
destination at this collector (``apiHost`` = the host the page called, ``/v1``), with no device-mode
destinations and no metrics. RudderStack's asks ``{configUrl}/sourceConfig/?writeKey=...`` (the key also as
Basic auth); the answer is an enabled source without destinations, so events go to its data plane URL, this
collector's ``/v1/{type}``. Both answers carry CORS for any origin. Only public keys (``pk_``) are answered: a
browser library's key is in every page. Reference: docs/sources.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.edge.access import authentication_failed, check_address
from collector.edge.answers import json_response
from collector.edge.appkeys import SETTINGS
from collector.edge.auth import basic_user, find_write_key
from collector.edge.handlers import _ingest
from collector.edge.snippet import CORS_HEADERS
from collector.errors import RequestRejected
from collector.settings import WriteKey

__all__ = ["SHORT_PATHS", "ajs_routes"]

# Segment's browser library posts each call to the first letter of its type
SHORT_PATHS = {"t": "track", "p": "page", "i": "identify", "a": "alias", "g": "group", "s": "screen"}
_NO_CACHE = {**CORS_HEADERS, "Cache-Control": "no-cache, max-age=60"}


def _public_key(request: web.Request, candidate: str | None) -> WriteKey:
    check_address(request)
    key = find_write_key(request.app[SETTINGS].write_keys, candidate)
    if key is None:
        authentication_failed(request, "write")
        raise RequestRejected(404, "no source with this write key")
    if not key.public:
        raise RequestRejected(403, "a browser library needs a public key (pk_...); secret keys stay on servers")
    return key


def _host(request: web.Request) -> tuple[str, str]:
    """The scheme and host the page reached this collector by (behind a TLS proxy: X-Forwarded-Proto)."""
    https = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    return ("https" if https else "http"), request.host


async def segment_settings(request: web.Request) -> web.Response:
    """``GET /v1/projects/{write_key}/settings``: Segment's CDN settings, sending everything to this collector."""
    key = _public_key(request, request.match_info["write_key"])
    scheme, host = _host(request)
    body: dict[str, Any] = {
        "integrations": {"Segment.io": {
            "apiKey": key.key, "apiHost": f"{host}/v1", "protocol": scheme, "unbundledIntegrations": [],
            "addBundledMetadata": True, "maybeBundledConfigIds": {},
            "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]}}},
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                 "identify": {"__default": {"enabled": True}}, "group": {"__default": {"enabled": True}}},
        "edgeFunction": {}, "analyticsNextEnabled": True, "middlewareSettings": {}, "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": f"{host}/v1"}, "legacyVideoPluginsEnabled": False,
        "remotePlugins": [], "consentSettings": {"allCategories": [], "hasUnmappedDestinations": False},
    }
    return json_response(body, headers=_NO_CACHE)


async def rudder_source_config(request: web.Request) -> web.Response:
    """``GET /sourceConfig/``: RudderStack's source configuration, an enabled source without destinations."""
    key = _public_key(request, request.query.get("writeKey") or basic_user(request.headers.get("Authorization")))
    body = {"isHosted": False, "source": {
        "id": f"reise-{key.source}", "name": key.source, "writeKey": key.key, "enabled": True,
        "workspaceId": "reise", "config": {"statsCollection": {"errorReports": {"enabled": False},
                                                               "metrics": {"enabled": False}}},
        "destinations": []}}
    return json_response(body, headers=_NO_CACHE)


async def preflight(request: web.Request) -> web.Response:
    """The CORS preflight of RudderStack's settings request (it sends the key as Basic auth)."""
    return web.Response(status=204, headers=CORS_HEADERS)


def ajs_routes() -> list[web.RouteDef]:
    """The settings routes of both libraries and Segment's short event paths."""
    return [
        web.get("/v1/projects/{write_key}/settings", segment_settings),
        web.get("/sourceConfig/", rudder_source_config),
        web.get("/sourceConfig", rudder_source_config),
        web.options("/sourceConfig/", preflight),
        web.options("/sourceConfig", preflight),
        *(web.post(f"/v1/{letter}", _ingest(kind)) for letter, kind in SHORT_PATHS.items()),
    ]

"""The live journey dashboard: a login form, the page, its static files and the JSON endpoints behind it.

Sessions are signed cookies (collector.edge.session) that the server can end (logout, or the admin ending every
session: collector.store.sessions). Read keys and the admin key sign in. The JSON endpoints are GETs without
side effects, answer only with a valid session cookie (SameSite=Strict) and a custom request header (which a
cross-site page cannot send without a CORS preflight, which is never granted). Every query runs through the
query guard, read-only, in the reader thread pool with its filters as server-side parameters.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from collector.edge.access import authentication_failed, check_address, read_as
from collector.edge.answers import json_response
from collector.edge.appkeys import SETTINGS, STORE
from collector.edge.auth import ADMIN, reader_name
from collector.edge.body import read_body
from collector.edge.handlers import lookup_runner, read_store, readonly_runner
from collector.edge.metrics import METRICS
from collector.edge.session import COOKIE, Session, issue, read
from collector.errors import RequestRejected
from collector.journey.analyst import look_up_customer
from collector.journey.analytics import analytics
from collector.journey.insights import FILTER_OPTIONS_SQL, SEARCH_SQL, Filters, Runner, overview
from collector.store import sessions

__all__ = ["API_HEADER", "STATIC_DIR", "dashboard_routes"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGES = STATIC_DIR / "dashboard"
API_HEADER = "X-Reise-Dashboard"
MAX_FILTER = 200
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
LOGIN_ERROR = '<p class="error" role="alert">That is not the admin key or a read key.</p>'


@cache
def _template(name: str) -> str:
    """A page's HTML, read from disk once."""
    return (PAGES / name).read_text(encoding="utf-8")


def _page(name: str, status: int = 200, error: str = "") -> web.Response:
    html = _template(name).replace("<!--error-->", error)
    return web.Response(text=html, status=status, content_type="text/html", headers={
        "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
    })


async def _session(request: web.Request) -> Session | None:
    """The request's session: signed, not expired, its key still configured, and not ended on the server."""
    settings = request.app[SETTINGS]
    session = read(settings.admin_key, request.cookies.get(COOKIE))
    if session is None or (session.name != ADMIN and session.name not in settings.read_keys.values()):
        return None
    store = request.app[STORE]
    if await read_store(request.app, lambda: sessions.ended(store, session.nonce, session.issued_ms)):
        return None
    return session


def _same_origin(request: web.Request) -> bool:
    """False for a request a browser says came from another site (login CSRF)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


async def index(request: web.Request) -> web.StreamResponse:
    """The dashboard page, or the way to the login form."""
    if await _session(request) is None:
        raise web.HTTPSeeOther("/dashboard/login")
    return _page("index.html")


async def login_form(request: web.Request) -> web.Response:
    """The login form (the key is posted, never put in a URL)."""
    return _page("login.html")


async def login(request: web.Request) -> web.StreamResponse:
    """Check a read key or the admin key in constant time; set a signed, expiring, HttpOnly, SameSite=Strict cookie.

    Failures count against the client's address (collector.edge.authlimit): past the limit, 429.
    """
    if not _same_origin(request):
        raise RequestRejected(403, "cross-site login refused")
    check_address(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise RequestRejected(415, "login: expected a form (application/x-www-form-urlencoded)")
    form = urllib.parse.parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    key = form.get("key", [None])[0]
    settings = request.app[SETTINGS]
    name = reader_name(settings.admin_key, settings.read_keys, key.strip()) if isinstance(key, str) else None
    if name is None:
        authentication_failed(request, "dashboard")
        await asyncio.sleep(0.25)  # slows guessing without holding a thread
        return _page("login.html", status=401, error=LOGIN_ERROR)
    response = web.Response(status=303, headers={"Location": "/dashboard"})
    token = issue(settings.admin_key, name, settings.session_ttl)
    response.set_cookie(COOKIE, token, max_age=int(settings.session_ttl),
                        path="/dashboard", httponly=True, samesite="Strict", secure=_secure(request))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server (a copy of its cookie stops working too) and forget it in this browser."""
    if not _same_origin(request):
        raise RequestRejected(403, "cross-site logout refused")
    session = await _session(request)
    if session is not None:
        store = request.app[STORE]
        await read_store(request.app, lambda: sessions.end(store, session.nonce, session.expires))
        request.app[METRICS].sessions_ended.labels("logout").inc()
    response = web.Response(status=303, headers={"Location": "/dashboard/login"})
    response.del_cookie(COOKIE, path="/dashboard")
    return response


async def _require_session(request: web.Request) -> str:
    """The session's key name, or 401/403."""
    session = await _session(request)
    if session is None:
        raise RequestRejected(401, "sign in at /dashboard/login")
    if request.headers.get(API_HEADER) != "1":
        raise RequestRejected(403, f"missing {API_HEADER} header")
    return session.name


def _text_param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > MAX_FILTER:
        raise RequestRejected(400, f"{name}: longer than {MAX_FILTER} characters")
    return value


def _day_param(request: web.Request, name: str, *, next_day: bool = False) -> datetime | None:
    value = _text_param(request, name)
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise RequestRejected(400, f"{name}: expected YYYY-MM-DD") from None
    return day + timedelta(days=1) if next_day else day


def _no_store(payload: Any, status: int = 200) -> web.Response:
    return json_response(payload, status, headers={"Cache-Control": "no-store"})


async def _filtered(request: web.Request, question: Callable[[Runner, Filters], Any]) -> web.Response:
    """Answer a dashboard question (a session needed) for the request's dates, channel and campaign."""
    name = await _require_session(request)
    filters = Filters(since=_day_param(request, "from"), until=_day_param(request, "to", next_day=True),
                      channel=_text_param(request, "channel"), campaign=_text_param(request, "campaign"))
    run = readonly_runner(request.app)
    return _no_store(await read_as(request, name, lambda: question(run, filters), what="dashboard"))


async def api_overview(request: web.Request) -> web.Response:
    """Funnel, contacts before purchase, channel mix, stage entries and campaigns for the filters."""
    return await _filtered(request, overview)


async def api_analytics(request: web.Request) -> web.Response:
    """Attribution (for the filters), time between stages, path flows and cohorts."""
    return await _filtered(request, analytics)


async def api_filters(request: web.Request) -> web.Response:
    """The channels and campaigns there are, for the filter menus."""
    name = await _require_session(request)
    run = readonly_runner(request.app)
    result = await read_as(request, name, lambda: run(FILTER_OPTIONS_SQL, {}), what="dashboard")
    options: dict[str, list[str]] = {"channel": [], "campaign": []}
    for kind, value, _count in result.rows:
        options[kind].append(value)
    return _no_store({"channels": options["channel"], "campaigns": options["campaign"]})


async def api_customers(request: web.Request) -> web.Response:
    """Up to 20 customers whose id (or a linked id) starts with ``q``."""
    name = await _require_session(request)
    prefix = _text_param(request, "q")
    run = lookup_runner(request.app)
    result = await read_as(request, name, lambda: run(SEARCH_SQL, {"prefix": prefix}), what="dashboard")
    return _no_store({"customers": result.records()})


async def api_customer(request: web.Request) -> web.Response:
    """One customer's journey: the merged state, every touchpoint in order, and the identity links."""
    name = await _require_session(request)
    customer_id = _text_param(request, "id")
    if not customer_id:
        raise RequestRejected(400, "id: required")
    run = lookup_runner(request.app)
    found = await read_as(request, name, lambda: look_up_customer(run, customer_id, with_links=True),
                          what="dashboard")
    if found is None:
        return _no_store({"success": False, "error": f"no customer {customer_id!r}"}, 404)
    return _no_store({"customer": found.journey.records()[0], "touchpoints": found.timeline.records(),
                      "links": found.links.records() if found.links else []})


def dashboard_routes() -> list[web.AbstractRouteDef]:
    """Every route of the dashboard (register with one ``app.add_routes`` call)."""
    return [
        web.get("/dashboard", index),
        web.get("/dashboard/login", login_form),
        web.post("/dashboard/login", login),
        web.post("/dashboard/logout", logout),
        web.get("/dashboard/api/overview", api_overview),
        web.get("/dashboard/api/analytics", api_analytics),
        web.get("/dashboard/api/filters", api_filters),
        web.get("/dashboard/api/customers", api_customers),
        web.get("/dashboard/api/customer", api_customer),
        web.static("/dashboard/static", STATIC_DIR, append_version=False),
    ]

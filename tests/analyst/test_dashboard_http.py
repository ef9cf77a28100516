"""The dashboard's login, session cookie and JSON endpoints over plain HTTP (no browser)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from collector.edge import session
from tests.analyst.conftest import DEMO_CUSTOMERS
from tests.helpers import Collector


@dataclass
class Reply:
    """One HTTP exchange, redirects not followed."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def call(collector: Collector, method: str, path: str, *, body: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    """One request to the collector without following redirects."""
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
    data = urlencode(body).encode() if body is not None else None
    head = dict(headers or {})
    if data is not None:
        head.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        connection.request(method, path, body=data, headers=head)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def login(collector: Collector, key: str, headers: dict[str, str] | None = None) -> Reply:
    """POST the login form."""
    return call(collector, "POST", "/dashboard/login", body={"key": key}, headers=headers)


def session_cookie(reply: Reply) -> str:
    """The ``name=value`` of the session cookie a login set."""
    cookie = reply.headers["Set-Cookie"]
    return cookie.split(";", 1)[0]


def api(collector: Collector, path: str, cookie: str | None, *, header: bool = True) -> Reply:
    """GET a dashboard JSON endpoint as the page does."""
    headers = {"X-Reise-Dashboard": "1"} if header else {}
    if cookie:
        headers["Cookie"] = cookie
    return call(collector, "GET", path, headers=headers)


@pytest.fixture(scope="module")
def cookie(demo_collector: Collector) -> str:
    """A signed-in session cookie."""
    reply = login(demo_collector, demo_collector.admin_key)
    assert reply.status == 303
    return session_cookie(reply)


def test_the_page_asks_for_a_login_first(demo_collector: Collector) -> None:
    """Without a session the page sends the browser to the login form, which posts the key (no key in URLs)."""
    reply = call(demo_collector, "GET", "/dashboard")
    assert reply.status == 303 and reply.headers["Location"] == "/dashboard/login"
    form = call(demo_collector, "GET", "/dashboard/login")
    assert form.status == 200 and b'method="post"' in form.body and b'type="password"' in form.body
    assert "script-src 'self'" in form.headers["Content-Security-Policy"]


def test_login_sets_a_signed_expiring_strict_http_only_cookie(demo_collector: Collector) -> None:
    """The admin key buys a cookie with HttpOnly, SameSite=Strict, a Max-Age and a path."""
    reply = login(demo_collector, demo_collector.admin_key)
    assert reply.status == 303 and reply.headers["Location"] == "/dashboard"
    attributes = {part.strip().split("=")[0].lower() for part in reply.headers["Set-Cookie"].split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "SameSite=Strict" in reply.headers["Set-Cookie"]
    assert demo_collector.admin_key not in reply.headers["Set-Cookie"]
    page = call(demo_collector, "GET", "/dashboard", headers={"Cookie": session_cookie(reply)})
    assert page.status == 200 and b"chart.umd.min.js" in page.body


def test_a_wrong_key_gets_no_cookie(demo_collector: Collector) -> None:
    """A wrong key (or the write key) answers 401 with the form again and sets nothing."""
    for key in ("not-the-key", demo_collector.write_key, ""):
        reply = login(demo_collector, key)
        assert reply.status == 401 and "Set-Cookie" not in reply.headers
        assert b"not the admin key" in reply.body


def test_a_malformed_login_is_a_4xx(demo_collector: Collector) -> None:
    """Only the HTML form's encoding is read; anything else is refused without a 5xx."""
    for content_type, body in (("multipart/form-data", b""), ("application/json", b'{"key": "x"}'),
                               ("application/x-www-form-urlencoded", b"key=%ff%fe")):
        connection = http.client.HTTPConnection("127.0.0.1", demo_collector.port, timeout=60)
        try:
            connection.request("POST", "/dashboard/login", body=body, headers={"Content-Type": content_type})
            status = connection.getresponse().status
        finally:
            connection.close()
        assert status in (401, 415), (content_type, status)


def test_a_cross_site_login_is_refused(demo_collector: Collector) -> None:
    """Login CSRF: a form posted from another site does not sign the browser in."""
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        reply = login(demo_collector, demo_collector.admin_key, headers)
        assert reply.status == 403 and "Set-Cookie" not in reply.headers
    same = login(demo_collector, demo_collector.admin_key,
                 {"Origin": demo_collector.url, "Sec-Fetch-Site": "same-origin"})
    assert same.status == 303


def test_the_json_endpoints_need_a_valid_session_and_the_header(demo_collector: Collector, cookie: str) -> None:
    """No cookie, a forged or expired cookie, or a missing custom header: refused."""
    path = "/dashboard/api/overview"
    assert api(demo_collector, path, cookie).status == 200
    assert api(demo_collector, path, None).status == 401
    assert api(demo_collector, path, cookie, header=False).status == 403
    name, _, token = cookie.partition("=")
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert api(demo_collector, path, f"{name}={forged}").status == 401
    expired = session.issue(demo_collector.admin_key, "admin", 60, now=time.time() - 3600)
    assert api(demo_collector, path, f"{name}={expired}").status == 401
    other_key = session.issue("another-admin-key", "admin", 3600)
    assert api(demo_collector, path, f"{name}={other_key}").status == 401
    assert api(demo_collector, path, demo_collector.admin_key).status == 401
    for other in ("/dashboard/api/filters", "/dashboard/api/analytics"):  # every JSON endpoint, not only one
        assert api(demo_collector, other, None).status == 401, other
        assert api(demo_collector, other, f"{name}={forged}").status == 401, other


def test_overview_counts_and_filters(demo_collector: Collector, cookie: str) -> None:
    """The overview agrees with the journey views, and a filter narrows it."""
    everyone = api(demo_collector, "/dashboard/api/overview", cookie).json()
    assert everyone["customers"] == DEMO_CUSTOMERS
    funnel = {row["stage"]: row["customers"] for row in everyone["funnel"]}
    assert funnel == {r["stage"]: r["customers"] for r in demo_collector.query("SELECT * FROM stage_funnel")}
    entries = everyone["stage_entries"]
    assert entries["bucket"] == "week" and len(entries["days"]) >= 8
    assert {stage: sum(counts) for stage, counts in entries["series"].items()} == funnel
    email = api(demo_collector, "/dashboard/api/overview?channel=email", cookie).json()
    assert 0 < email["customers"] < everyone["customers"]
    hostile = api(demo_collector, "/dashboard/api/overview?campaign=" + "x'%20OR%201=1%20--", cookie)
    assert hostile.status == 200 and hostile.json()["customers"] == 0
    assert api(demo_collector, "/dashboard/api/overview?from=yesterday", cookie).status == 400
    future = api(demo_collector, "/dashboard/api/overview?from=2999-01-01", cookie).json()
    assert future["customers"] == 0 and future["contacts_before_purchase"]["median"] is None


def test_customer_lookup_and_search(demo_collector: Collector, cookie: str) -> None:
    """A customer's journey comes back in time order with its links; unknown ids are a 404."""
    found = api(demo_collector, "/dashboard/api/customers?q=cust-0000", cookie).json()["customers"]
    assert found and all(c["customer_id"].startswith("cust-0000") for c in found)
    doc = api(demo_collector, f"/dashboard/api/customer?id={found[0]['customer_id']}", cookie).json()
    times = [t["timestamp"] for t in doc["touchpoints"]]
    assert times == sorted(times) and len(times) >= doc["customer"]["contacts"]
    assert api(demo_collector, "/dashboard/api/customer?id=nobody-at-all", cookie).status == 404


def test_chart_library_is_served_with_its_licence(demo_collector: Collector) -> None:
    """Chart.js comes from the collector itself, with its MIT licence beside it."""
    script = call(demo_collector, "GET", "/dashboard/static/vendor/chart.umd.min.js")
    assert script.status == 200 and b"Chart.js v4" in script.body[:300]
    licence = call(demo_collector, "GET", "/dashboard/static/vendor/chart.js-LICENSE.md")
    assert licence.status == 200 and b"MIT" in licence.body

"""Pixel hits and click links are counted in the events metric, like the events of every other endpoint; the
pixel's requests in the request metrics, like every other route's."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from collector.edge.app import create_app
from collector.edge.pixel import GIF
from collector.edge.requestid import REQUEST_ID_HEADER
from collector.ingest.linktoken import mint
from collector.settings import Settings
from tests.channels.conftest import LINK_KEY, PUBLIC_KEY, get_raw
from tests.helpers import Collector, http
from tests.production.test_metrics import scrape, value


def test_pixel_hits_and_clicks_are_counted_in_the_events_metric(channels: Collector) -> None:
    tag = uuid.uuid4().hex[:10]
    before = scrape(channels)
    opened = f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=email&e=email_opened&uid=mx-{tag}&mid=open-{tag}"
    assert get_raw(opened).status == 200  # accepted
    assert get_raw(opened).status == 200  # the same messageId again: a duplicate
    assert get_raw(f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=pos&e=x&uid=mx-{tag}").status == 200  # pos: refused
    click = mint(LINK_KEY, "https://shop.example/spring", channel="email", userId=f"mx-{tag}")
    assert get_raw(f"{channels.url}/r/{click}").status == 302  # accepted
    after = scrape(channels)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("reise_events_total", outcome="accepted") == 2
    assert delta("reise_events_total", outcome="duplicate") == 1
    assert delta("reise_events_total", outcome="rejected") == 1
    assert delta("reise_events_rejected_total", reason="channel") == 1


def test_pixel_hits_past_the_rate_limit_get_their_gif_and_are_counted_as_rate_limited(tmp_path: Path) -> None:
    """Past its key's limit a hit still gets the GIF; it is not kept, and counted under its own outcome."""
    tag = uuid.uuid4().hex[:10]
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_PUBLIC_RATE_LIMIT": "5"}) as collector:
        before = scrape(collector)
        for n in range(40):
            reply = get_raw(f"{collector.url}/p.gif?k={PUBLIC_KEY}&ch=email&uid=rl-{tag}&mid=rl-{tag}-{n}")
            assert reply.status == 200 and reply.headers["Content-Type"] == "image/gif"
        after = scrape(collector)
        accepted = value(after, "reise_events_total", outcome="accepted") - value(
            before, "reise_events_total", outcome="accepted")
        limited = value(after, "reise_events_total", outcome="rate_limited") - value(
            before, "reise_events_total", outcome="rate_limited")
        assert accepted + limited == 40
        assert 5 <= accepted < 40 and limited >= 1
        kept = collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", accepted,
                                  {"u": f"rl-{tag}"})
        assert kept == accepted
        dead = collector.scalar("SELECT count() FROM dead_letters WHERE position(payload, {t:String}) > 0", {"t": tag})
        assert dead == 0  # dropped, not kept as dead letters


def test_pixel_answers_carry_a_request_id_and_cors_and_are_counted_as_requests(channels: Collector) -> None:
    """The pixel runs outside the routes' wrapper (collector.edge.pixel) and still does what it does."""
    tag = uuid.uuid4().hex[:10]
    before = scrape(channels)
    url = f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=email&uid=rq-{tag}&mid=rq-{tag}"
    echoed = get_raw(url, {REQUEST_ID_HEADER: f"mail-{tag}"})
    fresh = get_raw(url)
    head = http("HEAD", url)
    after = scrape(channels)
    assert echoed.status == fresh.status == head.status == 200 and echoed.body == fresh.body == GIF
    assert echoed.headers[REQUEST_ID_HEADER] == f"mail-{tag}"
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers[REQUEST_ID_HEADER])
    assert head.headers[REQUEST_ID_HEADER] and not head.body and head.headers["Content-Length"] == "43"
    assert fresh.headers["Access-Control-Allow-Origin"] == "*"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("reise_http_requests_total", route="/p.gif", method="GET", status="200") == 2
    assert delta("reise_http_requests_total", route="/p.gif", method="HEAD", status="200") == 1
    assert delta("reise_http_request_duration_seconds_count", route="/p.gif") == 3


def test_the_other_routes_keep_their_wrapper_without_an_app_middleware(channels: Collector, tmp_path: Path) -> None:
    """Request ids, JSON 404/405 and metrics come from each route's wrapper (collector.edge.middleware)."""
    settings = Settings.from_env(env={"REISE_DSN": f"chdb://{tmp_path / 'db'}", "REISE_SPOOL_DIR": str(tmp_path)})
    assert not create_app(settings).middlewares  # the pixel pays no middleware chain
    before = scrape(channels)
    script = get_raw(f"{channels.url}/dashboard/static/vendor/chart.umd.min.js", {REQUEST_ID_HEADER: "static-1"})
    wrong_method = http("PUT", f"{channels.url}/v1/track")
    nowhere = http("GET", f"{channels.url}/no/such/page")
    after = scrape(channels)
    assert script.status == 200 and script.headers[REQUEST_ID_HEADER] == "static-1"
    assert wrong_method.status == 405 and wrong_method.body["code"] == "method_not_allowed"
    assert nowhere.status == 404 and nowhere.body["code"] == "not_found"
    assert wrong_method.headers[REQUEST_ID_HEADER] and nowhere.headers[REQUEST_ID_HEADER]

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("reise_http_requests_total", route="/dashboard/static", method="GET", status="200") == 1
    assert delta("reise_http_requests_total", route="unmatched", method="other", status="405") == 1
    assert delta("reise_http_requests_total", route="unmatched", method="GET", status="404") == 1

"""The Snowplow tracker protocol with the real Python tracker (snowplow-tracker), GET and POST, plain and base64."""

from __future__ import annotations

import base64
import json
import urllib.parse
import uuid

from snowplow_tracker._version import __version__ as tracker_version
from snowplow_tracker.emitters import Emitter
from snowplow_tracker.events.page_ping import PagePing
from snowplow_tracker.events.page_view import PageView
from snowplow_tracker.events.self_describing import SelfDescribing
from snowplow_tracker.events.structured_event import StructuredEvent
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.subject import Subject
from snowplow_tracker.tracker import Tracker

from tests.helpers import Collector, http
from tests.sources.conftest import dead_letters, rows

WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
LINK_CLICK = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"


def tracker(collector: Collector, *, method: str, base64_json: bool, user: str, device: str) -> Tracker:
    emitter = Emitter("127.0.0.1", protocol="http", port=collector.port, method=method,  # type: ignore[arg-type]
                      batch_size=50 if method == "post" else 1)
    subject = Subject().set_user_id(user).set_domain_user_id(device)
    return Tracker(namespace="shop", emitters=emitter, subject=subject, app_id="shop-web", encode_base64=base64_json)


def test_python_tracker_post_base64(sources: Collector) -> None:
    user, device, view = f"sp-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), str(uuid.uuid4())
    t = tracker(sources, method="post", base64_json=True, user=user, device=device)
    page = "https://shop.example/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale"
    t.track(PageView(page_url=page, page_title="Spring", referrer="https://mail.example/"))
    for y in (100, 300):  # two pings of one page view: kept once
        t.track(PagePing(page_url=page, min_y=0, max_y=y, context=[SelfDescribingJson(WEB_PAGE, {"id": view})]))
    t.track(StructuredEvent(category="shop", action="Product Viewed", label="shoe-42", value=49.9))
    t.track(SelfDescribing(SelfDescribingJson(LINK_CLICK, {"targetUrl": "https://shop.example/shoes"})))
    # deprecated in the tracker, still in the protocol
    t.track_ecommerce_transaction(f"T-{user}", 59.9, currency="EUR", items=[
        {"sku": "shoe-42", "price": 49.9, "quantity": 1}, {"sku": "socks", "price": 10, "quantity": 1}])
    t.flush()
    found = rows(sources, "customer_id = {u:String}", {"u": user},
                 columns="type, event, anonymous_id, channel, stage, campaign, revenue, order_id, source, library, "
                         "traffic_class, page_url, properties")
    by_event = {r["event"] or r["type"]: r for r in found}
    assert sorted(by_event) == ["Order Completed", "Page Ping", "Product Viewed", "Spring", "link_click"]
    view_row = by_event["Spring"]
    assert (view_row["type"], view_row["channel"], view_row["campaign"], view_row["page_url"]) == (
        "page", "email", "spring-sale", page)
    order = by_event["Order Completed"]
    assert (order["revenue"], order["order_id"], order["stage"]) == (59.9, f"T-{user}", "purchase")
    assert [p["sku"] for p in json.loads(order["properties"]["products"])] == ["shoe-42", "socks"]
    assert by_event["Product Viewed"]["stage"] == "consideration"
    assert by_event["link_click"]["properties"]["targetUrl"] == "https://shop.example/shoes"
    assert {r["anonymous_id"] for r in found} == {device}
    assert {r["source"] for r in found} == {"web-sp"}
    assert {r["library"] for r in found} == {f"snowplow-py/{tracker_version}"}


def test_python_tracker_get_plain_json(sources: Collector) -> None:
    user, device = f"sp-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    t = tracker(sources, method="get", base64_json=False, user=user, device=device)
    t.track(SelfDescribing(SelfDescribingJson(LINK_CLICK, {"targetUrl": "https://shop.example/a"})))
    t.track(StructuredEvent(category="shop", action="Newsletter Signup"))
    t.flush()
    found = rows(sources, "customer_id = {u:String}", {"u": user})
    assert sorted(r["event"] for r in found) == ["Newsletter Signup", "link_click"]


def test_eid_is_the_idempotency_key(sources: Collector) -> None:
    eid, device = str(uuid.uuid4()), str(uuid.uuid4())
    query = urllib.parse.urlencode({"e": "se", "se_ca": "c", "se_ac": "Store Visit", "eid": eid, "aid": "shop-web",
                                    "duid": device, "tv": "js-3.24.0", "p": "web", "dtm": "1700000000000"})
    for _ in range(2):
        reply = http("GET", f"{sources.url}/i?{query}")
        assert reply.status == 200 and reply.headers["Content-Type"] == "image/gif"
    [row] = rows(sources, "anonymous_id = {d:String}", {"d": device}, columns="message_id, library, timestamp")
    assert row["message_id"] == eid and row["library"] == "snowplow-js/3.24.0"
    assert row["timestamp"].startswith("2023-11-14T22:13:20")


def test_bad_payloads_become_dead_letters_with_reasons(sources: Collector) -> None:
    marker = uuid.uuid4().hex
    bad_ue = base64.urlsafe_b64encode(b'{"schema": "x", "data": 1}').decode()
    body = {"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": [
        {"e": "zz", "aid": "shop-web", "duid": marker},
        {"e": "pv", "aid": "unknown-app", "duid": marker, "url": "https://shop.example/"},
        {"e": "ue", "aid": "shop-web", "duid": marker, "ue_px": bad_ue},
        {"e": "se", "aid": "shop-web", "se_ca": "no-id", "se_ac": marker},
        {"e": "se", "aid": "shop-web", "se_ac": "ok", "duid": marker},
    ]}
    reply = http("POST", f"{sources.url}/com.snowplowanalytics.snowplow/tp2", body)
    assert reply.status == 200 and reply.body["accepted"] == 1 and len(reply.body["rejected"]) == 4
    reasons = sorted(d["reason"] for d in dead_letters(sources, "web-sp", marker))
    assert [r.split(":")[0] for r in reasons] == ["e", "ue_px", "userId or anonymousId"]
    [unknown] = dead_letters(sources, "snowplow", marker)
    assert unknown["reason"].startswith("aid: no Snowplow source takes the app id 'unknown-app'")
    garbage = http("POST", f"{sources.url}/com.snowplowanalytics.snowplow/tp2", raw=f"nope {marker}".encode())
    assert garbage.status == 400
    assert dead_letters(sources, "snowplow", f"nope {marker}")[0]["reason"].startswith("payload: not JSON")


def test_write_key_from_the_query(sources: Collector) -> None:
    device = str(uuid.uuid4())
    query = urllib.parse.urlencode({"e": "se", "se_ac": "Store Visit", "eid": str(uuid.uuid4()), "duid": device,
                                    "aid": "any-app"})
    assert http("GET", f"{sources.url}/i?{query}&writeKey=wk_test").status == 200
    assert http("GET", f"{sources.url}/i?{query}&writeKey=wk_nobody").status == 200  # a GIF, and a dead letter
    [row] = rows(sources, "anonymous_id = {d:String}", {"d": device})
    assert row["source"] == "test"
    assert dead_letters(sources, "snowplow", device)[0]["reason"] == "writeKey: unknown write key"


def test_browser_cors_with_credentials(sources: Collector) -> None:
    reply = http("OPTIONS", f"{sources.url}/com.snowplowanalytics.snowplow/tp2",
                 headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"

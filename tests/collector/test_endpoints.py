"""Every ingestion endpoint against a real collector and real chDB."""

from __future__ import annotations

import gzip
import json
import uuid

from tests.helpers import Collector, http


def uid(prefix: str) -> str:
    """A unique id for one test's events."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_health_endpoints(collector: Collector) -> None:
    assert http("GET", collector.url + "/healthz").body == {"status": "ok"}
    ready = http("GET", collector.url + "/readyz")
    assert ready.status == 200
    assert ready.body["store"] == "ok"


def test_every_endpoint_lands_in_the_raw_table(collector: Collector) -> None:
    user, anon = uid("user"), uid("anon")
    calls = [
        ("/v1/track", {"userId": user, "event": "Product Viewed", "channel": "web",
                       "properties": {"sku": "A1", "price": 9.5, "gift": True, "tags": ["a", {"b": 1}]}}),
        ("/v1/page", {"anonymousId": anon, "name": "Home", "channel": "web",
                      "context": {"page": {"url": "https://shop.example/", "referrer": "https://ads.example/"}}}),
        ("/v1/identify", {"anonymousId": anon, "userId": user, "traits": {"email_hash": "abc", "tier": 2}}),
        ("/v1/alias", {"previousId": uid("card"), "userId": user}),
        ("/v1/batch", {"batch": [
            {"type": "track", "userId": user, "event": "Order Completed", "channel": "pos",
             "properties": {"order_id": "o-1", "revenue": 42.25, "currency": "eur", "store_id": "berlin-1"}},
            {"type": "screen", "userId": user, "name": "Loyalty", "channel": "app"},
        ]}),
    ]
    for path, body in calls:
        reply = collector.post(path, body)
        assert reply.status == 200, (path, reply.body)
        assert reply.body["success"] is True
        assert reply.body["rejected"] == []
    count_sql = "SELECT count() FROM touchpoints WHERE customer_id = {u:String} OR anonymous_id = {a:String}"
    assert collector.wait_for(count_sql, 6, {"u": user, "a": anon}) == 6
    rows = {r["type"]: r for r in collector.query(
        "SELECT type, event, channel, stage, revenue, currency, store_id, order_id, page_url, referrer,"
        " properties, traits, source FROM touchpoints WHERE customer_id = {u:String} OR anonymous_id = {a:String}",
        {"u": user, "a": anon})}
    assert rows["track"]["event"] in ("Product Viewed", "Order Completed")
    viewed = collector.query("SELECT properties FROM touchpoints WHERE customer_id = {u:String}"
                             " AND event = 'Product Viewed'", {"u": user})[0]
    assert viewed["properties"] == {"sku": "A1", "price": "9.5", "gift": "true", "tags": '["a",{"b":1}]'}
    assert rows["page"]["page_url"] == "https://shop.example/"
    assert rows["page"]["referrer"] == "https://ads.example/"
    assert rows["page"]["stage"] == "awareness"
    assert rows["identify"]["traits"] == {"email_hash": "abc", "tier": "2"}
    assert rows["screen"]["channel"] == "app"
    order = collector.query("SELECT revenue, currency, store_id, order_id, stage, source FROM touchpoints"
                            " WHERE customer_id = {u:String} AND event = 'Order Completed'", {"u": user})[0]
    assert order == {"revenue": 42.25, "currency": "EUR", "store_id": "berlin-1", "order_id": "o-1",
                     "stage": "purchase", "source": "test"}


def test_write_key_in_body_and_gzip(collector: Collector) -> None:
    user = uid("gz")
    body = {"writeKey": collector.write_key, "batch": [
        {"type": "track", "userId": user, "event": "Email Opened", "channel": "email"}]}
    reply = http("POST", collector.url + "/v1/batch", raw=gzip.compress(json.dumps(body).encode()),
                 headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    assert reply.body["accepted"] == 1
    assert collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user}) == 1


def test_unknown_or_missing_write_key_is_401(collector: Collector) -> None:
    event = {"userId": "x", "event": "Product Viewed"}
    for key in ("wrong", ""):
        reply = collector.post("/v1/track", event, key=key)
        assert reply.status == 401
        assert "write key" in reply.body["error"]
    assert http("POST", collector.url + "/v1/track", event).status == 401
    assert http("POST", collector.url + "/v1/track", {**event, "writeKey": "nope"}).status == 401
    # the admin key is not a write key
    assert collector.post("/v1/track", event, key=collector.admin_key).status == 401


def test_second_source_is_recorded(collector: Collector) -> None:
    user = uid("src")
    assert collector.post("/v1/track", {"userId": user, "event": "Store Visit", "channel": "pos"},
                          key="wk_other").status == 200
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    assert collector.scalar("SELECT source FROM touchpoints WHERE customer_id = {u:String}", {"u": user}) == "other"


def test_keys_limited_to_channels(collector: Collector) -> None:
    user = uid("till")
    # a till's key writes the pos channel, which is also its default
    reply = collector.post("/v1/batch", {"batch": [
        {"type": "track", "userId": user, "event": "Sale"},
        {"type": "track", "userId": user, "event": "Email Opened", "channel": "email"},
    ]}, key="wk_till")
    assert reply.body["accepted"] == 1
    assert reply.body["rejected"][0]["index"] == 1
    assert reply.body["rejected"][0]["reason"].startswith("channel: this write key may not write 'email'")
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    row = collector.query("SELECT channel, source, stage FROM touchpoints WHERE customer_id = {u:String}",
                          {"u": user})[0]
    assert row == {"channel": "pos", "source": "till", "stage": "purchase"}
    # a public key writes only its channels and cannot read
    assert collector.post("/v1/page", {"anonymousId": user, "channel": "web"}, key="pk_site").status == 200
    assert collector.post("/v1/track", {"anonymousId": user, "event": "Sale", "channel": "pos"},
                          key="pk_site").status == 400
    assert http("POST", collector.url + "/v1/query", {"sql": "SELECT 1"}, key="pk_site").status == 401

"""Identity stitching (retroactive) and stage rules, end to end."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import Collector


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def journey(collector: Collector, customer_id: str) -> dict[str, Any]:
    rows = collector.query("SELECT * FROM customer_journey WHERE customer_id = {c:String}", {"c": customer_id})
    assert len(rows) == 1, rows
    return rows[0]


def test_anonymous_touchpoints_fold_into_the_customer_after_a_later_identify(collector: Collector) -> None:
    anon, user, card = uid("anon"), uid("user"), uid("card")
    before = [
        {"type": "track", "anonymousId": anon, "event": "Ad Impression", "channel": "ads",
         "timestamp": "2026-05-01T10:00:00Z"},
        {"type": "page", "anonymousId": anon, "name": "Product", "channel": "web",
         "timestamp": "2026-05-02T10:00:00Z"},
        {"type": "track", "anonymousId": card, "event": "Store Visit", "channel": "pos",
         "timestamp": "2026-05-03T10:00:00Z"},
    ]
    assert collector.post("/v1/batch", {"batch": before}).status == 200
    collector.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {a:String}", 2, {"a": anon})
    assert journey(collector, anon)["contacts"] == 2  # still anonymous: its own journey
    # later: the customer logs in, buys at a till with the loyalty card linked by alias
    assert collector.post("/v1/identify", {"anonymousId": anon, "userId": user,
                                           "timestamp": "2026-05-04T10:00:00Z"}).status == 200
    assert collector.post("/v1/alias", {"previousId": card, "userId": user,
                                        "timestamp": "2026-05-04T11:00:00Z"}).status == 200
    assert collector.post("/v1/track", {"userId": user, "event": "Order Completed", "channel": "pos",
                                        "timestamp": "2026-05-05T10:00:00Z",
                                        "properties": {"revenue": 80, "order_id": "o-9"}}).status == 200
    # the identity resolver writes the map last, once the state has moved and the old keys are hidden
    collector.wait_for("SELECT count() FROM identity_map WHERE customer_id = {u:String}", 2, {"u": user})
    collector.wait_for("SELECT count() FROM customer_journey WHERE customer_id = {u:String}", 1, {"u": user})
    collector.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {u:String}", 4, {"u": user})
    folded = journey(collector, user)
    assert folded["contacts"] == 4
    assert folded["contacts_by_channel"] == {"ads": 1, "web": 1, "pos": 2}
    assert folded["contacts_before_first_purchase"] == 3
    assert folded["reached_awareness_at"].startswith("2026-05-01T10:00:00")
    assert folded["reached_purchase_at"].startswith("2026-05-05T10:00:00")
    assert folded["current_stage"] == "purchase"
    assert sorted(folded["ids"]) == sorted([anon, card, user])
    assert collector.query("SELECT * FROM customer_journey WHERE customer_id IN ({a:String}, {c:String})",
                           {"a": anon, "c": card}) == []
    links = collector.query("SELECT anonymous_id, customer_id FROM identity_map WHERE customer_id = {u:String}"
                            " ORDER BY anonymous_id", {"u": user})
    assert sorted(r["anonymous_id"] for r in links) == sorted([anon, card])


def test_an_event_carrying_both_ids_records_a_link(collector: Collector) -> None:
    anon, user = uid("anon"), uid("user")
    assert collector.post("/v1/track", {"anonymousId": anon, "userId": user, "event": "Email Opened",
                                        "channel": "email"}).status == 200
    assert collector.wait_for("SELECT customer_id FROM identity_map WHERE anonymous_id = {a:String}", user,
                              {"a": anon}) == user


def test_stage_rules_explicit_stage_and_unknown_events(collector: Collector) -> None:
    user = uid("stages")
    events = [
        ("Ad Impression", "ads", None, "awareness"),
        ("Sale", "pos", None, "purchase"),  # a channel-specific rule
        ("Sale", "web", None, ""),  # the same name elsewhere has no rule
        ("Product Viewed", "web", "advocacy", "advocacy"),  # an explicit stage wins
        ("Something Unheard Of", "social", None, ""),  # unknown: no stage, still a contact
        ("order completed", "web", None, "purchase"),  # names match case-insensitively
    ]
    batch = [{"type": "track", "userId": user, "event": name, "channel": channel,
              "timestamp": f"2026-04-0{i + 1}T00:00:00Z", **({"stage": stage} if stage else {})}
             for i, (name, channel, stage, _) in enumerate(events)]
    assert collector.post("/v1/batch", {"batch": batch}).body["rejected"] == []
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", len(events), {"u": user})
    collector.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {u:String}", len(events), {"u": user})
    stages = [r["stage"] for r in collector.query(
        "SELECT stage FROM touchpoints WHERE customer_id = {u:String} ORDER BY timestamp", {"u": user})]
    assert stages == [expected for *_, expected in events]
    row = journey(collector, user)
    assert row["contacts"] == len(events)
    assert row["furthest_stage"] == "advocacy"
    assert row["current_stage"] == "purchase"  # the latest staged touchpoint
    assert row["purchases"] == 2


def test_clock_skew_is_corrected_from_sent_at(collector: Collector) -> None:
    user = uid("skew")
    # the client's clock is an hour fast: its timestamp and sentAt are both an hour ahead
    from datetime import UTC, datetime, timedelta

    fast = datetime.now(UTC) + timedelta(hours=1)
    event_time = fast - timedelta(minutes=5)
    body = {"batch": [{"type": "track", "userId": user, "event": "Store Visit", "channel": "pos",
                       "timestamp": event_time.isoformat()}], "sentAt": fast.isoformat()}
    assert collector.post("/v1/batch", body).status == 200
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    row = collector.query("SELECT dateDiff('second', timestamp, received_at) AS behind,"
                          " dateDiff('second', original_timestamp, timestamp) AS shift"
                          " FROM touchpoints WHERE customer_id = {u:String}", {"u": user})[0]
    assert 295 <= row["behind"] <= 305  # five minutes before receipt, as the client meant
    assert -3605 <= row["shift"] <= -3595

"""POS: orders counted once whatever their messageId, returns netting revenue out, over HTTP and the SDK."""

from __future__ import annotations

import uuid
from pathlib import Path

from reise import Client

from tests.channels.conftest import TILL_KEY
from tests.helpers import Collector


def order(user: str, order_id: str, event: str = "Order Completed", revenue: float = 120.0,
          **props: object) -> dict[str, object]:
    return {"type": "track", "event": event, "userId": user, "messageId": uuid.uuid4().hex,
            "properties": {"order_id": order_id, "revenue": revenue, "currency": "EUR", "store_id": "berlin-1",
                           "products": [{"sku": "shoe-42", "price": 100, "quantity": 1},
                                        {"sku": "socks", "price": 20, "quantity": 1}], **props}}


def test_an_order_resent_with_a_new_message_id_counts_once(channels: Collector) -> None:
    user, order_id = f"pos-{uuid.uuid4().hex[:10]}", f"o-{uuid.uuid4().hex[:8]}"
    first = channels.post("/v1/track", order(user, order_id), key=TILL_KEY)
    assert first.status == 200 and first.body["accepted"] == 1
    again = channels.post("/v1/batch", {"batch": [order(user, order_id), order(user, order_id)]}, key=TILL_KEY)
    assert again.body["accepted"] == 0 and again.body["duplicates"] == 2
    other_store = channels.post("/v1/track", order(user, order_id), key="wk_test")  # another source's order
    assert other_store.body["accepted"] == 1
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 2, {"u": user})
    rows = channels.query("SELECT channel, stage, store_id, source, revenue FROM touchpoints"
                          " WHERE customer_id = {u:String} ORDER BY source", {"u": user})
    assert rows == [{"channel": "other", "stage": "purchase", "store_id": "berlin-1", "source": "test", "revenue": 120},
                    {"channel": "pos", "stage": "purchase", "store_id": "berlin-1", "source": "till", "revenue": 120}]


def test_returns_and_cancellations_net_out_revenue(channels: Collector) -> None:
    user = f"pos-{uuid.uuid4().hex[:10]}"
    events = [
        order(user, "r-1", revenue=120),
        order(user, "r-1", "Order Refunded", revenue=20, return_id="ret-1"),  # the socks came back
        order(user, "r-1", "Order Refunded", revenue=20, return_id="ret-1"),  # the same return, re-sent
        order(user, "r-1", "Order Refunded", revenue=-30, return_id="ret-2"),  # sign as sent does not matter
        order(user, "r-2", revenue=50),
        order(user, "r-2", "Order Cancelled", revenue=50),
    ]
    for i, event in enumerate(events):
        event["timestamp"] = f"2026-02-0{i + 1}T12:00:00Z"
    reply = channels.post("/v1/batch", {"batch": events}, key=TILL_KEY)
    assert reply.body["accepted"] == 5 and reply.body["duplicates"] == 1
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 5, {"u": user})
    stored = channels.query("SELECT event, revenue, stage FROM touchpoints WHERE customer_id = {u:String}"
                            " ORDER BY timestamp", {"u": user})
    assert [(r["event"], r["revenue"], r["stage"]) for r in stored] == [
        ("Order Completed", 120, "purchase"), ("Order Refunded", -20, "retention"),
        ("Order Refunded", -30, "retention"), ("Order Completed", 50, "purchase"),
        ("Order Cancelled", -50, "retention")]
    channels.wait_for("SELECT revenue FROM customer_journey WHERE customer_id = {u:String}", 70, {"u": user})
    journey = channels.query("SELECT revenue, purchases, current_stage, furthest_stage FROM customer_journey"
                             " WHERE customer_id = {u:String}", {"u": user})[0]
    assert journey == {"revenue": 70, "purchases": 2, "current_stage": "retention", "furthest_stage": "retention"}


def test_a_till_with_the_durable_sdk_counts_a_resent_order_once(channels: Collector, tmp_path: Path) -> None:
    user, order_id = f"pos-{uuid.uuid4().hex[:10]}", f"o-{uuid.uuid4().hex[:8]}"
    items = [{"sku": "coffee", "price": 3.5, "quantity": 2}]
    for _reconnect in range(2):  # the till restarts and sends the same sale again, with a new messageId
        with Client(TILL_KEY, channels.url, channel="pos", store_id="hamburg-2", spool_path=tmp_path / "till.db",
                    flush_interval=0.05) as till:
            till.purchase(order_id, 7.0, "EUR", items, user_id=user)
            assert till.flush(30)
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    marker = f"{user}-marker"
    channels.post("/v1/track", {"userId": marker, "event": "Store Visit", "channel": "pos"}, key=TILL_KEY)
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": marker})
    rows = channels.query("SELECT channel, store_id, revenue, stage FROM touchpoints WHERE customer_id = {u:String}",
                          {"u": user})
    assert rows == [{"channel": "pos", "store_id": "hamburg-2", "revenue": 7, "stage": "purchase"}]


def test_order_keys_are_reloaded_after_a_restart(fresh_collector: Collector) -> None:
    user = f"pos-{uuid.uuid4().hex[:10]}"
    assert fresh_collector.post("/v1/track", order(user, "k-1"), key=TILL_KEY).body["accepted"] == 1
    fresh_collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    fresh_collector.stop()
    fresh_collector.start()
    assert fresh_collector.post("/v1/track", order(user, "k-1"), key=TILL_KEY).body["duplicates"] == 1
    assert fresh_collector.post("/v1/track", order(user, "k-1", "Order Refunded", 5),
                                key=TILL_KEY).body["accepted"] == 1

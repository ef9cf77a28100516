"""The real segment-analytics-python and rudder-sdk-python clients against the collector, unchanged (issue 14)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rudderstack.analytics.client import Client as RudderClient
from rudderstack.analytics.request import APIError as RudderAPIError
from segment.analytics.client import Client as SegmentClient

from tests.compat.conftest import rows
from tests.helpers import Collector

SHOP = "https://shop.example/spring"
PAGE_URL = SHOP + "?utm_source=nl&utm_medium=email&utm_campaign=spring"


def _segment(collector: Collector, errors: list[Exception], key: str = "wk_test") -> SegmentClient:
    return SegmentClient(key, host=collector.url, on_error=lambda exc, batch: errors.append(exc), max_retries=2)


def _rudder(collector: Collector, errors: list[Exception], key: str = "wk_test") -> RudderClient:
    return RudderClient(key, host=collector.url, on_error=lambda exc, batch: errors.append(exc), max_retries=2)


def test_segment_python_names_the_channel_in_properties_and_keeps_its_fields(compat: Collector) -> None:
    user = f"seg-{uuid.uuid4().hex[:10]}"
    errors: list[Exception] = []
    client = _segment(compat, errors)
    context = {"locale": "de-DE", "timezone": "Europe/Berlin", "app": {"name": "Shop", "version": "4.2"},
               "device": {"type": "ios", "model": "iPhone15,2", "manufacturer": "Apple"},
               "os": {"name": "iOS", "version": "17.5"}, "screen": {"width": 390}}
    client.track(user, "Order Completed", {"channel": "pos", "revenue": 30, "order_id": f"o-{user}"},
                 context=context, integrations={"Amplitude": False})
    client.page(user, category="Shoes", name="Spring", properties={"url": PAGE_URL})
    client.group(user, group_id=f"acme-{user}", traits={"name": "Acme GmbH", "plan": "b2b"})
    client.flush()
    client.join()
    assert errors == []
    found = rows(compat, "customer_id = {u:String}", {"u": user}, 3,
                 "type, channel, traffic_class, category, locale, timezone, app, os, os_version, device_model, "
                 "device_brand, device_type, context, integrations, group_id, library")
    track, page, group = sorted(found, key=lambda r: ["track", "page", "group"].index(r["type"]))
    assert track["channel"] == "pos"  # properties.channel: was stored as "other"
    assert (track["locale"], track["timezone"], track["app"]) == ("de-DE", "Europe/Berlin", "Shop/4.2")
    assert (track["os"], track["os_version"], track["device_model"], track["device_brand"], track["device_type"]) == \
        ("iOS", "17.5", "iPhone15,2", "Apple", "mobile")
    assert track["context"]["screen"] == '{"width":390}' and "ip" not in track["context"]
    assert track["integrations"] == {"Amplitude": "false"}
    assert track["library"].startswith("analytics-python/")
    assert (page["channel"], page["traffic_class"], page["category"]) == ("email", "email", "Shoes")
    assert group["group_id"] == f"acme-{user}"
    accounts = compat.query("SELECT group_id, traits FROM customer_groups WHERE customer_id = {u:String}", {"u": user})
    assert accounts == [{"group_id": f"acme-{user}", "traits": {"name": "Acme GmbH", "plan": "b2b"}}]


def test_rudder_python_pages_are_attributed_like_segment_ones(compat: Collector) -> None:
    """rudder-sdk-python sends top-level channel "server": no channel choice, so its page views are attributed."""
    seg_user, rud_user = f"seg-{uuid.uuid4().hex[:8]}", f"rud-{uuid.uuid4().hex[:8]}"
    errors: list[Exception] = []
    for client, user in ((_segment(compat, errors), seg_user), (_rudder(compat, errors), rud_user)):
        client.page(user, name="Spring", properties={"url": PAGE_URL, "referrer": "https://mail.example/"})
        client.track(user, "Product Viewed", {"sku": "A1"})
        client.track(user, "Store Visit", {"channel": "pos"})
        client.flush()
        client.join()
    assert errors == []
    columns = "type, event, channel, traffic_class, traffic_source, campaign"
    segment = rows(compat, "customer_id = {u:String}", {"u": seg_user}, 3, columns)
    rudder = rows(compat, "customer_id = {u:String}", {"u": rud_user}, 3, columns)
    assert sorted(map(str, segment)) == sorted(map(str, rudder))
    by_event = {r["event"] if r["type"] == "track" else r["type"]: r for r in rudder}
    assert (by_event["page"]["channel"], by_event["page"]["traffic_class"], by_event["page"]["campaign"]) == \
        ("email", "email", "spring")
    assert by_event["Store Visit"]["channel"] == "pos"
    assert by_event["Product Viewed"]["channel"] == "other"


def test_an_oversized_event_in_a_rudder_batch_is_rejected_alone(compat: Collector) -> None:
    user = f"big-{uuid.uuid4().hex[:10]}"
    errors: list[Exception] = []
    client = _rudder(compat, errors)
    client.track(user, "Before", {"n": 1})
    client.track(user, "Huge", {"blob": "x" * 100_000})  # rudder-sdk-python allows 4 MB a message
    client.track(user, "After", {"n": 2})
    client.flush()
    client.join()
    assert errors == []  # the batch got 200, with the big event in `rejected`
    assert sorted(r["event"] for r in rows(compat, "customer_id = {u:String}", {"u": user}, 2, "event")) == \
        ["After", "Before"]
    compat.wait_settled()
    dead = compat.query("SELECT reason, length(payload) AS size, customer_id FROM dead_letters"
                        " WHERE customer_id = {u:String}", {"u": user})
    assert len(dead) == 1 and "larger than 32768 bytes" in dead[0]["reason"]
    assert 0 < dead[0]["size"] <= 64 * 1024 < 100_000  # truncated payload


@pytest.fixture
def small_bodies(tmp_path: Path) -> Iterator[Collector]:
    """A collector whose request bodies may not pass 64 KiB (REISE_MAX_BODY_BYTES)."""
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_MAX_BODY_BYTES": "65536"}) as instance:
        yield instance


def test_errors_carry_code_and_message_so_clients_give_up_without_a_retry_storm(small_bodies: Collector) -> None:
    user = f"err-{uuid.uuid4().hex[:10]}"
    errors: list[Exception] = []
    client = _rudder(small_bodies, errors)
    for n in range(3):
        client.track(user, "Filler", {"blob": "y" * 30_000, "n": n})  # 90 KB in one batch: 413
    client.flush()
    client.join()
    assert len(errors) == 1, errors  # once: a 4xx with code and message is final (was KeyError('code'), retried)
    error: Any = errors[0]
    assert isinstance(error, RudderAPIError) and error.status == 413 and error.code == "payload_too_large"
    small_bodies.wait_settled()
    assert small_bodies.scalar("SELECT count() FROM dead_letters WHERE payload = ''") == 0
    segment_errors: list[Exception] = []
    bad = _segment(small_bodies, segment_errors, key="wk_unknown")
    bad.track(user, "Nope")
    bad.flush()
    bad.join()
    assert len(segment_errors) == 1 and getattr(segment_errors[0], "code", None) == "unauthorized"


def test_segment_python_identities_merge_and_every_event_is_stored_once(compat: Collector) -> None:
    anon, user = f"anon-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:8]}"
    errors: list[Exception] = []
    client = _segment(compat, errors)
    client.page(anonymous_id=anon, name="Home", properties={"url": SHOP})
    client.identify(user, {"email": "x@example.com"}, anonymous_id=anon)
    for n in range(20):
        client.track(user, "Product Viewed", {"n": n})
    client.flush()
    client.join()
    assert errors == []
    rows(compat, "journey_id IN ({a:String}, {u:String})", {"a": anon, "u": user}, 22)
    compat.wait_settled()
    journey = compat.query("SELECT contacts FROM customer_journey_of(id = {a:String})", {"a": anon})
    assert journey == [{"contacts": 21}]

"""Time bounds: a hostile clock is rejected at ingest, and no stored time can make a read answer 500."""

from __future__ import annotations

import http.client as httplib
import json
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from collector.journey.analyst import look_up_customer
from collector.journey.insights import Filters, overview
from collector.store.clickhouse import QueryResult, Store
from collector.store.readonly import QueryLimits
from tests.helpers import ROOT, Collector, http


def iso(moment: datetime) -> str:
    """An ISO 8601 UTC time with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_hostile_clock_is_rejected_with_the_field_named(collector: Collector) -> None:
    user = f"clock-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    hostile = [
        # sentAt far ahead shifts a current timestamp to before year 1 (it used to become year 0000)
        ({"timestamp": iso(now)}, "9999-01-01T00:00:00Z", "sentAt: after 2200-01-01"),
        # a plausible sentAt, but the event itself is from long ago
        ({"timestamp": "1999-12-31T23:59:59Z"}, None, "timestamp: before 2000-01-01 after clock-skew correction"),
        # a sentAt the store can hold, far enough ahead to shift the event before 2000
        ({"timestamp": iso(now)}, "2150-01-01T00:00:00Z", "timestamp: before 2000-01-01 after clock-skew correction"),
        # a sentAt decades in the past shifts the event decades into the future
        ({"timestamp": iso(now)}, "1990-01-01T00:00:00Z", "timestamp: more than a day in the future"),
        # an event time the store's DateTime64 cannot hold
        ({"timestamp": "2999-01-01T00:00:00Z"}, "2999-01-01T00:00:00Z", "timestamp: after 2200-01-01"),
    ]
    for index, (fields, sent_at, reason) in enumerate(hostile):
        event = {"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-{index}", **fields}
        body = {"batch": [event], **({"sentAt": sent_at} if sent_at else {})}
        reply = collector.post("/v1/batch", body)
        assert reply.status == 200 and reply.body["accepted"] == 0, (reason, reply.body)
        assert reply.body["rejected"][0]["reason"].startswith(reason), reply.body
    # a device whose clock is years off but consistent is corrected, not rejected (clocks reset to 1970, say)
    skewed = now - timedelta(days=365 * 56)
    ok = collector.post("/v1/batch", {"sentAt": iso(skewed), "batch": [
        {"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-ok",
         "timestamp": iso(skewed - timedelta(minutes=5))}]})
    assert ok.body["accepted"] == 1, ok.body
    collector.wait_settled()
    assert collector.scalar("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", {"u": user}) == 1
    first = collector.scalar("SELECT toString(min(timestamp)) FROM touchpoints WHERE customer_id = {u:String}",
                             {"u": user})
    assert first.startswith(str((now - timedelta(minutes=5)).year))
    kept = collector.query("SELECT reason FROM dead_letters WHERE customer_id = {u:String}", {"u": user})
    assert len(kept) == len(hostile)
    assert {r["reason"].split(":")[0] for r in kept} == {"sentAt", "timestamp"}


# Times no ingest lets through any more, written straight into the store: the year 0000 (what the hostile
# sentAt made), 1970, 2299, and the two ends of DateTime64's 64-bit ticks.
EXTREMES = {
    "year-0": "toDateTime64(-62167219200, 3, 'UTC')",
    "year-1970": "toDateTime64(0, 3, 'UTC')",
    "year-2299": "toDateTime64('2299-12-31 23:59:59', 3, 'UTC')",
    "min-ticks": "reinterpret(toInt64(-9223372036854775807), 'DateTime64(3, \\'UTC\\')')",
    "max-ticks": "reinterpret(toInt64(9223372036854775807), 'DateTime64(3, \\'UTC\\')')",
}


def poison(store: Store, customer: str, time_sql: str) -> None:
    """Write one purchase touchpoint with the given time straight into the store, and a link to it."""
    store.command(f"""
        INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, anonymous_id, channel, stage,
                                 stage_rank, timestamp, original_timestamp, received_at, revenue, source)
        SELECT {{m:String}}, 'track', 'Order Completed', {{c:String}}, {{c:String}}, {{a:String}}, 'pos',
               'purchase', 3, {time_sql}, {time_sql}, {time_sql}, 10, 'test'""",
                  {"m": f"{customer}-poison", "c": customer, "a": f"{customer}-anon"})
    store.command(f"""
        INSERT INTO identity_links (anonymous_id, customer_id, linked_at, message_id, source)
        SELECT {{a:String}}, {{c:String}}, {time_sql}, {{m:String}}, 'test'""",
                  {"m": f"{customer}-poison", "c": customer, "a": f"{customer}-anon"})


def write_poisoned_store(data_dir: Path, customers: dict[str, str]) -> None:
    """Migrate a fresh embedded store and poison it, in a process of its own (chDB: one data path a process)."""
    code = (
        "import sys, json\n"
        "from collector.store.clickhouse import Store\n"
        "from collector.store.migrate import apply_migrations\n"
        "from tests.collector.test_time_bounds import poison\n"
        "store = Store(dsn=sys.argv[1]); apply_migrations(store)\n"
        "for customer, sql in json.loads(sys.argv[2]).items():\n"
        "    poison(store, customer, sql)\n"
        "store.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, f"chdb://{data_dir}", json.dumps(customers)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_stored_extreme_times_read_without_failing_in_process(store: Store) -> None:
    run_id = uuid.uuid4().hex[:6]

    def run(sql: str, params: Mapping[str, Any]) -> QueryResult:
        return store.query_readonly(sql, params, limits=QueryLimits(timeout=30, max_rows=10_000))

    for name, time_sql in EXTREMES.items():
        customer = f"{name}-{run_id}"
        poison(store, customer, time_sql)
        found = look_up_customer(run, customer, with_links=True)
        assert found is not None, name
        record = found.journey.records()[0]
        assert record["purchases"] == 1 and float(record["revenue"]) == 10.0, (name, record)
        # the journey's times come as stored (SimpleAggregateFunction(min, Nullable(DateTime64 ...))): a time or None
        journey_times = [record[field] for field in ("first_seen", "last_seen", "reached_purchase_at")]
        assert all(value is None or isinstance(value, datetime) for value in journey_times), (name, journey_times)
        assert len(found.timeline.rows) == 1
        assert found.links is not None and len(found.links.rows) == 1
        stamp = found.timeline.records()[0]["timestamp"]
        assert stamp is None or isinstance(stamp, datetime), (name, stamp)
        store.query("SELECT * FROM touchpoints WHERE journey_id = {c:String}", {"c": customer})
    assert overview(run, Filters())["funnel"]  # the dashboard's figures, over every poisoned customer


def test_no_read_answers_500_for_stored_extreme_times(tmp_path: Path) -> None:
    customers = {f"poisoned-{name}": sql for name, sql in EXTREMES.items()}
    data_dir = tmp_path / "data"
    write_poisoned_store(data_dir, customers)
    with Collector(data_dir=data_dir) as collector:
        login = httplib.HTTPConnection("127.0.0.1", collector.port, timeout=60)
        login.request("POST", "/dashboard/login", body=urlencode({"key": collector.admin_key}),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        reply = login.getresponse()
        reply.read()
        assert reply.status == 303
        cookie = reply.headers["Set-Cookie"].split(";", 1)[0]
        dashboard = {"Cookie": cookie, "X-Reise-Dashboard": "1"}
        assert http("GET", collector.url + "/dashboard/api/overview", headers=dashboard).status == 200
        for customer in customers:
            answer = http("GET", f"{collector.url}/v1/customers/{quote(customer)}", key=collector.admin_key)
            assert answer.status == 200 and answer.body["purchases"] == 1, (customer, answer.body)
            looked_up = http("GET", f"{collector.url}/dashboard/api/customer?id={quote(customer)}", headers=dashboard)
            assert looked_up.status == 200 and len(looked_up.body["touchpoints"]) == 1, (customer, looked_up.body)
            cli = subprocess.run([sys.executable, "-m", "collector", "customer", customer, "--json"], cwd=ROOT,
                                 env=collector.env(), capture_output=True, text=True, timeout=120)
            assert cli.returncode == 0, (customer, cli.stderr)
        rows = collector.query("SELECT timestamp FROM touchpoints")
        assert len(rows) == len(customers)


@pytest.mark.parametrize("sent_at", ["9999-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "2200-01-01T00:00:00Z"])
def test_sent_at_beyond_the_store_is_rejected_for_every_event(collector: Collector, sent_at: str) -> None:
    user = f"sent-{uuid.uuid4().hex[:8]}"
    batch = [{"type": "track", "userId": user, "event": "Product Viewed"} for _ in range(3)]
    reply = collector.post("/v1/batch", {"sentAt": sent_at, "batch": batch})
    assert reply.body["accepted"] == 0 and len(reply.body["rejected"]) == 3, reply.body

"""The SDK against the real collector (``reise serve`` over embedded chDB) on a loopback port.

Uses the shared fixtures of tests/conftest.py: ``collector`` (session) and
``fresh_collector`` (own process, for the outage test). Skipped if they are absent.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import reise

from .test_durable import CHILD, run_until_killed

FAST = {"flush_interval": 0.05, "backoff_base": 0.05, "max_backoff": 0.5, "timeout": 5.0}


def rows_for(collector: Any, sql: str, expected: int, params: dict[str, Any],
             timeout: float = 60) -> list[dict[str, Any]]:
    """Query until ``expected`` rows are visible (the collector batches its inserts)."""
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = collector.query(sql, params)
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def scalar_until(collector: Any, sql: str, expected: Any, params: dict[str, Any],
                 timeout: float = 120) -> Any:
    """Poll a one-value query until it equals ``expected``; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = next(iter(collector.query(sql, params)[0].values()))
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_every_call_type_lands_in_the_store(real_collector: Any) -> None:
    tag = uuid.uuid4().hex[:12]
    user, anon = f"cust-{tag}", f"anon-{tag}"
    with reise.Client(real_collector.write_key, real_collector.url, channel="pos",
                      store_id=f"store-{tag}", **FAST) as c:  # type: ignore[arg-type]
        ids = {
            "page": c.page(None, "Shop", "Home", {"path": "/"}, anonymous_id=anon, channel="web",
                           campaign=f"camp-{tag}"),
            "screen": c.screen(None, "App", "Basket", {"items": 2}, anonymous_id=anon, channel="app"),
            "track": c.track(None, "Product Viewed", {"sku": "A-1"}, anonymous_id=anon,
                             stage="consideration", channel="web"),
            "identify": c.identify(user, {"tier": "gold"}, anonymous_id=anon),
            "alias": c.alias(f"card-{tag}", user),
            "purchase": c.purchase(f"order-{tag}", 59.9, "eur", items=[{"sku": "A-1"}],
                                   user_id=user),
        }
        assert c.flush(30)
    rows = rows_for(real_collector,
                    "SELECT message_id, type, event, customer_id, anonymous_id, channel, stage, "
                    "toFloat64(revenue) AS revenue, currency, store_id, order_id, campaign, library,"
                    " properties FROM touchpoints WHERE message_id IN {ids:Array(String)}",
                    6, {"ids": list(ids.values())})
    by_id = {r["message_id"]: r for r in rows}
    assert set(by_id) == set(ids.values())
    page, screen, track, ident, alias, buy = (by_id[ids[k]] for k in
                                              ("page", "screen", "track", "identify", "alias", "purchase"))
    assert (page["type"], page["channel"], page["anonymous_id"], page["campaign"]) == (
        "page", "web", anon, f"camp-{tag}")
    assert (screen["type"], screen["event"], screen["channel"], screen["properties"]["items"]) == (
        "screen", "Basket", "app", "2")
    assert (track["type"], track["event"], track["stage"]) == (
        "track", "Product Viewed", "consideration")
    assert track["properties"]["sku"] == "A-1"
    assert (ident["type"], ident["customer_id"], ident["anonymous_id"]) == ("identify", user, anon)
    assert (alias["type"], alias["customer_id"]) == ("alias", user)
    assert buy["type"] == "track" and buy["event"] == "Order Completed"
    assert (buy["stage"], buy["channel"], buy["customer_id"]) == ("purchase", "pos", user)
    assert (buy["revenue"], buy["currency"], buy["order_id"], buy["store_id"]) == (
        59.9, "EUR", f"order-{tag}", f"store-{tag}")
    assert all(r["library"].startswith("reise-python") for r in rows)


def test_collector_rejects_go_to_on_error(real_collector: Any) -> None:
    errors: list[reise.DeliveryError] = []
    lock = threading.Lock()

    def on_error(err: reise.DeliveryError) -> None:
        with lock:
            errors.append(err)

    tag = uuid.uuid4().hex[:12]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with reise.Client(real_collector.write_key, real_collector.url, on_error=on_error,
                      **FAST) as c:  # type: ignore[arg-type]
        good = c.track(f"u-{tag}", "Fine")
        too_long = c.track("x" * 300, "Long Id")
        too_late = c.track(f"u-{tag}", "From The Future", timestamp=future)
        assert c.flush(30)
    rejected = {e.message_id: e.reason for e in errors if isinstance(e, reise.EventRejected)}
    assert set(rejected) == {too_long, too_late}
    assert "userId" in rejected[too_long] and "longer than" in rejected[too_long]
    assert "future" in rejected[too_late]
    assert rows_for(real_collector, "SELECT message_id FROM touchpoints "
                    "WHERE message_id = {m:String}", 1, {"m": good})


def test_burst_of_100k_with_defaults_lands_exactly_once(real_collector: Any) -> None:
    tag = uuid.uuid4().hex[:12]
    with reise.Client(real_collector.write_key, real_collector.url) as c:
        for i in range(100_000):
            c.track(f"burst-{tag}", "Burst", {"i": i})
        assert c.flush(300)
        assert c.stats()["dropped"] == 0
    sql = ("SELECT count() AS n, uniqExact(message_id) AS u, uniqExact(properties['i']) AS i "
           "FROM touchpoints WHERE customer_id = {c:String}")
    scalar_until(real_collector, "SELECT count() FROM touchpoints WHERE customer_id = {c:String}",
                 100_000, {"c": f"burst-{tag}"})
    assert real_collector.query(sql, {"c": f"burst-{tag}"}) == [
        {"n": 100_000, "u": 100_000, "i": 100_000}]


def test_collector_down_10s_then_up_loses_nothing(fresh_collector: Any) -> None:
    tag = uuid.uuid4().hex[:12]
    errors: list[reise.DeliveryError] = []
    with reise.Client(fresh_collector.write_key, fresh_collector.url, on_error=errors.append,
                      max_backoff=1.0, flush_interval=0.1) as c:
        for i in range(1000):
            c.track(f"outage-{tag}", "Before", {"i": i})
        fresh_collector.stop()
        stop_at = time.monotonic()
        i = 0
        while time.monotonic() - stop_at < 10:  # 10 s of traffic into a dead collector
            c.track(f"outage-{tag}", "During", {"i": i})
            i += 1
            time.sleep(0.002)
        fresh_collector.start()
        for j in range(1000):
            c.track(f"outage-{tag}", "After", {"i": j})
        assert c.flush(120)
        sent = 2000 + i
    assert errors == []
    got = scalar_until(fresh_collector, "SELECT uniqExact(message_id) FROM touchpoints "
                       "WHERE customer_id = {c:String}", sent, {"c": f"outage-{tag}"})
    assert got == sent
    assert fresh_collector.scalar("SELECT count() FROM touchpoints WHERE customer_id = {c:String}",
                                  {"c": f"outage-{tag}"}) == sent


def test_durable_sigkill_then_new_process_every_event_exactly_once(real_collector: Any,
                                                                   tmp_path: Path) -> None:
    spool = tmp_path / "till.db"
    tag = uuid.uuid4().hex[:12]
    last = run_until_killed(real_collector.url, real_collector.write_key, spool, tag, 20_000,
                            kill_after=3000)
    # A new process on the same spool delivers what the killed one left.
    proc = subprocess.run([sys.executable, CHILD, real_collector.url, real_collector.write_key,
                           str(spool), tag, "0", "--finish"], timeout=120)
    assert proc.returncode == 0
    assert proc.returncode != -signal.SIGKILL
    expected = last + 1
    n = scalar_until(real_collector, "SELECT uniqExact(properties['i']) FROM touchpoints "
                     "WHERE customer_id = {c:String} AND toInt64(properties['i']) <= {last:Int64}",
                     expected, {"c": f"durable-{tag}", "last": last})
    assert n == expected
    dupes = real_collector.query(
        "SELECT message_id, count() AS n FROM touchpoints WHERE customer_id = {c:String} "
        "GROUP BY message_id HAVING n > 1", {"c": f"durable-{tag}"})
    assert dupes == []
    per_index = real_collector.query(
        "SELECT properties['i'] AS i, count() AS n FROM touchpoints WHERE customer_id = {c:String} "
        "GROUP BY i HAVING n > 1", {"c": f"durable-{tag}"})
    assert per_index == []


@pytest.mark.parametrize("n", [1])
def test_async_client_against_the_collector(real_collector: Any, n: int) -> None:
    import asyncio

    tag = uuid.uuid4().hex[:12]

    async def main() -> str:
        async with reise.AsyncClient(real_collector.write_key, real_collector.url,
                                     **FAST) as c:  # type: ignore[arg-type]
            mid = c.track(f"async-{tag}", "Async Event", {"n": n})
            assert await c.flush(30)
            return mid

    mid = asyncio.run(main())
    assert rows_for(real_collector, "SELECT message_id FROM touchpoints WHERE message_id = {m:String}",
                    1, {"m": mid})

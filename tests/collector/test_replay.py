"""A replayed batch is never counted twice: by insert token in the store, by messageId in the collector."""

from __future__ import annotations

import time
import uuid
from typing import Any

from collector.identity.guards import DEFAULT_POLICY
from collector.identity.resolver import Link, purge_merged, resolve_links
from collector.ingest.dedup import dedup_key
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH
from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations, load_migrations
from collector.store.schema import LINK_COLUMNS
from tests.helpers import Collector


def make_batch(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"type": "track", "userId": f"{prefix}-u{i % 7}", "anonymousId": f"{prefix}-a{i % 7}",
             "event": "Product Viewed", "channel": "web", "messageId": f"{prefix}-m{i}",
             "timestamp": f"2026-03-01T00:00:{i % 60:02d}.{i:03d}Z"} for i in range(n)]


def test_same_token_inserted_twice_counts_once_through_the_views(store: Store) -> None:
    prefix = uuid.uuid4().hex[:8]
    ctx = IngestContext(source="test", received_ms=int(time.time() * 1000),
                        rules=StageRules.load(DEFAULT_RULES_PATH))
    rows = [normalise(e, None, ctx) for e in make_batch(prefix, 500)]
    token = f"segment-{prefix}-touchpoints"
    links = [Link.from_row(dict(zip(LINK_COLUMNS, r, strict=True))) for r in DEFAULT_POLICY.links_in(rows)]
    for _ in range(3):  # a segment replayed after crashes: its touchpoints, then its links
        store.insert_touchpoints(rows, token)
        resolve_links(store, links, f"segment-{prefix}-identity_links", max_ids=100)
    params = {"p": prefix + "-"}
    assert store.query("SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})",
                       params).rows == [(500,)]
    assert store.query("SELECT sum(contacts) FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                       params).rows == [(500,)]
    # every touchpoint is keyed by its user id: the seven anonymous ids moved have no rows, so no hidden marker
    assert store.query("SELECT count() FROM customer_state WHERE startsWith(customer_id, {p:String})"
                       " AND hidden = 1", params).rows == [(0,)]
    assert store.query("SELECT count() FROM customer_state WHERE startsWith(customer_id, {p:String})"
                       " AND position(customer_id, '-a') > 0", params).rows == [(0,)]
    purge_merged(store)  # the merged keys' rows go; the journeys stay as they were
    for _ in range(50):
        if store.query("SELECT count() FROM customer_state WHERE startsWith(customer_id, {p:String})"
                       " AND hidden = 1", params).rows == [(0,)]:
            break
        time.sleep(0.1)
    assert store.query("SELECT count() FROM customer_state WHERE startsWith(customer_id, {p:String})"
                       " AND hidden = 1", params).rows == [(0,)]
    assert store.query("SELECT sum(contacts), count() FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                       params).rows == [(500, 7)]
    assert store.query("SELECT count() FROM identity_links WHERE startsWith(customer_id, {p:String})",
                       params).rows == [(500,)]
    # a different batch (other token) is stored
    more = [normalise(e, None, ctx) for e in make_batch(prefix + "-x", 10)]
    store.insert_touchpoints(more, f"segment-{prefix}-more")
    assert store.query("SELECT sum(contacts) FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                       params).rows == [(510,)]


def test_the_store_keeps_the_same_keys_the_collector_computes(store: Store) -> None:
    """event_keys (kept by SQL in a migration) holds exactly dedup.dedup_key of every stored row."""
    prefix = uuid.uuid4().hex[:8]
    ctx = IngestContext(source="till-7", received_ms=int(time.time() * 1000),
                        rules=StageRules.load(DEFAULT_RULES_PATH))
    events = [*make_batch(prefix, 20),
              {"type": "track", "userId": f"{prefix}-u0", "event": "Order Completed", "channel": "pos",
               "messageId": f"{prefix}-buy", "properties": {"order_id": f"{prefix}-o1", "revenue": 12}},
              {"type": "track", "userId": f"{prefix}-u0", "event": "Order Refunded", "channel": "pos",
               "messageId": f"{prefix}-back", "properties": {"order_id": f"{prefix}-o1", "return_id": "r-1"}},
              {"type": "page", "anonymousId": f"{prefix}-a9", "name": "Home", "messageId": f"{prefix} $x$ 'q'\n"}]
    rows = [normalise(e, None, ctx) for e in events]
    store.insert_touchpoints(rows, f"keys-{prefix}")
    keys = [dedup_key(row) for row in rows]
    assert sum(k.startswith("order") for k in keys) == 2
    unknown = [f"{prefix}-never", f"order\x1ftill-7\x1f{prefix}-o2\x1forder completed\x1f"]
    assert store.stored_keys(keys + unknown) == set(keys)
    assert store.stored_keys([]) == set()


def test_migrations_are_recorded_and_safe_to_rerun(store: Store) -> None:
    assert apply_migrations(store) == []
    versions = store.query("SELECT version FROM reise_migrations FINAL ORDER BY version").rows
    assert [v for (v,) in versions] == [m.version for m in load_migrations()]
    tables = {t for (t,) in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows}
    assert {"touchpoints", "dead_letters", "identity_links", "identity_keys", "identity_members", "customer_state",
            "customer_journey", "customer_journey_of", "stage_funnel", "contacts_before_purchase", "identity_map",
            "event_keys"} <= tables
    assert "journey_state" not in tables


def test_resent_message_ids_are_duplicates(collector: Collector) -> None:
    prefix = uuid.uuid4().hex[:8]
    batch = make_batch(prefix, 50)
    first = collector.post("/v1/batch", {"batch": batch})
    assert (first.body["accepted"], first.body["duplicates"]) == (50, 0)
    again = collector.post("/v1/batch", {"batch": batch[:30] + make_batch(prefix + "n", 5)})
    assert (again.body["accepted"], again.body["duplicates"]) == (5, 30)
    count_sql = "SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})"
    assert collector.wait_for(count_sql, 55, {"p": prefix}) == 55
    time.sleep(0.5)
    assert collector.scalar(count_sql, {"p": prefix}) == 55
    assert collector.scalar("SELECT contacts FROM customer_journey WHERE customer_id = {c:String}",
                            {"c": f"{prefix}-u0"}) == 8


def test_duplicates_are_recognised_after_a_restart(fresh_collector: Collector) -> None:
    prefix = uuid.uuid4().hex[:8]
    batch = make_batch(prefix, 40)
    assert fresh_collector.post("/v1/batch", {"batch": batch}).body["accepted"] == 40
    assert fresh_collector.stop() == 0  # SIGTERM drains the queue
    fresh_collector.start()
    count_sql = "SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})"
    assert fresh_collector.scalar(count_sql, {"p": prefix}) == 40
    reply = fresh_collector.post("/v1/batch", {"batch": batch})
    assert (reply.body["accepted"], reply.body["duplicates"]) == (0, 40)

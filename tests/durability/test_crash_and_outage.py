"""Nothing lost, nothing doubled: SIGKILL under load, a store outage, a full spool, SIGTERM."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

from tests.durability.load import RECOUNT_SQL, Load, batches_of, missing, stored_once
from tests.helpers import Collector, free_port, http
from tests.journeys import generate

BIG_QUERIES = {"REISE_QUERY_MAX_ROWS": "1000000"}


def wait_until(predicate, timeout: float = 120, every: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    """Poll until the predicate holds; False when time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_sigkill_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    prefix = f"k{uuid.uuid4().hex[:6]}"
    data = generate(110_000, seed=11, prefix=prefix)
    batches = batches_of(data.events)
    collector = Collector(data_dir=tmp_path / "data", extra_env={**BIG_QUERIES, "REISE_BATCH_SIZE": "20000"})
    collector.start()
    load = Load(collector, batches)
    workers = load.run()
    assert wait_until(lambda: len(load.acked) >= 40_000, timeout=300), load.statuses
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no drain
    load.stop.set()
    for worker in workers:
        worker.join(60)
    acked = set(load.acked)
    assert 40_000 <= len(acked) < len(data.events)

    collector.start()  # replays what the spool holds
    # clients retry everything they sent; what was acknowledged before must count once
    retry = Load(collector, batches)
    for worker in retry.run():
        worker.join(600)
    assert set(retry.statuses) == {200}
    total = len(data.events)
    assert wait_until(lambda: stored_once(collector, prefix)[0] >= total, timeout=300)
    time.sleep(1)
    assert stored_once(collector, prefix) == (total, total, 0)
    assert missing(collector, prefix, acked) == set()
    # the views are written by the same insert, their parts land a moment after the raw rows
    assert wait_until(lambda: collector.scalar(RECOUNT_SQL, {"p": prefix}) == 0, timeout=60)
    # links of replayed segments (kept in memory only) were derived again from their touchpoints
    linked_sql = "SELECT count() FROM identity_map WHERE startsWith(anonymous_id, {p:String})"
    assert wait_until(lambda: collector.scalar(linked_sql, {"p": prefix}) == len(data.links), timeout=60)
    collector.stop()


def test_store_paused_for_30s_under_load_then_catches_up(tmp_path: Path) -> None:
    prefix = f"o{uuid.uuid4().hex[:6]}"
    data = generate(30_000, seed=12, prefix=prefix)
    collector = Collector(data_dir=tmp_path / "data", extra_env=BIG_QUERIES)
    collector.start()
    admin_key = collector.admin_key
    assert http("POST", collector.url + "/v1/admin/writing", {"paused": True}, key=admin_key).status == 200
    load = Load(collector, batches_of(data.events), threads=2)
    workers = load.run()
    started = time.monotonic()
    seen_paused = []
    while time.monotonic() - started < 30:
        ready = http("GET", collector.url + "/readyz").body
        seen_paused.append((ready["writing"], ready["spool"]["rows"]))
        time.sleep(1)
    for worker in workers:
        worker.join(300)
    assert set(load.statuses) == {200}
    assert stored_once(collector, prefix)[0] == 0  # nothing written while paused
    assert all(state == "paused" for state, _ in seen_paused)
    assert seen_paused[-1][1] >= len(data.events)  # all of it waiting in the spool
    assert http("POST", collector.url + "/v1/admin/writing", {"paused": False}, key=admin_key).status == 200
    total = len(data.events)
    assert wait_until(lambda: stored_once(collector, prefix)[0] >= total)
    assert stored_once(collector, prefix) == (total, total, 0)
    # the views are written by the same insert, their parts land a moment after the raw rows
    assert wait_until(lambda: collector.scalar(RECOUNT_SQL, {"p": prefix}) == 0, timeout=60)
    assert http("POST", collector.url + "/v1/admin/writing", {"paused": True}).status == 401
    collector.stop()


def test_unreachable_store_for_30s_then_back(tmp_path: Path) -> None:
    """The collector starts against a ClickHouse DSN on a closed port, spools, and replays on the real store."""
    prefix = f"u{uuid.uuid4().hex[:6]}"
    data = generate(20_000, seed=13, prefix=prefix)
    spool = tmp_path / "spool"
    closed = f"http://default:@127.0.0.1:{free_port()}/default"
    down = Collector(data_dir=tmp_path / "data", extra_env={
        "REISE_DSN": closed, "REISE_SPOOL_DIR": str(spool), "REISE_DRAIN_TIMEOUT": "1"})
    down.start()
    ready = http("GET", down.url + "/readyz")
    assert ready.status == 200 and ready.body["store"] == "unreachable"
    load = Load(down, batches_of(data.events), threads=2)
    started = time.monotonic()
    for worker in load.run():
        worker.join(300)
    time.sleep(max(0.0, 30 - (time.monotonic() - started)))
    assert set(load.statuses) == {200}
    # an import must ask the store for duplicates: refused for now, with a time to come back
    history = {"type": "track", "userId": f"{prefix}-old", "event": "Old Order", "messageId": uuid.uuid4().hex}
    refused = http("POST", down.url + "/v1/import", {"batch": [history]}, key=down.write_key)
    assert refused.status == 503 and refused.body["error"].startswith("store: unavailable")
    assert int(refused.headers["Retry-After"]) > 0
    ready = http("GET", down.url + "/readyz").body
    assert ready["writing"] == "retrying" and ready["spool"]["rows"] == len(data.events)
    assert "cannot reach" in ready["last_error"].lower() or ready["last_error"]
    assert down.stop() == 0  # the drain times out; the spool keeps everything

    back = Collector(data_dir=tmp_path / "data", extra_env={**BIG_QUERIES, "REISE_SPOOL_DIR": str(spool)})
    back.start()
    total = len(data.events)
    assert wait_until(lambda: stored_once(back, prefix)[0] >= total)
    assert stored_once(back, prefix) == (total, total, 0)
    # the views are written by the same insert, their parts land a moment after the raw rows
    assert wait_until(lambda: back.scalar(RECOUNT_SQL, {"p": prefix}) == 0, timeout=60)
    # the same events sent again are recognised as duplicates
    again = back.post("/v1/batch", {"batch": data.events[:100]})
    assert again.body["duplicates"] == 100
    back.stop()
    assert not list(spool.glob("*.tp"))


def test_full_spool_answers_503_with_retry_after_and_keeps_what_it_took(tmp_path: Path) -> None:
    prefix = f"f{uuid.uuid4().hex[:6]}"
    data = generate(15_000, seed=14, prefix=prefix)
    collector = Collector(data_dir=tmp_path / "data",
                          extra_env={**BIG_QUERIES, "REISE_SPOOL_MAX_BYTES": str(1024 * 1024)})
    collector.start()
    admin_key = collector.admin_key
    http("POST", collector.url + "/v1/admin/writing", {"paused": True}, key=admin_key)
    load = Load(collector, batches_of(data.events), threads=1)
    for worker in load.run():
        worker.join(300)
    assert load.statuses.get(503, 0) > 0 and load.statuses.get(200, 0) > 0
    assert set(load.retry_after) == {"5"}
    assert http("GET", collector.url + "/readyz").status == 503
    http("POST", collector.url + "/v1/admin/writing", {"paused": False}, key=admin_key)
    acked = set(load.acked)
    assert wait_until(lambda: stored_once(collector, prefix)[0] >= len(acked))
    assert stored_once(collector, prefix) == (len(acked), len(acked), 0)
    assert missing(collector, prefix, acked) == set()
    # the segment is released a moment after its rows are visible
    assert wait_until(lambda: http("GET", collector.url + "/readyz").status == 200, timeout=30)
    collector.stop()


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:6]}"
    data = generate(5_000, seed=15, prefix=prefix)
    collector = Collector(data_dir=tmp_path / "data", extra_env={"REISE_FLUSH_INTERVAL": "30"})
    collector.start()
    for batch in batches_of(data.events):
        assert collector.post("/v1/batch", {"batch": batch}).status == 200
    spool = tmp_path / "data" / "spool"
    assert list(spool.glob("*.tp"))  # still waiting: the flush interval is long
    assert collector.stop(signal.SIGTERM) == 0
    assert not list(spool.glob("*.tp"))
    collector.start()
    assert stored_once(collector, prefix) == (len(data.events), len(data.events), 0)
    collector.stop()


def test_a_segment_written_before_a_schema_change_still_replays(tmp_path: Path) -> None:
    """Segments carry their column names: rows spooled by an older version (fewer columns) insert by name."""
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    older = ["message_id", "type", "event", "journey_id", "customer_id", "channel", "timestamp", "received_at"]
    user = f"old-{uuid.uuid4().hex[:8]}"
    rows = [[f"{user}-{i}", "track", "Product Viewed", user, user, "web", 1780000000.5 + i, 1780000001.0]
            for i in range(3)]
    lines = [json.dumps(older)] + [json.dumps(r) for r in rows]
    (spool / "00000000000000000001-0000abcd.tp").write_text("\n".join(lines) + '\n{"torn": ')
    collector = Collector(data_dir=tmp_path / "data")
    collector.start()
    assert collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 3, {"u": user}) == 3
    assert collector.scalar("SELECT contacts FROM customer_journey WHERE customer_id = {u:String}", {"u": user}) == 3
    assert collector.post("/v1/track", {"userId": user, "event": "x", "messageId": f"{user}-0"}).body[
        "duplicates"] == 1  # spooled keys are remembered
    collector.stop()

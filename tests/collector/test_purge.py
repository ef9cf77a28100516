"""The purge of merged-away customer keys removes their rows from the parts too, once they are worth it.

Each scenario runs on a store of its own in a child process (chDB opens one data path per process): the share of
deleted rows is a figure of the whole ``customer_state`` table, which the session's shared store mixes with other
tests' rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, Collector

# Customers 0..known-1 come with their user id only; customers known..known+late-1 come as an anonymous id first,
# linked to their user id in a later segment (their state is recorded under it, then moved and hidden).
SCENARIO = r"""
import json, sys, time
from collector.identity.resolver import Link, purge_merged, resolve_links
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH
from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations

dsn, known, late, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = Store(dsn=dsn)
apply_migrations(store)
ctx = IngestContext(source="test", received_ms=int(time.time() * 1000), rules=StageRules.load(DEFAULT_RULES_PATH))
events = []
for c in range(known + late):
    who = {"userId": f"u{c}"} if c < known else {"anonymousId": f"a{c}"}
    for k in range(4):
        events.append({"type": "track", "event": ["Product Viewed", "Order Completed"][k % 2], "channel": "web",
                       "messageId": f"m{c}-{k}", "timestamp": f"2026-03-01T00:{k:02d}:{c % 60:02d}.000Z", **who})
store.insert_touchpoints([normalise(e, None, ctx) for e in events], "purge-touchpoints")
links = [Link(linked_at=1772323200.0 + c, message_id=f"l{c}", anonymous_id=f"a{c}", customer_id=f"u{c}",
              source="test") for c in range(known, known + late)]
resolve_links(store, links, "purge-links", max_ids=100)

JOURNEYS = "SELECT count(), sum(contacts), sum(purchases) FROM customer_journey"
PHYSICAL = "SELECT count() FROM customer_state SETTINGS apply_deleted_mask = 0"
PARTS = ("SELECT sum(rows), countIf(has_lightweight_delete) FROM system.parts"
         " WHERE database = currentDatabase() AND table = 'customer_state' AND active")
def figures():
    return {"journeys": store.query(JOURNEYS).rows[0], "physical": store.query(PHYSICAL).rows[0][0],
            "live": store.query("SELECT count() FROM customer_state").rows[0][0],
            "parts": store.query(PARTS).rows[0]}

before = figures()
if mode == "wait":
    applied = [purge_merged(store, wait=True)]
else:  # as the collector: in the background, one purge after another
    applied = []
    for _ in range(100):
        applied.append(purge_merged(store))
        time.sleep(0.2)
        if store.query(PHYSICAL).rows == store.query("SELECT count() FROM customer_state").rows:
            break
after = figures()
store.close()
print(json.dumps({"before": before, "after": after, "applied": applied}, default=str))
"""


def scenario(tmp_path: Path, known: int, late: int, mode: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", SCENARIO, f"chdb://{tmp_path / 'data'}", str(known), str(late), mode],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_purge_removes_the_deleted_rows_from_the_parts(tmp_path: Path) -> None:
    result = scenario(tmp_path, known=300, late=300, mode="wait")
    before, after = result["before"], result["after"]
    assert before["physical"] == before["live"] > 900  # 300 known, 300 users' copies, 300 hidden keys' rows + markers
    assert result["applied"] == [True]
    assert after["journeys"] == before["journeys"]  # 600 customers, every contact and purchase kept
    assert after["journeys"][0] == 600
    assert after["live"] == 600  # one row set per live customer
    assert after["physical"] == 600  # the hidden keys' rows are gone from the parts, not only masked
    assert after["parts"] == [600, 0]


def test_background_purges_remove_the_deleted_rows_in_turn(tmp_path: Path) -> None:
    result = scenario(tmp_path, known=300, late=300, mode="background")
    before, after = result["before"], result["after"]
    # A later purge counts the rows an earlier one deleted and removes them, unless a merge of the small parts
    # removed them first (merges drop masked rows too): either way they end gone from the parts.
    assert after["journeys"] == before["journeys"]
    assert after["live"] == after["physical"] == 600


def test_a_small_share_of_deleted_rows_stays_masked(tmp_path: Path) -> None:
    result = scenario(tmp_path, known=1000, late=50, mode="wait")  # about 100 rows deleted of 1150: under 20%
    before, after = result["before"], result["after"]
    assert result["applied"] == [False]
    assert after["journeys"] == before["journeys"]
    assert after["live"] == 1050
    assert after["physical"] == before["physical"] > 1050  # masked until they are worth a rewrite


COUNT_UNTIL_GONE = r"""
import json, sys, time
from collector.store.clickhouse import Store
store = Store(dsn=sys.argv[1])
for _ in range(300):  # the mask's mutation resumes in the background once the store is open again
    physical = store.query("SELECT count() FROM customer_state SETTINGS apply_deleted_mask = 0").rows[0][0]
    live = store.query("SELECT count() FROM customer_state").rows[0][0]
    if physical == live:
        break
    time.sleep(0.1)
keys = store.query("SELECT uniqExact(customer_id) FROM customer_state").rows[0][0]
print(json.dumps([physical, live, keys]))
store.close()
"""


def test_the_collectors_purge_removes_the_rows_of_links_that_came_late(tmp_path: Path) -> None:
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_PURGE_INTERVAL": "0.5"}) as collector:
        visits = [{"type": "track", "event": "Product Viewed", "channel": "web", "anonymousId": f"late-a{c}",
                   "messageId": f"late-v{c}-{k}", "timestamp": f"2026-03-01T00:{k:02d}:{c % 60:02d}.000Z"}
                  for c in range(100) for k in range(3)]
        assert collector.post("/v1/batch", {"batch": visits}).status == 200
        collector.wait_settled()
        identifies = [{"type": "identify", "userId": f"late-u{c}", "anonymousId": f"late-a{c}",
                       "messageId": f"late-i{c}", "timestamp": f"2026-03-01T01:00:{c % 60:02d}.000Z"}
                      for c in range(100)]  # in a later segment: the anonymous ids' state moves
        assert collector.post("/v1/batch", {"batch": identifies}).status == 200
        collector.wait_settled()
        # Purges run after the segments the writer stores: the next one counts what this one deleted and removes
        # it, unless a merge of the small parts removed it first. Either way the rows end gone from the parts
        # (checked below, once the collector has stopped), so the log line only ends the wait early.
        deadline, n = time.monotonic() + 30, 0
        while "removing the deleted rows" not in collector.log_tail(200) and time.monotonic() < deadline:
            n += 1
            assert collector.post("/v1/batch", {"batch": [{
                "type": "track", "event": "Product Viewed", "channel": "web", "userId": "late-u0",
                "messageId": f"late-more{n}", "timestamp": "2026-03-01T02:00:00.000Z"}]}).status == 200
            time.sleep(0.6)
        assert collector.scalar("SELECT count() FROM customer_journey WHERE startsWith(customer_id, 'late-')") == 100
        collector.wait_settled()
        assert collector.scalar("SELECT sum(contacts) FROM customer_journey"
                                " WHERE startsWith(customer_id, 'late-')") == 300 + n
    done = subprocess.run([sys.executable, "-c", COUNT_UNTIL_GONE, collector.dsn], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    physical, live, keys = json.loads(done.stdout.splitlines()[-1])
    assert keys == 100  # the customers' keys only: the anonymous ids' rows were deleted
    assert physical == live  # and are gone from the parts, not only masked

"""``forget --suppress``: later events of the person are not stored, only counted, until ``reise unsuppress``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from collector.ingest.suppression import TOUCHPOINT_IDS, Suppression, id_hash, suppress, unsuppress
from collector.store.clickhouse import Store
from tests.helpers import ROOT, Collector, http

STORED_SQL = """
SELECT
  (SELECT count() FROM touchpoints WHERE customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)})
  + (SELECT count() FROM dead_letters WHERE customer_id IN {ids:Array(String)}
       OR anonymous_id IN {ids:Array(String)})
"""


def metric(collector: Collector, name: str, **labels: str) -> float:
    """One sample of the collector's /metrics (0 when absent)."""
    reply = http("GET", collector.url + "/metrics")
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def person(collector: Collector) -> tuple[str, list[str]]:
    user, anon = f"sup-user-{uuid.uuid4().hex[:8]}", f"sup-anon-{uuid.uuid4().hex[:8]}"
    events = [{"type": "identify", "anonymousId": anon, "userId": user},
              {"type": "track", "userId": user, "event": "Order Completed", "properties": {"revenue": 5}}]
    assert collector.post("/v1/batch", {"batch": events}).status == 200
    collector.wait_settled()
    return user, [user, anon]


def send_later_events(collector: Collector, user: str, anon: str) -> dict[str, Any]:
    """What a shop sends after the forget: events, a rejected one, a pixel hit; the batch's answer."""
    later = [{"type": "page", "anonymousId": anon, "channel": "web"},
             {"type": "track", "userId": user, "event": "Product Viewed"},
             {"type": "track", "userId": user, "event": "Bad", "channel": "fax"}]
    reply = collector.post("/v1/batch", {"batch": later})
    assert reply.status == 200
    assert http("GET", f"{collector.url}/p.gif?k=pk_site&aid={anon}&e=open&ch=email").status == 200
    return dict(reply.body)


def cli(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=collector.env(),
                          capture_output=True, text=True, timeout=120)


def test_suppressed_ids_are_not_stored_but_counted_until_unsuppressed(collector: Collector) -> None:
    user, (_, anon) = person(collector)
    reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": anon, "suppress": True},
                 key=collector.admin_key)
    assert reply.status == 200, reply.body
    assert reply.body["suppressed"] == 2 and sorted(reply.body["ids"]) == sorted([user, anon])
    assert metric(collector, "reise_suppressed_ids") >= 2
    before = metric(collector, "reise_events_total", outcome="suppressed")

    answer = send_later_events(collector, user, anon)
    # the sender is not told that this person asked to be forgotten: the events read as without consent
    assert (answer["accepted"], answer["without_consent"], len(answer["rejected"])) == (0, 2, 1)
    collector.wait_settled()
    assert collector.scalar(STORED_SQL, {"ids": [user, anon]}) == 0
    assert metric(collector, "reise_events_total", outcome="suppressed") - before == 4  # 2 + dead letter + pixel

    result = cli(collector, "unsuppress", user)  # any of the ids lifts them all
    assert result.returncode == 0, result.stderr
    assert "2 ids lifted" in result.stdout
    assert cli(collector, "unsuppress", anon).returncode == 1  # no more on the list
    assert collector.post("/v1/batch", {"batch": [{"type": "page", "anonymousId": anon}]}).body["accepted"] == 1
    collector.wait_for("SELECT count() FROM touchpoints WHERE anonymous_id = {a:String}", 1, {"a": anon})


def test_forget_suppress_from_the_command_line_and_unsuppress_by_the_endpoint(collector: Collector) -> None:
    user, ids = person(collector)
    result = cli(collector, "forget", "--suppress", user)
    assert result.returncode == 0, result.stderr
    assert "2 ids suppressed" in result.stdout
    rows = collector.query("SELECT key FROM suppressed_ids WHERE key IN {k:Array(String)} "
                           "OR key IN {ids:Array(String)}", {"k": [id_hash(i) for i in ids], "ids": ids})
    assert sorted(r["key"] for r in rows) == sorted(id_hash(i) for i in ids)  # hashes, never the ids
    assert collector.post("/v1/batch", {"batch": [{"type": "page", "userId": user}]}).body["accepted"] == 0

    admin = collector.admin_key
    assert http("POST", collector.url + "/v1/admin/unsuppress", {"id": user}, key="wk_test").status == 401
    reply = http("POST", collector.url + "/v1/admin/unsuppress", {"id": user}, key=admin)
    assert reply.status == 200 and reply.body == {"id": user, "lifted": 2}
    assert http("POST", collector.url + "/v1/admin/unsuppress", {"id": user}, key=admin).body["lifted"] == 0
    assert collector.post("/v1/batch", {"batch": [{"type": "page", "userId": user}]}).body["accepted"] == 1
    assert http("POST", collector.url + "/v1/admin/forget", {"customer_id": user, "suppress": "yes"},
                key=admin).status == 400


def test_a_collector_sees_what_another_suppressed_at_its_next_reload(store: Store) -> None:
    """Collectors sharing a store: one suppresses, the others pick it up within REISE_SUPPRESSION_RELOAD."""
    first, second = f"reload-{uuid.uuid4().hex}", f"reload-{uuid.uuid4().hex}"

    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=1) as readers:
            suppression = Suppression(store=store, readers=readers, interval=0.1)
            task = asyncio.create_task(suppression.run())
            try:
                await asyncio.sleep(0.3)
                assert suppression.loaded and not suppression.listed(first)
                suppress(store, first, [first, second])  # as another collector's forget --suppress would
                await asyncio.sleep(0.5)
                assert suppression.listed(first) and suppression.listed("", second)
                rows = [("m1", "page", "", first, "", "x"), ("m2", "page", "", "y", "", "z")]
                kept, dropped = suppression.drop(rows, (3, 5))
                assert (kept, dropped) == ([rows[1]], 1)
                assert unsuppress(store, second).lifted == 2
                await asyncio.sleep(0.5)
                assert not suppression.listed(first, second)
            finally:
                task.cancel()

    asyncio.run(scenario())
    assert TOUCHPOINT_IDS == (4, 5)

"""Forgetting a person removes them and their linked ids from every table, and nobody else."""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.helpers import ROOT, Collector, http

TABLES_SQL = """
SELECT
  (SELECT count() FROM touchpoints WHERE journey_id IN {ids:Array(String)} OR customer_id IN {ids:Array(String)}
     OR anonymous_id IN {ids:Array(String)}) AS touchpoints,
  (SELECT uniqExact(customer_id) FROM customer_state WHERE customer_id IN {ids:Array(String)}) AS customer_state,
  (SELECT uniqExact(journey_id) FROM identity_keys WHERE journey_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_keys,
  (SELECT uniqExact(member_id) FROM identity_members WHERE member_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_members,
  (SELECT count() FROM identity_links WHERE customer_id IN {ids:Array(String)}
     OR anonymous_id IN {ids:Array(String)}) AS identity_links,
  (SELECT count() FROM dead_letters WHERE customer_id IN {ids:Array(String)}
     OR anonymous_id IN {ids:Array(String)}) AS dead_letters,
  (SELECT count() FROM customer_journey WHERE hasAny(ids, {ids:Array(String)})) AS journeys
"""


def person(collector: Collector, tag: str) -> tuple[str, list[str]]:
    user, anon, card = (f"{p}-{tag}-{uuid.uuid4().hex[:8]}" for p in ("user", "anon", "card"))
    events = [
        {"type": "page", "anonymousId": anon, "channel": "web"},
        {"type": "identify", "anonymousId": anon, "userId": user},
        {"type": "alias", "previousId": card, "userId": user},
        {"type": "track", "anonymousId": card, "event": "Store Visit", "channel": "pos"},
        {"type": "track", "userId": user, "event": "Order Completed", "properties": {"revenue": 10}},
        {"type": "track", "userId": user, "event": "Bad", "channel": "fax"},  # a dead letter
    ]
    assert collector.post("/v1/batch", {"batch": events}).status == 200
    return user, [user, anon, card]


def counts(collector: Collector, ids: list[str]) -> dict[str, int]:
    return collector.query(TABLES_SQL, {"ids": ids})[0]


def test_forget_removes_everything_of_one_person_only(collector: Collector) -> None:
    user, ids = person(collector, "gone")
    other_user, other_ids = person(collector, "kept")
    collector.wait_for("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", 1, {"u": other_user})
    collector.wait_settled()  # identity links are resolved after their segment's touchpoints
    before = counts(collector, ids)
    assert before == {"touchpoints": 5, "customer_state": 3, "identity_keys": 2, "identity_members": 3,
                      "identity_links": 2, "dead_letters": 1, "journeys": 1}
    kept = counts(collector, other_ids)

    reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": user}, key=collector.admin_key)
    assert reply.status == 200, reply.body
    assert sorted(reply.body["ids"]) == sorted(ids)
    assert counts(collector, ids) == dict.fromkeys(before, 0)
    assert counts(collector, other_ids) == kept
    assert http("POST", collector.url + "/v1/admin/forget", {"customer_id": user}, key="wk_test").status == 401


def test_forget_from_the_command_line(collector: Collector) -> None:
    user, ids = person(collector, "cli")
    result = subprocess.run([sys.executable, "-m", "collector", "forget", user], cwd=ROOT, env=collector.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"forgot {user}" in result.stdout
    assert set(counts(collector, ids).values()) == {0}

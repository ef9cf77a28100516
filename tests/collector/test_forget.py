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
  (SELECT count() FROM dead_letters WHERE customer_id = '' AND arrayExists(i -> position(payload, i) > 0,
     {ids:Array(String)})) AS dead_letters_mentioning,
  (SELECT count() FROM event_keys WHERE arrayExists(i -> position(key, i) > 0, {ids:Array(String)})) AS event_keys,
  (SELECT count() FROM customer_journey WHERE hasAny(ids, {ids:Array(String)})) AS journeys
"""


def person(collector: Collector, tag: str) -> tuple[str, list[str]]:
    """A person with three linked ids, touchpoints, an order, and dead letters that name them in three ways."""
    user, anon, card = (f"{p}-{tag}-{uuid.uuid4().hex[:8]}" for p in ("user", "anon", "card"))
    events = [
        {"type": "page", "anonymousId": anon, "channel": "web", "messageId": f"{anon}-m1"},
        {"type": "identify", "anonymousId": anon, "userId": user, "messageId": f"{user}-m2"},
        {"type": "alias", "previousId": card, "userId": user, "messageId": f"{card}-m3"},
        {"type": "track", "anonymousId": card, "event": "Store Visit", "channel": "pos", "messageId": f"{card}-m4"},
        {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"{user}-m5",
         "properties": {"revenue": 10, "order_id": f"{user}-order"}},
        {"type": "track", "userId": user, "event": "Bad", "channel": "fax"},  # a dead letter
    ]
    assert collector.post("/v1/batch", {"batch": events}).status == 200
    # dead letters whose id columns are empty: a body cut short, a pixel hit with a secret key
    assert collector.post("/v1/batch", raw=f'{{"batch": [{{"type": "track", "userId": "{user}"'.encode()).status == 400
    assert http("GET", f"{collector.url}/p.gif?k=wk_till&aid={anon}&e=open").status == 200
    return user, [user, anon, card]


def counts(collector: Collector, ids: list[str]) -> dict[str, int]:
    return collector.query(TABLES_SQL, {"ids": ids})[0]


def test_forget_removes_everything_of_one_person_only(collector: Collector) -> None:
    user, ids = person(collector, "gone")
    _, other_ids = person(collector, "kept")
    # a stranger whose id starts with the forgotten one's, in a dead letter that names nobody in its columns
    assert collector.post("/v1/batch", raw=f'{{"batch": [{{"userId": "{user}-2", "x'.encode()).status == 400
    assert collector.wait_for("SELECT count() FROM dead_letters WHERE arrayExists(i -> position(payload, i) > 0, "
                              "{ids:Array(String)})", 3, {"ids": other_ids}) == 3
    collector.wait_settled()  # the spool written: links, then their segment's touchpoints
    before = counts(collector, ids)
    # one key in customer_state: the anonymous id and the card are linked in the segment of their events, so their
    # touchpoints went straight to the user's key (no rows of their own to move and hide)
    assert before == {"touchpoints": 5, "customer_state": 1, "identity_keys": 2, "identity_members": 3,
                      "identity_links": 2, "dead_letters": 1, "dead_letters_mentioning": 3, "event_keys": 5,
                      "journeys": 1}
    kept = counts(collector, other_ids)

    reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": user}, key=collector.admin_key)
    assert reply.status == 200, reply.body
    assert sorted(reply.body["ids"]) == sorted(ids)
    assert reply.body["deleted"]["event_keys"] == 5 and reply.body["deleted"]["dead_letters"] == 3
    assert counts(collector, ids) == {**dict.fromkeys(before, 0), "dead_letters_mentioning": 1}  # the stranger's
    assert collector.scalar("SELECT count() FROM dead_letters WHERE position(payload, {u:String}) > 0",
                            {"u": f'"{user}-2"'}) == 1
    assert counts(collector, other_ids) == kept
    assert http("POST", collector.url + "/v1/admin/forget", {"customer_id": user}, key="wk_test").status == 401


def test_after_a_forget_their_events_are_no_duplicates(fresh_collector: Collector) -> None:
    # a collector of its own: on the shared one, an analyst's refused query earlier in the run can leave a
    # reader thread read-only, and /v1/import's store check then answers 503 (issue 12, "Killed queries")
    collector = fresh_collector
    user, _ = person(collector, "again")
    collector.wait_settled()
    reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": user}, key=collector.admin_key)
    assert reply.status == 200, reply.body
    again = [{"type": "identify", "anonymousId": f"anon-of-{user}", "userId": user, "messageId": f"{user}-m2"}]
    assert collector.post("/v1/batch", {"batch": again}).body["accepted"] == 1  # the window forgot it too
    order = [{"type": "track", "userId": user, "event": "Order Completed", "messageId": f"{user}-m9",
              "properties": {"revenue": 10, "order_id": f"{user}-order"}}]
    imported = collector.post("/v1/import", {"batch": order})
    assert imported.status == 200 and imported.body["accepted"] == 1, imported.body  # event_keys forgot the order


def test_forget_from_the_command_line(collector: Collector) -> None:
    user, ids = person(collector, "cli")
    result = subprocess.run([sys.executable, "-m", "collector", "forget", user], cwd=ROOT, env=collector.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"forgot {user}" in result.stdout
    assert counts(collector, ids) == dict.fromkeys(counts(collector, ids), 0)

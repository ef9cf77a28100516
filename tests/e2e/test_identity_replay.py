"""A segment's identity resolution cut by a store fault between any two of its writes, then replayed, resolves
exactly once: the state moves once, the merged keys are hidden, the members and the map are complete."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from collector.errors import ReiseError
from collector.identity.plans import Plans, planned
from collector.identity.resolver import Link, apply_resolution, plan_links, resolve_links
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH
from collector.store.clickhouse import Store

# the resolver's writes in their order: links, the state (moved state, ids, hidden markers), members, the map
WRITES = ("identity_links", "customer_state", "identity_members", "identity_keys")


def touchpoints(prefix: str) -> list[tuple[object, ...]]:
    """Three contacts of a first browser, two of a second, four of the customer id."""
    ctx = IngestContext(source="test", received_ms=int(time.time() * 1000), rules=StageRules.load(DEFAULT_RULES_PATH))
    ids = [("anonymousId", f"{prefix}-a1")] * 3 + [("anonymousId", f"{prefix}-a2")] * 2
    ids += [("userId", f"{prefix}-c")] * 4
    return [normalise({"type": "track", field: id_, "event": "Product Viewed", "channel": "web",
                       "messageId": f"{prefix}-m{n}", "timestamp": f"2026-03-01T00:00:0{n}.000Z"}, None, ctx)
            for n, (field, id_) in enumerate(ids)]


def links(prefix: str) -> list[Link]:
    """A chain in one segment: the first browser to the customer, the second browser to the first."""
    return [Link(linked_at=1772323200.0, message_id=f"{prefix}-l1", anonymous_id=f"{prefix}-a1",
                 customer_id=f"{prefix}-c", source="test"),
            Link(linked_at=1772323201.0, message_id=f"{prefix}-l2", anonymous_id=f"{prefix}-a2",
                 customer_id=f"{prefix}-a1", source="test")]


def outcome(store: Store, prefix: str) -> dict[str, object]:
    p = {"p": prefix + "-"}
    state = store.query("SELECT customer_id, sum(contacts), max(hidden) FROM customer_state "
                        "WHERE startsWith(customer_id, {p:String}) GROUP BY customer_id ORDER BY customer_id", p).rows
    journeys = store.query("SELECT customer_id, ids, contacts FROM customer_journey "
                           "WHERE startsWith(customer_id, {p:String}) ORDER BY customer_id", p).rows
    keys = store.query("SELECT journey_id, argMax(customer_id, version) FROM identity_keys "
                       "WHERE startsWith(journey_id, {p:String}) GROUP BY journey_id ORDER BY journey_id", p).rows
    members = store.query("SELECT customer_id, member_id FROM identity_members "
                          "WHERE startsWith(customer_id, {p:String}) GROUP BY customer_id, member_id "
                          "HAVING argMax(active, version) = 1 ORDER BY 1, 2", p).rows
    edges = store.query("SELECT count() FROM identity_links WHERE startsWith(customer_id, {p:String})", p).rows
    return {"state": [tuple(r) for r in state], "journeys": [tuple(r) for r in journeys],
            "keys": [tuple(r) for r in keys], "members": [tuple(r) for r in members], "edges": edges[0][0]}


def expected(prefix: str) -> dict[str, object]:
    a1, a2, c = f"{prefix}-a1", f"{prefix}-a2", f"{prefix}-c"
    return {"state": [(a1, 3, 1), (a2, 2, 1), (c, 9, 0)], "journeys": [(c, [a1, a2, c], 9)],
            "keys": [(a1, c), (a2, c)], "members": [(c, a1), (c, a2), (c, c)], "edges": 2}


@pytest.mark.parametrize("refusing", WRITES)
def test_a_resolution_cut_between_its_writes_and_replayed_lands_once(merges_stopped: Store, refusing: str) -> None:
    store = merges_stopped  # a merged key's rows, once merged with its hidden marker, would hide a second copy
    prefix = uuid.uuid4().hex[:8]
    store.insert_touchpoints(touchpoints(prefix), f"replay-{prefix}-touchpoints")
    token = f"replay-{prefix}-identity_links"
    store.command(f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 1")
    try:
        with pytest.raises(ReiseError):  # the writes before this one landed, this one and the rest did not
            resolve_links(store, links(prefix), token, max_ids=100)
    finally:
        store.command(f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 0")
    for _ in range(2):  # the replay after the fault, and one more after a crash that followed it
        resolve_links(store, links(prefix), token, max_ids=100)
    assert outcome(store, prefix) == expected(prefix)


def test_an_uncut_resolution_gives_the_same(store: Store) -> None:
    prefix = uuid.uuid4().hex[:8]
    store.insert_touchpoints(touchpoints(prefix), f"replay-{prefix}-touchpoints")
    resolve_links(store, links(prefix), f"replay-{prefix}-identity_links", max_ids=100)
    assert outcome(store, prefix) == expected(prefix)


def chain_over_two_segments(store: Store, prefix: str) -> tuple[list[Link], str]:
    """The second browser linked to the first in one segment (stored); the next segment's link and token."""
    a1, a2, c = f"{prefix}-a1", f"{prefix}-a2", f"{prefix}-c"
    store.insert_touchpoints(touchpoints(prefix), f"replay-{prefix}-touchpoints")
    resolve_links(store, [Link(1772323200.0, f"{prefix}-l1", a2, a1, "test")], f"replay-{prefix}-1", max_ids=100)
    return [Link(1772323201.0, f"{prefix}-l2", a1, c, "test")], f"replay-{prefix}-2"


@pytest.mark.parametrize("refusing", WRITES)
def test_a_plan_retried_after_a_fault_lands_once_also_across_hops(merges_stopped: Store, refusing: str) -> None:
    """The batcher's retry (an outage between two writes): the same plan is written again, never planned anew."""
    store, prefix = merges_stopped, uuid.uuid4().hex[:8]
    second, token = chain_over_two_segments(store, prefix)
    plan = plan_links(store, second, max_ids=100)
    store.command(f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 1")
    try:
        with pytest.raises(ReiseError):
            apply_resolution(store, plan, token)
    finally:
        store.command(f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 0")
    apply_resolution(store, plan, token)
    want = expected(prefix)
    got = outcome(store, prefix)
    assert got["keys"] == want["keys"] and got["members"] == want["members"] and got["journeys"] == want["journeys"]


def test_a_crash_between_the_members_and_the_map_replays_the_saved_plan(merges_stopped: Store, tmp_path: Path) -> None:
    """A new process replaying the segment writes the plan saved before the crash: planning anew would read the
    moved key's members as gone and leave the ids of the earlier hop on the hidden key."""
    store, prefix = merges_stopped, uuid.uuid4().hex[:8]
    second, token = chain_over_two_segments(store, prefix)
    plan = planned(store, Plans(tmp_path), second, token, max_ids=100)
    store.command("ALTER TABLE identity_keys MODIFY SETTING table_readonly = 1")
    try:
        with pytest.raises(ReiseError):  # the links, the state and the members landed; the map did not
            apply_resolution(store, plan, token)
    finally:
        store.command("ALTER TABLE identity_keys MODIFY SETTING table_readonly = 0")
    assert plan_links(store, second, max_ids=100).mapped != plan.mapped  # what a new plan would write instead
    replayed = planned(store, Plans(tmp_path), second, token, max_ids=100)  # the new process
    assert replayed == plan
    apply_resolution(store, replayed, token)
    want, got = expected(prefix), outcome(store, prefix)
    assert got["keys"] == want["keys"] and got["members"] == want["members"] and got["journeys"] == want["journeys"]
    (tmp_path / f"{token}.plan.tmp").write_bytes(b"{")  # a save a crash cut short
    Plans(tmp_path).remove("replay-")
    assert not list(tmp_path.iterdir())

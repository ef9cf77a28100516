"""Identities across hops, end to end: chains of up to six ids fold into one customer whatever the order of
arrival, exactly as a plain-Python recount says; unlink splits them back; forget leaves nothing; the guards hold.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Collector, http
from tests.journeys import CHANNELS, EVENTS, STAGES, Dataset, differences, iso, normalised, recount

CUSTOMERS = 80  # per arrival order
ORDERS = ("links_first", "links_last", "same_batch", "shuffled")


def chains(prefix: str, seed: int) -> tuple[list[list[str]], Dataset, list[dict[str, Any]]]:
    """Customers as chains of 1 to 6 ids: contacts under every id, and the links between neighbours.

    Returns the chains, the contacts as a Dataset whose ``links`` map every id to its customer (the chain's
    last id, where every link points), and the link events (identify or alias, id j -> id j+1).
    """
    rng = random.Random(seed)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    data, link_events, all_chains = Dataset(), [], []
    tick = 0
    for n in range(CUSTOMERS):
        ids = [f"{prefix}-c{n}-i{j}" for j in range(rng.randint(1, 6))]
        all_chains.append(ids)
        for j, id_ in enumerate(ids):
            for _ in range(rng.randint(1, 4)):
                tick += rng.randint(1, 90_000)
                name, _stage = rng.choice(EVENTS)
                event: dict[str, Any] = {"type": "track", "event": name, "channel": rng.choice(CHANNELS),
                                         "timestamp": iso(start + timedelta(milliseconds=tick)),
                                         "messageId": f"{prefix}-m{len(data.events)}",
                                         ("anonymousId" if j == 0 else "userId"): id_,
                                         "properties": {"campaign": rng.choice(["spring", ""])}}
                if name == "Order Completed":
                    event["properties"].update(order_id=f"{prefix}-o{len(data.events)}", revenue=rng.randint(5, 90))
                data.events.append(event)
            if j + 1 < len(ids):
                tick += rng.randint(1, 90_000)
                kind = rng.choice(["identify", "alias"])
                link = {"type": kind, "userId": ids[j + 1], ("previousId" if kind == "alias" else "anonymousId"): id_,
                        "timestamp": iso(start + timedelta(milliseconds=tick)),
                        "messageId": f"{prefix}-l{n}-{j}"}
                link_events.append(link)
        for id_ in ids[:-1]:
            data.links[id_] = ids[-1]
    return all_chains, data, link_events


def send(collector: Collector, events: list[dict[str, Any]], size: int = 50) -> list[list[dict[str, Any]]]:
    """Send events in batches; return the batches sent."""
    batches = [events[i:i + size] for i in range(0, len(events), size)]
    for batch in batches:
        reply = collector.post("/v1/batch", {"batch": batch})
        assert reply.status == 200 and not reply.body["rejected"], reply.body
    return batches


def stored(collector: Collector, prefix: str, contacts: int) -> None:
    """Wait until the customers' contacts are all in their journeys (the view's parts land after the raw rows)."""
    sql = "SELECT sum(contacts) FROM customer_journey WHERE startsWith(customer_id, {p:String})"
    assert collector.wait_for(sql, contacts, {"p": prefix + "-"}) == contacts


def journeys(collector: Collector, prefix: str) -> dict[str, dict[str, Any]]:
    rows = collector.query("SELECT * FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                           {"p": prefix + "-"})
    return {r["customer_id"]: r for r in rows}


def assert_recount(collector: Collector, prefix: str, data: Dataset) -> None:
    """customer_journey equals the recount, field by field, customer by customer."""
    actual = journeys(collector, prefix)
    assert set(actual) == set(recount(data))
    assert differences(actual, data) == []


@pytest.fixture(scope="module")
def arrivals(collector: Collector) -> Iterator[dict[str, tuple[list[list[str]], Dataset]]]:
    """Each arrival order's customers, sent and stored: links before, after or with the contacts, or shuffled."""
    sent: dict[str, tuple[list[list[str]], Dataset]] = {}
    for index, order in enumerate(ORDERS):
        prefix = f"hop{order[:4]}{uuid.uuid4().hex[:6]}"
        customer_chains, data, links = chains(prefix, seed=index)
        if order == "links_first":
            send(collector, links)
            send(collector, data.events)
        elif order == "links_last":
            send(collector, data.events)
            stored(collector, prefix, len(data.events))  # the contacts are in the store before any link
            send(collector, links)
        elif order == "same_batch":
            for ids in customer_chains:  # one batch a customer: its contacts and its links together
                mine = [e for e in data.events + links if {e.get("userId"), e.get("anonymousId")} & set(ids)]
                send(collector, mine, size=len(mine))
        else:
            everything = data.events + links
            random.Random(7).shuffle(everything)
            batches = send(collector, everything)
            for batch in random.Random(8).sample(batches, 3):  # replayed batches are duplicates, counted once
                assert collector.post("/v1/batch", {"batch": batch}).body["duplicates"] == len(batch)
        stored(collector, prefix, len(data.events))
        sent[order] = (customer_chains, data)
    yield sent


@pytest.mark.parametrize("order", ORDERS)
def test_chains_fold_into_one_customer_in_any_order(collector: Collector, arrivals: dict[str, Any],
                                                    order: str) -> None:
    customer_chains, data = arrivals[order]
    prefix = customer_chains[0][0].split("-c0-")[0]
    # the last link of a chain may land a moment after its contacts: wait until every chain is one customer
    customers = len(customer_chains)
    assert collector.wait_for("SELECT count() FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                              customers, {"p": prefix + "-"}) == customers
    assert_recount(collector, prefix, data)
    actual = journeys(collector, prefix)
    for ids in customer_chains:
        assert sorted(actual[ids[-1]]["ids"]) == sorted(ids)
    longest = max(customer_chains, key=len)
    assert len(longest) >= 5
    for id_ in longest:  # found by any of its ids
        found = collector.query("SELECT customer_id, ids FROM customer_journey_of(id = {id:String})", {"id": id_})
        assert [r["customer_id"] for r in found] == [longest[-1]]


def test_the_customer_endpoint_answers_by_any_id(collector: Collector, arrivals: dict[str, Any]) -> None:
    customer_chains, _ = arrivals["shuffled"]
    ids = max(customer_chains, key=len)
    want = normalised(journeys(collector, ids[0].split("-c")[0])[ids[-1]])
    for id_ in ids:
        reply = http("GET", f"{collector.url}/v1/customers/{id_}", key=collector.admin_key)
        assert reply.status == 200, reply.body
        assert reply.body["customer_id"] == ids[-1]
        assert normalised(reply.body) == want
    assert http("GET", f"{collector.url}/v1/customers/nobody-{uuid.uuid4().hex}", key=collector.admin_key).status == 404
    assert http("GET", f"{collector.url}/v1/customers/{ids[0]}", key=collector.write_key).status == 401


def test_unlink_splits_the_journey_back_exactly(collector: Collector) -> None:
    prefix = f"unl{uuid.uuid4().hex[:6]}"
    customer_chains, data, links = chains(prefix, seed=11)
    send(collector, data.events + links)
    stored(collector, prefix, len(data.events))
    ids = next(c for c in customer_chains if len(c) >= 4)
    assert collector.wait_for("SELECT length(ids) FROM customer_journey WHERE customer_id = {c:String}", len(ids),
                              {"c": ids[-1]}) == len(ids)
    reply = http("POST", collector.url + "/v1/admin/unlink", {"id": ids[1]}, key=collector.admin_key)
    assert reply.status == 200, reply.body
    # ids[1] was the bridge: ids[0] alone, ids[1] alone, ids[2:] still one customer under the last id
    assert sorted(map(sorted, reply.body["customers"].values())) == sorted([[ids[0]], [ids[1]], sorted(ids[2:])])
    for id_ in ids[:2]:
        del data.links[id_]
    assert_recount(collector, prefix, data)
    assert collector.query("SELECT id FROM identity_unlinks WHERE id = {i:String}", {"i": ids[1]}) == [{"id": ids[1]}]
    again = http("POST", collector.url + "/v1/admin/unlink", {"id": ids[1]}, key=collector.admin_key)
    assert again.status == 404


FORGOTTEN_SQL = """
SELECT
  (SELECT count() FROM touchpoints WHERE journey_id IN {ids:Array(String)} OR customer_id IN {ids:Array(String)}
     OR anonymous_id IN {ids:Array(String)}) AS touchpoints,
  (SELECT count() FROM customer_state WHERE customer_id IN {ids:Array(String)}
     OR hasAny(ids, {ids:Array(String)})) AS customer_state,
  (SELECT count() FROM identity_links WHERE anonymous_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_links,
  (SELECT count() FROM identity_keys WHERE journey_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_keys,
  (SELECT count() FROM identity_members WHERE member_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_members,
  (SELECT count() FROM identity_unlinks WHERE id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS identity_unlinks,
  (SELECT count() FROM dead_letters WHERE anonymous_id IN {ids:Array(String)}
     OR customer_id IN {ids:Array(String)}) AS dead_letters
"""


def test_forget_by_any_id_leaves_nothing_of_a_chain(collector: Collector) -> None:
    prefix = f"fgt{uuid.uuid4().hex[:6]}"
    customer_chains, data, links = chains(prefix, seed=12)
    send(collector, data.events + links)
    stored(collector, prefix, len(data.events))
    ids = next(c for c in customer_chains if len(c) >= 5)
    other = next(c for c in customer_chains if c is not ids and len(c) >= 3)
    assert collector.wait_for("SELECT length(ids) FROM customer_journey WHERE customer_id = {c:String}", len(ids),
                              {"c": ids[-1]}) == len(ids)
    # an unlink recorded and re-linked later also goes: the unlink table holds the person's ids too
    assert http("POST", collector.url + "/v1/admin/unlink", {"id": ids[2]}, key=collector.admin_key).status == 200
    relink = {"type": "alias", "previousId": ids[2], "userId": ids[3], "messageId": f"{prefix}-relink"}
    relink2 = {"type": "alias", "previousId": ids[1], "userId": ids[2], "messageId": f"{prefix}-relink2"}
    send(collector, [relink, relink2])
    assert collector.wait_for("SELECT length(ids) FROM customer_journey WHERE customer_id = {c:String}", len(ids),
                              {"c": ids[-1]}) == len(ids)
    before_other = collector.query(FORGOTTEN_SQL, {"ids": other})[0]
    reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": ids[1]}, key=collector.admin_key)
    assert reply.status == 200, reply.body
    assert sorted(reply.body["ids"]) == sorted(ids)
    assert set(collector.query(FORGOTTEN_SQL, {"ids": ids})[0].values()) == {0}
    assert collector.query(FORGOTTEN_SQL, {"ids": other})[0] == before_other
    for id_ in ids:
        assert collector.query("SELECT * FROM customer_journey_of(id = {id:String})", {"id": id_}) == []


def test_placeholder_ids_never_link(collector: Collector) -> None:
    prefix = f"grd{uuid.uuid4().hex[:6]}"
    a, b = f"{prefix}-a", f"{prefix}-b"
    events = [
        {"type": "identify", "anonymousId": a, "userId": "guest"},
        {"type": "track", "anonymousId": b, "userId": "guest", "event": "Store Visit", "channel": "pos"},
        {"type": "track", "anonymousId": a, "userId": "0", "event": "Store Visit", "channel": "pos"},
        {"type": "page", "anonymousId": "null", "userId": b, "channel": "web"},
    ]
    send(collector, events)
    contacts_sql = "SELECT sum(contacts) FROM customer_journey WHERE customer_id IN ({a:String}, {b:String})"
    assert collector.wait_for(contacts_sql, 3, {"a": a, "b": b}) == 3
    rows = collector.query("SELECT customer_id, ids, contacts FROM customer_journey"
                           " WHERE customer_id IN ({a:String}, {b:String}) ORDER BY customer_id", {"a": a, "b": b})
    assert rows == [{"customer_id": a, "ids": [a], "contacts": 1}, {"customer_id": b, "ids": [b], "contacts": 2}]
    for placeholder in ("guest", "0", "null"):
        assert collector.query("SELECT * FROM identity_keys WHERE journey_id = {p:String} OR customer_id = {p:String}",
                               {"p": placeholder}) == []


def test_a_shared_till_id_cannot_merge_a_town(tmp_path: Path) -> None:
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_MAX_IDS_PER_CUSTOMER": "5"}) as capped:
        till = f"till-default-{uuid.uuid4().hex[:6]}"
        shoppers = [f"shopper-{i}-{uuid.uuid4().hex[:6]}" for i in range(9)]
        events = [{"type": "track", "anonymousId": s, "userId": till, "event": "Order Completed", "channel": "pos",
                   "timestamp": iso(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=i)),
                   "properties": {"revenue": 10, "order_id": f"o-{s}"}} for i, s in enumerate(shoppers)]
        send(capped, events, size=3)
        assert capped.wait_for("SELECT count() FROM dead_letters WHERE endpoint = 'identity'", 5) == 5
        letters = capped.query("SELECT anonymous_id, customer_id, reason FROM dead_letters WHERE endpoint = 'identity'"
                               " ORDER BY anonymous_id")
        assert {r["anonymous_id"] for r in letters} == set(shoppers[4:])
        assert all("REISE_MAX_IDS_PER_CUSTOMER=5" in r["reason"] for r in letters)
        journey = capped.query("SELECT ids, purchases FROM customer_journey WHERE customer_id = {t:String}",
                               {"t": till})[0]
        assert sorted(journey["ids"]) == sorted([till, *shoppers[:4]])
        assert journey["purchases"] == 9  # every order is kept; only the links past the cap are refused
        assert capped.scalar("SELECT count() FROM touchpoints WHERE customer_id = {t:String}", {"t": till}) == 9


def test_recount_fixture_is_not_trivial(arrivals: dict[str, Any]) -> None:
    """The recount compares something: chains of several hops, buyers and several stages."""
    customer_chains, data = arrivals["shuffled"]
    expected = recount(data)
    assert sum(len(c) >= 3 for c in customer_chains) >= 20
    assert sum(1 for v in expected.values() if v["reached_purchase_at"]) >= 5
    assert {v["furthest_stage"] for v in expected.values()} >= set(STAGES[:3])

"""10k+ generated events through HTTP: the journey views equal a recount in plain Python."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.helpers import Collector
from tests.journeys import STAGES, Dataset, differences, generate, parse, recount

N_EVENTS = 12_000
PREFIX = "rc"


@pytest.fixture(scope="module")
def loaded(collector: Collector) -> Dataset:
    """The dataset sent in batches of 100 and visible in the raw table."""
    data = generate(N_EVENTS, seed=7, prefix=PREFIX)
    for start in range(0, len(data.events), 100):
        reply = collector.post("/v1/batch", {"batch": data.events[start:start + 100]})
        assert reply.status == 200 and not reply.body["rejected"], reply.body
    count_sql = "SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})"
    assert collector.wait_for(count_sql, len(data.events), {"p": PREFIX + "-"}) == len(data.events)
    contacts = sum(1 for e in data.events if e["type"] != "identify")
    contacts_sql = "SELECT sum(contacts) FROM customer_journey WHERE startsWith(customer_id, {p:String})"
    assert collector.wait_for(contacts_sql, contacts, {"p": PREFIX + "-"}) == contacts  # the views' parts too
    # the identity resolver runs before a segment's touchpoints are inserted; every link is in the map
    linked_sql = "SELECT count() FROM identity_map WHERE startsWith(anonymous_id, {p:String})"
    assert collector.wait_for(linked_sql, len(data.links), {"p": PREFIX + "-"}) == len(data.links)
    return data


def journeys(collector: Collector) -> dict[str, dict[str, Any]]:
    rows = collector.query("SELECT * FROM customer_journey WHERE startsWith(customer_id, {p:String})",
                           {"p": PREFIX + "-"})
    return {r["customer_id"]: r for r in rows}


def test_customer_journey_equals_recount(collector: Collector, loaded: Dataset) -> None:
    actual = journeys(collector)
    assert set(actual) == set(recount(loaded))
    assert differences(actual, loaded) == []
    # anonymous ids that were identified appear only inside their customer
    for anon, user in loaded.links.items():
        assert anon not in actual
        assert anon in actual[user]["ids"]


def test_stage_funnel_equals_recount(collector: Collector, loaded: Dataset) -> None:
    expected = recount(loaded)
    # the funnel covers every customer in the store; restrict the recount by subtracting the others
    others = collector.query(
        "SELECT furthest_stage_rank AS r, count() AS n FROM customer_journey"
        " WHERE NOT startsWith(customer_id, {p:String}) GROUP BY r", {"p": PREFIX + "-"})
    other_furthest = Counter({row["r"]: row["n"] for row in others})
    furthest = Counter(STAGES.index(c["furthest_stage"]) + 1 for c in expected.values() if c["furthest_stage"])
    furthest.update(other_furthest)
    funnel = {row["stage"]: row for row in collector.query("SELECT * FROM stage_funnel")}
    assert list(funnel) == list(STAGES)
    reached = [sum(n for r, n in furthest.items() if r >= k) for k in range(1, 6)]
    for k, stage in enumerate(STAGES):
        assert funnel[stage]["customers"] == reached[k]
        expected_drop = reached[k] - reached[k + 1] if k < 4 else 0
        assert funnel[stage]["dropped_here"] == expected_drop
        if k == 0:
            assert funnel[stage]["conversion_from_previous"] is None
        else:
            assert funnel[stage]["conversion_from_previous"] == pytest.approx(reached[k] / reached[k - 1])


def test_contacts_before_purchase_equals_recount(collector: Collector, loaded: Dataset) -> None:
    expected = {c: v for c, v in recount(loaded).items() if v["reached_purchase_at"] is not None}
    rows = collector.query("SELECT * FROM contacts_before_purchase WHERE startsWith(customer_id, {p:String})",
                           {"p": PREFIX + "-"})
    actual = {r["customer_id"]: r for r in rows}
    assert set(actual) == set(expected)
    for customer_id, want in expected.items():
        row = actual[customer_id]
        assert row["contacts"] == want["contacts_before_first_purchase"]
        assert parse(row["first_purchase_at"]) == want["reached_purchase_at"]
        assert sum(row["contacts_by_channel"].values()) == row["contacts"]
        assert [parse(t[0]) for t in row["touchpoints"]] == sorted(parse(t[0]) for t in row["touchpoints"])
    distribution = collector.query(
        "SELECT contacts, count() AS customers FROM contacts_before_purchase"
        " WHERE startsWith(customer_id, {p:String}) GROUP BY contacts ORDER BY contacts", {"p": PREFIX + "-"})
    want_distribution = Counter(v["contacts_before_first_purchase"] for v in expected.values())
    assert {r["contacts"]: r["customers"] for r in distribution} == dict(want_distribution)

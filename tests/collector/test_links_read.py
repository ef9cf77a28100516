"""The dashboard's read of a customer's identity links (LINKS_SQL): the links from any of the ids by identity_links'
key, the links to them through the bloom filter on customer_id (migration 0020) instead of a whole-table scan, with
the rows the single OR condition gave."""

from __future__ import annotations

import pytest

from collector.journey.analyst import LINKS_SQL
from collector.store.clickhouse import Store
from collector.store.readonly import QueryLimits
from tests.e2e.state_rows import write_state_rows

LIMITS = QueryLimits()
TOUCHPOINTS = [("lr-1", "lr-anon", "web", 1, "2025-07-01 10:00:00", 0, ""),
               ("lr-2", "lr-card", "pos", 2, "2025-07-02 10:00:00", 0, ""),
               ("lr-3", "lr-cust", "web", 3, "2025-07-03 10:00:00", 10, "")]
LINKS = [("lr-anon", "lr-card", "2025-07-02 10:00:00"), ("lr-card", "lr-cust", "2025-07-03 10:00:00")]
# the read before migration 0020: one OR, which no index serves
OR_SQL = """
SELECT anonymous_id, customer_id, linked_at, toString(source) AS source
FROM identity_links
WHERE anonymous_id IN {ids:Array(String)} OR customer_id IN {ids:Array(String)}
ORDER BY linked_at, anonymous_id
LIMIT 1000
"""


@pytest.fixture(scope="module")
def chained(store: Store) -> Store:
    write_state_rows(store, [TOUCHPOINTS], LINKS, "links-read-test")
    return store


@pytest.mark.parametrize("ids", [["lr-anon", "lr-card", "lr-cust"], ["lr-cust"], ["lr-card"], ["lr-anon"],
                                 ["lr-cust", "lr-anon"], ["lr-nobody"]])
def test_the_links_are_those_the_or_condition_gave(chained: Store, ids: list[str]) -> None:
    read = chained.query_own(LINKS_SQL, {"ids": ids}, limits=LIMITS)
    before = chained.query_own(OR_SQL, {"ids": ids}, limits=LIMITS)
    assert read.rows == before.rows
    if ids == ["lr-cust"]:  # only a link to the id: the half the bloom filter serves
        assert [row[:2] for row in read.rows] == [("lr-card", "lr-cust")]
    if len(ids) == 3:
        assert [row[:2] for row in read.rows] == [("lr-anon", "lr-card"), ("lr-card", "lr-cust")]


def test_the_links_to_the_ids_are_read_through_the_bloom_filter(chained: Store) -> None:
    plan = "\n".join(str(row[0]) for row in chained.query(f"EXPLAIN indexes = 1 {LINKS_SQL}",
                                                          {"ids": ["lr-cust"]}).rows)
    assert "Name: links_by_customer" in plan
    assert "bloom_filter" in plan

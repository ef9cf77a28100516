"""The customer lookups (GET /v1/customers/{id}, the dashboard's customer and search) run the collector's own SQL
through Store.query_own: read-only and within the analyst's limits like query_readonly, with the same rows, but
one statement per question instead of three (the query guard's formatQuery and EXPLAIN AST are for SQL an
analyst wrote)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

from collector.errors import QueryRefused
from collector.journey.analyst import CUSTOMER_SQL, look_up_customer
from collector.store.clickhouse import QueryResult, Store
from collector.store.readonly import QueryLimits
from tests.e2e.state_rows import write_state_rows

LIMITS = QueryLimits()
# (message id, journey id, channel, stage rank, time, revenue, campaign): one insert; lk-anon is then linked to lk-cust
TOUCHPOINTS = [("lk-1", "lk-anon", "web", 1, "2025-05-01 10:00:00", 0, "spring"),
               ("lk-2", "lk-cust", "pos", 3, "2025-05-02 10:00:00", 30, "")]


def _queries_run(store: Store) -> int:
    return int(store.query("SELECT value FROM system.events WHERE event = 'Query'").rows[0][0])


@pytest.fixture(scope="module")
def linked(store: Store) -> Store:
    write_state_rows(store, [TOUCHPOINTS], [("lk-anon", "lk-cust", "2025-05-02 10:00:00")], "lookup-reads-test")
    return store


def test_a_lookup_reads_the_same_rows_with_one_statement_per_question(linked: Store) -> None:
    store = linked

    def own(sql: str, params: Mapping[str, Any]) -> QueryResult:
        return store.query_own(sql, params, limits=LIMITS)

    def guarded(sql: str, params: Mapping[str, Any]) -> QueryResult:
        return store.query_readonly(sql, params, limits=LIMITS)

    by_guard = look_up_customer(guarded, "lk-anon", with_links=True)
    before = _queries_run(store)
    found = look_up_customer(own, "lk-anon", with_links=True)
    spent = _queries_run(store) - before - 1  # the count itself is a query
    assert found is not None and by_guard is not None
    assert found == by_guard
    assert found.journey.records()[0]["ids"] == ["lk-anon", "lk-cust"]
    assert [row[0] for row in found.timeline.rows] == [datetime(2025, 5, 1, 10), datetime(2025, 5, 2, 10)]
    assert found.links is not None and len(found.links.rows) == 1
    assert spent == 3  # journey, touchpoints, links: no formatQuery or EXPLAIN AST before each


def test_own_reads_are_read_only_and_within_the_limits(linked: Store) -> None:
    store = linked
    with pytest.raises(QueryRefused, match="readonly"):
        store.query_own("INSERT INTO identity_unlinks SELECT * FROM identity_unlinks", {}, limits=LIMITS)
    with pytest.raises(QueryRefused, match="max rows"):
        store.query_own("SELECT number FROM numbers(10)", {}, limits=QueryLimits(max_rows=5))
    # no customer: no row, in one statement (a 404 needs no column names: no DESCRIBE after the empty answer)
    before = _queries_run(store)
    nobody = store.query_own(CUSTOMER_SQL, {"id": "lk-nobody"}, limits=LIMITS)
    assert _queries_run(store) - before - 1 == 1  # the count itself is a query
    assert nobody.rows == []


@pytest.mark.parametrize("id_", ["lk-anon", "lk-cust", "lk-nobody"])
def test_the_lookup_reads_what_customer_journey_of_reads(linked: Store, id_: str) -> None:
    # CUSTOMER_SQL is customer_journey_of written out: the merged-away id, the key and an unknown id alike
    written_out = linked.query_own(CUSTOMER_SQL, {"id": id_}, limits=LIMITS)
    view = linked.query_own("SELECT * FROM customer_journey_of(id = {id:String})", {"id": id_}, limits=LIMITS)
    assert (written_out.columns, written_out.types, written_out.rows) == (view.columns, view.types, view.rows)
    assert [row[0] for row in written_out.rows] == ([] if id_ == "lk-nobody" else ["lk-cust"])

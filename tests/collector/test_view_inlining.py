"""Embedded sessions analyse an ordinary view as its sub-query (analyzer_inline_views): a lookup
``customer_journey WHERE customer_id = X`` is planned once with the view's body, not across a separately planned
view (about 17% less CPU at 1M customers, bench/README.md), and answers the same rows as without it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.store.clickhouse import EMBEDDED_SESSION_SETTINGS, Store
from collector.store.readonly import QueryLimits
from tests.e2e.state_rows import write_state_rows

# (message id, journey id, channel, stage rank, time, revenue, campaign): one insert; vi-anon is then linked to vi-cust
TOUCHPOINTS = [("vi-1", "vi-anon", "web", 1, "2025-06-01 10:00:00", 0, "summer"),
               ("vi-2", "vi-cust", "pos", 3, "2025-06-02 10:00:00", 42, ""),
               ("vi-3", "vi-cust", "email", 4, "2025-06-03 10:00:00", 0, ""),
               ("vi-4", "vi-other", "ads", 2, "2025-06-04 10:00:00", 0, "summer")]
BY_KEY = "SELECT * FROM customer_journey WHERE customer_id = {id:String}"
VIEW_STEP = "Convert VIEW subquery result to VIEW table structure"  # the plan step of a view planned on its own


@pytest.fixture(scope="module")
def stores(store: Store) -> Iterator[tuple[Store, Store]]:
    """The session store (embedded settings applied) and a second store on the same data with inlining off."""
    write_state_rows(store, [TOUCHPOINTS], [("vi-anon", "vi-cust", "2025-06-02 10:00:00")], "view-inlining-test")
    plain = Store(dsn=store.dsn)
    plain.client().command("SET analyzer_inline_views = 0")
    yield store, plain
    plain.close()


def test_embedded_sessions_inline_ordinary_views(stores: tuple[Store, Store]) -> None:
    store, plain = stores
    setting = "SELECT value FROM system.settings WHERE name = 'analyzer_inline_views'"
    assert EMBEDDED_SESSION_SETTINGS == {"analyzer_inline_views": 1}
    assert store.query(setting).rows == [("1",)]
    assert plain.query(setting).rows == [("0",)]
    plans = {
        "query": store.query(f"EXPLAIN {BY_KEY}", {"id": "vi-cust"}).rows,
        "query_own": store.query_own(f"EXPLAIN {BY_KEY}", {"id": "vi-cust"}, limits=QueryLimits()).rows,
    }
    for path, plan in plans.items():
        assert not any(VIEW_STEP in str(row[0]) for row in plan), path
    # the same statement planned with the view on its own: the step the inlined plans no longer have
    assert any(VIEW_STEP in str(row[0]) for row in plain.query(f"EXPLAIN {BY_KEY}", {"id": "vi-cust"}).rows)


@pytest.mark.parametrize("sql, params", [
    (BY_KEY, {"id": "vi-cust"}),
    (BY_KEY, {"id": "vi-anon"}),  # merged into vi-cust: hidden, no row either way
    (BY_KEY, {"id": "nobody"}),
    ("SELECT * FROM customer_journey_of(id = {id:String})", {"id": "vi-anon"}),
    ("SELECT * FROM customer_journey WHERE customer_id IN ('vi-cust', 'vi-other') ORDER BY customer_id", {}),
    ("SELECT current_stage, count() FROM customer_journey WHERE customer_id LIKE 'vi-%' GROUP BY current_stage"
     " ORDER BY current_stage", {}),
    ("SELECT * FROM stage_funnel", {}),
])
def test_inlined_views_answer_the_same_rows(stores: tuple[Store, Store], sql: str, params: dict[str, str]) -> None:
    store, plain = stores
    inlined, planned_alone = store.query(sql, params), plain.query(sql, params)
    assert inlined == planned_alone
    if sql == BY_KEY and params["id"] == "vi-cust":
        [row] = inlined.records()
        assert row["ids"] == ["vi-anon", "vi-cust"]
        assert (row["contacts"], row["purchases"], row["current_stage"]) == (3, 1, "retention")
        assert row["contacts_before_first_purchase"] == 1

"""The journey views of migrations 0017 and 0022 give the rows of the views they replace, whether a customer's state
is in several unmerged rows or in one.

0017 reads stage_funnel (and the dashboard's selected customers) with FINAL and 0022 customer_journey and
customer_journey_of, where 0008 grouped every customer: a customer counted twice or not at all, a merged-away
key counted as live, or a condition applied to a row before the merge instead of to the merged customer would show
here. The previous definitions (the migrations before 0017, renamed prev_*) run beside the new ones on the same
rows; merges are stopped while the rows are written, so customers stay spread over several rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.journey import insights
from collector.store.clickhouse import Store
from tests.e2e.state_rows import previous_views, write_state_rows

VIEWS = ("customer_journey_of", "customer_journey", "contacts_before_purchase", "stage_funnel")

# (message id, journey id, channel, stage rank, time, revenue, campaign), one insert per list: each insert adds a
# state row per key, and the links below move the browsers' and the card's rows to the customers' keys
BATCHES = [
    [("jv-1", "jv-anon", "ads", 1, "2025-04-01 10:00:00", 0, "spring"),
     ("jv-2", "jv-anon", "web", 2, "2025-04-01 10:05:00", 0, ""),
     ("jv-3", "jv-card", "pos", 2, "2025-04-02 11:00:00", 0, ""),
     ("jv-4", "jv-solo", "social", 1, "2025-04-03 08:00:00", 0, "radio")],
    [("jv-5", "jv-cust", "email", 2, "2025-04-04 09:00:00", 0, "news"),
     ("jv-6", "jv-cust", "web", 3, "2025-04-04 09:30:00", 80, "spring"),
     ("jv-7", "jv-solo", "web", 3, "2025-04-03 08:10:00", 25, "")],
    [("jv-8", "jv-cust", "pos", 4, "2025-04-10 12:00:00", 0, ""),
     ("jv-9", "jv-late", "web", 1, "2025-04-05 07:00:00", 0, ""),
     ("jv-10", "jv-late", "email", 2, "2025-04-06 07:00:00", 0, "news")],
    # a second purchase row for jv-late's customer: the earliest purchase is in this row, a later one in the next
    [("jv-11", "jv-late", "web", 3, "2025-04-07 07:00:00", 30, "")],
    [("jv-12", "jv-late", "pos", 3, "2025-04-09 07:00:00", 40, ""),
     ("jv-13", "jv-late", "ads", 1, "2025-04-06 12:00:00", 0, "spring")],
]
LINKS = [("jv-anon", "jv-card", "2025-04-02 11:00:00"), ("jv-card", "jv-cust", "2025-04-04 09:00:00")]
MINE = "customer_id LIKE 'jv-%'"
PER_CUSTOMER = {
    "customer_journey": f"SELECT * FROM {{v}}customer_journey WHERE {MINE} ORDER BY customer_id",
    "customer_journey by key": "SELECT * FROM {v}customer_journey WHERE customer_id = 'jv-cust'",
    "contacts_before_purchase": f"SELECT * FROM {{v}}contacts_before_purchase WHERE {MINE} ORDER BY customer_id",
    "customers per current stage": f"SELECT current_stage, count() FROM {{v}}customer_journey WHERE {MINE}"
                                   " GROUP BY current_stage ORDER BY current_stage",
}
WHOLE = ("customer_journey", "contacts_before_purchase", "stage_funnel")  # compared over the whole shared store
IDS = ("jv-anon", "jv-card", "jv-cust", "jv-solo", "jv-late", "jv-nobody")


# the dashboard's selected customers as before 0017: every customer's rows grouped
GROUPED_CUSTOMERS = f"""
    SELECT customer_id, max(furthest_stage) AS furthest, sum(revenue) AS revenue, min(reached_3) AS first_purchase,
           [min(reached_1), min(reached_2), min(reached_3), min(reached_4), min(reached_5)] AS reached
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND {insights._PICKED}
"""
FILTERS = [insights.Filters(), insights.Filters(channel="pos"), insights.Filters(campaign="spring"),
           insights.Filters(since=datetime(2025, 4, 4), until=datetime(2025, 4, 8))]


def _overview_pairs() -> dict[str, tuple[str, str]]:
    assert insights._CUSTOMERS in insights.FUNNEL_SQL and insights._CUSTOMERS in insights.ENTRIES_SQL
    return {name: (sql, sql.replace(insights._CUSTOMERS, GROUPED_CUSTOMERS))
            for name, sql in (("funnel", insights.FUNNEL_SQL), ("entries", insights.ENTRIES_SQL))}


def _rows_of(store: Store, key: str) -> int:
    return int(store.query("SELECT count() FROM customer_state WHERE customer_id = {k:String}", {"k": key}).rows[0][0])


def _answers(store: Store, prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {name: store.query(sql.format(v=prefix)).rows for name, sql in PER_CUSTOMER.items()}
    for key in IDS:
        found[f"of {key}"] = store.query(f"SELECT * FROM {prefix}customer_journey_of(id = {{id:String}})",
                                         {"id": key}).rows
    return found


def _same_over_the_store(store: Store) -> None:
    for view in WHOLE:
        for a, b in ((f"prev_{view}", view), (view, f"prev_{view}")):
            extra = store.query(f"SELECT count() FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").rows[0][0]
            assert extra == 0, (view, a, b)
    for filters in FILTERS:
        for name, (new, old) in _overview_pairs().items():
            assert store.query(new, filters.params()).rows == store.query(old, filters.params()).rows, (name, filters)


def test_journey_views_are_the_previous_ones_before_and_after_the_state_rows_merge(merges_stopped: Store) -> None:
    store = merges_stopped
    for statement in previous_views(17, VIEWS):
        store.command(statement)
    write_state_rows(store, BATCHES, LINKS, "journey-views-test")
    assert _rows_of(store, "jv-cust") >= 3 and _rows_of(store, "jv-late") == 3 and _rows_of(store, "jv-solo") == 2
    several = _answers(store, "")
    assert several == _answers(store, "prev_")
    _same_over_the_store(store)

    journeys = {row[0]: row for row in several["customer_journey"]}
    assert sorted(journeys) == ["jv-cust", "jv-late", "jv-solo"]  # the browser and the card are merged away
    assert journeys["jv-cust"][1] == ["jv-anon", "jv-card", "jv-cust"]
    assert [journeys[c][6] for c in ("jv-cust", "jv-late", "jv-solo")] == [6, 5, 2]  # contacts, none doubled
    assert journeys["jv-late"][8] == 3  # before the first purchase (its own row): three contacts of two other rows
    assert several["customer_journey by key"] == [journeys["jv-cust"]]
    for key in ("jv-anon", "jv-card", "jv-cust"):
        assert several[f"of {key}"] == [journeys["jv-cust"]], key
    assert several["of jv-nobody"] == []
    # the lookup's column list is customer_journey's (two copies in the migration): names and types alike
    by_id = store.query("SELECT * FROM customer_journey_of(id = 'jv-card')")
    whole = store.query("SELECT * FROM customer_journey WHERE customer_id = 'jv-cust'")
    assert (by_id.columns, by_id.types) == (whole.columns, whole.types)
    # the rows can tell: the live-key condition applied to each row before the merge (PREWHERE) would count the
    # merged-away browser and card, applied to the merged customer (WHERE, as stage_funnel does) it does not
    live = f"SELECT customer_id FROM customer_state FINAL {{}} hidden = 0 AND {MINE} ORDER BY customer_id"
    assert [r[0] for r in store.query(live.format("PREWHERE")).rows] == ["jv-anon", "jv-card", *sorted(journeys)]
    assert [r[0] for r in store.query(live.format("WHERE")).rows] == sorted(journeys)
    # 0022: an analyst's condition on another column than the key applies to the merged customer too (jv-cust's six
    # contacts lie in three rows or more, none with six); DESCRIBE keeps the view's types, answers carry the stored
    merged = f"SELECT customer_id FROM {{}}customer_journey WHERE contacts = 6 AND {MINE}"
    assert store.query(merged.format("")).rows == store.query(merged.format("prev_")).rows == [("jv-cust",)]
    described = {name: type_ for name, type_, *_ in store.query("DESCRIBE TABLE customer_journey").rows}
    assert (described["contacts"], described["revenue"], described["first_seen"]) == (
        "UInt64", "Decimal(38, 4)", "Nullable(DateTime64(3, 'UTC'))")
    assert whole.types[whole.columns.index("contacts")] == "SimpleAggregateFunction(sum, UInt64)"

    store.command("SYSTEM START MERGES customer_state")
    store.command("OPTIMIZE TABLE customer_state FINAL")
    assert _rows_of(store, "jv-cust") == 1 and _rows_of(store, "jv-late") == 1
    assert _answers(store, "") == several
    _same_over_the_store(store)

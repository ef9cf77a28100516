"""The analytics views give the same rows whether a customer's state is still in several rows or merged into one.

The views read a customer with one row in ``customer_state`` as it is and merge only customers with several rows
(migrations/0016): a customer counted in both ways, or in neither, or a hidden key read as live, would show here.
Merges are stopped while the rows are written, so the customer's contacts stay in three parts.
"""

from __future__ import annotations

from typing import Any

from collector.identity.resolver import Link, resolve_links
from collector.store.clickhouse import Store

INSERT = """
INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, anonymous_id, channel, stage, stage_rank,
                         timestamp, original_timestamp, received_at, revenue, campaign, order_id, page_url)
VALUES
"""
# (message id, journey id, channel, stage rank, time, revenue, campaign, order id, page url), one insert per list
BATCHES = [
    [("sr-1", "sr-anon", "ads", 1, "2025-03-03 10:00:00", 0, "spring", "", ""),
     ("sr-2", "sr-anon", "web", 2, "2025-03-03 10:10:00", 0, "", "", "https://shop.example/a")],
    [("sr-3", "sr-cust", "email", 2, "2025-03-05 09:00:00", 0, "news", "", ""),
     ("sr-4", "sr-cust", "web", 3, "2025-03-05 09:20:00", 80, "spring", "sr-o1", "https://shop.example/buy")],
    [("sr-5", "sr-cust", "pos", 3, "2025-03-20 12:00:00", 40, "", "sr-o2", ""),
     ("sr-6", "sr-cust", "pos", 0, "2025-03-22 12:00:00", -15, "", "sr-o2", ""),
     ("sr-7", "sr-solo", "social", 1, "2025-03-04 08:00:00", 0, "radio", "", ""),
     ("sr-8", "sr-solo", "web", 3, "2025-03-04 08:05:00", 25, "", "sr-o3", "")],
]
MINE = "customer_id LIKE 'sr-%'"
QUESTIONS = {
    "attribution_purchases": f"SELECT * FROM attribution_purchases WHERE {MINE} ORDER BY ALL",
    "attribution_credits": f"SELECT * FROM attribution_credits WHERE {MINE} ORDER BY ALL",
    "sessions": f"SELECT * FROM sessions WHERE {MINE} ORDER BY ALL",
    "attribution": "SELECT model, channel, campaign, round(credited_purchases, 9), round(credited_revenue, 6)"
                   " FROM attribution ORDER BY ALL",
    "journey_paths": "SELECT * FROM journey_paths ORDER BY ALL",
    "stage_durations": "SELECT * FROM stage_durations ORDER BY ALL",
    "cohorts": "SELECT * FROM cohorts ORDER BY ALL",
}


def _rows_of(store: Store, key: str) -> int:
    return int(store.query("SELECT count() FROM customer_state WHERE customer_id = {k:String} AND hidden = 0",
                           {"k": key}).rows[0][0])


def _answers(store: Store) -> dict[str, Any]:
    return {name: store.query(sql).rows for name, sql in QUESTIONS.items()}


def test_views_are_the_same_before_and_after_the_state_rows_merge(merges_stopped: Store) -> None:
    store = merges_stopped
    for batch in BATCHES:
        values = ",".join(
            f"('{m}', 'track', 'e', '{j}', '{j if j != 'sr-anon' else ''}', '{'sr-anon' if j == 'sr-anon' else ''}',"
            f" '{ch}', '', {rank}, '{at}', '{at}', '{at}', {revenue}, '{campaign}', '{order}', '{url}')"
            for m, j, ch, rank, at, revenue, campaign, order, url in batch)
        store.command(INSERT + values)
    # the browser is identified later: its state moves to the customer's key and its own key is hidden
    resolve_links(store, [Link(linked_at=1741180000.0, message_id="sr-3", anonymous_id="sr-anon",
                               customer_id="sr-cust", source="test")], "state-rows-test", max_ids=100)
    assert _rows_of(store, "sr-cust") >= 3 and _rows_of(store, "sr-solo") == 1
    several = _answers(store)
    mine = several["attribution_purchases"]
    assert [(r[0], r[5]) for r in mine] == [("sr-cust", 3), ("sr-cust", 3), ("sr-solo", 1)]  # no hidden sr-anon
    assert [r[4] for r in mine] == [80, 25, 25]  # the return of sr-o2 nets its first purchase: 40 - 15
    assert [(r[0], r[4]) for r in several["sessions"]] == [("sr-cust", 2), ("sr-cust", 2), ("sr-cust", 1),
                                                           ("sr-cust", 1), ("sr-solo", 2)]
    store.command("SYSTEM START MERGES customer_state")
    store.command("OPTIMIZE TABLE customer_state FINAL")
    assert _rows_of(store, "sr-cust") == 1
    assert _answers(store) == several

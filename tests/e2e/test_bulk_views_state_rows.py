"""Migration 0018's kept counts give the rows of the views and overview queries they replace, on several unmerged
state rows, through identity moves, an unlink, a forget and the final merge.

0018 reads contacts before the first purchase from per-row values kept at insert (customer_state's MATERIALIZED
pre_purchase_contacts, pre_purchase_last, first_contact) where they hold and merges the
contact arrays only for the other customers. A customer counted in both branches or in neither, a kept count taken
where a row has contacts between the first purchase and its own, or a writer leaving the kept values out would show
here: the previous definitions (contacts_before_purchase as before 0018, renamed prev_*, and the dashboard's
contacts query as before 0018) run beside the new ones on the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.identity.rebuild import unlink
from collector.journey import insights
from collector.journey.forget import forget_person
from collector.store.clickhouse import Store
from tests.e2e.state_rows import previous_views, write_state_rows

# (message id, journey id, channel, stage rank, time, revenue, campaign); one insert per list, each a state row per key
BATCHES = [
    # bv-anon browses before and after bv-cust's first purchase: once linked, its row has a contact between the
    # customer's first purchase and its own (none): the kept count does not hold for bv-cust
    [("bv-1", "bv-anon", "ads", 1, "2025-05-01 10:00:00", 0, "spring"),
     ("bv-2", "bv-anon", "web", 2, "2025-05-01 10:05:00", 0, ""),
     ("bv-3", "bv-solo", "social", 1, "2025-05-03 08:00:00", 0, "radio")],
    [("bv-4", "bv-cust", "email", 2, "2025-05-04 09:00:00", 0, "news"),
     ("bv-5", "bv-cust", "web", 3, "2025-05-04 09:30:00", 80, "spring"),
     ("bv-6", "bv-solo", "web", 3, "2025-05-03 08:10:00", 25, ""),
     ("bv-7", "bv-anon", "web", 2, "2025-05-05 10:00:00", 0, "radio")],
    # bv-late: three rows, the first purchase in the second; the third's contacts are all before it (the kept count
    # holds) and bv-gap's second row has one between its first purchase and its own second one (it does not)
    [("bv-8", "bv-late", "web", 1, "2025-05-05 07:00:00", 0, ""),
     ("bv-9", "bv-late", "email", 2, "2025-05-06 07:00:00", 0, "news"),
     ("bv-10", "bv-gap", "web", 3, "2025-05-02 07:00:00", 10, "")],
    [("bv-11", "bv-late", "web", 3, "2025-05-07 07:00:00", 30, ""),
     ("bv-12", "bv-gap", "ads", 1, "2025-05-01 07:00:00", 0, "spring")],
    [("bv-13", "bv-late", "pos", 3, "2025-05-09 07:00:00", 40, ""),
     ("bv-14", "bv-late", "ads", 1, "2025-05-06 12:00:00", 0, "spring"),
     ("bv-15", "bv-gap", "email", 2, "2025-05-03 07:00:00", 0, "news"),
     ("bv-16", "bv-gap", "pos", 3, "2025-05-04 07:00:00", 15, "")],
]
LINKS = [("bv-anon", "bv-cust", "2025-05-04 09:00:00")]
MINE = "customer_id LIKE 'bv-%'"
FILTERS = [insights.Filters(), insights.Filters(channel="web"), insights.Filters(campaign="spring"),
           insights.Filters(since=datetime(2025, 5, 3), until=datetime(2025, 5, 6))]

# the dashboard's two queries as before 0018: every customer's contact arrays merged by GROUP BY
GROUPED_CONTACTS = f"""
SELECT if(before = 0, '', first_contact_channel) AS first_channel, before AS contacts, count() AS customers
FROM
(
    SELECT customer_id,
           min(reached_3) AS first_purchase,
           toUInt64(arraySum(times -> arrayCount(t -> t < first_purchase, times), groupArray(contact_times)))
               AS before,
           argMinIf(contact_channels[indexOf(contact_times, arrayMin(contact_times))], arrayMin(contact_times),
                    notEmpty(contact_times)) AS first_contact_channel
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND first_purchase IS NOT NULL AND {insights._PICKED}
)
GROUP BY first_channel, contacts
ORDER BY first_channel, contacts
"""
PAIRS = {"contacts": (insights.CONTACTS_SQL, GROUPED_CONTACTS)}
NOT_KEPT = "SELECT customer_id FROM customer_state FINAL WHERE pre_purchase_last >= reached_3 AND hidden = 0"


def _same(store: Store) -> dict[str, Any]:
    """Every question new and old on the whole shared store; the new answers for this test's customers."""
    for a, b in (("prev_contacts_before_purchase", "contacts_before_purchase"),
                 ("contacts_before_purchase", "prev_contacts_before_purchase")):
        extra = store.query(f"SELECT count() FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").rows[0][0]
        assert extra == 0, (a, b)
    for filters in FILTERS:
        params = {**filters.params(), "limit": 50}
        for name, (new, old) in PAIRS.items():
            assert store.query(new, params).rows == store.query(old, params).rows, (name, filters)
    return {r[0]: r[3] for r in store.query(f"SELECT * FROM contacts_before_purchase WHERE {MINE}").rows}


def test_kept_counts_equal_the_merged_arrays_through_moves_unlink_forget_and_merge(merges_stopped: Store) -> None:
    store = merges_stopped
    for statement in previous_views(18, ("contacts_before_purchase",)):
        store.command(statement)
    write_state_rows(store, BATCHES, LINKS, "bulk-views-test")
    rows = {r[0]: r[1] for r in store.query(f"SELECT customer_id, count() FROM customer_state WHERE {MINE}"
                                             " GROUP BY customer_id").rows}
    assert rows["bv-cust"] >= 2 and rows["bv-late"] == 3 and rows["bv-gap"] == 3
    # both branches are taken: bv-cust (the moved browser's late contact) and bv-gap go to the arrays
    assert sorted(r[0] for r in store.query(f"{NOT_KEPT} AND {MINE}").rows) == ["bv-cust", "bv-gap"]
    # the kept values of a moved row are its own (no purchase: every contact counts, the latest is the last)
    moved = store.query("SELECT pre_purchase_contacts, pre_purchase_last FROM customer_state"
                        " WHERE customer_id = 'bv-cust'"
                        " AND has(contact_times, toDateTime64('2025-05-05 10:00:00', 3, 'UTC'))")
    assert moved.rows == [(3, datetime(2025, 5, 5, 10, 0))]  # both browser rows, merged as one insert
    contacts = _same(store)
    # before the first purchase: bv-cust 2 browser contacts + 1 email, bv-late 3 of two other rows, bv-gap 1 (the
    # ad before its first purchase; the email is after it though before the row's own purchase), bv-solo 1
    assert contacts == {"bv-cust": 3, "bv-late": 3, "bv-gap": 1, "bv-solo": 1}

    store.command("SYSTEM START MERGES customer_state")  # unlink and forget delete rows: a mutation
    unlink(store, "bv-anon")  # the browser's contacts go back to their own key: bv-cust's count drops
    assert _same(store)["bv-cust"] == 1

    forget_person(store, "bv-gap")
    after_forget = _same(store)
    assert "bv-gap" not in after_forget and after_forget["bv-late"] == 3

    store.command("OPTIMIZE TABLE customer_state FINAL")
    assert _same(store) == after_forget
    # merged into one row each, bv-late's kept count holds as the merge summed it; bv-cust's anon contacts are gone
    merged = store.query(f"SELECT customer_id, pre_purchase_contacts, substring(first_contact, 21)"
                         f" FROM customer_state FINAL WHERE {MINE} AND hidden = 0 ORDER BY customer_id").rows
    assert [r[0] for r in merged] == ["bv-anon", "bv-cust", "bv-late", "bv-solo"]
    assert merged[2][1:] == (3, "web")

"""Forgetting a person: every row of them and of their linked ids, in every table."""

from __future__ import annotations

from dataclasses import dataclass

from collector.store.clickhouse import Store

__all__ = ["Forgotten", "forget_person"]

# (table, condition over the person's ids); a materialized view does not propagate deletes, so the
# state tables are cleaned as well as the raw ones.
_DELETES = (
    ("touchpoints", "journey_id IN {ids:Array(String)} OR customer_id IN {ids:Array(String)}"
                    " OR anonymous_id IN {ids:Array(String)}"),
    ("journey_state", "journey_id IN {ids:Array(String)}"),
    ("identity_links", "customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}"),
    ("dead_letters", "customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}"),
)
_LINKED_IDS = """
SELECT DISTINCT anonymous_id FROM identity_links WHERE customer_id = {id:String}
UNION DISTINCT
SELECT DISTINCT customer_id FROM identity_links WHERE anonymous_id = {id:String}
"""


@dataclass(frozen=True)
class Forgotten:
    """What a forget request removed."""

    customer_id: str
    ids: list[str]
    deleted: dict[str, int]


def forget_person(store: Store, customer_id: str) -> Forgotten:
    """Delete a person (and every id linked to them) from touchpoints, journey state, links, dead letters.

    Blocking: call it on the writer thread, after the spool was flushed, so no insert races it.
    """
    linked = {row[0] for row in store.query(_LINKED_IDS, {"id": customer_id}).rows}
    # a customer id reached through an anonymous id brings that customer's other ids too
    for other in list(linked):
        linked |= {row[0] for row in store.query(_LINKED_IDS, {"id": other}).rows}
    ids = sorted({customer_id, *linked} - {""})
    deleted = {}
    for table, condition in _DELETES:
        params = {"ids": ids}
        deleted[table] = int(store.query(f"SELECT count() FROM {table} WHERE {condition}", params).rows[0][0])
        if deleted[table]:
            store.command(f"DELETE FROM {table} WHERE {condition} SETTINGS lightweight_deletes_sync = 2", params)
    return Forgotten(customer_id=customer_id, ids=ids, deleted=deleted)

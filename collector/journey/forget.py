"""Forgetting a person: every row of them and of their linked ids, in every table."""

from __future__ import annotations

from dataclasses import dataclass

from collector.identity.guards import DEFAULT_POLICY, LinkPolicy
from collector.identity.resolver import customers_of
from collector.store.clickhouse import Store

__all__ = ["Forgotten", "forget_person"]

_IDS = "{ids:Array(String)}"
# (table, condition over the person's ids); a materialized view does not propagate deletes, so the
# state and identity tables are cleaned as well as the raw ones.
_DELETES = (
    ("touchpoints", f"journey_id IN {_IDS} OR customer_id IN {_IDS} OR anonymous_id IN {_IDS}"),
    ("customer_state", f"customer_id IN {_IDS}"),
    ("identity_links", f"customer_id IN {_IDS} OR anonymous_id IN {_IDS}"),
    ("identity_keys", f"journey_id IN {_IDS} OR customer_id IN {_IDS}"),
    ("identity_members", f"customer_id IN {_IDS} OR member_id IN {_IDS}"),
    ("identity_unlinks", f"id IN {_IDS} OR customer_id IN {_IDS}"),
    ("dead_letters", f"customer_id IN {_IDS} OR anonymous_id IN {_IDS}"),
)
_STATE_IDS = "SELECT DISTINCT arrayJoin(ids) FROM customer_state WHERE customer_id = {key:String}"


@dataclass(frozen=True)
class Forgotten:
    """What a forget request removed."""

    customer_id: str
    ids: list[str]
    deleted: dict[str, int]


def forget_person(store: Store, customer_id: str, policy: LinkPolicy = DEFAULT_POLICY) -> Forgotten:
    """Delete a person (found by any of their ids, with every id of theirs) from every table.

    Placeholder ids the policy never links ("guest", "0" ...) are shared by strangers and are not deleted
    by name. Blocking: call it on the writer thread, after the spool was flushed, so no insert races it.
    """
    keys, customers = customers_of(store, [customer_id])
    key = keys[customer_id]
    found = customers[key] | {customer_id}
    found |= {str(row[0]) for row in store.query(_STATE_IDS, {"key": key}).rows}
    ids = sorted(i for i in found if policy.usable(i))
    deleted = {}
    for table, condition in _DELETES:
        params = {"ids": ids}
        deleted[table] = int(store.query(f"SELECT count() FROM {table} WHERE {condition}", params).rows[0][0])
        if deleted[table]:
            store.command(f"DELETE FROM {table} WHERE {condition} SETTINGS lightweight_deletes_sync = 2", params)
    return Forgotten(customer_id=customer_id, ids=ids, deleted=deleted)

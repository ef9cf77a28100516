"""Undoing a link: split a customer back into the customers its remaining links make, recounted exactly.

A customer's state cannot be split (its rows are merged sums), so ``unlink`` deletes the state of every id
of the customer and recounts it from their raw touchpoints, grouped by the keys the remaining links give.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from collector.errors import NotFound
from collector.identity.resolver import Link, components, customers_of, record_map
from collector.store.clickhouse import Store

__all__ = ["Unlinked", "rebuild_state", "unlink"]

# The same aggregation as customer_state_mv (migrations/0011, 0012), over a customer's raw touchpoints in the
# journey (in_journey: flagged touchpoints left out, docs/enrichment.md).
REBUILD_SQL = """
INSERT INTO customer_state
SELECT
    transform(t.journey_id, {ids:Array(String)}, {keys:Array(String)}, t.journey_id) AS customer_id,
    toUInt8(0) AS hidden,
    groupUniqArray(t.journey_id) AS ids,
    minOrNullIf(t.timestamp, t.contact) AS first_seen,
    maxOrNullIf(t.timestamp, t.contact) AS last_seen,
    toUInt64(countIf(t.contact)) AS contacts,
    sumMapIf(map(toString(t.channel), toUInt64(1)), t.contact) AS contacts_by_channel,
    maxIf(toUInt64(toUnixTimestamp64Milli(t.timestamp)) * 8 + t.stage_rank, t.contact AND t.stage_rank > 0)
        AS stage_key,
    maxIf(t.stage_rank, t.contact) AS furthest_stage,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 1) AS reached_1,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 2) AS reached_2,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 3) AS reached_3,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 4) AS reached_4,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 5) AS reached_5,
    toUInt64(countIf(t.contact AND t.stage_rank = 3)) AS purchases,
    toDecimal128(sumIf(t.revenue, t.contact), 4) AS revenue,
    groupArrayIf(t.timestamp, t.contact) AS contact_times,
    groupArrayIf(toString(t.channel), t.contact) AS contact_channels,
    groupArrayIf(t.campaign, t.contact) AS contact_campaigns,
    groupArrayIf(t.stage_rank, t.contact) AS contact_stages,
    groupArrayIf((t.timestamp, toString(t.channel), t.campaign, t.stage_rank, t.revenue, t.order_id,
                  toString(t.traffic_class), t.page_url), t.contact) AS contact_details
FROM (SELECT *, type IN ('track', 'page', 'screen') AS contact FROM touchpoints
      WHERE journey_id IN {ids:Array(String)} AND in_journey) AS t
GROUP BY customer_id
"""
EDGES_SQL = """
SELECT anonymous_id, customer_id, toFloat64(linked_at), message_id, toString(source)
FROM identity_links
WHERE anonymous_id IN {ids:Array(String)} OR customer_id IN {ids:Array(String)}
"""


@dataclass(frozen=True)
class Unlinked:
    """What an unlink did: the customer it split, and the customers it left (key -> ids)."""

    id: str
    customer_id: str
    customers: dict[str, list[str]]


def rebuild_state(store: Store, key_of: dict[str, str]) -> None:
    """Recount the state of these ids from their raw touchpoints, under the given keys.

    Their old state (hidden markers included) is deleted first; blocking, on the writer thread.
    """
    ids = sorted(key_of)
    store.command("DELETE FROM customer_state WHERE customer_id IN {ids:Array(String)} "
                  "SETTINGS lightweight_deletes_sync = 2", {"ids": ids})
    store.command(REBUILD_SQL, {"ids": ids, "keys": [key_of[i] for i in ids]})


def unlink(store: Store, id_: str) -> Unlinked:
    """Remove every link of ``id_``, split its customer by the links that remain, and record the unlink."""
    keys, before = customers_of(store, [id_])
    key = keys[id_]
    members = before[key]
    if len(members) < 2:
        raise NotFound(f"{id_!r} is linked to no other id")
    store.command("DELETE FROM identity_links WHERE anonymous_id = {id:String} OR customer_id = {id:String} "
                  "SETTINGS lightweight_deletes_sync = 2", {"id": id_})
    links = [Link(linked_at=float(r[2]), message_id=str(r[3]), anonymous_id=str(r[0]), customer_id=str(r[1]),
                  source=str(r[4])) for r in store.query(EDGES_SQL, {"ids": sorted(members)}).rows]
    links = [lk for lk in links if lk.anonymous_id in members and lk.customer_id in members]
    singles = {m: {m} for m in members}
    split = components(links, {m: m for m in members}, singles, max_ids=len(members))
    new_key = {m: split.moves.get(m, m) for m in members}
    # the part that still holds the old key keeps it as its key
    keeper = new_key[key]
    if keeper != key:
        new_key = {m: key if k == keeper else k for m, k in new_key.items()}
    rebuild_state(store, new_key)
    token = f"unlink-{id_}-{time.time_ns()}"
    record_map(store, new_key, dict.fromkeys(members, key), token)
    store.insert_rows("identity_unlinks", ("id", "customer_id", "unlinked_at"), [(id_, key, time.time())],
                      f"{token}:unlink")
    customers: dict[str, list[str]] = {}
    for member, k in sorted(new_key.items()):
        customers.setdefault(k, []).append(member)
    return Unlinked(id=id_, customer_id=key, customers=customers)

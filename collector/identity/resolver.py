"""Identity resolution at ingest: links fold ids into one customer, and their state moves along.

Every customer has a *key*, the id its state is stored under in ``customer_state``. An id that was never
linked is its own key. A link ``anonymous_id -> customer_id`` (identify, alias, an event carrying both ids)
joins the two ids' customers: the customer of the link's target side keeps its key, the other customer's
ids are mapped to that key in ``identity_keys`` and its state rows, if it has any, are copied under the key and
hidden. Touchpoints are resolved through ``identity_keys`` when they are inserted (customer_state_mv), so only the
state recorded before a link has to move, once. Chains of any length fold this way, in any order.

The resolver runs on the writer thread, before the segment's touchpoints are inserted (so those of the ids it
links go straight to their customer) and before the segment is deleted. Every write carries a token derived from
the segment's, so a replay after a crash repeats exactly the writes that had not landed and nothing twice (the
map is written last).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from collector.store.clickhouse import Store, heredoc_json
from collector.store.schema import DEAD_LETTER_COLUMNS, LINK_COLUMNS

__all__ = [
    "KEYED_IDS_CTE",
    "STATE_SELECT",
    "STATE_TARGET",
    "Link",
    "Resolution",
    "apply_resolution",
    "components",
    "customers_of",
    "decode_links",
    "plan_links",
    "purge_merged",
    "record_map",
    "refused_dead_letters",
    "resolve_links",
]
STATE_COLUMNS = (
    "ids, first_seen, last_seen, contacts, contacts_by_channel, stage_key, furthest_stage, reached_1, reached_2, "
    "reached_3, reached_4, reached_5, purchases, revenue, contact_times, contact_channels, contact_campaigns, "
    "contact_stages, contact_details"
)

# Lists of ids travel as one heredoc parameter each (store.heredoc_json): a segment may link 100k ids.
# The ids of the heredoc parameter $ids$ (``wanted``) and the key of each one that was ever linked (``keyed``):
# the head of every query that resolves ids to customers (here and collector.triggers.view)
KEYED_IDS_CTE = """
WITH
    wanted AS (SELECT arrayJoin(ids) AS id FROM format(JSONCompactEachRow, 'ids Array(String)', $ids$)),
    keyed AS (
        SELECT journey_id, argMax(customer_id, version) AS key
        FROM identity_keys
        WHERE journey_id IN (SELECT id FROM wanted)
        GROUP BY journey_id
    )
"""
# One round trip: each id's key (an id nobody linked is its own key) and the ids of every key found
CUSTOMERS_SQL = KEYED_IDS_CTE + """SELECT 0 AS is_member, journey_id, key FROM keyed
UNION ALL
SELECT 1, customer_id, member_id
FROM identity_members
WHERE customer_id IN (SELECT id FROM wanted UNION DISTINCT SELECT key FROM keyed)
GROUP BY customer_id, member_id
HAVING argMax(active, version) = 1
"""
_STATE = [c.strip() for c in STATE_COLUMNS.split(",")]
# Columns a marker row (a key's id list, or its hidden flag) leaves at the column's default, as insert_rows did
_MARKER_DEFAULTS = {"first_seen": "NULL", "last_seen": "NULL", "contacts_by_channel": "map()", "revenue": "0",
                    **{f"reached_{n}": "NULL" for n in range(1, 6)},
                    **{c: "[]" for c in _STATE if c.startswith("contact_")}}
_MARKER_STATE = ", ".join(_MARKER_DEFAULTS.get(c, "0") for c in _STATE[1:])  # a marker's columns after ids
# A segment's whole write to customer_state in one statement (one part, one round trip): the state of the moved keys
# that have any (``$moves$``: from, to) copied under their new keys, the hidden marker of each of those keys, and
# each surviving key's new ids (``$rows$``: key, ids). The batcher resolves a segment's links before it inserts the
# segment's touchpoints, so a key whose touchpoints all come in this segment has no rows yet: it is neither copied
# nor hidden (its touchpoints go straight to the surviving key through identity_keys). The moved keys' rows are read
# once (``moved``), each with its key's max(hidden) over all of the key's rows and its place among them: a key
# already hidden is left out (not copied again), every other row is copied under the new key (``transform`` over the
# moves, read once as one scalar) and the first row of each key also gives the key's marker (ARRAY JOIN). The copy
# and its markers come from the same rows, in the same block: both land or neither, so a replay is exact also where
# the token's deduplication would not hold (an INSERT ... SELECT whose blocks come out otherwise after the parts it
# reads were merged meanwhile). Before 2026-11-30 the moved keys were found by a GROUP BY that the engine inlined
# twice, and their rows read a third time for the copy through a join (bench/README.md, design_cost.py).
_COPY_OR_MARKER = ", ".join("if(marker, [], ids)" if c == "ids" else f"if(marker, {_MARKER_DEFAULTS.get(c, '0')}, {c})"
                            for c in _STATE)
STATE_SELECT = f"""
WITH
    (
        SELECT (arrayMap(move -> move.1, moves), arrayMap(move -> move.2, moves))
        FROM format(JSONCompactEachRow, 'moves Array(Tuple(String, String))', $moves$)
    ) AS pairs
SELECT if(marker, customer_id, transform(customer_id, pairs.1, pairs.2, '')), marker, {_COPY_OR_MARKER}
FROM
(
    SELECT customer_id, {STATE_COLUMNS},
           max(hidden) OVER of_key AS key_hidden, row_number() OVER of_key AS nth
    FROM customer_state
    WHERE customer_id IN (
        SELECT arrayJoin(moves).1 FROM format(JSONCompactEachRow, 'moves Array(Tuple(String, String))', $moves$)
    )
    WINDOW of_key AS (PARTITION BY customer_id)
) AS moved
ARRAY JOIN if(nth = 1, [toUInt8(0), 1], [toUInt8(0)]) AS marker
WHERE key_hidden = 0
UNION ALL
SELECT marker.1, 0, marker.2, {_MARKER_STATE}
FROM format(JSONCompactEachRow, 'rows Array(Tuple(String, Array(String)))', $rows$)
ARRAY JOIN rows AS marker
"""
STATE_TARGET = ("customer_id", "hidden", *_STATE)  # the columns STATE_SELECT fills, in its order


class Link(NamedTuple):
    """One link between two ids, as a touchpoint carried it; links sort by their fields in order (time first).

    A named tuple: a segment may carry tens of thousands, made, sorted and compared on the writer thread while the
    event loop waits for the interpreter lock (a frozen dataclass costs several times as much to make and compare).
    """

    linked_at: float
    message_id: str
    anonymous_id: str
    customer_id: str
    source: str

    @classmethod
    def from_row(cls, values: dict[str, Any]) -> Link:
        """A link from a decoded spool row (columns LINK_COLUMNS)."""
        return cls(linked_at=float(values["linked_at"]), message_id=str(values["message_id"]),
                   anonymous_id=str(values["anonymous_id"]), customer_id=str(values["customer_id"]),
                   source=str(values["source"]))


@dataclass
class Resolution:
    """What one set of links changes: keys that move, ids that map anew, links refused or accepted.

    A plan (``plan_links``) to write with ``apply_resolution``: retried after a fault with the same plan, every
    write is the same, so each lands once (its token) even where a write that landed changes what a new plan
    would read (the members before the map).
    """

    moves: dict[str, str] = field(default_factory=dict)
    mapped: dict[str, str] = field(default_factory=dict)
    accepted: list[Link] = field(default_factory=list)
    refused: list[tuple[Link, str]] = field(default_factory=list)
    previous: dict[str, str] = field(default_factory=dict)  # each member's key before (of the keys read)
    version: int = 0  # the version of the member and map rows written


def customers_of(store: Store, ids: Iterable[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each id's current key (an id nobody linked is its own key), and each of those keys' ids (itself included)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}, {}
    found: dict[str, str] = {}
    listed: dict[str, set[str]] = {}
    for is_member, left, right in store.query(CUSTOMERS_SQL, {"$ids$": heredoc_json(wanted)}).rows:
        if is_member:
            listed.setdefault(str(left), set()).add(str(right))
        else:
            found[str(left)] = str(right)
    key = {i: found.get(i, i) for i in wanted}
    return key, {k: listed.get(k, set()) | {k} for k in set(key.values())}


def components(links: Sequence[Link], key: dict[str, str], members: dict[str, set[str]], *,
               max_ids: int) -> Resolution:
    """Apply links in time order to the known customers: union by key, the target side keeping its key.

    ``key`` maps every id of the links to its current key, ``members`` every key to its ids. A link that
    would give a customer more than ``max_ids`` ids is refused with its reason.
    """
    parent: dict[str, str] = {}

    def root(k: str) -> str:
        while parent.get(k, k) != k:
            k = parent[k]
        return k

    sizes = {k: len(m) for k, m in members.items()}
    result = Resolution()
    for link in sorted(links):
        source, target = root(key[link.anonymous_id]), root(key[link.customer_id])
        if source == target:
            result.accepted.append(link)
            continue
        size = sizes[source] + sizes[target]
        if size > max_ids:
            result.refused.append((link, f"identity: linking {link.anonymous_id!r} to {link.customer_id!r} would give "
                                         f"one customer {size} ids, more than REISE_MAX_IDS_PER_CUSTOMER={max_ids}; "
                                         "the event is kept, the link is not made"))
            continue
        parent[source] = target
        sizes[target] = size
        result.accepted.append(link)
    for k in members:
        final = root(k)
        if final != k:
            result.moves[k] = final
            for member in members[k]:
                result.mapped[member] = final
    return result


def plan_links(store: Store, links: Sequence[Link], *, max_ids: int) -> Resolution:
    """Read the keys and members of the links' ids and work out what the links change (nothing is written)."""
    if not links:
        return Resolution()
    key, members = customers_of(store, (i for link in links for i in (link.anonymous_id, link.customer_id)))
    result = components(links, key, members, max_ids=max_ids)
    result.previous = {m: k for k, ms in members.items() for m in ms}
    result.version = time.time_ns()
    return result


def apply_resolution(store: Store, result: Resolution, token: str) -> None:
    """Write a plan: the accepted links, the state moves with the ids and hidden markers, the members, the map last.

    Blocking; every write carries a token derived from ``token``, so applying the same plan again after a fault
    adds only what had not landed.
    """
    if result.accepted:
        store.insert_rows("identity_links", LINK_COLUMNS,
                          [(lk.anonymous_id, lk.customer_id, lk.linked_at, lk.message_id, lk.source)
                           for lk in result.accepted], f"{token}:edges")
    if result.mapped:
        record_map(store, result.mapped, result.previous, token, moves=result.moves, version=result.version)


def resolve_links(store: Store, links: Sequence[Link], token: str, *, max_ids: int) -> Resolution:
    """Fold a segment's links into the store: move state, hide moved keys, record links and the map.

    Blocking; call it on the writer thread before the segment's touchpoints are inserted. Returns the
    resolution, whose refused links the caller keeps as dead letters. (The batcher plans once and retries
    ``apply_resolution`` alone.)
    """
    result = plan_links(store, links, max_ids=max_ids)
    apply_resolution(store, result, token)
    return result


def record_map(store: Store, mapped: dict[str, str], previous: dict[str, str], token: str, *,
               moves: Mapping[str, str] | None = None, version: int | None = None) -> None:
    """Write ids' new keys: the moved state with the keys' id lists and hidden markers, the reverse index, the map
    last.

    ``moves`` maps keys whose state moves to their new keys: the state of those that have any is copied and they
    are hidden in the same statement that lists the ids of the surviving keys (STATE_SELECT), before the members.
    The map is written last: its presence means the move is done.
    """
    version = version or time.time_ns()
    # every id of a customer is listed in its journey, also ids that sent no touchpoint of their own
    ordered = sorted(mapped.items())
    ids: dict[str, list[str]] = {}
    for member, new_key in ordered:
        ids.setdefault(new_key, []).append(member)
    if moves:
        params = {"$moves$": heredoc_json(sorted(moves.items())), "$rows$": heredoc_json(sorted(ids.items()))}
        store.insert_select("customer_state", STATE_TARGET, STATE_SELECT, params, token=f"{token}:state")
    member_rows: list[tuple[str, str, int, int]] = []
    for member, new_key in ordered:
        old_key = previous.get(member, member)
        if old_key != new_key:
            member_rows.append((old_key, member, version, 0))
        member_rows.append((new_key, member, version, 1))
    for new_key in sorted(set(mapped.values())):
        member_rows.append((new_key, new_key, version, 1))
    store.insert_rows("identity_members", ("customer_id", "member_id", "version", "active"), member_rows,
                      f"{token}:members")
    if not moves:
        store.insert_rows("customer_state", ("customer_id", "hidden", "ids"),
                          [(key, 0, key_ids) for key, key_ids in sorted(ids.items())], f"{token}:ids")
    store.insert_rows("identity_keys", ("journey_id", "customer_id", "version"),
                      [(m, k, version) for m, k in ordered], f"{token}:map")


def decode_links(body: bytes) -> list[Link]:
    """The links of a spool body (a line of column names, then one JSON array a link)."""
    header, _, rest = body.partition(b"\n")
    names = orjson.loads(header or b"[]")
    rows = orjson.loads(b"[" + b",".join(line for line in rest.splitlines() if line) + b"]")  # one parse for all
    if not rows:
        return []
    if any(len(row) != len(names) for row in rows):
        raise ValueError("identity links: a row's values do not match the column names")
    # each field's column (ValueError when the body lacks one)
    linked_at, message_id, anonymous_id, customer_id, source = (names.index(f) for f in Link._fields)
    return [Link(float(row[linked_at]), str(row[message_id]), str(row[anonymous_id]), str(row[customer_id]),
                 str(row[source])) for row in rows]


PURGE_SQL = """
DELETE FROM customer_state
WHERE customer_id IN (SELECT customer_id FROM customer_state WHERE hidden = 1)
SETTINGS lightweight_deletes_sync = {sync}
"""
# Rows a lightweight DELETE removed stay in their part, masked, until a merge rewrites it, and big parts rarely
# merge: reads of the whole table still go through them. Once they are this share of its rows, the purge has the
# engine rewrite the parts that hold any (each deleted row then costs at most 1 / MASK_SHARE rows rewritten).
MASK_SHARE = 0.2
MASKED_ROWS_SQL = """
SELECT countIf(NOT _row_exists), count() FROM customer_state SETTINGS apply_deleted_mask = 0
"""
MASK_PENDING_SQL = """
SELECT count() FROM system.mutations
WHERE database = currentDatabase() AND table = 'customer_state' AND NOT is_done
  AND position(command, 'APPLY DELETED MASK') > 0
"""
APPLY_MASK_SQL = "ALTER TABLE customer_state APPLY DELETED MASK SETTINGS mutations_sync = {sync}"


def purge_merged(store: Store, *, wait: bool = False) -> bool:
    """Delete the rows of keys merged into another customer (their state was copied before they were hidden);
    once deleted rows are ``MASK_SHARE`` of ``customer_state``, remove them from its parts. True if it did.

    Only the views' ``max(hidden) = 0`` needs them until then; purging halves what bulk questions read once
    many anonymous ids were identified. Blocking, on the writer thread: it must not run between a move's copy
    and its hidden row, and it does not, since both are written by ``resolve_links`` on that thread. Both
    mutations run in the engine's background pool unless ``wait``: the rows a purge deletes are counted by a
    later purge (the collector's next one), and no mask is applied while one is still being applied.
    """
    sync = 2 if wait else 0
    store.command(PURGE_SQL.format(sync=sync))
    (deleted, total), = store.query(MASKED_ROWS_SQL).rows
    if not total or deleted < MASK_SHARE * total or store.query(MASK_PENDING_SQL).rows[0][0]:
        return False
    store.command(APPLY_MASK_SQL.format(sync=sync))
    return True


def refused_dead_letters(refused: Sequence[tuple[Link, str]]) -> list[tuple[Any, ...]]:
    """Refused links as dead-letter rows (endpoint ``identity``), each with its reason and the link as payload."""
    rows = []
    for link, reason in refused:
        values: dict[str, Any] = {
            "received_at": time.time(), "source": link.source, "endpoint": "identity", "batch_index": -1,
            "message_id": link.message_id, "customer_id": link.customer_id, "anonymous_id": link.anonymous_id,
            "reason": reason, "payload": orjson.dumps(dict(zip(LINK_COLUMNS, (
                link.anonymous_id, link.customer_id, link.linked_at, link.message_id, link.source), strict=True)))
            .decode(),
        }
        rows.append(tuple(values[c] for c in DEAD_LETTER_COLUMNS))
    return rows

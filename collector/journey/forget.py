"""Forgetting a person: every row of them and of their linked ids, in every table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from collector.identity.guards import DEFAULT_POLICY, LinkPolicy
from collector.identity.resolver import customers_of
from collector.ingest.dedup import DEDUP_KEY_SQL
from collector.ingest.suppression import suppress as suppress_ids
from collector.store.clickhouse import Store, heredoc_json

__all__ = ["Forgotten", "forget_person", "mention_needles"]

_IDS = "{ids:Array(String)}"
_TOUCHPOINTS = f"journey_id IN {_IDS} OR customer_id IN {_IDS} OR anonymous_id IN {_IDS}"
MAX_NEEDLES = 255  # multiSearchAny takes at most 255 needles: more go into further calls
# A dead letter is the person's when an id column names them or its payload mentions one of their ids
# (multiSearchAny over the needles of mention_needles, added per 255 needles, and endsWith for its end).
_DEAD_LETTERS = (f"customer_id IN {_IDS} OR anonymous_id IN {_IDS} "
                 "OR arrayExists(end -> endsWith(payload, end), {ends:Array(String)})")
# (table, condition over the person's ids); a materialized view does not propagate deletes, so the
# state and identity tables are cleaned as well as the raw ones.
_DELETES = (
    ("touchpoints", _TOUCHPOINTS),
    ("customer_state", f"customer_id IN {_IDS}"),
    ("identity_links", f"customer_id IN {_IDS} OR anonymous_id IN {_IDS}"),
    ("identity_keys", f"journey_id IN {_IDS} OR customer_id IN {_IDS}"),
    ("identity_members", f"customer_id IN {_IDS} OR member_id IN {_IDS}"),
    ("identity_unlinks", f"id IN {_IDS} OR customer_id IN {_IDS}"),
    # triggers (docs/triggers.md): attempts name the customer key, changes the key (segment_members is a view)
    ("trigger_attempts", f"customer_id IN {_IDS}"),
    ("segment_changes", f"customer_id IN {_IDS}"),
)
# contact_hours counts every contact per hour, stage and channel (migrations/0019): the person's live contacts (the
# rows of their keys not merged into another) leave it as negative counts, written before their state is deleted.
# An INSERT ... SELECT is not deduplicated: two people with the same counts each subtract theirs.
_CONTACT_HOURS = f"""
INSERT INTO contact_hours (hour, stage_rank, channel, contacts)
SELECT
    fromUnixTimestamp64Milli((intDiv(toUnixTimestamp64Milli(t), 3600000) - (toUnixTimestamp64Milli(t) % 3600000 < 0))
                             * 3600000, 'UTC') AS hour,
    stage_rank,
    channel,
    -toInt64(count()) AS contacts
FROM
(
    SELECT contact_times, contact_channels, contact_stages
    FROM customer_state
    WHERE customer_id IN {_IDS} AND hidden = 0
      AND customer_id NOT IN (SELECT customer_id FROM customer_state WHERE customer_id IN {_IDS} AND hidden = 1)
)
ARRAY JOIN contact_times AS t, contact_channels AS channel, contact_stages AS stage_rank
WHERE stage_rank > 0
GROUP BY hour, stage_rank, channel
"""
_STATE_IDS = "SELECT DISTINCT arrayJoin(ids) FROM customer_state WHERE customer_id = {key:String}"
# The idempotency keys of the person's touchpoints (message ids, order keys), as event_keys keeps them.
_EVENT_KEYS = f"SELECT DISTINCT {DEDUP_KEY_SQL} FROM touchpoints WHERE {_TOUCHPOINTS}"
_KEYS = "key IN (SELECT arrayJoin(keys) FROM format(JSONCompactEachRow, 'keys Array(String)', $keys$))"
_DELETE = "DELETE FROM {table} WHERE {condition} SETTINGS lightweight_deletes_sync = 2"


@dataclass(frozen=True)
class Forgotten:
    """What a forget request removed (``keys``: the idempotency keys deleted, for the collector's memory)."""

    customer_id: str
    ids: list[str]
    deleted: dict[str, int]
    suppressed: int = 0  # ids put on the suppression list
    keys: list[str] = field(default_factory=list, repr=False)

    def answer(self) -> dict[str, Any]:
        """The answer of the forget endpoint and command (the keys stay out: they may be many)."""
        return {"customer_id": self.customer_id, "ids": self.ids, "deleted": self.deleted,
                "suppressed": self.suppressed}


def mention_needles(ids: list[str]) -> tuple[list[str], list[str]]:
    """How an id shows in a payload: needles to find anywhere, and endings (a query string's last value).

    An id is mentioned as a JSON string (``"id"``, also escaped inside another string), as a query-string
    value (``=id&``, raw or URL-encoded) and, when it is a number, as a JSON number (``:42,``). Delimited
    forms only: a short id such as ``42`` must not match every payload that holds the digits 42.
    """
    needles: set[str] = set()
    ends: set[str] = set()
    for id_ in ids:
        quoted = orjson.dumps(id_).decode()
        needles.update((quoted, orjson.dumps(quoted).decode()[1:-1]))
        for form in {id_, quote(id_, safe=""), quote_plus(id_)}:
            needles.update((f"={form}&", f"={form}#"))
            ends.add(f"={form}")
        if id_.isdigit():
            for colon in (":", ": "):
                needles.update(f"{colon}{id_}{after}" for after in (",", "}", "]", " ", "\n"))
                ends.add(f"{colon}{id_}")
    return sorted(needles), sorted(ends)


def _dead_letters(ids: list[str]) -> tuple[str, dict[str, Any]]:
    """The condition matching the person's dead letters, and its parameters."""
    needles, ends = mention_needles(ids)
    params: dict[str, Any] = {"ids": ids, "ends": ends}
    mentions = ""
    for index, start in enumerate(range(0, len(needles), MAX_NEEDLES)):
        params[f"needles{index}"] = needles[start:start + MAX_NEEDLES]
        mentions += f" OR multiSearchAny(payload, {{needles{index}:Array(String)}})"
    return _DEAD_LETTERS + mentions, params


def _delete(store: Store, table: str, condition: str, params: dict[str, Any]) -> int:
    """Delete the matching rows of one table; how many there were."""
    count = int(store.query(f"SELECT count() FROM {table} WHERE {condition}", params).rows[0][0])
    if count:
        store.command(_DELETE.format(table=table, condition=condition), params)
    return count


def forget_person(
    store: Store, customer_id: str, policy: LinkPolicy = DEFAULT_POLICY, *, suppress: bool = False,
    also: Iterable[str] = (), before_delete: Callable[[list[str]], dict[str, int]] | None = None,
) -> Forgotten:
    """Delete a person (found by any of their ids, with every id of theirs) from every table.

    Also deletes their dead letters (by id column or by a mention of an id in the payload) and the
    idempotency keys of their events (``event_keys``), so an event of theirs sent again is not taken for
    a duplicate. With ``suppress`` their ids go on the suppression list first, so later events of theirs
    are not stored (see collector.ingest.suppression). Placeholder ids the policy never links ("guest",
    "0" ...) are shared by strangers and are neither deleted by name nor suppressed. ``also``: more ids of
    theirs (those a first pass found, when a second pass sweeps up what arrived meanwhile). ``before_delete``
    gets the ids before any row is deleted and answers counts of its own (the collector's trigger outbox:
    cleaned first, so it copies nothing of them to ClickHouse afterwards). Blocking: call it on the writer
    thread, after the spool was flushed, so no insert races it.
    """
    key_of, customers = customers_of(store, [customer_id])
    key = key_of[customer_id]
    found = customers[key] | {customer_id, *also}
    found |= {str(row[0]) for row in store.query(_STATE_IDS, {"key": key}).rows}
    ids = sorted(i for i in found if policy.usable(i))
    suppressed = suppress_ids(store, key, ids) if suppress else 0
    keys = [str(row[0]) for row in store.query(_EVENT_KEYS, {"ids": ids}).rows] if ids else []
    deleted = before_delete(ids) if before_delete is not None else {}
    deleted["event_keys"] = _delete(store, "event_keys", _KEYS, {"$keys$": heredoc_json(keys)}) if keys else 0
    if ids:
        store.command(_CONTACT_HOURS, {"ids": ids})
    for table, condition in _DELETES:
        deleted[table] = _delete(store, table, condition, {"ids": ids})
    condition, params = _dead_letters(ids)
    deleted["dead_letters"] = _delete(store, "dead_letters", condition, params)
    return Forgotten(customer_id=customer_id, ids=ids, deleted=deleted, suppressed=suppressed, keys=keys)

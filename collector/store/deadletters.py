"""The dead-letter table for an operator: reasons with counts, the letters to replay, and marking them replayed.

A dead letter has no id column; it is named by the cityHash64 of its columns (``DEAD_LETTER_KEY``), which is
what ``dead_letter_replays`` (migration 0010) records once its events are back in the store. Blocking calls:
run them off the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.store.clickhouse import QueryResult, Store, heredoc_json

__all__ = ["DEAD_LETTER_KEY", "DeadLetter", "Filters", "delete_letters", "list_reasons", "mark_replayed",
           "select_letters"]

DEAD_LETTER_KEY = "cityHash64(received_at, source, endpoint, batch_index, message_id, reason, payload)"
_WHERE = f"""
WHERE position(reason, {{reason:String}}) > 0
  AND toUnixTimestamp64Milli(received_at) >= {{since_ms:Int64}}
  AND ({{include_replayed:UInt8}} = 1 OR {DEAD_LETTER_KEY} NOT IN (SELECT key FROM dead_letter_replays))
"""
LIST_SQL = f"""
SELECT reason, count() AS dead_letters, min(received_at) AS first_at, max(received_at) AS last_at,
       groupUniqArray(3)(toString(endpoint)) AS endpoints, substring(any(payload), 1, 300) AS sample
FROM dead_letters
{_WHERE}
GROUP BY reason
ORDER BY dead_letters DESC, reason
LIMIT {{limit:UInt32}}
"""
SELECT_SQL = f"""
SELECT {DEAD_LETTER_KEY} AS key, toUnixTimestamp64Milli(received_at) AS received_ms, toString(source) AS source,
       toString(endpoint) AS endpoint, batch_index, message_id, reason, payload
FROM dead_letters
{_WHERE}
ORDER BY received_at, key
LIMIT {{limit:UInt32}}
"""
DELETE_SQL = f"""
DELETE FROM dead_letters
WHERE {DEAD_LETTER_KEY} IN (SELECT arrayJoin(keys) FROM format(JSONCompactEachRow, 'keys Array(UInt64)', $keys$))
"""


@dataclass(frozen=True)
class Filters:
    """Which dead letters: reason containing a text, kept since a time, replayed ones too or not."""

    reason: str = ""
    since_ms: int = 0
    include_replayed: bool = False
    limit: int = 100_000

    def params(self) -> dict[str, Any]:
        """The query parameters of these filters."""
        return {"reason": self.reason, "since_ms": self.since_ms, "include_replayed": int(self.include_replayed),
                "limit": self.limit}


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter, as kept."""

    key: int
    received_ms: int
    source: str
    endpoint: str
    batch_index: int
    message_id: str
    reason: str
    payload: str


def list_reasons(store: Store, filters: Filters) -> QueryResult:
    """Dead letters not yet replayed, by reason: count, first and last time, endpoints and a sample payload."""
    return store.query(LIST_SQL, filters.params())


def select_letters(store: Store, filters: Filters) -> list[DeadLetter]:
    """The dead letters the filters name, oldest first (at most ``filters.limit``)."""
    rows = store.query(SELECT_SQL, filters.params()).rows
    return [DeadLetter(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), str(r[6]), str(r[7]))
            for r in rows]


def mark_replayed(store: Store, replayed: Sequence[tuple[int, int]]) -> None:
    """Record dead letters (key, events) as replayed: their events are in the store now."""
    now = time.time()
    store.insert_rows("dead_letter_replays", ("key", "replayed_at", "outcome", "events"),
                      [(key, now, "replayed", events) for key, events in replayed], f"replays-{time.time_ns()}")


def delete_letters(store: Store, keys: Sequence[int]) -> None:
    """Delete dead letters by key (``--delete``: once replayed they are not kept)."""
    if keys:
        store.command(DELETE_SQL, {"$keys$": heredoc_json(list(keys))})

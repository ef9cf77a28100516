"""Deduplication in one place: the idempotency key of a touchpoint, the window of recently seen keys, its
warm-up from the spool and the store at start, and the store check imports make.

A client's retry of an accepted event must not be stored twice. Keys seen lately are caught in memory
(``RecentIds``, warmed at start with what the spool still holds and what the store took in the last day);
imports also ask the store (``event_keys``, kept by a view), so a file imported again adds nothing however
long ago the first import was. What stays elsewhere: the insert tokens that make a replayed spool segment
idempotent in ClickHouse (``Segment.token`` in collector.ingest.spool), since they belong to the segment.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from collector.errors import StoreError, StoreUnavailable
from collector.store.clickhouse import Store
from collector.store.schema import TOUCHPOINT_COLUMNS

__all__ = ["DEDUP_KEY_SQL", "ORDER_KEY_SQL", "Dedup", "RecentIds", "dedup_key", "order_key"]

Row = tuple[Any, ...]

# A till or shop may re-send an order with a new messageId (after reconnecting, or from an import): the key of
# an order event is its source, order id and event kind (plus a return id, so partial returns stay apart).
_SEP = "\x1f"

# The same key in SQL over the touchpoints table (properties hold non-string values as their JSON text).
ORDER_KEY_SQL = (
    "concat('order', '\\x1F', source, '\\x1F', order_id, '\\x1F', lowerUTF8(event), '\\x1F', "
    "properties['return_id'])"
)
# The key of any touchpoint computed in SQL (the migration that keeps event_keys says the same).
DEDUP_KEY_SQL = f"if(type = 'track' AND order_id != '', {ORDER_KEY_SQL}, message_id)"
RECENT_KEYS_SQL = f"""
SELECT {DEDUP_KEY_SQL} FROM touchpoints
WHERE received_at >= now64(3) - INTERVAL 1 DAY
ORDER BY received_at DESC
LIMIT {{n:UInt64}}
"""

_TYPE, _EVENT, _ORDER_ID, _SOURCE, _PROPERTIES = (
    TOUCHPOINT_COLUMNS.index(c) for c in ("type", "event", "order_id", "source", "properties"))


def order_key(source: str, order_id: str, event: str, properties: Mapping[str, Any]) -> str:
    """The idempotency key of a track event that carries an order id."""
    return_id = properties.get("return_id")
    extra = return_id if isinstance(return_id, str) else str(return_id) if isinstance(return_id, int) else ""
    return _SEP.join(("order", source, order_id, event.lower(), extra))


def dedup_key(row: Row) -> str:
    """The idempotency key of a touchpoint row: source, order id and event kind for order events, else messageId."""
    if row[_ORDER_ID] and row[_TYPE] == "track":
        return order_key(row[_SOURCE], row[_ORDER_ID], row[_EVENT], row[_PROPERTIES])
    return str(row[0])


class RecentIds:
    """A bounded set of message ids that forgets the oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def add(self, message_id: str) -> bool:
        """Remember an id; False when it was already remembered (a duplicate)."""
        if message_id in self._seen:
            return False
        if self.capacity <= 0:
            return True
        self._seen.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True

    def forget(self, message_ids: Iterable[str]) -> None:
        """Forget ids whose events were not accepted after all."""
        for message_id in message_ids:
            self._seen.discard(message_id)


class Dedup:
    """Which touchpoints were taken already: in memory for recent keys, in the store on demand."""

    def __init__(self, *, capacity: int, store: Store, readers: Executor) -> None:
        self.recent = RecentIds(capacity)
        self._store = store
        self._readers = readers

    def __len__(self) -> int:
        return len(self.recent)

    def remember_rows(self, rows: Iterable[Row]) -> None:
        """Remember the keys of rows already taken (at start: the rows waiting in the spool)."""
        for row in rows:
            self.recent.add(dedup_key(row))

    async def remember_stored(self, executor: Executor) -> int:
        """Remember the keys the store took in the last day (newest kept); raises StoreUnavailable while down."""
        loop = asyncio.get_running_loop()
        keys = await loop.run_in_executor(
            executor, lambda: self._store.query(RECENT_KEYS_SQL, {"n": self.recent.capacity}).rows)
        for (key,) in reversed(keys):
            self.recent.add(key)
        return len(keys)

    def fresh(self, rows: Iterable[Row]) -> tuple[list[Row], list[str], int]:
        """The rows not seen lately (now remembered), their keys, and how many were duplicates."""
        fresh, keys, duplicates = [], [], 0
        for row in rows:
            key = dedup_key(row)
            if self.recent.add(key):
                fresh.append(row)
                keys.append(key)
            else:
                duplicates += 1
        return fresh, keys, duplicates

    def forget(self, keys: Iterable[str]) -> None:
        """Forget keys whose rows were not kept after all, so a retry is not taken for a duplicate."""
        self.recent.forget(keys)

    async def not_stored(self, rows: Sequence[Row], keys: Sequence[str]) -> list[Row]:
        """The rows whose keys the store does not hold yet, each key once; StoreUnavailable if it cannot tell."""
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(self._readers, self._store.stored_keys, keys)
        except StoreError as exc:
            raise StoreUnavailable("unavailable, so duplicates cannot be checked; retry later") from exc
        fresh, seen = [], set(stored)
        for row, key in zip(rows, keys, strict=True):
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        return fresh

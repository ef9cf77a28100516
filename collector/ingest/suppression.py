"""The suppression list: ids whose events are not stored any more (``reise forget ID --suppress``).

The list lives in the store (``suppressed_ids``, migrations/0009) as SHA-256 hashes of the ids, so neither
the table nor a collector's memory holds them in clear. Every collector loads it at start and again every
``REISE_SUPPRESSION_RELOAD`` seconds (and at once after its own forget or unsuppress), so collectors that
share a store agree within that interval. An incoming event or dead letter whose customer or anonymous id
hashes to a listed key is dropped before the spool and counted (``reise_events_total{outcome="suppressed"}``).
With an empty list nothing is hashed, so the list costs nothing until it is used.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import structlog

from collector.errors import StoreError
from collector.store.clickhouse import Store
from collector.store.schema import DEAD_LETTER_COLUMNS, TOUCHPOINT_COLUMNS

__all__ = ["DEAD_LETTER_IDS", "TOUCHPOINT_IDS", "Suppression", "Unsuppressed", "id_hash", "suppress", "suppressed_keys",
           "unsuppress"]

log = structlog.get_logger("reise.suppression")

Row = tuple[Any, ...]
TOUCHPOINT_IDS = (TOUCHPOINT_COLUMNS.index("customer_id"), TOUCHPOINT_COLUMNS.index("anonymous_id"))
DEAD_LETTER_IDS = (DEAD_LETTER_COLUMNS.index("customer_id"), DEAD_LETTER_COLUMNS.index("anonymous_id"))
RETRY_SECONDS = 5.0  # after a failed load, the next try comes sooner than the reload interval

_LOAD_SQL = "SELECT DISTINCT key FROM suppressed_ids"
_SUPPRESS_SQL = """
INSERT INTO suppressed_ids (key, person, suppressed_at)
SELECT arrayJoin({keys:Array(String)}), {person:String}, now64(3)
"""
_PERSONS_SQL = "SELECT DISTINCT person FROM suppressed_ids WHERE key = {key:String}"
_COUNT_SQL = "SELECT uniqExact(key) FROM suppressed_ids WHERE key = {key:String} OR person IN {persons:Array(String)}"
_UNSUPPRESS_SQL = """
DELETE FROM suppressed_ids WHERE key = {key:String} OR person IN {persons:Array(String)}
SETTINGS lightweight_deletes_sync = 2
"""


def id_hash(id_: str) -> str:
    """How the suppression list keeps an id: the lower-case hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(id_.encode()).hexdigest()


def suppress(store: Store, person: str, ids: Iterable[str]) -> int:
    """Add a person's ids to the suppression list (blocking); the number of ids added."""
    keys = sorted({id_hash(i) for i in ids if i})
    if keys:
        store.command(_SUPPRESS_SQL, {"keys": keys, "person": id_hash(person)})
    return len(keys)


@dataclass(frozen=True)
class Unsuppressed:
    """What an unsuppress request lifted: the id asked for and how many listed ids went with it."""

    id: str
    lifted: int


def unsuppress(store: Store, id_: str) -> Unsuppressed:
    """Lift the suppression of an id and of every id suppressed with it (blocking)."""
    key = id_hash(id_)
    persons = [str(row[0]) for row in store.query(_PERSONS_SQL, {"key": key}).rows]
    params = {"key": key, "persons": persons}
    listed = int(store.query(_COUNT_SQL, params).rows[0][0])
    if listed:
        store.command(_UNSUPPRESS_SQL, params)
    return Unsuppressed(id=id_, lifted=listed)


def suppressed_keys(store: Store) -> frozenset[str]:
    """Every hashed id on the list (blocking)."""
    return frozenset(str(row[0]) for row in store.query(_LOAD_SQL).rows)


class Suppression:
    """This collector's copy of the suppression list, reloaded from the store, and the check of incoming rows."""

    def __init__(self, *, store: Store, readers: Executor, interval: float) -> None:
        self.keys: frozenset[str] = frozenset()
        self.loaded = False  # False until the first load succeeded
        self._store = store
        self._readers = readers
        self._interval = interval

    def __len__(self) -> int:
        return len(self.keys)

    def listed(self, *ids: str) -> bool:
        """True when any of these ids is suppressed."""
        keys = self.keys
        return bool(keys) and any(i and id_hash(i) in keys for i in ids)

    def drop(self, rows: Sequence[Row], columns: tuple[int, int]) -> tuple[list[Row], int]:
        """The rows none of whose ids (at these two positions) is suppressed, and how many were dropped."""
        if not self.keys:
            return list(rows), 0
        first, second = columns
        kept = [row for row in rows if not self.listed(row[first], row[second])]
        return kept, len(rows) - len(kept)

    async def reload(self) -> int:
        """Load the list from the store now; its size. Raises StoreError when the store cannot answer."""
        loop = asyncio.get_running_loop()
        self.keys = await loop.run_in_executor(self._readers, suppressed_keys, self._store)
        self.loaded = True
        return len(self.keys)

    async def run(self) -> None:
        """Load the list at start, then every interval; a failed load is logged and retried sooner."""
        while True:
            try:
                await self.reload()
                delay = self._interval
            except StoreError as exc:
                log.warning("suppression list not loaded; retrying", error=str(exc), held=len(self.keys))
                delay = min(self._interval, RETRY_SECONDS)
            await asyncio.sleep(delay)

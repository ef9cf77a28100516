"""The batcher: a bounded in-memory queue flushed on size or time by one writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from collector.errors import RequestRejected, StoreError, StoreUnavailable
from collector.protocol import DEAD_LETTER_COLUMNS, TOUCHPOINT_COLUMNS
from collector.store import Store

__all__ = ["Batcher", "BatcherStats", "batch_token"]

log = structlog.get_logger("reise.batcher")

Row = tuple[Any, ...]
MAX_BACKOFF = 30.0
_TIMESTAMP = TOUCHPOINT_COLUMNS.index("timestamp")
_RECEIVED = TOUCHPOINT_COLUMNS.index("received_at")
_SOURCE = TOUCHPOINT_COLUMNS.index("source")
_CUSTOMER = TOUCHPOINT_COLUMNS.index("customer_id")
_ANONYMOUS = TOUCHPOINT_COLUMNS.index("anonymous_id")


def batch_token(table: str, rows: Sequence[Row]) -> str:
    """An insert_deduplication_token derived from the batch: the same batch gives the same token."""
    digest = hashlib.blake2b(table.encode(), digest_size=16)
    for row in rows:
        digest.update(str(row[0]).encode())
        digest.update(b"\x00")
        digest.update(str(row[-1] if table == "dead_letters" else row[_TIMESTAMP]).encode())
    return f"{table}-{len(rows)}-{digest.hexdigest()}"


@dataclass
class BatcherStats:
    """Counters the health endpoints report."""

    inserted: int = 0
    dead_lettered: int = 0
    batches: int = 0
    store_ok: bool = True
    last_error: str = ""
    last_insert_seconds: float = 0.0
    retries: int = 0
    failed_batches: list[str] = field(default_factory=list)


class Batcher:
    """Collects rows from request handlers and writes them in large idempotent inserts."""

    def __init__(
        self,
        *,
        store: Store,
        writer: ThreadPoolExecutor,
        batch_size: int,
        flush_interval: float,
        max_pending: int,
    ) -> None:
        self._store = store
        self._writer = writer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._rows: list[Row] = []
        self._dead: list[Row] = []
        self._oldest = 0.0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self.stats = BatcherStats()

    @property
    def pending(self) -> int:
        """Rows accepted but not yet written."""
        return len(self._rows) + len(self._dead)

    def check_capacity(self, incoming: int) -> None:
        """Refuse a request with 503 when its rows would overfill the queue."""
        if self._closing:
            raise RequestRejected(503, "collector is shutting down", retry_after=5)
        if self.pending + incoming > self.max_pending:
            raise RequestRejected(503, "collector queue is full; retry later", retry_after=2)

    def submit(self, rows: Sequence[Row], dead: Sequence[Row] = ()) -> None:
        """Queue rows (call check_capacity first); they are written within flush_interval."""
        if not rows and not dead:
            return
        was_empty = not self.pending
        if was_empty:
            self._oldest = time.monotonic()
        self._rows.extend(rows)
        self._dead.extend(dead)
        self._idle.clear()
        if was_empty or self.pending >= self.batch_size:
            self._wake.set()

    async def run(self) -> None:
        """Flush loop: runs until cancelled, writing a batch whenever it is full or old enough."""
        while True:
            if not self.pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._oldest + self.flush_interval - time.monotonic()
            if self.pending < self.batch_size and wait > 0 and not self._closing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            await self._flush_once()

    async def _flush_once(self) -> None:
        rows, self._rows = self._rows[: self.batch_size], self._rows[self.batch_size :]
        dead, self._dead = self._dead, []
        self._oldest = time.monotonic()
        await self._write_until_done("touchpoints", rows)
        await self._write_until_done("dead_letters", dead)

    async def _write_until_done(self, table: str, rows: list[Row]) -> None:
        """Write one batch, retrying with backoff while the store is unavailable."""
        if not rows:
            return
        token = batch_token(table, rows)
        delay = 0.25
        loop = asyncio.get_running_loop()
        while True:
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._writer, self._insert, table, rows, token)
            except StoreUnavailable as exc:
                self.stats.store_ok = False
                self.stats.last_error = str(exc)
                self.stats.retries += 1
                log.warning("store unavailable, will retry", table=table, rows=len(rows), delay=delay,
                            error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            except StoreError as exc:
                self.stats.last_error = str(exc)
                log.error("store refused a batch; keeping it as dead letters", table=table, rows=len(rows),
                          error=str(exc))
                if table != "dead_letters":
                    await self._write_until_done("dead_letters", [_as_dead_letter(r, str(exc)) for r in rows])
                else:
                    self.stats.failed_batches.append(token)
                return
            self.stats.store_ok = True
            self.stats.batches += 1
            self.stats.last_insert_seconds = time.perf_counter() - started
            if table == "touchpoints":
                self.stats.inserted += len(rows)
            else:
                self.stats.dead_lettered += len(rows)
            return

    def _insert(self, table: str, rows: list[Row], token: str) -> None:
        if table == "touchpoints":
            self._store.insert_touchpoints(rows, token)
        else:
            self._store.insert_dead_letters(rows, token)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting and write everything pending; False if time ran out first."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.error("drain timed out", pending=self.pending)
            return False
        return True


def _as_dead_letter(row: Row, reason: str) -> Row:
    """A touchpoint row the store refused, as a dead-letter row keeping every field."""
    payload = orjson.dumps(dict(zip(TOUCHPOINT_COLUMNS, row, strict=True)), default=str).decode()
    values: dict[str, Any] = dict.fromkeys(DEAD_LETTER_COLUMNS, "")
    values.update(received_at=row[_RECEIVED], source=row[_SOURCE], endpoint="store", batch_index=-1,
                  message_id=row[0], customer_id=row[_CUSTOMER], anonymous_id=row[_ANONYMOUS],
                  reason=f"store refused: {reason}", payload=payload)
    return tuple(values[c] for c in DEAD_LETTER_COLUMNS)


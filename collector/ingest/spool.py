"""The write-ahead spool: accepted rows appended to segment files and fsynced before the 2xx.

Concurrent requests share one write and one fsync (group commit). A segment is sealed when it is full
or old enough and is then drained into ClickHouse by the batcher, which removes it only after its
inserts succeeded; on start, segments left by a previous process are replayed first.

Each segment holds, per table, a JSONCompactEachRowWithNames body (a line of column names, then one JSON
array per row), so draining a segment is a raw insert of the file's bytes with a token derived from the
segment's name, and a segment written before a schema change still inserts by name. This module owns that
format: ``encode_rows`` and ``header_line`` write it, ``spooled_touchpoints`` reads it back.

A segment's identity links are kept in memory only: they are derived from its touchpoints, which are on disk,
so they cost no file and no fsync; a segment recovered after a crash derives them again (``recovered``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from collector.errors import SpoolFull, SpoolWriteFailed
from collector.store.schema import TABLE_COLUMNS, TOUCHPOINT_COLUMNS

__all__ = ["TABLES", "Segment", "Spool", "encode_rows", "header_line", "spooled_touchpoints"]

log = structlog.get_logger("reise.spool")

TABLES = ("touchpoints", "dead_letters", "identity_links")
# How long rows nobody waits for (the pixel's) may wait for others before their group write: one write, one
# fdatasync and two thread hand-offs per this many seconds at most, instead of per loop tick under load.
LINGER_SECONDS = 0.01
DERIVED = frozenset({"identity_links"})  # kept in memory only: derived from the touchpoints on disk
_SUFFIX = {"touchpoints": ".tp", "dead_letters": ".dl"}


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows as a JSONCompactEachRow body (one JSON array a line).

    Encoding in C (orjson) and parsing inside ClickHouse, which does not hold the GIL, keeps the
    writer thread from starving the event loop; clickhouse-connect's Python Native encoder cost
    several times more GIL time per row.
    """
    if not rows:
        return b""
    return b"\n".join(map(orjson.dumps, rows)) + b"\n"  # one join: no per-row concatenation


def header_line(table: str) -> bytes:
    """The column-names line that starts every encoded body of a table."""
    return orjson.dumps(list(TABLE_COLUMNS[table])) + b"\n"


def spooled_touchpoints(segments: Iterable[Segment]) -> Iterator[tuple[Any, ...]]:
    """The touchpoint rows held in segments, in TOUCHPOINT_COLUMNS order (columns a segment lacks are '')."""
    for segment in segments:
        header, *lines = segment.read("touchpoints").splitlines() or [b"[]"]
        names = orjson.loads(header)
        for line in lines:
            try:
                decoded = orjson.loads(line) if line else None
            except orjson.JSONDecodeError:  # a damaged line: the store refuses it and it is parked on insert
                log.warning("spooled row is not JSON", segment=segment.name, line=line[:200].decode("utf-8", "replace"))
                continue
            if isinstance(decoded, list):
                values = dict(zip(names, decoded, strict=False))
                yield tuple(values.get(c, "") for c in TOUCHPOINT_COLUMNS)


@dataclass
class Segment:
    """One spool segment: rows per table, on disk (directory set) or in memory."""

    name: str
    directory: Path | None
    rows: int = 0
    size: int = 0
    opened: float = field(default_factory=time.monotonic)
    sealed_at: float = 0.0  # time.monotonic() when sealed (0: still open, or recovered)
    buffers: dict[str, list[bytes]] = field(default_factory=lambda: {t: [] for t in TABLES})
    recovered: bool = False  # left by a previous process: its derived tables are gone with it
    files: dict[str, int] = field(default_factory=dict)

    def path(self, table: str) -> Path:
        """The file holding this segment's rows for a table."""
        assert self.directory is not None
        return self.directory / f"{self.name}{_SUFFIX[table]}"

    def append(self, table: str, data: bytes, *, sync: bool) -> None:
        """Append encoded rows (newline-terminated) for a table; fdatasync when asked."""
        if not data:
            return
        if self.directory is None or table in DERIVED:
            if not self.buffers[table]:
                self.buffers[table].append(header_line(table))
            self.buffers[table].append(data)
            return
        fd = self.files.get(table)
        if fd is None:
            fd = os.open(self.path(table), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.files[table] = fd
            if os.fstat(fd).st_size == 0:
                data = header_line(table) + data
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fdatasync(fd)  # the data and the file's new size; a third of fsync's cost on ext4

    def close(self) -> None:
        """Close the segment's files (it stays on disk until removed)."""
        for fd in self.files.values():
            os.close(fd)
        self.files.clear()

    def read(self, table: str) -> bytes:
        """The rows of a table as one JSONCompactEachRowWithNames body (empty when there are none)."""
        if self.directory is None or table in DERIVED:
            return b"".join(self.buffers[table])
        path = self.path(table)
        return path.read_bytes() if path.exists() else b""

    def remove(self) -> None:
        """Delete the segment after its rows are safely in the store."""
        self.close()
        self.buffers = {t: [] for t in TABLES}
        if self.directory is None:
            return
        for table in _SUFFIX:
            self.path(table).unlink(missing_ok=True)

    def token(self, table: str) -> str:
        """The insert_deduplication_token of this segment's rows for a table: stable across replays."""
        return f"reise-{self.name}-{table}"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _new_name() -> str:
    """A segment name that sorts by creation time and never repeats across restarts."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


class Spool:
    """Segments on disk (or in memory, when durability is switched off) with group-committed appends."""

    def __init__(
        self,
        *,
        directory: Path | None,
        io: ThreadPoolExecutor,
        segment_rows: int,
        max_bytes: int,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.directory = directory
        self.linger = linger
        self.durable = directory is not None
        self.segment_rows = segment_rows
        self.max_bytes = max_bytes
        self._io = io
        self._active: Segment | None = None
        self.sealed: deque[Segment] = deque()
        self.sealed_ready = asyncio.Event()
        self._pending: dict[str, list[bytes]] = {t: [] for t in TABLES}
        self._pending_rows = 0
        self._group: asyncio.Future[None] | None = None
        self._urgent = False  # someone waits for the queued group: write it without lingering
        self._hurry: asyncio.Future[None] | None = None  # ends the flusher's lingering early
        self.group_writes = 0  # group writes so far
        self._flusher: asyncio.Task[None] | None = None
        self.bytes = 0  # bytes in segments not yet drained
        self.rows = 0  # rows in segments not yet drained
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    # ---- recovery -------------------------------------------------------------------------------

    def recover(self) -> list[Segment]:
        """Seal the segments a previous process left (dropping a torn last line) and queue them first."""
        if self.directory is None:
            return []
        names = sorted({p.name.rsplit(".", 1)[0] for p in self.directory.iterdir() if p.suffix in _SUFFIX.values()})
        recovered = []
        for name in names:
            segment = Segment(name=name, directory=self.directory, recovered=True)
            for table in _SUFFIX:
                path = segment.path(table)
                if path.exists():
                    data = path.read_bytes()
                    whole = data[: data.rfind(b"\n") + 1]
                    if len(whole) != len(data):
                        log.warning("dropping a torn line never acknowledged", segment=name, table=table,
                                    bytes=len(data) - len(whole))
                        with path.open("r+b") as handle:
                            handle.truncate(len(whole))
                    segment.size += len(whole)
                    segment.rows += max(whole.count(b"\n") - 1, 0)  # the first line names the columns
            recovered.append(segment)
            self._account(segment)
        if recovered:
            log.info("replaying spool segments", segments=len(recovered), rows=self.rows)
            self.sealed_ready.set()
        return recovered

    def _account(self, segment: Segment) -> None:
        self.sealed.append(segment)
        self.bytes += segment.size
        self.rows += segment.rows

    # ---- appending --------------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """True at the disk limit: nothing more is accepted until the store catches up."""
        return self.bytes >= self.max_bytes

    def check_capacity(self) -> None:
        """Raise SpoolFull when the spool is at its disk limit."""
        if self.full:
            raise SpoolFull("spool is full while the store catches up; retry later")

    async def append(self, tables: dict[str, bytes], rows: int) -> None:
        """Append encoded rows and return once they are durable (one fsync shared by concurrent callers)."""
        await asyncio.shield(self.enqueue(tables, rows))

    def enqueue(self, tables: dict[str, bytes], rows: int, *, linger: bool = False) -> asyncio.Future[None]:
        """Queue encoded rows for the next group write; the future is done once they are durable.

        It fails with SpoolWriteFailed when the write fails. With ``linger`` (rows nobody waits for), the group
        is written up to ``self.linger`` seconds later, so the rows of many loop ticks share one write; without
        it (the default), the group is written as soon as the write before it is done.
        """
        for table, data in tables.items():
            if data:
                self._pending[table].append(data)
        self._pending_rows += rows
        if not linger:
            self._urgent = True
            if self._hurry is not None:
                _resolve(self._hurry)
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
        group = self._group
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_groups())
        return group

    @property
    def queued_rows(self) -> int:
        """Rows queued for the next group write (not yet being written)."""
        return self._pending_rows

    @property
    def writing(self) -> bool:
        """True while a group write is queued or under way."""
        return self._group is not None or (self._flusher is not None and not self._flusher.done())

    async def written(self) -> None:
        """Wait until the rows queued so far are written (back-pressure for callers that do not wait)."""
        if self._group is not None:
            await asyncio.wait([self._group])

    async def _flush_groups(self) -> None:
        loop = asyncio.get_running_loop()
        while self._group is not None:
            if not self._urgent and self.linger > 0:
                await self._linger(loop)
            group, self._group = self._group, None
            self._urgent = False
            self.group_writes += 1
            pending, self._pending = self._pending, {t: [] for t in TABLES}
            rows, self._pending_rows = self._pending_rows, 0
            data = {t: b"".join(chunks) for t, chunks in pending.items()}
            try:
                if self.durable:
                    sealed = await loop.run_in_executor(self._io, self._write, data, rows)
                else:  # nothing to wait for in memory: no thread hop
                    sealed = self._write(data, rows)
            except OSError as exc:
                log.error("spool write failed", error=str(exc))
                group.set_exception(SpoolWriteFailed("spool write failed; retry later"))
                continue
            size = sum(map(len, data.values()))
            self.bytes += size
            self.rows += rows
            for segment in sealed:
                self.sealed.append(segment)
                self.sealed_ready.set()
            group.set_result(None)

    async def _linger(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait ``self.linger`` seconds, or until rows someone waits for are queued."""
        hurry = self._hurry = loop.create_future()
        timer = loop.call_later(self.linger, _resolve, hurry)
        try:
            await hurry
        finally:
            timer.cancel()
            self._hurry = None

    def _write(self, data: dict[str, bytes], rows: int) -> list[Segment]:
        """In the spool thread: write (and fsync) one group; seal the active segment once it is full."""
        segment = self._active
        if segment is None:
            segment = self._active = Segment(name=_new_name(), directory=self.directory)
        for table, chunk in data.items():
            segment.append(table, chunk, sync=self.durable)
        segment.rows += rows
        segment.size += sum(map(len, data.values()))
        if segment.rows >= self.segment_rows:
            return self._seal()
        return []

    def _seal(self) -> list[Segment]:
        segment, self._active = self._active, None
        if segment is None or not segment.rows:
            return []
        segment.close()
        segment.sealed_at = time.monotonic()
        return [segment]

    async def seal_if_older(self, age: float) -> None:
        """Seal the active segment when it holds rows older than ``age`` seconds (or any rows, age 0)."""
        segment = self._active
        if segment is None or not segment.rows or time.monotonic() - segment.opened < age:
            return
        loop = asyncio.get_running_loop()
        if self.durable:
            sealed_now = await loop.run_in_executor(self._io, self._seal_if_same, segment)
        else:
            sealed_now = self._seal_if_same(segment)
        for sealed in sealed_now:
            self.sealed.append(sealed)
            self.sealed_ready.set()

    def _seal_if_same(self, segment: Segment) -> list[Segment]:
        return self._seal() if self._active is segment else []

    @property
    def active_age(self) -> float:
        """Seconds since the active segment got its first rows (0 when there is none)."""
        return time.monotonic() - self._active.opened if self._active is not None and self._active.rows else 0.0

    def done(self, segment: Segment) -> None:
        """Remove a drained segment and release its share of the disk limit."""
        segment.remove()
        self.sealed.remove(segment)
        self.bytes -= segment.size
        self.rows -= segment.rows

    def segments(self) -> Iterator[Segment]:
        """The sealed segments, oldest first."""
        return iter(list(self.sealed))

    def close(self) -> None:
        """Close the active segment's files (its rows stay on disk for the next start)."""
        if self._active is not None:
            self._active.close()

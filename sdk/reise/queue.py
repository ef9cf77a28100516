"""Event queues between the caller's threads and the background sender.

Events are kept serialised (JSON bytes), never as dicts, so 100k queued events take
tens of megabytes, not hundreds. Two implementations share one interface:

* ``MemoryQueue``: a deque guarded by one lock and one condition.
* ``SqliteSpool``: durable mode; a row per event in a sqlite3 file (WAL), written in
  the caller's thread so that once ``track()`` returns the event survives a crash.

Positions: every accepted event gets an increasing position; the sender reports the
highest position it has finished (delivered, rejected or given up); ``flush`` waits
for the position current at its call.
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
import time
from typing import get_args

from reise.options import Overflow, QueueLimits

__all__ = ["OVERFLOW_POLICIES", "Batch", "EventQueue", "MemoryQueue", "Overflow", "SqliteSpool"]

log = logging.getLogger("reise")

OVERFLOW_POLICIES: tuple[str, ...] = get_args(Overflow)


class Batch:
    """Events taken by the sender: their bytes and the position of the last one."""

    __slots__ = ("events", "ids", "last_pos", "nbytes")

    def __init__(self, events: list[bytes], last_pos: int, ids: list[int] | None = None) -> None:
        self.events = events
        self.last_pos = last_pos
        self.ids = ids
        self.nbytes = sum(len(e) for e in events)

    def __len__(self) -> int:
        return len(self.events)


class EventQueue:
    """Shared logic: condition, counters, wake-ups, overflow accounting, waiting."""

    durable = False

    def __init__(self, *, max_events: int, max_bytes: int, limits: QueueLimits) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.overflow = limits.overflow
        self.block_timeout = limits.block_timeout
        self.flush_at = limits.flush_at
        self.flush_bytes = limits.flush_bytes
        self._reset_sync()
        self.count = 0  # events queued, not yet taken by the sender
        self.inflight = 0  # events taken by the sender, not yet finished
        self.nbytes = 0
        self.pos_in = 0  # position of the newest accepted event
        self.pos_done = 0  # highest position the sender has finished
        self.flush_requested = False
        self.stopping = False
        self.dropped_total = 0
        self._incident_dropped = 0  # drops in the current overflow incident
        self._incident_start = 0.0
        self.pending_drop_reports: list[tuple[int, str]] = []
        self._notes: list[str] = []  # log lines made under the lock, emitted after it

    def _reset_sync(self) -> None:
        """(Re)create the lock and conditions (also in a forked child)."""
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)  # the sender waits on it
        self.done_cond = threading.Condition(self.lock)  # flush() and block waiters

    # -- caller side -------------------------------------------------------

    def put(self, data: bytes) -> bool:
        """Queue one serialised event; return False when the overflow policy dropped it."""
        try:
            return self._put(data)
        finally:
            if self._notes:
                self.emit_notes()

    def emit_notes(self) -> None:
        """Log what happened under the lock, outside it (a log handler may track events)."""
        with self.lock:
            notes, self._notes = self._notes, []
        for note in notes:
            log.warning("reise: %s", note)

    def _put(self, data: bytes) -> bool:
        n = len(data)
        with self.lock:
            if self.count >= self.max_events or self.nbytes + n > self.max_bytes:
                if not self._make_room(n):
                    return False
            elif self._incident_dropped:
                self._end_incident()
            self._append(data)
            self.count += 1
            self.nbytes += n
            c = self.count
            if c == 1 or c == self.flush_at or (
                self.nbytes >= self.flush_bytes and self.nbytes - n < self.flush_bytes
            ):
                self.cond.notify()
        return True

    def _make_room(self, n: int) -> bool:
        """Apply the overflow policy with the lock held; True if the event may go in."""
        if self.overflow == "block":
            deadline = time.monotonic() + self.block_timeout
            while self.count >= self.max_events or self.nbytes + n > self.max_bytes:
                left = deadline - time.monotonic()
                if left <= 0 or self.stopping:
                    self._note_drop(1, "queue full and block_timeout passed")
                    return False
                self.done_cond.wait(left)
            return True
        if self.overflow == "drop_oldest" and self.count > 0:
            while self.count > 0 and (
                self.count >= self.max_events or self.nbytes + n > self.max_bytes
            ):
                self.nbytes -= self._drop_oldest()
                self.count -= 1
                self._note_drop(1, "queue full: dropped the oldest queued event")
            return self.count < self.max_events and self.nbytes + n <= self.max_bytes
        self._note_drop(1, "queue full: dropped new events")
        return False

    def _note_drop(self, k: int, reason: str) -> None:
        """Count dropped events; warn once at the start of an incident (lock held)."""
        self.dropped_total += k
        if not self._incident_dropped:
            self._incident_start = time.monotonic()
            self._notes.append(f"queue full ({self.count} events, {self.nbytes} bytes); policy "
                               f"{self.overflow}: {reason} until there is room")
        self._incident_dropped += k

    def end_incident(self) -> None:
        """Close an overflow incident still open (at shutdown) so that it is reported."""
        with self.lock:
            if self._incident_dropped:
                self._end_incident()
        self.emit_notes()

    def _end_incident(self) -> None:
        """Summarise a finished overflow incident once (lock held)."""
        k = self._incident_dropped
        secs = time.monotonic() - self._incident_start
        self._incident_dropped = 0
        reason = f"queue overflow ({self.overflow}): {k} events dropped over {secs:.1f}s"
        self._notes.append(reason)
        self.pending_drop_reports.append((k, reason))
        self.cond.notify()

    # -- sender side -------------------------------------------------------

    def take(self, max_events: int, max_bytes: int, interval: float) -> Batch | None:
        """Wait for a batch (count, bytes or interval) and take it; None when stopping."""
        with self.lock:
            while True:
                if self.count == 0:
                    if self.flush_requested:
                        self.flush_requested = False
                    if self.stopping:
                        return None
                    if self.pending_drop_reports:
                        return Batch([], self.pos_done)
                    self.cond.wait()
                    continue
                if not (self.count >= self.flush_at or self.nbytes >= self.flush_bytes
                        or self.flush_requested or self.stopping):
                    deadline = time.monotonic() + interval
                    while not (self.count >= self.flush_at or self.nbytes >= self.flush_bytes
                               or self.flush_requested or self.stopping):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self.cond.wait(left)
                batch = self._take(max_events, max_bytes)
                if batch is None:
                    continue
                # max(): a spool shared with a forked process can hold rows we never counted
                self.count = max(0, self.count - len(batch))
                self.nbytes = max(0, self.nbytes - batch.nbytes)
                self.inflight = len(batch)
                if self.overflow == "block":
                    self.done_cond.notify_all()  # room for callers waiting in put()
                return batch

    def finish(self, batch: Batch) -> None:
        """Mark a batch finished (delivered, rejected or given up) and wake waiters."""
        self._ack(batch)
        with self.lock:
            if batch.last_pos > self.pos_done:
                self.pos_done = batch.last_pos
            self.inflight = 0
            self.done_cond.notify_all()

    def request_flush(self) -> int:
        """Ask the sender to send now; return the position to wait for."""
        with self.lock:
            self.flush_requested = True
            self.cond.notify()
            return self.pos_in

    def wait_done(self, pos: int, timeout: float | None) -> bool:
        """Wait until every event up to ``pos`` is finished; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while self.pos_done < pos:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.done_cond.wait(0.5 if left is None else min(left, 0.5))
                if self.pos_done < pos and self.inflight == 0:
                    self._settle(pos)
                if self.count:
                    self.flush_requested = True
                    self.cond.notify()
            return True

    def stop(self) -> None:
        """Tell the sender to stop after its current batch."""
        with self.lock:
            self.stopping = True
            self.cond.notify_all()
            self.done_cond.notify_all()

    def undelivered(self) -> int:
        """Events not delivered yet: queued, plus the batch the sender holds."""
        return self.count + self.inflight

    # -- storage hooks -----------------------------------------------------

    def _settle(self, pos: int) -> None:
        """Advance ``pos_done`` if events up to ``pos`` are gone by other means (lock held)."""

    def _append(self, data: bytes) -> None:
        raise NotImplementedError

    def _drop_oldest(self) -> int:
        raise NotImplementedError

    def _take(self, max_events: int, max_bytes: int) -> Batch | None:
        raise NotImplementedError

    def _ack(self, batch: Batch) -> None:
        raise NotImplementedError

    def after_fork_child(self) -> None:
        """Reset after ``fork()`` in the child: fresh locks, no inherited events."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (the sqlite connection)."""


class MemoryQueue(EventQueue):
    """In-memory FIFO of serialised events."""

    def __init__(self, *, max_events: int, max_bytes: int, limits: QueueLimits) -> None:
        super().__init__(max_events=max_events, max_bytes=max_bytes, limits=limits)
        self._q: collections.deque[bytes] = collections.deque()

    def _append(self, data: bytes) -> None:
        self._q.append(data)
        self.pos_in += 1

    def _drop_oldest(self) -> int:
        return len(self._q.popleft())

    def _take(self, max_events: int, max_bytes: int) -> Batch | None:
        q = self._q
        out: list[bytes] = []
        size = 0
        popleft = q.popleft
        while q and len(out) < max_events:
            n = len(q[0])
            if out and size + n > max_bytes:
                break
            out.append(popleft())
            size += n + 1
        # The head of the queue has position pos_in - count + 1.
        return Batch(out, self.pos_in - self.count + len(out))

    def after_fork_child(self) -> None:
        """The parent owns (and sends) the events queued before the fork."""
        self._reset_sync()
        self._q = collections.deque()
        self.count = self.nbytes = self.inflight = 0
        self.pos_in = self.pos_done = 0
        self.flush_requested = self.stopping = False
        self._incident_dropped = 0
        self.pending_drop_reports = []
        self._notes = []

    def _ack(self, batch: Batch) -> None:
        pass


_abandoned: list[sqlite3.Connection] = []  # connections inherited through fork: never close


class SqliteSpool(EventQueue):
    """Durable queue: one sqlite3 row per event, deleted when the collector answered."""

    durable = True

    def __init__(self, path: str, *, max_events: int, max_bytes: int, limits: QueueLimits,
                 sync: str = "normal") -> None:
        super().__init__(max_events=max_events, max_bytes=max_bytes, limits=limits)
        self.path = os.fspath(path)
        self.sync = sync
        self._open()
        self._last_taken = 0
        row = self._db.execute("SELECT count(*), coalesce(sum(length(data)), 0), "
                               "coalesce(min(id), 1) - 1, coalesce(max(id), 0) FROM events"
                               ).fetchone()
        self.count, self.nbytes, self.pos_done, self.pos_in = row
        self._last_taken = self.pos_done
        if self.count:
            log.info("reise: spool %s holds %d undelivered events from an earlier run",
                     self.path, self.count)

    def _open(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                             timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        db.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "data BLOB NOT NULL)")
        self._db = db

    def _settle(self, pos: int) -> None:
        """Rows up to ``pos`` deleted by another process sharing the spool count as done."""
        try:
            row = self._db.execute("SELECT 1 FROM events WHERE id <= ? LIMIT 1", (pos,)).fetchone()
        except sqlite3.Error:
            return
        if row is None and pos > self.pos_done:
            self.pos_done = pos

    def _append(self, data: bytes) -> None:
        cur = self._db.execute("INSERT INTO events(data) VALUES (?)", (data,))
        self.pos_in = cur.lastrowid or self.pos_in + 1

    def _put(self, data: bytes) -> bool:
        """Write one event to the spool; a disk error drops it (counted and logged)."""
        try:
            return super()._put(data)
        except sqlite3.Error as exc:
            with self.lock:
                self._note_drop(1, f"spool write failed: {exc}")
            return False

    def _drop_oldest(self) -> int:
        row = self._db.execute("SELECT id, length(data) FROM events WHERE id > ? "
                               "ORDER BY id LIMIT 1", (self._last_taken,)).fetchone()
        if row is None:
            return 0
        self._db.execute("DELETE FROM events WHERE id = ?", (row[0],))
        return int(row[1])

    def _take(self, max_events: int, max_bytes: int) -> Batch | None:
        rows = self._db.execute("SELECT id, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                (self._last_taken, max_events)).fetchall()
        if not rows:
            # Our count drifted: another process sharing the file delivered the rows.
            self.count = 0
            self.nbytes = 0
            self.pos_done = max(self.pos_done, self.pos_in)
            self.done_cond.notify_all()
            return None
        out: list[bytes] = []
        ids: list[int] = []
        size = 0
        for rid, data in rows:
            if out and size + len(data) > max_bytes:
                break
            out.append(bytes(data))
            ids.append(rid)
            size += len(data) + 1
        self._last_taken = ids[-1]
        return Batch(out, ids[-1], ids)

    def _ack(self, batch: Batch) -> None:
        if not batch.ids:
            return
        try:
            with self.lock:
                self._db.execute("DELETE FROM events WHERE id BETWEEN ? AND ?",
                                 (batch.ids[0], batch.ids[-1]))
        except sqlite3.Error as exc:  # delivered anyway; a re-send is deduplicated
            log.warning("reise: could not delete delivered events from the spool: %s", exc)

    def after_fork_child(self) -> None:
        """Reopen the sqlite file in the child (a connection must not cross fork)."""
        _abandoned.append(self._db)
        self._reset_sync()
        self.flush_requested = self.stopping = False
        self._incident_dropped = 0
        self.pending_drop_reports = []
        self._notes = []
        self._open()
        row = self._db.execute("SELECT count(*), coalesce(sum(length(data)), 0), "
                               "coalesce(max(id), 0) FROM events WHERE id > ?",
                               (self._last_taken,)).fetchone()
        self.count, self.nbytes, self.pos_in = row
        self.inflight = 0
        self.pos_in = max(self.pos_in, self._last_taken)
        self.pos_done = self._last_taken

    def close(self) -> None:
        """Close the sqlite connection; undelivered rows stay for the next run."""
        try:
            with self.lock:
                self._db.close()
        except sqlite3.Error:  # pragma: no cover
            pass

"""The durable outbox: a SQLite database beside the spool (``<spool>/triggers.sqlite3``).

It holds, in one file written in transactions (write-ahead log):
- ``outbox``: every transition to deliver, unique by idempotency key, with its state (pending, delivered,
  parked), attempts and next due time;
- ``marks``: what was last seen of each customer key (collector.triggers.detect.Marks);
- ``records``: rows waiting to be copied to ClickHouse (``trigger_attempts``, ``segment_changes``).

A segment's transitions, its segment changes and the customers' new marks are committed in one transaction
(synchronous=FULL), so a SIGKILL either loses all of them (the segment is replayed from the spool and they
are detected again, with the same keys) or none. Delivery results are committed in small groups; a result
lost to a SIGKILL means the delivery is repeated, with the same idempotency key.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collector.triggers.detect import Marks, reset_marks

__all__ = ["Item", "Outbox", "Result"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    trigger TEXT NOT NULL,
    destination TEXT NOT NULL,
    customer TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
CREATE TABLE IF NOT EXISTS marks (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (segment TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (segment, key));
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Item:
    """One transition in the outbox, as the deliverer holds it."""

    seq: int
    key: str
    trigger: str
    destination: str
    customer: str
    body: bytes
    attempts: int
    due: float  # wall-clock time it may be attempted
    queued_at: float


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt: the item's new state, and the attempt's record for ClickHouse."""

    seq: int
    state: str  # pending (retry later), delivered, parked
    attempts: int
    due: float
    error: str
    record: dict[str, Any]


class Outbox:
    """The SQLite outbox; one connection per thread (the writer thread detects, the triggers thread delivers)."""

    def __init__(self, path: Path | None) -> None:
        self._path = str(path) if path is not None else f"file:reise-outbox-{id(self)}?mode=memory&cache=shared"
        self._uri = path is None
        self._local = threading.local()
        self._keep = self._connect()  # holds a memory database open; creates the schema
        self._keep.executescript(SCHEMA)
        # names this database in the insert tokens of its records: a new outbox never repeats an old one's token
        self._keep.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('id', ?)", (secrets.token_hex(8),))
        self.id = str(self._keep.execute("SELECT value FROM meta WHERE name = 'id'").fetchone()[0])

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, uri=self._uri, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def marks(self, keys: Iterable[str]) -> dict[str, Marks]:
        """The stored marks of these customer keys (keys without marks are absent)."""
        found: dict[str, Marks] = {}
        wanted = sorted(set(keys))
        conn = self._conn()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = conn.execute(f"SELECT key, data FROM marks WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((key, Marks.from_json(orjson.loads(data))) for key, data in rows)
        return found

    def commit_detection(self, items: Sequence[tuple[str, str, str, str, bytes]], marks: dict[str, Marks],
                         records: Sequence[tuple[str, dict[str, Any]]],
                         members: Sequence[tuple[str, str, bool]]) -> list[Item]:
        """In one transaction: queue transitions (key, trigger, destination, customer, body) unless their key
        is known, store marks, queue ClickHouse records, update segment members; the items queued."""
        conn = self._conn()
        now = time.time()
        queued: list[Item] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key, trigger, destination, customer, body in items:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO outbox (key, trigger, destination, customer, body, due, queued_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, trigger, destination, customer, body, now, now))
                if cursor.rowcount:
                    queued.append(Item(int(cursor.lastrowid or 0), key, trigger, destination, customer, body, 0, now,
                                       now))
            conn.executemany("INSERT OR REPLACE INTO marks (key, data) VALUES (?, ?)",
                             [(k, orjson.dumps(m.to_json()).decode()) for k, m in marks.items()])
            conn.executemany("INSERT INTO records (tbl, row) VALUES (?, ?)",
                             [(table, orjson.dumps(row).decode()) for table, row in records])
            conn.executemany("INSERT OR IGNORE INTO members (segment, key) VALUES (?, ?)",
                             [(s, k) for s, k, member in members if member])
            conn.executemany("DELETE FROM members WHERE segment = ? AND key = ?",
                             [(s, k) for s, k, member in members if not member])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return queued

    def pending(self) -> list[Item]:
        """Every item still to deliver, in order."""
        rows = self._conn().execute(
            "SELECT seq, key, trigger, destination, customer, body, attempts, due, queued_at FROM outbox "
            "WHERE state = 'pending' ORDER BY seq")
        return [Item(*row) for row in rows]

    def record_results(self, results: Sequence[Result]) -> None:
        """Store attempts' outcomes and their records, in one transaction."""
        if not results:
            return
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # an item forgotten meanwhile (``forget``) is gone: its attempts are not recorded either
            present = self._present(conn, [r.seq for r in results])
            results = [r for r in results if r.seq in present]
            conn.executemany(
                "UPDATE outbox SET state = ?, attempts = ?, due = ?, last_error = ?, done_at = ? WHERE seq = ?",
                [(r.state, r.attempts, r.due, r.error, now if r.state != "pending" else None, r.seq)
                 for r in results])
            conn.executemany("INSERT INTO records (tbl, row) VALUES ('trigger_attempts', ?)",
                             [(orjson.dumps(r.record).decode(),) for r in results])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _present(conn: sqlite3.Connection, seqs: Sequence[int]) -> set[int]:
        """Which of these outbox seqs still exist."""
        found: set[int] = set()
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            found.update(int(r[0]) for r in conn.execute(
                f"SELECT seq FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def forget(self, ids: Sequence[str]) -> dict[str, int]:
        """Delete everything of these customer ids, in one transaction: their transitions (whatever their state),
        marks, segment memberships and the records not yet copied to ClickHouse; how many rows of each."""
        conn = self._conn()
        wanted = sorted(set(ids))
        deleted = {"trigger_outbox": 0, "trigger_marks": 0, "trigger_members": 0, "trigger_records": 0}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for name, sql in (("trigger_outbox", f"DELETE FROM outbox WHERE customer IN ({marks})"),
                                  ("trigger_marks", f"DELETE FROM marks WHERE key IN ({marks})"),
                                  ("trigger_members", f"DELETE FROM members WHERE key IN ({marks})"),
                                  ("trigger_records", "DELETE FROM records WHERE json_extract(row, '$.customer_id') "
                                                      f"IN ({marks})")):
                    deleted[name] += int(conn.execute(sql, chunk).rowcount)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return deleted

    def reset_marks(self, ids: Sequence[str], keeper: str) -> None:
        """After an unlink split a customer: a new epoch of marks for all its ids (detect.reset_marks)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh = reset_marks(self.marks(ids), ids, keeper)
            conn.executemany("INSERT OR REPLACE INTO marks (key, data) VALUES (?, ?)",
                             [(k, orjson.dumps(m.to_json()).decode()) for k, m in fresh.items()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def records(self, limit: int = 20_000) -> tuple[int, int, dict[str, list[dict[str, Any]]]]:
        """The oldest records waiting for ClickHouse: first and last seq, rows by table."""
        rows = self._conn().execute("SELECT seq, tbl, row FROM records ORDER BY seq LIMIT ?", (limit,)).fetchall()
        by_table: dict[str, list[dict[str, Any]]] = {}
        for _seq, table, row in rows:
            by_table.setdefault(table, []).append(orjson.loads(row))
        return (rows[0][0], rows[-1][0], by_table) if rows else (0, 0, {})

    def drop_records(self, last: int) -> None:
        """Forget records up to ``last`` (they are in ClickHouse)."""
        self._conn().execute("DELETE FROM records WHERE seq <= ?", (last,))

    def parked(self, trigger: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        """Parked deliveries (optionally of one trigger), oldest first."""
        rows = self._conn().execute(
            "SELECT seq, trigger, key, customer, attempts, last_error, queued_at, done_at FROM outbox "
            "WHERE state = 'parked' AND (? = '' OR trigger = ?) ORDER BY seq LIMIT ?", (trigger, trigger, limit))
        names = ("seq", "trigger", "idempotency_key", "customer_id", "attempts", "last_error", "queued_at",
                 "parked_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def unpark(self, trigger: str = "", key: str = "") -> list[Item]:
        """Make parked deliveries pending again (attempts from zero); the items to hand to the deliverer."""
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            where = "state = 'parked' AND (? = '' OR trigger = ?) AND (? = '' OR key = ?)"
            params = (trigger, trigger, key, key)
            rows = conn.execute(
                f"SELECT seq, key, trigger, destination, customer, body, 0, ?, queued_at FROM outbox WHERE {where} "
                "ORDER BY seq", (now, *params)).fetchall()
            conn.execute(f"UPDATE outbox SET state = 'pending', attempts = 0, due = ? WHERE {where}", (now, *params))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return [Item(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Items by state."""
        rows = self._conn().execute("SELECT state, count(*) FROM outbox GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def parked_count(self) -> int:
        """How many deliveries are parked (read through the state index: the delivered ones are not counted)."""
        return int(self._conn().execute("SELECT count(*) FROM outbox WHERE state = 'parked'").fetchone()[0])

    def members(self, segments: Sequence[str]) -> list[str]:
        """Customer keys currently in any of these segments."""
        if not segments:
            return []
        rows = self._conn().execute(
            f"SELECT DISTINCT key FROM members WHERE segment IN ({','.join('?' * len(segments))})", list(segments))
        return [str(r[0]) for r in rows]

    def meta(self, name: str) -> str | None:
        """A stored setting of the engine (e.g. the last scan's time)."""
        row = self._conn().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        """Store a setting of the engine."""
        self._conn().execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def prune(self, older_than: float) -> int:
        """Delete delivered items finished before ``older_than`` (a wall-clock time); how many."""
        cursor = self._conn().execute("DELETE FROM outbox WHERE state = 'delivered' AND done_at < ?", (older_than,))
        return int(cursor.rowcount)

"""The batcher: accepts encoded rows into the spool and drains sealed segments into ClickHouse."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import structlog

from collector.errors import ShuttingDown, StoreError, StoreUnavailable
from collector.identity.guards import LinkPolicy
from collector.identity.plans import Plans, planned
from collector.identity.resolver import apply_resolution, decode_links, purge_merged, refused_dead_letters
from collector.ingest.bisect import Journals, Parked, isolate
from collector.ingest.dedup import Dedup, RecentIds
from collector.ingest.protocol import Row
from collector.ingest.spool import Segment, Spool, encode_rows, header_line, spooled_touchpoints
from collector.metrics import Metrics
from collector.store.clickhouse import Store, heredoc_json
from collector.store.decisions import error_code
from collector.store.migrate import apply_migrations
from collector.store.retention import Retention
from collector.store.schema import DEAD_LETTER_COLUMNS

__all__ = ["Batcher", "BatcherStats"]

log = structlog.get_logger("reise.batcher")

T = TypeVar("T")
MAX_BACKOFF = 30.0
RESTART_BACKOFF = 0.5  # first wait before a dead drain loop is restarted (doubling up to MAX_BACKOFF)
# After a refusal: were the body's touchpoints written anyway? ClickHouse writes a table before the views that
# read it, so a view that throws leaves the block in the table: inserting parts of it again would double it.
WRITTEN_SQL = """
WITH wanted AS (SELECT arrayJoin(rows) AS r FROM format(JSONCompactEachRow, 'rows Array(Tuple(String, Int64))', $rows$))
SELECT count() FROM touchpoints
WHERE (message_id, toUnixTimestamp64Milli(received_at)) IN (SELECT r.1, r.2 FROM wanted)
"""
# A busy writer lets the next segment grow: it is sealed once it is this many times as old as the last segment's
# write took (the writer busy about a third of the time at most), within REISE_FLUSH_INTERVAL_MAX. Each segment
# costs a fixed amount however small (its inserts, the identity resolver's statements, the parts it adds and their
# merges), so under load fewer, larger segments leave more CPU to accepting events (bench/README.md, ingest.py).
BUSY_FACTOR = 3.0
RESOLVED_PAIRS = 500_000  # identity links (id pairs) remembered as resolved, so repeats skip the resolver


@dataclass
class BatcherStats:
    """What /readyz reports (the metrics carry the rest)."""

    inserted: int = 0
    store_ok: bool = False
    last_error: str = ""
    retrying_since: float | None = None  # wall-clock time the current run of retries began
    retries: int = 0  # retries in the current run (0 once a write succeeds)
    drain_error: str = ""  # why the drain loop died, while it is down ("" while it runs)
    drain_restarts: int = 0
    parked_rows: int = 0  # rows the store refused as bad data, kept as dead letters


class Batcher:
    """Rows go into the durable spool before the 2xx; a loop writes sealed segments in idempotent inserts."""

    def __init__(
        self,
        *,
        store: Store,
        writer: ThreadPoolExecutor,
        spool: Spool,
        dedup: Dedup,
        flush_interval: float,
        flush_interval_max: float | None = None,
        metrics: Metrics,
        links: LinkPolicy,
        purge_interval: float = 300.0,
        cluster: str = "",
        retention: Retention | None = None,
    ) -> None:
        self._store = store
        self._links = links
        self._resolved = RecentIds(RESOLVED_PAIRS)
        self._purge_interval = purge_interval
        self._purged_at = time.monotonic()
        self._writer = writer
        self.spool = spool
        self._dedup = dedup
        self.flush_interval = flush_interval
        # None: never stretched; 0: up to twice the interval (the default setting)
        self.flush_interval_max = flush_interval if flush_interval_max is None else (
            flush_interval_max or 2 * flush_interval)
        self.work_seconds = 0.0  # how long the last segment's write took (Batcher.seal_age)
        self._metrics = metrics
        self._cluster = cluster or None
        self._retention = retention  # TTLs brought to the settings after the migrations (store.retention)
        self._closing = False
        self._store_ready = False
        self.paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.stats = BatcherStats()
        self._journals = Journals(spool.directory)  # parts of refused bodies already split (ingest.bisect)
        self._plans = Plans(spool.directory)  # identity plans begun, for a replay after a crash (identity.plans)
        # called on the writer thread once a segment is stored and its links resolved (collector.triggers)
        self.on_stored: Callable[[Segment, list[str]], object] | None = None

    @property
    def pending(self) -> int:
        """Rows accepted but not yet written to the store."""
        return self.spool.rows

    @property
    def accepting(self) -> bool:
        """True while requests are taken: not shutting down, and the spool has room."""
        return not self._closing and not self.spool.full

    def check_capacity(self) -> None:
        """Raise ShuttingDown while draining to stop, SpoolFull while the spool is at its disk limit."""
        if self._closing:
            raise ShuttingDown("collector is shutting down")
        self.spool.check_capacity()

    async def submit(self, rows: Sequence[Row], dead: Sequence[Row] = ()) -> None:
        """Append rows to the spool; returns once they are on disk (fsynced)."""
        if rows or dead:
            body = {"touchpoints": encode_rows(rows), "dead_letters": encode_rows(dead),
                    "identity_links": encode_rows(self._new_links(rows))}
            await self.spool.append(body, len(rows) + len(dead))

    def submit_nowait(self, rows: Sequence[Row], dead: Sequence[Row] = ()) -> asyncio.Future[None] | None:
        """Queue rows for the spool's next group write without waiting (None: nothing to queue).

        For answers that are the same whether or not the rows are kept (the pixel's GIF). The rows may wait up
        to Spool.linger (10 ms) for others to share their write. The future is done once they are on
        disk, or fails with SpoolWriteFailed.
        """
        if not rows and not dead:
            return None
        body = {"touchpoints": encode_rows(rows), "dead_letters": encode_rows(dead),
                "identity_links": encode_rows(self._links.links_in(rows))}
        return self.spool.enqueue(body, len(rows) + len(dead), linger=True)

    def pause(self, paused: bool) -> None:
        """Stop or resume writing to the store (accepting into the spool goes on)."""
        self.paused = paused
        if paused:
            self._resumed.clear()
        else:
            self._resumed.set()

    @property
    def seal_age(self) -> float:
        """How old the active segment may grow before it is sealed: REISE_FLUSH_INTERVAL while the writer keeps
        up easily; BUSY_FACTOR times the last segment's write under load, up to REISE_FLUSH_INTERVAL_MAX."""
        return max(self.flush_interval, min(BUSY_FACTOR * self.work_seconds, self.flush_interval_max))

    # ---- draining ---------------------------------------------------------------------------------

    async def supervise(self) -> None:
        """Run the drain loop until cancelled; when it dies, log why and restart it with backoff.

        While it is down ``stats.drain_error`` says why (``/readyz`` answers 503 with it) and the restarts
        are counted (``reise_drain_restarts_total``); the spool keeps accepting within its limit.
        """
        delay = RESTART_BACKOFF
        self._metrics.drain_up.set(1)
        while True:
            started = time.monotonic()
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an environment fault: never let the drain stop silently
                if time.monotonic() - started > 5 * MAX_BACKOFF:
                    delay = RESTART_BACKOFF  # it ran a good while: a new fault, start the backoff again
                self.stats.drain_error = f"{type(exc).__name__}: {exc}"[:500]
                self.stats.drain_restarts += 1
                self._metrics.drain_up.set(0)
                self._metrics.drain_restarts.inc()
                log.exception("drain loop died; restarting it", restart_in=delay, spooled_rows=self.spool.rows)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                self._metrics.drain_up.set(1)

    def _drain_healthy(self) -> None:
        """The drain loop got past the point where it died: no longer down."""
        if self.stats.drain_error:
            log.info("drain loop recovered", previous_error=self.stats.drain_error)
            self.stats.drain_error = ""

    async def run(self) -> None:
        """Drain loop: runs until cancelled, writing each sealed segment, oldest first."""
        while True:
            await self._resumed.wait()
            if not self.spool.sealed:
                self._drain_healthy()
                self.spool.sealed_ready.clear()
                age = self.seal_age
                wait = age - self.spool.active_age if self.spool.active_age else age
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.spool.sealed_ready.wait(), max(wait, 0.01))
                await self.spool.seal_if_older(0 if self._closing else self.seal_age)
                continue
            await self._ensure_store()
            segment = self.spool.sealed[0]
            started = time.monotonic()
            await self._write_segment(segment)
            self.work_seconds = time.monotonic() - started
            self._plans.remove(segment.token(""))  # first: a replay without it plans again, and finds it done
            self.spool.done(segment)
            self._journals.remove(segment.token(""))
            self._drain_healthy()

    async def connect(self) -> bool:
        """Apply migrations and remember recent keys; False (and logged) while the store is unreachable."""
        if self._store_ready:
            return True
        loop = asyncio.get_running_loop()
        try:
            applied = await loop.run_in_executor(
                self._writer, lambda: apply_migrations(self._store, cluster=self._cluster, retention=self._retention))
            remembered = await self._dedup.remember_stored(self._writer)
        except StoreUnavailable as exc:
            self._unavailable(exc, 0)
            return False
        self._store_ready = True
        self._available()
        log.info("store ready", migrations_applied=applied, remembered_keys=remembered)
        return True

    async def _ensure_store(self) -> None:
        """Before the first insert: connect, retrying with backoff while the store is unreachable."""
        delay = 0.25
        while not await self.connect():
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _unavailable(self, exc: Exception, delay: float) -> None:
        """Record a failed write that will be retried: metrics (by code), /readyz and a log line with the error."""
        code = error_code(exc.__cause__) if exc.__cause__ is not None else None
        self._metrics.store_error("unavailable")
        self._metrics.store_retry(code)
        self._metrics.retrying.set(1)
        self.stats.store_ok = False
        self.stats.last_error = str(exc)
        self.stats.retries += 1
        if self.stats.retrying_since is None:
            self.stats.retrying_since = time.time()
        log.warning("store failing, will retry", delay=delay, spooled_rows=self.spool.rows, error=str(exc),
                    code=code, retries=self.stats.retries)

    def _available(self) -> None:
        """A write succeeded: retrying is over."""
        if self.stats.retrying_since is not None:
            log.info("store writes succeed again", retries=self.stats.retries,
                     seconds=round(time.time() - self.stats.retrying_since, 1))
        self.stats.store_ok = True
        self.stats.retrying_since = None
        self.stats.retries = 0
        self._metrics.retrying.set(0)

    async def run_exclusive(self, job: Callable[[], T]) -> T:
        """Run a job on the writer thread, between inserts (e.g. deletions that must not race one)."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, job)

    async def _write_segment(self, segment: Segment) -> None:
        """Fold the segment's identity links in, then insert its touchpoints and dead letters (that order).

        Resolved first, the links map their ids to their customers before the touchpoints arrive, so
        customer_state_mv puts the touchpoints of ids linked in this segment straight under their customer: only
        state recorded by earlier segments moves (identity.resolver). A crash anywhere replays the segment: the
        saved plan's writes and the inserts each land once by their tokens (docs/identity.md, "Replays").
        """
        loop = asyncio.get_running_loop()
        links = await loop.run_in_executor(self._writer, self._links_of, segment)
        refused: list[tuple[Any, ...]] = []
        links_token = segment.token("identity_links")
        if links:
            refused = await self._resolve_until_done(links, links_token)
        for table in ("touchpoints", "dead_letters"):
            body = await loop.run_in_executor(self._writer, segment.read, table)
            if body:
                await self._insert_until_done(table, body, segment.token(table))
        if refused:  # after the touchpoints, as before: a refused link's letter is seen once its event is stored
            await self._insert_until_done("dead_letters", header_line("dead_letters") + encode_rows(refused),
                                          links_token + "-refused")
        if self.on_stored is not None:
            await self._after_stored(self.on_stored, segment, links)
        if time.monotonic() - self._purged_at >= self._purge_interval:
            self._purged_at = time.monotonic()
            try:
                if await loop.run_in_executor(self._writer, purge_merged, self._store):
                    log.info("purge: removing the deleted rows of merged customer keys from their parts")
            except StoreError as exc:  # the views hide merged keys anyway: try again next time
                log.warning("purging merged customer keys failed", error=str(exc))

    async def _after_stored(self, hook: Callable[[Segment, list[str]], object], segment: Segment,
                            links: bytes) -> None:
        """Hand a stored segment (and its links' ids) to the hook; its faults are logged, never stop the drain."""
        ids = [i for link in decode_links(links) for i in (link.anonymous_id, link.customer_id)] if links else []
        try:
            await self._retrying(lambda: hook(segment, ids))
        except Exception:  # its customers are looked at again when next touched
            log.exception("after-store hook failed for a segment", segment=segment.name)

    def _new_links(self, rows: Sequence[Row]) -> list[Row]:
        """The links rows carry that were not resolved recently, each pair once.

        Every event of a signed-in visitor carries both ids; resolving the same pair again changes nothing, so
        only pairs this process has not resolved lately (RESOLVED_PAIRS) travel to the resolver.
        """
        fresh: dict[str, Row] = {}
        for link in self._links.links_in(rows):
            pair = f"{link[0]}\x1f{link[1]}"
            if pair not in self._resolved and pair not in fresh:
                fresh[pair] = link
        return list(fresh.values())

    def forget_resolved_links(self) -> None:
        """After an unlink or a forget: links seen before must be resolved again when they come back."""
        self._resolved = RecentIds(RESOLVED_PAIRS)

    def _links_of(self, segment: Segment) -> bytes:
        """A segment's identity links; a segment left by a crashed process derives them from its touchpoints."""
        if not segment.recovered:
            return segment.read("identity_links")
        links = self._links.links_in(list(spooled_touchpoints([segment])))
        return header_line("identity_links") + encode_rows(links) if links else b""

    async def _resolve_until_done(self, body: bytes, token: str) -> list[tuple[Any, ...]]:
        """Resolve a segment's links (identity.resolver), retrying while the store is unavailable or paused.

        Returns the links the guards refuse, or that the store refuses as bad data, as dead-letter rows with the
        reason (the caller stores them under ``token + "-refused"``).
        """
        links = decode_links(body)
        try:  # planned once, also across a crash: a replay writes the same rows (resolver.Resolution, identity.plans)
            resolution = await self._retrying(
                lambda: planned(self._store, self._plans, links, token, max_ids=self._links.max_ids))
            await self._retrying(lambda: apply_resolution(self._store, resolution, token))
        except StoreError as exc:
            self._metrics.store_error("refused")
            log.error("store refused identity links; keeping them as dead letters", token=token, error=str(exc))
            return refused_dead_letters([(link, f"store refused: {exc}") for link in links])
        refused = refused_dead_letters(resolution.refused)
        if refused:
            log.warning("identity links refused by the guards", links=len(refused), token=token)
        for link in links:  # accepted or refused, a pair's answer stays the same until an unlink
            self._resolved.add(f"{link.anonymous_id}\x1f{link.customer_id}")
        return refused

    async def _retrying(self, job: Callable[[], T]) -> T:
        """Run a store job on the writer thread, retrying with backoff while the store is unavailable or paused.

        Raises StoreError when the store refuses the job as bad data: retrying that would not help.
        """
        delay = 0.25
        while True:
            await self._resumed.wait()
            try:
                result = await asyncio.get_running_loop().run_in_executor(self._writer, job)
            except StoreUnavailable as exc:
                self._unavailable(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            else:
                self._available()
                return result

    async def _insert_until_done(self, table: str, body: bytes, token: str) -> None:
        """Insert one body of rows, retrying while the store fails; rows it refuses as bad become dead letters.

        A refused body is split until the bad rows are isolated (ingest.bisect); only those are parked, each
        with the store's reason, and every other row is stored, exactly once also across a crash.
        """
        journal = self._journals.of(token)
        refusal = None
        # a crash mid-isolation resumes without the whole insert; the lines are split only once it is refused or a
        # crash left it split (a segment's body holds tens of thousands of rows, and this runs on the event loop)
        lines = [] if journal.empty else _lines(body)
        whole = not lines or not journal.is_split(0, len(lines))
        if whole:
            refusal = await self._attempt(table, body, token)
            if refusal is None:
                return
        lines = lines or _lines(body)
        if whole and await self._written_anyway(table, body):
            self._metrics.store_error("partly written")
            log.error("the store refused a body after writing it (a view failed after the table was written); "
                      "not inserting its parts, which would store it twice", table=table, token=token,
                      rows=len(lines), error=refusal)
            return
        self._metrics.store_error("refused")
        self.stats.last_error = refusal or self.stats.last_error
        log.error("store refused rows as bad data; isolating them", table=table, token=token, rows=len(lines),
                  error=refusal)
        header = body[: body.index(b"\n") + 1]
        parked = await isolate(header, lines, token, functools.partial(self._attempt, table), journal, refusal)
        self._metrics.rows_parked(table, len(parked))
        self.stats.parked_rows += len(parked)
        log.warning("refused rows isolated and parked", table=table, token=token, rows=len(lines),
                    parked=len(parked), reasons=sorted({p.reason for p in parked})[:5])
        if not parked:
            return
        if table == "dead_letters":
            quarantined = header + b"".join(p.line + b"\n" for p in parked)
            await asyncio.get_running_loop().run_in_executor(self._writer, self._quarantine, quarantined, token)
            return
        names = [str(name) for name in orjson.loads(header)]
        dead = [_as_dead_letter(names, p) for p in parked]
        await self._insert_until_done("dead_letters", header_line("dead_letters") + encode_rows(dead),
                                      token + "-refused")

    async def _written_anyway(self, table: str, body: bytes) -> bool:
        """True when every touchpoint of a refused body is in the table anyway (a view refused it afterwards)."""
        if table != "touchpoints":
            return False
        header, _, rest = body.partition(b"\n")
        names = orjson.loads(header)
        if "message_id" not in names or "received_at" not in names:
            return False
        at_id, at_time = names.index("message_id"), names.index("received_at")
        try:
            decoded = map(orjson.loads, filter(None, rest.split(b"\n")))
            rows = {(str(v[at_id]), round(float(v[at_time]) * 1000)) for v in decoded}
        except (orjson.JSONDecodeError, IndexError, TypeError, ValueError):  # rows not even JSON: not written
            return False
        found = await self._retrying(lambda: self._store.query(WRITTEN_SQL, {"$rows$": heredoc_json(sorted(rows))}))
        return bool(rows) and int(found.rows[0][0]) >= len(rows)

    async def _attempt(self, table: str, body: bytes, token: str) -> str | None:
        """Insert a body, retrying while the store fails: None once stored, else the store's bad-data reason."""
        def insert() -> float:  # the successful attempt's duration, for the metrics
            started = time.perf_counter()
            self._store.insert_encoded(table, body, token)
            return time.perf_counter() - started

        try:
            seconds = await self._retrying(insert)
        except StoreError as exc:  # not StoreUnavailable: _retrying retries those
            return str(exc)
        rows = body.count(b"\n") - 1  # the first line names the columns
        self._metrics.observe_insert(table, rows, seconds)
        if table == "touchpoints":
            self.stats.inserted += rows
        return None

    def _quarantine(self, body: bytes, token: str) -> None:
        """Keep rows even the dead-letter table refused in the spool's failed/ folder for an operator."""
        if self.spool.directory is None:
            log.error("dead letters refused by the store and not kept (memory spool)", rows=body.count(b"\n"))
            return
        failed = self.spool.directory / "failed"
        failed.mkdir(exist_ok=True)
        (failed / f"{token}.jsonl").write_bytes(body)
        log.error("dead letters refused by the store; kept for an operator", path=str(failed / f"{token}.jsonl"))

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, seal and write everything spooled; False if time ran out first."""
        self._closing = True
        self.pause(False)
        if await self.flush(timeout):
            return True
        log.error("drain timed out; the rest stays in the spool for the next start", pending=self.spool.rows)
        return False

    async def flush(self, timeout: float) -> bool:
        """Seal and write everything spooled so far; False if time ran out first (store down or paused)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.spool.seal_if_older(0)
            if not self.spool.rows and not self.spool.writing:  # unwaited pixel rows may still be on their way
                return True
            self.spool.sealed_ready.set()
            await asyncio.sleep(0.05)
        return False


def _lines(body: bytes) -> list[bytes]:
    """The rows of an encoded body: its non-empty lines after the column names."""
    return [line for line in body.split(b"\n")[1:] if line]


def _as_dead_letter(names: list[str], parked: Parked) -> Row:
    """A row the store refused, as a dead-letter row: the store's reason, the row as a JSON object (payload)."""
    try:
        decoded = orjson.loads(parked.line)
    except orjson.JSONDecodeError:
        decoded = None
    values: dict[str, Any] = dict(zip(names, decoded, strict=False)) if isinstance(decoded, list) else {}
    payload = orjson.dumps(values).decode() if values else parked.line.decode("utf-8", "replace")
    dead: dict[str, Any] = dict.fromkeys(DEAD_LETTER_COLUMNS, "")
    dead.update(received_at=time.time(), source=str(values.get("source", "")), endpoint="store", batch_index=-1,
                message_id=str(values.get("message_id", "")), customer_id=str(values.get("customer_id", "")),
                anonymous_id=str(values.get("anonymous_id", "")), reason=f"store refused: {parked.reason}",
                payload=payload)
    return tuple(dead[c] for c in DEAD_LETTER_COLUMNS)

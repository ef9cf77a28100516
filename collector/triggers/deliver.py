"""The deliverer: POSTs the outbox's transitions, signed, within each destination's limits, in order per customer.

One asyncio task per destination (``host:port``) keeps, per customer, a queue of items in outbox order and a
heap of the customers whose first item may go (by due time): a customer's next item waits until the one
before it is delivered or parked, so each customer's webhooks arrive in order. A destination runs at most
``concurrency`` requests at once and ``rate`` a second (a token bucket); a 429 or 503 with ``Retry-After``
pauses the whole destination that long. Failures are retried with exponential backoff (with jitter) until
``max_attempts``, then parked. A 3xx is never followed: the delivery is refused and parked at once.

Requests go through collector.triggers.http: keep-alive connections pooled per destination (at most
``concurrency``), each request written as one ``bytes``. Results are committed to the outbox in small groups
on the triggers thread (one transaction each), each attempt with a record that is copied to ClickHouse's
``trigger_attempts`` in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import structlog

from collector.errors import StoreError
from collector.store.clickhouse import Store
from collector.triggers.config import Limits, Trigger, TriggerConfig
from collector.triggers.destinations import DestinationRefused, SafeResolver, check_destination
from collector.triggers.http import Pool
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Item, Outbox, Result
from collector.triggers.signing import SIGNATURE_HEADER, Signer

__all__ = ["Deliverer", "DeliveryPolicy", "retry_after_seconds"]

log = structlog.get_logger("reise.triggers")
RESULTS_EVERY = 0.05  # seconds between commits of delivery results
RECORDS_EVERY = 1.0  # seconds between copies of attempt records to ClickHouse
MAX_RETRY_AFTER = 3600.0
ATTEMPT_COLUMNS = ("trigger", "idempotency_key", "customer_id", "attempt", "status", "outcome", "latency_ms",
                   "since_queued_ms", "error", "destination", "attempted_at")
CHANGE_COLUMNS = ("segment", "customer_id", "change", "reason", "at", "seq")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are tried: the settings REISE_TRIGGER_*."""

    hosts: tuple[str, ...]
    allow_private: bool = False
    max_attempts: int = 10
    backoff: float = 1.0
    max_backoff: float = 600.0
    timeout: float = 10.0
    limits: Limits = field(default_factory=lambda: Limits(concurrency=8, rate=50.0))

    def delay(self, attempt: int) -> float:
        """Seconds before the next attempt after ``attempt`` failures: doubling, capped, with +-20 % jitter."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff) * random.uniform(0.8, 1.2))


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header as seconds from now (delta seconds or an HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(when - now, 0.0), MAX_RETRY_AFTER)


class _Destination:
    """One destination's queues, heap of ready customers, limits and wake-up event."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.queues: dict[str, deque[Item]] = {}
        self.ready: list[tuple[float, int, str]] = []  # (due, seq, customer) of customers whose head may go
        self.in_flight = 0
        self.paused_until = 0.0
        self.tokens = float(max(1.0, limits.rate / 10)) if limits.rate else 0.0
        self.refilled = time.monotonic()
        self.wake = asyncio.Event()
        self.pools: dict[tuple[str, str, int], Pool] = {}  # keep-alive connections, by scheme, host and port

    def add(self, item: Item) -> None:
        queue = self.queues.get(item.customer)
        if queue is None:
            queue = self.queues[item.customer] = deque()
        queue.append(item)
        if len(queue) == 1:
            heapq.heappush(self.ready, (item.due, item.seq, item.customer))
        self.wake.set()

    def take_token(self) -> float:
        """0 when a request may start now (a token taken), else the seconds until one is due."""
        if not self.limits.rate:
            return 0.0
        now = time.monotonic()
        burst = max(1.0, self.limits.rate / 10)
        self.tokens = min(burst, self.tokens + (now - self.refilled) * self.limits.rate)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.limits.rate



@dataclass(frozen=True)
class _Target:
    """What every request of a trigger shares: where it goes, the fixed headers, the signer."""

    trigger: Trigger
    scheme: str
    host: str
    port: int
    path: str  # the request target: path and query
    headers: dict[str, str]
    signer: Signer

    @classmethod
    def of(cls, trigger: Trigger) -> _Target:
        """Prepare a trigger's requests."""
        parts = urlsplit(trigger.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(trigger, parts.scheme, (parts.hostname or "").lower(),
                   parts.port or (443 if parts.scheme == "https" else 80), path,
                   {"Content-Type": "application/json", "User-Agent": "reise-triggers",
                    "Reise-Trigger": trigger.name}, Signer(trigger.secret))


class Deliverer:
    """Delivers outbox items; ``add`` (or ``add_threadsafe`` from the writer thread) hands it new ones."""

    def __init__(self, *, config: TriggerConfig, outbox: Outbox, store: Store, policy: DeliveryPolicy,
                 metrics: TriggerMetrics, pool: ThreadPoolExecutor) -> None:
        self._config = config
        self._outbox = outbox
        self._store = store
        self._policy = policy
        self._metrics = metrics
        self._pool = pool
        self._targets: dict[str, _Target] = {t.name: _Target.of(t) for t in config.triggers}
        self._destinations: dict[str, _Destination] = {}
        self._results: list[Result] = []
        self._held: set[int] = set()  # outbox seqs queued in memory (an item is never queued twice)
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()  # requests in flight (held, so they are not collected)
        self._counters: dict[tuple[str, str], Callable[[], None]] = {}
        self._observers: dict[str, Callable[[float], None]] = {}
        self._verdicts: dict[str, str] = {}  # host -> "" (allowed) or why it is refused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resolver: SafeResolver | None = None
        limits: dict[str, Limits] = {}
        for trigger in config.triggers:
            own = trigger.limits or policy.limits
            seen = limits.get(trigger.destination)
            limits[trigger.destination] = own if seen is None else Limits(
                min(seen.concurrency, own.concurrency), min(r for r in (seen.rate, own.rate) if r) if
                (seen.rate or own.rate) else 0.0)
        self._limits = limits

    async def start(self) -> None:
        """Load what the outbox still holds and start delivering."""
        self._loop = asyncio.get_running_loop()
        self._resolver = SafeResolver(allow_private=self._policy.allow_private)
        pending = await self._loop.run_in_executor(self._pool, self._outbox.pending)
        self.add(pending)
        self._tasks.append(asyncio.create_task(self._commit_results(), name="reise-trigger-results"))
        self._tasks.append(asyncio.create_task(self._copy_records(), name="reise-trigger-records"))
        if pending:
            log.info("outbox loaded", pending=len(pending))

    async def close(self) -> None:
        """Stop delivering; commit the results so far and copy the records that can be (the rest stays queued)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for send in list(self._sending):  # requests in flight: their items stay pending, sent again after a start
            send.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._flush_results()
        for dest in self._destinations.values():
            for pool in dest.pools.values():
                pool.close()
        if self._resolver is not None:
            await self._resolver.close()
        with contextlib.suppress(StoreError):
            await asyncio.get_running_loop().run_in_executor(self._pool, self._copy_once)

    @property
    def pending(self) -> int:
        """Items waiting or in flight."""
        return len(self._held)

    def add_threadsafe(self, items: list[Item]) -> None:
        """``add`` from another thread (the writer thread, after committing a detection)."""
        if self._loop is not None and items:
            self._loop.call_soon_threadsafe(self.add, items)

    def add(self, items: Sequence[Item]) -> None:
        """Queue items for their destinations, in outbox order."""
        for item in items:
            if item.seq in self._held:
                continue
            self._held.add(item.seq)
            destination = self._destinations.get(item.destination)
            if destination is None:
                limits = self._limits.get(item.destination, self._policy.limits)
                destination = self._destinations[item.destination] = _Destination(item.destination, limits)
                self._tasks.append(asyncio.create_task(self._run(destination),
                                                       name=f"reise-trigger-{item.destination}"))
            destination.add(item)
        self._metrics.pending.set(self.pending)

    def drop(self, customers: set[str]) -> int:
        """Stop holding the items of these customer keys (they were forgotten); how many were dropped.

        A request already in flight still ends, but its result is not recorded (the outbox has no item for it).
        """
        dropped = 0
        for dest in self._destinations.values():
            for customer in customers & dest.queues.keys():
                queue = dest.queues.pop(customer)
                dropped += len(queue)
                self._held.difference_update(item.seq for item in queue)
            dest.ready = [entry for entry in dest.ready if entry[2] not in customers]
            heapq.heapify(dest.ready)
        self._metrics.pending.set(len(self._held))
        return dropped

    def drop_threadsafe(self, customers: set[str], timeout: float = 30.0) -> int:
        """``drop`` from another thread (the writer thread, forgetting a person); waits until it is done."""
        if self._loop is None or self._loop.is_closed():
            return 0

        async def job() -> int:
            return self.drop(customers)
        return asyncio.run_coroutine_threadsafe(job(), self._loop).result(timeout)

    async def _run(self, dest: _Destination) -> None:
        """Start every request the destination's limits allow; sleep until the next may go or something changes."""
        while True:
            dest.wake.clear()
            timeout: float | None = None
            while dest.ready and dest.in_flight < dest.limits.concurrency:
                due, _seq, customer = dest.ready[0]
                start = max(due, dest.paused_until)
                now = time.time()
                if start > now:
                    timeout = start - now
                    break
                wait = dest.take_token()
                if wait:
                    timeout = wait
                    break
                heapq.heappop(dest.ready)
                dest.in_flight += 1
                item = dest.queues[customer][0]
                self._sending.add(task := asyncio.create_task(self._send(dest, item)))
                task.add_done_callback(self._sending.discard)
            timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, dest.wake.set)
            await dest.wake.wait()
            if timer is not None:
                timer.cancel()

    async def _send(self, dest: _Destination, item: Item) -> None:
        """One attempt; then the item is done (delivered or parked) or due again later."""
        attempt = item.attempts + 1
        target = self._targets.get(item.trigger)
        status, error, outcome, retry_after = 0, "", "retry", None
        started = time.perf_counter()
        attempted_at = time.time()
        try:
            if target is None:
                raise DestinationRefused(f"the trigger {item.trigger!r} is no longer in REISE_TRIGGERS")
            self._check(target.host)
            pool = dest.pools.get((target.scheme, target.host, target.port))
            if pool is None:
                assert self._resolver is not None
                pool = dest.pools[(target.scheme, target.host, target.port)] = Pool(
                    scheme=target.scheme, host=target.host, port=target.port, resolver=self._resolver,
                    size=dest.limits.concurrency)
            headers = {**target.headers, SIGNATURE_HEADER: target.signer(item.body),
                       "Reise-Idempotency-Key": item.key}
            reply = await pool.post(pool.request_bytes(target.path, headers, item.body), self._policy.timeout)
            status = reply.status
            if 200 <= status < 300:
                outcome = "delivered"
            elif 300 <= status < 400:
                outcome, error = "refused", f"redirect refused: {status} to {reply.headers.get('location', '')!r}"
            else:
                error = f"HTTP {status}"
                retry_after = retry_after_seconds(reply.headers.get("retry-after"), time.time())
        except DestinationRefused as exc:
            outcome, error = "refused", str(exc)
        except (TimeoutError, OSError) as exc:  # a refused connect, a reset, a malformed answer, the timeout
            error = f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
            if "destination refused" in error:  # SafeResolver: the name resolves only to private addresses
                outcome = "refused"
        latency = time.perf_counter() - started
        now = time.time()
        if outcome == "retry" and attempt >= self._policy.max_attempts:
            outcome = "parked"
        if retry_after is not None and status in (429, 503):
            dest.paused_until = max(dest.paused_until, now + retry_after)
        due = now + (retry_after if retry_after is not None else self._policy.delay(attempt))
        state = {"delivered": "delivered", "retry": "pending"}.get(outcome, "parked")
        self._results.append(Result(item.seq, state, attempt, due, error, {
            "trigger": item.trigger, "idempotency_key": item.key, "customer_id": item.customer, "attempt": attempt,
            "status": status, "outcome": outcome, "latency_ms": round(latency * 1000, 3),
            "since_queued_ms": round((now - item.queued_at) * 1000, 3), "error": error,
            "destination": dest.name, "attempted_at": attempted_at}))
        self._count(item.trigger, outcome)
        if outcome != "delivered":
            self._metrics.failures.labels(item.trigger).inc()
            log.warning("webhook attempt failed", trigger=item.trigger, key=item.key, attempt=attempt,
                        outcome=outcome, error=error)
        else:
            observe = self._observers.get(item.trigger)
            if observe is None:
                observe = self._observers[item.trigger] = self._metrics.latency.labels(item.trigger).observe
            observe(now - item.queued_at)
        dest.in_flight -= 1
        queue = dest.queues.get(item.customer)
        if not queue or queue[0] is not item:
            pass  # dropped while in flight (its customer was forgotten): nothing more to do
        elif state == "pending":
            item.attempts, item.due = attempt, due
            heapq.heappush(dest.ready, (due, item.seq, item.customer))
        else:
            queue.popleft()
            self._held.discard(item.seq)
            if queue:
                nxt = queue[0]
                heapq.heappush(dest.ready, (nxt.due, nxt.seq, item.customer))
            else:
                del dest.queues[item.customer]
        self._metrics.pending.set(len(self._held))
        dest.wake.set()

    def _check(self, host: str) -> None:
        """DestinationRefused unless the host is on the allow-list (and, an address, public unless allowed).

        The verdict depends on the host and the settings alone, so it is worked out once per host. A name is
        resolved and its addresses checked when a connection is opened (collector.triggers.http.Pool).
        """
        verdict = self._verdicts.get(host)
        if verdict is None:
            try:
                check_destination(host, self._policy.hosts, allow_private=self._policy.allow_private)
                verdict = ""
            except DestinationRefused as exc:
                verdict = str(exc)
            self._verdicts[host] = verdict
        if verdict:
            raise DestinationRefused(verdict)

    def _count(self, trigger: str, outcome: str) -> None:
        """Count an attempt (the labelled counter looked up once per trigger and outcome)."""
        inc = self._counters.get((trigger, outcome))
        if inc is None:
            inc = self._counters[(trigger, outcome)] = self._metrics.deliveries.labels(trigger, outcome).inc
        inc()

    async def _commit_results(self) -> None:
        while True:
            await asyncio.sleep(RESULTS_EVERY)
            await self._flush_results()

    async def _flush_results(self) -> None:
        if self._results:
            results, self._results = self._results, []
            await asyncio.get_running_loop().run_in_executor(self._pool, self._outbox.record_results, results)

    async def _copy_records(self) -> None:
        """Copy attempt records and segment changes to ClickHouse; retried while the store is unavailable."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(RECORDS_EVERY)
            try:
                while await loop.run_in_executor(self._pool, self._copy_once):
                    pass
            except StoreError as exc:
                log.warning("copying trigger records to the store failed; will retry", error=str(exc))

    def _copy_once(self) -> bool:
        """Copy one batch of records (blocking, triggers thread); True when a full batch was copied."""
        self._metrics.parked.set(self._outbox.parked_count())
        first, last, tables = self._outbox.records()
        if not tables:
            return False
        for table, rows in tables.items():
            columns = ATTEMPT_COLUMNS if table == "trigger_attempts" else CHANGE_COLUMNS
            self._store.insert_rows(table, columns, [tuple(r[c] for c in columns) for r in rows],
                                    f"reise-trigger-records-{self._outbox.id}-{table}-{first}-{last}")
        self._outbox.drop_records(last)
        return sum(len(r) for r in tables.values()) >= 20_000

    async def replay(self, trigger: str = "", key: str = "") -> int:
        """Make parked deliveries pending again and queue them; how many."""
        await self._flush_results()
        items = await asyncio.get_running_loop().run_in_executor(self._pool, self._outbox.unpark, trigger, key)
        self.add(items)
        return len(items)

    async def parked(self, trigger: str = "", limit: int = 1000) -> list[dict[str, object]]:
        """Parked deliveries, oldest first."""
        await self._flush_results()
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._outbox.parked, trigger, limit)

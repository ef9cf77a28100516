"""The background consumer: takes batches from the queue, sends them, retries.

Retry rules, as an explicit decision: network errors, 408, 429 and 5xx are retried
with exponential backoff and full jitter (``Retry-After`` wins when given); any other
4xx is not retried (bad data stays bad). A 413 is split in halves. Events the collector
rejects by index are reported through ``on_error`` and not retried. Nothing raised here
reaches the host: every failure is logged and reported.
"""

from __future__ import annotations

import datetime as _dt
import logging
import random
import threading
from typing import Any

from reise import _json
from reise.errors import BatchRejected, DeliveryError, EventRejected, EventsDropped
from reise.options import ErrorCallback, SendPolicy
from reise.queue import Batch, EventQueue
from reise.request import Response, Transport, TransportError

__all__ = ["Consumer", "Stats"]

log = logging.getLogger("reise")



class Stats:
    """Counters of one client, updated by the consumer (read them with ``Client.stats()``)."""

    __slots__ = ("batches", "delivered", "dropped", "failed", "rejected", "retries")

    def __init__(self) -> None:
        self.delivered = 0  # events the collector accepted
        self.rejected = 0  # events the collector rejected (by index or whole batch)
        self.dropped = 0  # events lost: overflow policy, given up, undelivered at shutdown
        self.failed = 0  # events given up after max_retries
        self.retries = 0  # request attempts that were retried
        self.batches = 0  # requests answered 2xx

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return {k: getattr(self, k) for k in self.__slots__}


def _decode(data: bytes) -> dict[str, Any]:
    try:
        obj = _json.loads(data)
    except ValueError:  # pragma: no cover - we produced these bytes
        return {"raw": data.decode("utf-8", "replace")}
    return obj if isinstance(obj, dict) else {"raw": obj}


class Consumer(threading.Thread):
    """Daemon thread that drains an ``EventQueue`` to a ``Transport``."""

    def __init__(self, queue: EventQueue, transport: Transport, stats: Stats, policy: SendPolicy,
                 on_error: ErrorCallback | None) -> None:
        super().__init__(name="reise-consumer", daemon=True)
        self.queue = queue
        self.transport = transport
        self.stats = stats
        self.max_batch_events = policy.max_batch_events
        self.max_batch_bytes = policy.max_batch_bytes
        self.flush_interval = policy.flush_interval
        self.max_retries = policy.max_retries
        self.backoff_base = policy.backoff_base
        self.max_backoff = policy.max_backoff
        self.max_retry_after = policy.max_retry_after
        self.on_error = on_error
        self.stop_event = threading.Event()  # set: give up retrying and exit
        self._rng = random.Random()

    # -- loop ---------------------------------------------------------------

    def run(self) -> None:
        """Take and send batches until stopped; never lets an exception escape."""
        while not self.stop_event.is_set():
            try:
                batch = self.queue.take(self.max_batch_events, self.max_batch_bytes,
                                        self.flush_interval)
                self.report_drops()
                if batch is None:
                    return
                if batch.events:
                    self._deliver(batch)
            except Exception:  # pragma: no cover - last line of defence
                log.exception("reise: unexpected error in the background sender")
                self.stop_event.wait(1.0)

    def report_drops(self) -> None:
        """Report overflow incidents the queue summarised (also called at shutdown)."""
        q = self.queue
        if not q.pending_drop_reports:
            return
        with q.lock:
            reports, q.pending_drop_reports = q.pending_drop_reports, []
        for count, reason in reports:  # already counted in the queue's dropped_total
            self._call_on_error(EventsDropped(reason, count=count))

    def _deliver(self, batch: Batch) -> None:
        try:
            finished = self._send(batch.events)
        except Exception as exc:  # pragma: no cover - a bug; never let it reach the host
            log.exception("reise: unexpected error while sending %d events", len(batch))
            if self.queue.durable:
                return  # they stay in the spool for the next run
            self.stats.dropped += len(batch)
            self._call_on_error(EventsDropped(f"internal error: {exc!r}", count=len(batch)))
            finished = True
        if finished:
            self.queue.finish(batch)

    # -- sending -----------------------------------------------------------

    def _send(self, events: list[bytes]) -> bool:
        """Send until delivered or given up; False when stopped before finishing."""
        attempt = 0
        while True:
            sent_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
            body = b'{"batch":[' + b",".join(events) + b'],"sentAt":"' + sent_at.encode() + b'"}'
            delay: float
            try:
                resp = self.transport.post(self.transport.encode(body))
            except TransportError as exc:
                reason = str(exc)
                delay = self._backoff(attempt)
            else:
                status = resp.status
                if 200 <= status < 300:
                    self._accepted(events, resp)
                    return True
                if status == 413 and len(events) > 1:
                    half = len(events) // 2
                    log.warning("reise: batch of %d events too large (413); splitting", len(events))
                    return self._send(events[:half]) and self._send(events[half:])
                reason = f"HTTP {status}: {_error_text(resp)}"
                if not (status in (408, 429) or status >= 500):
                    self._refused(events, status, reason)
                    return True
                delay = self._backoff(attempt)
                if resp.retry_after is not None:
                    delay = min(resp.retry_after, self.max_retry_after)
            attempt += 1
            if self.max_retries is not None and attempt > self.max_retries:
                if self.queue.durable:
                    log.error("reise: %d events not delivered after %d attempts (%s); they stay "
                              "in the spool", len(events), attempt, reason)
                    self.stop_event.wait(self.max_backoff)
                    attempt = 0
                    continue
                self.stats.failed += len(events)
                self.stats.dropped += len(events)
                log.error("reise: dropping %d events after %d attempts: %s",
                          len(events), attempt, reason)
                self._call_on_error(EventsDropped(f"gave up after {attempt} attempts: {reason}",
                                                  events=[_decode(e) for e in events]))
                return True
            self.stats.retries += 1
            log.log(logging.WARNING if attempt in (1, 10) else logging.DEBUG,
                    "reise: delivery of %d events failed (%s); retry %d in %.2fs",
                    len(events), reason, attempt, delay)
            if self.stop_event.wait(delay):
                return False

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped at ``max_backoff``."""
        cap = min(self.max_backoff, self.backoff_base * (2 ** min(attempt, 30)))
        return self._rng.uniform(cap / 2, cap)

    def _accepted(self, events: list[bytes], resp: Response) -> None:
        self.stats.batches += 1
        rejected: list[Any] = []
        if resp.body:
            try:
                doc = _json.loads(resp.body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("rejected"), list):
                rejected = doc["rejected"]
        bad = 0
        for item in rejected:
            if not isinstance(item, dict):
                continue
            idx = item.get("index")
            reason = str(item.get("reason", "rejected"))
            if isinstance(idx, int) and 0 <= idx < len(events):
                bad += 1
                ev = _decode(events[idx])
                log.warning("reise: collector rejected event %s: %s", ev.get("messageId"), reason)
                self._call_on_error(EventRejected(reason, events=[ev], status=resp.status))
        self.stats.rejected += bad
        self.stats.delivered += len(events) - bad

    def _refused(self, events: list[bytes], status: int, reason: str) -> None:
        self.stats.rejected += len(events)
        log.error("reise: collector refused a batch of %d events, not retrying: %s",
                  len(events), reason)
        self._call_on_error(BatchRejected(reason, events=[_decode(e) for e in events],
                                          status=status))

    def _call_on_error(self, err: DeliveryError) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(err)
        except Exception:
            log.exception("reise: on_error callback raised")


def _error_text(resp: Response) -> str:
    try:
        doc = _json.loads(resp.body) if resp.body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("error"):
        return str(doc["error"])
    return resp.body[:200].decode("utf-8", "replace") or "no body"


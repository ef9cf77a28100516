"""Prometheus metrics: one registry per application (its HTTP side: collector.edge.metrics).

The batcher and the spool report through small methods (``observe_insert``, ``store_error``,
``watch_spool``) so they need not know about prometheus-client.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["Metrics", "RequestMetrics", "reason_label"]

_REASON = re.compile(r"^[A-Za-z][A-Za-z0-9_. ]{0,39}$")
MAX_REASONS = 64
ROW_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


def reason_label(reason: str) -> str:
    """A bounded label for a rejection reason: the field named before the colon, else ``other``."""
    head = reason.split(":", 1)[0].strip()
    return head if _REASON.match(head) else "other"


class RequestMetrics:
    """HTTP requests by route, method and status, and their durations by route, exposed as the counter
    ``reise_http_requests`` and the histogram ``reise_http_request_duration_seconds`` (what prometheus-client's
    Counter and Histogram would show, ``_created`` included).

    Counted in plain lists, on the event loop only, and turned into metric families at scrape time: a request
    costs a dict lookup and two additions, not a labelled child's lookup and four locks.
    """

    _REQUESTS = ("reise_http_requests", "HTTP requests answered, by route, method and status")
    _SECONDS = ("reise_http_request_duration_seconds", "Time to answer a request, by route")

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], list[float]] = {}  # (route, method, status) -> [count, created]
        # route -> [count per bucket (the last one past the highest bound), sum, created]
        self._durations: dict[str, list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        counted = self._counts.get((route, method, status))
        if counted is None:
            counted = self._counts[(route, method, status)] = [0.0, time.time()]
        counted[0] += 1
        timed = self._durations.get(route)
        if timed is None:
            timed = self._durations[route] = [0.0] * (len(REQUEST_BUCKETS) + 2) + [time.time()]
        timed[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        timed[-2] += seconds

    def describe(self) -> list[Metric]:
        """The two metric families, empty (the registry checks their names with this)."""
        return [CounterMetricFamily(*self._REQUESTS, labels=("route", "method", "status")),
                HistogramMetricFamily(*self._SECONDS, labels=("route",))]

    def collect(self) -> Iterator[Metric]:
        """The two metric families with their samples, read at scrape time."""
        requests = CounterMetricFamily(*self._REQUESTS, labels=("route", "method", "status"))
        for (route, method, status), (count, created) in list(self._counts.items()):
            requests.add_metric((route, method, str(status)), count, created=created)
        yield requests
        seconds = HistogramMetricFamily(*self._SECONDS, labels=("route",))
        created_samples = []
        for route, timed in list(self._durations.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*REQUEST_BUCKETS, float("inf")), timed, strict=False):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
            seconds.add_metric((route,), buckets, timed[-2])
            created_samples.append((route, timed[-1]))
        for route, created in created_samples:
            seconds.add_sample(f"{self._SECONDS[0]}_created", {"route": route}, created)
        yield seconds


class Metrics:
    """The collector's metrics in a registry of their own (one per application, never module-global)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = RequestMetrics()  # reise_http_requests, reise_http_request_duration_seconds
        registry.register(self.requests)
        self.events = Counter("reise_events", "Events received, by outcome: accepted, duplicate, rejected, "
                              "rate_limited (pixel hits past their key's limit: answered, not kept), or "
                              "suppressed (events and dead letters of suppressed ids: not kept)",
                              ["outcome"], registry=registry)
        self.rejected = Counter("reise_events_rejected", "Events rejected, by reason (the field at fault)",
                                ["reason"], registry=registry)
        self.insert_rows = Histogram("reise_insert_rows", "Rows per ClickHouse insert (batch size), by table",
                                     ["table"], buckets=ROW_BUCKETS, registry=registry)
        self.insert_seconds = Histogram("reise_insert_duration_seconds", "Time of one ClickHouse insert, by table",
                                        ["table"], buckets=INSERT_BUCKETS, registry=registry)
        self.inserted = Counter("reise_inserted_rows", "Rows written to ClickHouse, by table", ["table"],
                                registry=registry)
        self.store_errors = Counter("reise_store_errors", "Failed ClickHouse operations, by kind: unavailable "
                                    "(retried) or refused (bad data, kept as dead letters)", ["kind"],
                                    registry=registry)
        self.store_retries = Counter("reise_store_retries", "Store operations retried, by ClickHouse error code "
                                     "(network: no answer)", ["code"], registry=registry)
        self.retrying = Gauge("reise_store_retrying", "1 while writing to ClickHouse is failing and being retried",
                              registry=registry)
        self.parked = Counter("reise_rows_parked", "Rows the store refused as bad data and kept as dead letters "
                              "(dead_letters: kept in the spool's failed/ folder), by table", ["table"],
                              registry=registry)
        self.drain_restarts = Counter("reise_drain_restarts", "Times the drain loop died and was restarted",
                                      registry=registry)
        self.drain_up = Gauge("reise_drain_up", "1 while the drain loop runs, 0 while it is down after a failure",
                              registry=registry)
        self.pending = Gauge("reise_pending_rows", "Rows accepted and not yet written to ClickHouse",
                             registry=registry)
        self.spool_bytes = Gauge("reise_spool_bytes", "Bytes held in the durable spool", registry=registry)
        self.auth_failures = Counter("reise_auth_failures", "Failed authentications, by kind: write, read, admin "
                                     "or dashboard", ["kind"], registry=registry)
        self.auth_limited = Counter("reise_auth_limited", "Requests answered 429 because their address failed to "
                                    "authenticate too often (REISE_AUTH_FAILURES)", registry=registry)
        self.queries = Counter("reise_queries", "Analysts' queries (/v1/query, /v1/customers, the dashboard), by "
                               "key name and outcome: ok, refused (the query guard), failed, busy", ["key", "outcome"],
                               registry=registry)
        self.sessions_ended = Counter("reise_sessions_ended", "Dashboard sessions ended on the server, by how: "
                                      "logout or revoke_all", ["how"], registry=registry)
        self.suppressed_ids = Gauge("reise_suppressed_ids", "Ids on the suppression list as this collector last "
                                    "loaded it (reise forget --suppress)", registry=registry)
        self.source_requests = Counter("reise_source_requests", "Requests of the sources in REISE_SOURCES (Snowplow "
                                       "apps, webhooks), by source, kind and outcome: ok, bad_signature, "
                                       "bad_payload, refused", ["source", "kind", "outcome"], registry=registry)
        self.source_events = Counter("reise_source_events", "Events of the sources in REISE_SOURCES, by source and "
                                     "outcome: accepted, duplicate, rejected, without_consent", ["source", "outcome"],
                                     registry=registry)
        self._reasons: set[str] = set()
        self._outcomes = {outcome: self.events.labels(outcome)
                          for outcome in ("accepted", "duplicate", "rejected", "rate_limited", "suppressed")}

    def record_events(self, accepted: int, duplicates: int, reasons: Iterable[str]) -> None:
        """Count one request's events: accepted, duplicates, and each rejection by reason."""
        if accepted:
            self._outcomes["accepted"].inc(accepted)
        if duplicates:
            self._outcomes["duplicate"].inc(duplicates)
        for reason in reasons:
            self._outcomes["rejected"].inc()
            label = reason_label(reason)
            if label not in self._reasons:
                if len(self._reasons) >= MAX_REASONS:
                    label = "other"
                else:
                    self._reasons.add(label)
            self.rejected.labels(label).inc()

    def record_outcome(self, outcome: Any) -> None:
        """Count an ingest outcome (``collector.ingest.ingestor.Accepted``: accepted, duplicates, rejected[reason])."""
        rejected: Iterable[Mapping[str, Any]] = outcome.rejected
        self.record_events(outcome.accepted, outcome.duplicates, (str(r.get("reason", "")) for r in rejected))

    def record_source(self, source: str, kind: str, outcome: str, events: Any = None) -> None:
        """Count one request of a configured source and, given its ingest outcome, its events by outcome."""
        self.source_requests.labels(source, kind, outcome).inc()
        if events is None:
            return
        for name, count in (("accepted", events.accepted), ("duplicate", events.duplicates),
                            ("rejected", len(events.rejected)), ("without_consent", events.without_consent)):
            if count:
                self.source_events.labels(source, name).inc(count)

    def record_rate_limited(self, events: int) -> None:
        """Count events refused past their key's rate limit and not kept (pixel hits, which still get their GIF)."""
        self._outcomes["rate_limited"].inc(events)

    def record_suppressed(self, rows: int) -> None:
        """Count events and dead letters not kept because one of their ids is on the suppression list."""
        if rows:
            self._outcomes["suppressed"].inc(rows)

    def watch_suppressed(self, size: Callable[[], float]) -> None:
        """Read the suppression-list gauge (ids listed) from a callable at every scrape."""
        self.suppressed_ids.set_function(size)

    def observe_insert(self, table: str, rows: int, seconds: float) -> None:
        """Record one successful insert: its size and how long it took."""
        self.insert_rows.labels(table).observe(rows)
        self.insert_seconds.labels(table).observe(seconds)
        self.inserted.labels(table).inc(rows)

    def store_error(self, kind: str) -> None:
        """Count a failed store operation: ``unavailable`` (will be retried) or ``refused`` (bad data)."""
        self.store_errors.labels(kind).inc()

    def auth_failed(self, kind: str) -> None:
        """Count a failed authentication (``write``, ``read``, ``admin`` or ``dashboard``)."""
        self.auth_failures.labels(kind).inc()

    def query_done(self, key: str, outcome: str) -> None:
        """Count an analyst's query by the name of its key and its outcome."""
        self.queries.labels(key, outcome).inc()

    def store_retry(self, code: int | None) -> None:
        """Count one retried store operation by its ClickHouse error code (``network`` when there was none)."""
        self.store_retries.labels(str(code) if code is not None else "network").inc()

    def rows_parked(self, table: str, rows: int) -> None:
        """Count rows the store refused as bad data and that were kept aside (dead letters or quarantine)."""
        self.parked.labels(table).inc(rows)

    def watch_pending(self, rows: Callable[[], float]) -> None:
        """Read the pending-row gauge from a callable at every scrape."""
        self.pending.set_function(rows)

    def watch_spool(self, size: Callable[[], float]) -> None:
        """Read the spool-size gauge (bytes) from a callable at every scrape."""
        self.spool_bytes.set_function(size)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (collector.edge.middleware, collector.edge.pixel)."""
        self.requests.observe(route, method, status, seconds)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

"""The request metrics (RequestMetrics) show what prometheus-client's Counter and Histogram would show."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from collector.metrics import REQUEST_BUCKETS, Metrics
from tests.production.test_metrics import parse

OBSERVED = [("/p.gif", "GET", 200, 0.0001), ("/p.gif", "GET", 200, 0.0005), ("/p.gif", "HEAD", 200, 0.003),
            ("/v1/batch", "POST", 200, 0.02), ("/v1/batch", "POST", 400, 0.0011), ("unmatched", "other", 405, 7.5),
            ("unmatched", "GET", 404, 5.0)]


def _without_created(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {key: value for key, value in parse(text).items() if not key[0].endswith("_created")}


def test_the_exposition_is_prometheus_clients() -> None:
    registry = CollectorRegistry()
    requests = Counter("reise_http_requests", "HTTP requests answered, by route, method and status",
                       ["route", "method", "status"], registry=registry)
    seconds = Histogram("reise_http_request_duration_seconds", "Time to answer a request, by route", ["route"],
                        buckets=REQUEST_BUCKETS, registry=registry)
    metrics = Metrics()
    for route, method, status, took in OBSERVED:
        requests.labels(route, method, str(status)).inc()
        seconds.labels(route).observe(took)
        metrics.observe_request(route, method, status, took)
    theirs = generate_latest(registry).decode()
    mine = "\n".join(line for line in metrics.render().decode().splitlines()
                     if "reise_http_request" in line) + "\n"
    assert _without_created(mine) == _without_created(theirs)
    # the same lines in the same order, _created samples (times) included
    assert [line.rpartition(" ")[0] for line in mine.splitlines()] == \
        [line.rpartition(" ")[0] for line in theirs.splitlines()]

"""/metrics on a real collector, and the metric objects the batcher and spool report through."""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.metrics import MAX_REASONS, Metrics, reason_label
from tests.helpers import Collector, http

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Prometheus text -> {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(collector: Collector) -> Samples:
    """GET /metrics from the collector and parse it."""
    reply = http("GET", collector.url + "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert isinstance(reply.body, bytes)
    return parse(reply.body.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_and_events_are_counted(collector: Collector) -> None:
    before = scrape(collector)
    tag = uuid.uuid4().hex
    batch = [
        {"type": "track", "event": "Product Viewed", "userId": f"m-{tag}", "messageId": f"m1-{tag}"},
        {"type": "track", "event": "Product Viewed", "userId": f"m-{tag}", "messageId": f"m2-{tag}"},
        {"type": "track", "event": "Product Viewed", "userId": f"m-{tag}", "messageId": f"m2-{tag}"},
        {"type": "track", "event": "Product Viewed", "userId": f"m-{tag}", "channel": "carrier-pigeon"},
        {"type": "track", "userId": f"m-{tag}"},
    ]
    answer = collector.post("/v1/batch", {"batch": batch})
    assert answer.status == 200 and answer.body["accepted"] == 2
    assert collector.post("/v1/batch", {"batch": batch[:1]}, key="wk_nobody").status == 401
    assert http("GET", collector.url + "/no/such/page").status == 404
    after = scrape(collector)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("reise_events_total", outcome="accepted") == 2
    assert delta("reise_events_total", outcome="duplicate") == 1
    assert delta("reise_events_total", outcome="rejected") == 2
    assert delta("reise_events_rejected_total", reason="channel") == 1
    assert delta("reise_events_rejected_total", reason="event") == 1
    assert delta("reise_http_requests_total", route="/v1/batch", method="POST", status="200") == 1
    assert delta("reise_http_requests_total", route="/v1/batch", method="POST", status="401") == 1
    assert delta("reise_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("reise_http_request_duration_seconds_count", route="/v1/batch") == 2
    assert ("reise_pending_rows", frozenset()) in after


def test_the_metrics_endpoint_counts_itself(collector: Collector) -> None:
    first = value(scrape(collector), "reise_http_requests_total", route="/metrics", method="GET", status="200")
    second = value(scrape(collector), "reise_http_requests_total", route="/metrics", method="GET", status="200")
    assert second == first + 1


def test_inserts_and_store_errors_render_for_prometheus() -> None:
    metrics = Metrics()
    metrics.observe_insert("touchpoints", 5_000, 0.04)
    metrics.observe_insert("touchpoints", 20_000, 0.2)
    metrics.store_error("unavailable")
    metrics.watch_spool(lambda: 4096.0)
    metrics.watch_pending(lambda: 12.0)
    samples = parse(metrics.render().decode())
    assert value(samples, "reise_inserted_rows_total", table="touchpoints") == 25_000
    assert value(samples, "reise_insert_rows_count", table="touchpoints") == 2
    assert value(samples, "reise_insert_rows_bucket", table="touchpoints", le="10000.0") == 1
    assert value(samples, "reise_insert_duration_seconds_sum", table="touchpoints") == pytest.approx(0.24)
    assert value(samples, "reise_store_errors_total", kind="unavailable") == 1
    assert value(samples, "reise_spool_bytes") == 4096
    assert value(samples, "reise_pending_rows") == 12


def test_each_application_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.record_events(3, 0, [])
    assert value(parse(one.render().decode()), "reise_events_total", outcome="accepted") == 3
    assert value(parse(two.render().decode()), "reise_events_total", outcome="accepted") == 0


def test_rejection_reasons_are_bounded_labels() -> None:
    assert reason_label("timestamp: more than a day in the future") == "timestamp"
    assert reason_label("userId or anonymousId: one of them is required") == "userId or anonymousId"
    assert reason_label("properties.revenue: expected a number") == "properties.revenue"
    assert reason_label("no colon but far too long to be a field name, surely") == "other"
    assert reason_label("{'weird': 1}: x") == "other"
    metrics = Metrics()
    metrics.record_events(0, 0, [f"field{i}: bad" for i in range(MAX_REASONS + 10)])
    reasons = {dict(labels)["reason"] for (name, labels) in parse(metrics.render().decode())
               if name == "reise_events_rejected_total"}
    assert len(reasons) == MAX_REASONS + 1 and "other" in reasons


def test_inserts_are_observed_by_the_running_collector(collector: Collector) -> None:
    before = scrape(collector)
    tag = uuid.uuid4().hex
    batch = [{"type": "track", "event": "Product Viewed", "userId": f"ins-{tag}"} for _ in range(7)]
    assert collector.post("/v1/batch", {"batch": batch}).body["accepted"] == 7
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 7, {"u": f"ins-{tag}"})
    deadline = time.monotonic() + 10
    while True:  # the insert is counted once the writer thread hands it back, just after the rows show
        after = scrape(collector)
        inserted = value(after, "reise_inserted_rows_total", table="touchpoints") - value(
            before, "reise_inserted_rows_total", table="touchpoints")
        if inserted >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert inserted >= 7
    assert value(after, "reise_insert_duration_seconds_count", table="touchpoints") > value(
        before, "reise_insert_duration_seconds_count", table="touchpoints")
    assert ("reise_spool_bytes", frozenset()) in after

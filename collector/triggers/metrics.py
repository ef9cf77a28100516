"""The triggers' Prometheus metrics, registered in the collector's registry (collector.metrics.Metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["TriggerMetrics"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class TriggerMetrics:
    """Deliveries by outcome, failures, outbox depth, latency, transitions and segment changes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter("reise_trigger_deliveries", "Webhook attempts, by trigger and outcome: delivered, "
                                  "retry (failed, will be retried), parked (failed for good) or refused "
                                  "(destination not allowed, or a redirect)", ["trigger", "outcome"],
                                  registry=registry)
        self.failures = Counter("reise_trigger_failures", "Webhook attempts that failed, by trigger",
                                ["trigger"], registry=registry)
        self.pending = Gauge("reise_trigger_outbox_pending", "Transitions in the outbox waiting to be delivered",
                             registry=registry)
        self.parked = Gauge("reise_trigger_outbox_parked", "Deliveries parked after too many failures "
                            "(reise triggers failed / replay)", registry=registry)
        self.latency = Histogram("reise_trigger_delivery_seconds", "From a transition entering the outbox to its "
                                 "delivery, by trigger", ["trigger"], buckets=LATENCY_BUCKETS, registry=registry)
        self.transitions = Counter("reise_trigger_transitions", "Transitions queued for delivery, by trigger",
                                   ["trigger"], registry=registry)
        self.segment_changes = Counter("reise_segment_changes", "Customers entering or leaving segments, by "
                                       "segment and change", ["segment", "change"], registry=registry)

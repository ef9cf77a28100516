"""Delivery against a real, misbehaving HTTP server on a loopback port."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reise

from .conftest import WRITE_KEY, FakeCollector

FAST = {"flush_interval": 0.05, "backoff_base": 0.05, "max_backoff": 0.3, "timeout": 2.0}


class Errors:
    """An on_error callback that keeps what it was given."""

    def __init__(self) -> None:
        self.items: list[reise.DeliveryError] = []
        self.lock = threading.Lock()

    def __call__(self, err: reise.DeliveryError) -> None:
        with self.lock:
            self.items.append(err)

    def of(self, kind: type[reise.DeliveryError]) -> list[Any]:
        with self.lock:
            return [e for e in self.items if isinstance(e, kind)]


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def client(fake: FakeCollector, errors: Errors) -> Iterator[reise.Client]:
    c = reise.Client(WRITE_KEY, fake.url, on_error=errors, **FAST)  # type: ignore[arg-type]
    yield c
    c.shutdown(5)


def test_every_call_type_is_sent_with_its_fields(fake: FakeCollector) -> None:
    with reise.Client(WRITE_KEY, fake.url, channel="pos", store_id="S-7",
                      context={"app": {"name": "till"}}, **FAST) as c:  # type: ignore[arg-type]
        ids = {
            "track": c.track("u1", "Product Viewed", {"sku": "A"}, stage="consideration",
                             campaign="spring"),
            "identify": c.identify("u1", {"email": "a@b.c"}, anonymous_id="anon-1"),
            "alias": c.alias("anon-1", "u1"),
            "page": c.page(None, "Docs", "Home", {"path": "/"}, anonymous_id="anon-1",
                           channel="web"),
            "purchase": c.purchase("O-1", 59.9, "EUR", items=[{"sku": "A", "qty": 1}],
                                   user_id="u1"),
        }
        assert c.flush(10)
    ev = {k: fake.events[v] for k, v in ids.items()}
    for name, e in ev.items():
        assert e["messageId"] == ids[name]
        assert e["timestamp"].endswith("+00:00")
        assert e["context"]["library"] == {"name": "reise-python", "version": reise.__version__}
        assert e["context"]["app"] == {"name": "till"}
        assert e["store_id"] == "S-7"
    assert ev["track"]["type"] == "track" and ev["track"]["event"] == "Product Viewed"
    assert ev["track"]["properties"] == {"sku": "A"}
    assert ev["track"]["stage"] == "consideration" and ev["track"]["campaign"] == "spring"
    assert ev["track"]["channel"] == "pos" and ev["track"]["userId"] == "u1"
    assert ev["identify"]["type"] == "identify" and ev["identify"]["traits"] == {"email": "a@b.c"}
    assert ev["identify"]["anonymousId"] == "anon-1"
    assert ev["alias"]["type"] == "alias" and ev["alias"]["previousId"] == "anon-1"
    assert ev["alias"]["userId"] == "u1"
    assert ev["page"]["type"] == "page" and ev["page"]["name"] == "Home"
    assert ev["page"]["channel"] == "web" and "userId" not in ev["page"]
    assert ev["page"]["properties"] == {"path": "/", "category": "Docs"}
    p = ev["purchase"]
    assert (p["type"], p["event"], p["stage"], p["channel"]) == (
        "track", "Order Completed", "purchase", "pos")
    assert p["properties"] == {"order_id": "O-1", "revenue": 59.9, "currency": "EUR",
                               "products": [{"sku": "A", "qty": 1}], "store_id": "S-7"}
    sent = [r for r in fake.requests if r["status"] == 200]
    assert all(r["path"] == "/v1/batch" and r["encoding"] == "gzip" for r in sent)
    assert all(r["sentAt"] and r["sentAt"].endswith("+00:00") for r in sent)


def test_batches_respect_count_and_byte_limits(fake: FakeCollector) -> None:
    with reise.Client(WRITE_KEY, fake.url, batch_size=100, **FAST) as c:  # type: ignore[arg-type]
        for i in range(1000):
            c.track("u", "Big", {"i": i, "blob": "x" * 2000})  # ~2.2 KB each
        assert c.flush(30)
    assert len(fake.events) == 1000
    counts = [r["count"] for r in fake.requests]
    assert max(counts) <= 100
    assert max(r["body_bytes"] for r in fake.requests) <= 500 * 1024
    assert all(r["raw_bytes"] < r["body_bytes"] for r in fake.requests)  # gzip did something


def test_burst_of_100k_with_defaults_loses_nothing(fake: FakeCollector) -> None:
    with reise.Client(WRITE_KEY, fake.url) as c:
        for i in range(100_000):
            c.track("burst-user", "Burst", {"i": i})
        assert c.flush(120)
        stats = c.stats()
    assert len(fake.events) == 100_000
    assert stats["delivered"] == 100_000 and stats["dropped"] == 0
    assert sorted(e["properties"]["i"] for e in fake.events.values()) == list(range(100_000))


def test_5xx_and_network_errors_are_retried(fake: FakeCollector, client: reise.Client) -> None:
    fake.script.extend([("status", 500), ("status", 502), ("drop",), ("status", 503),
                        ("status", 408)])
    mid = client.track("u", "Retried")
    assert client.flush(30)
    assert mid in fake.events
    assert fake.statuses()[:6] == [500, 502, 0, 503, 408, 200]
    assert fake.seen[mid] == 1
    assert client.stats()["retries"] >= 4


def test_429_retry_after_is_honoured(fake: FakeCollector, client: reise.Client) -> None:
    fake.script.append(("status", 429, 1))
    mid = client.track("u", "Throttled")
    assert client.flush(30)
    assert mid in fake.events
    first, second = fake.requests[0], fake.requests[1]
    assert (first["status"], second["status"]) == (429, 200)
    # The client must not come back before the server said it may (a lower bound only).
    assert second["time"] - first["time"] >= 0.95


def test_server_that_accepts_and_never_answers(fake: FakeCollector, errors: Errors) -> None:
    fake.script.append(("hang",))
    with reise.Client(WRITE_KEY, fake.url, on_error=errors,
                      **{**FAST, "timeout": 0.5}) as c:  # type: ignore[arg-type]
        mid = c.track("u", "Patient")
        assert c.flush(30)
    assert mid in fake.events
    assert fake.statuses()[0] == 0 and 200 in fake.statuses()
    assert errors.items == []


def test_slow_server_does_not_slow_the_caller_or_lose_events(fake: FakeCollector) -> None:
    fake.script.extend([("slow", 0.5)] * 3)
    with reise.Client(WRITE_KEY, fake.url, batch_size=50, **FAST) as c:  # type: ignore[arg-type]
        for i in range(500):
            c.track("u", "Slow", {"i": i})
        assert c.flush(60)
    assert len(fake.events) == 500


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried_and_reported(fake: FakeCollector, errors: Errors,
                                                client: reise.Client, status: int) -> None:
    fake.script.append(("status", status))
    mid = client.track("u", "Refused")
    assert client.flush(10)
    client.track("u", "After")
    assert client.flush(10)
    assert fake.statuses() == [status, 200]
    (err,) = errors.of(reise.BatchRejected)
    assert err.status == status and err.events[0]["messageId"] == mid
    assert f"HTTP {status}" in err.reason and f"scripted {status}" in err.reason
    assert mid not in fake.events


def test_wrong_write_key_is_reported_not_retried(fake: FakeCollector, errors: Errors) -> None:
    with reise.Client("wk_wrong", fake.url, on_error=errors, **FAST) as c:  # type: ignore[arg-type]
        c.track("u", "E")
        assert c.flush(10)
    assert fake.statuses() == [401]
    assert errors.of(reise.BatchRejected)[0].status == 401


def test_partial_rejects_go_to_on_error_with_reason(fake: FakeCollector, errors: Errors,
                                                    client: reise.Client) -> None:
    fake.reject = lambda ev: "field revenue: negative" if ev["properties"]["n"] % 3 == 0 else None
    mids = [client.track("u", "Mixed", {"n": n}) for n in range(30)]
    assert client.flush(10)
    rejected = errors.of(reise.EventRejected)
    assert sorted(e.message_id for e in rejected) == sorted(mids[::3])
    assert all(e.reason == "field revenue: negative" for e in rejected)
    assert all(e.event["properties"]["n"] % 3 == 0 for e in rejected)
    assert set(fake.events) == {m for i, m in enumerate(mids) if i % 3}
    assert len(fake.requests) == 1  # rejected events are not retried
    stats = client.stats()
    assert (stats["rejected"], stats["delivered"]) == (10, 20)


def test_413_is_split_in_halves(fake: FakeCollector) -> None:
    fake.script.append(("status", 413))
    with reise.Client(WRITE_KEY, fake.url, **FAST) as c:  # type: ignore[arg-type]
        for i in range(10):
            c.track("u", "Split", {"i": i})
        assert c.flush(10)
    assert len(fake.events) == 10
    assert fake.statuses()[0] == 413


def test_outage_then_recovery_loses_nothing(fake: FakeCollector) -> None:
    fake.stop()
    with reise.Client(WRITE_KEY, fake.url, **FAST) as c:  # type: ignore[arg-type]
        for i in range(2000):
            c.track("u", "Outage", {"i": i})
        assert not c.flush(1.0)  # down: flush gives up in time, the events stay queued
        fake.start()
        assert c.flush(60)
    assert len(fake.events) == 2000


def test_overflow_drops_are_explicit_and_logged_once(
        fake: FakeCollector, errors: Errors, caplog: pytest.LogCaptureFixture) -> None:
    fake.stop()
    caplog.set_level(logging.WARNING, logger="reise")
    c = reise.Client(WRITE_KEY, fake.url, max_queue_size=100, on_error=errors,
                     **FAST)  # type: ignore[arg-type]
    try:
        mids = [c.track("u", "Overflow", {"i": i}) for i in range(1000)]
        full = [r for r in caplog.records if "queue full" in r.getMessage()]
        assert len(full) == 1  # once per incident, not once per event
        fake.start()
        assert c.flush(30)
        c.track("u", "AfterOverflow")  # room again: the incident ends and is summarised
        assert c.flush(30)
    finally:
        c.shutdown(5)
    delivered = set(fake.events)
    assert len(delivered & set(mids)) <= 100 + 500  # queue bound plus one in-flight batch
    assert set(mids[:100]) <= delivered  # drop_newest keeps the oldest
    (dropped,) = errors.of(reise.EventsDropped)
    assert dropped.count == 1000 - len(delivered & set(mids))
    assert c.stats()["dropped"] == dropped.count
    ended = [r for r in caplog.records if "events dropped over" in r.getMessage()]
    assert len(ended) == 1


def test_drop_oldest_keeps_the_newest(fake: FakeCollector) -> None:
    fake.stop()
    c = reise.Client(WRITE_KEY, fake.url, max_queue_size=50, overflow="drop_oldest",
                     batch_size=10, **FAST)  # type: ignore[arg-type]
    try:
        mids = [c.track("u", "Oldest", {"i": i}) for i in range(500)]
        fake.start()
        assert c.flush(30)
    finally:
        c.shutdown(5)
    assert set(mids[-50:]) <= set(fake.events)
    assert len(fake.events) <= 50 + 10


def test_on_error_that_raises_does_not_hurt(fake: FakeCollector,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def bad_callback(err: reise.DeliveryError) -> None:
        raise RuntimeError("callback bug")

    fake.reject = lambda ev: "nope" if ev["event"] == "Bad" else None
    with reise.Client(WRITE_KEY, fake.url, on_error=bad_callback,
                      **FAST) as c:  # type: ignore[arg-type]
        c.track("u", "Bad")
        c.track("u", "Good")
        assert c.flush(10)
        c.track("u", "StillWorking")
        assert c.flush(10)
    assert sorted(e["event"] for e in fake.events.values()) == ["Good", "StillWorking"]
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # logs go through logging only, never printed


def test_undelivered_at_shutdown_are_reported(dead_url: str, errors: Errors) -> None:
    c = reise.Client(WRITE_KEY, dead_url, on_error=errors, **FAST)  # type: ignore[arg-type]
    for i in range(10):
        c.track("u", "Lost", {"i": i})
    assert c.shutdown(0.5) is False
    (err,) = errors.of(reise.EventsDropped)
    assert err.count == 10
    c.track("u", "AfterShutdown")  # ignored with a warning, never raises
    assert c.stats()["dropped"] == 11


def test_max_retries_gives_up_and_reports(dead_url: str, errors: Errors) -> None:
    c = reise.Client(WRITE_KEY, dead_url, on_error=errors, max_retries=2,
                     **FAST)  # type: ignore[arg-type]
    try:
        mid = c.track("u", "GiveUp")
        assert c.flush(30)  # finished: given up
    finally:
        c.shutdown(1)
    (err,) = errors.of(reise.EventsDropped)
    assert err.events[0]["messageId"] == mid and "gave up after 3 attempts" in err.reason


def test_stdlib_json_backend_sends_the_same_shape(fake: FakeCollector, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys, reise, datetime as dt\n"
        "from reise import _json\n"
        "assert _json.backend == 'json', _json.backend\n"
        "with reise.Client(sys.argv[1], sys.argv[2], flush_interval=0.05) as c:\n"
        "    c.track('u', 'Std', {'d': dt.date(2024, 1, 2)},\n"
        "            timestamp=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))\n"
        "    c.purchase('O', 1.5, 'usd', user_id='u')\n"
        "    assert c.flush(10)\n"
    )
    env = {**os.environ, "REISE_NO_ORJSON": "1"}
    subprocess.run([sys.executable, "-c", script, WRITE_KEY, fake.url], env=env, check=True,
                   timeout=60)
    std = next(e for e in fake.events.values() if e["event"] == "Std")
    assert std["timestamp"] == "2024-01-02T03:04:05+00:00"
    assert std["properties"] == {"d": "2024-01-02"}
    assert json.loads(json.dumps(std))["context"]["library"]["name"] == "reise-python"
    assert any(e["event"] == "Order Completed" for e in fake.events.values())
    assert gzip  # the module is used by the fake server's decoding


def test_block_policy_waits_for_room_then_delivers(fake: FakeCollector) -> None:
    fake.script.extend([("slow", 0.2)] * 3)
    with reise.Client(WRITE_KEY, fake.url, max_queue_size=20, overflow="block", batch_size=10,
                      block_timeout=30, **FAST) as c:  # type: ignore[arg-type]
        mids = [c.track("u", "Blocking", {"i": i}) for i in range(200)]
        assert c.flush(30)
        assert c.stats()["dropped"] == 0
    assert set(mids) == set(fake.events)


def test_overflow_still_open_at_shutdown_is_reported(dead_url: str, errors: Errors) -> None:
    c = reise.Client(WRITE_KEY, dead_url, max_queue_size=10, on_error=errors,
                     **FAST)  # type: ignore[arg-type]
    for i in range(100):
        c.track("u", "Full", {"i": i})
    c.shutdown(0.2)
    dropped = errors.of(reise.EventsDropped)
    assert sum(e.count for e in dropped) == 100  # overflow incident plus undelivered queue
    assert any("queue overflow" in e.reason for e in dropped)


def test_unusable_spool_path_is_a_configuration_error(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(reise.ConfigurationError, match="cannot open spool"):
        reise.Client(WRITE_KEY, "http://127.0.0.1:1", spool_path=blocker / "spool.db")


def test_log_handler_that_tracks_does_not_deadlock(dead_url: str) -> None:
    c = reise.Client(WRITE_KEY, dead_url, max_queue_size=5, **FAST)  # type: ignore[arg-type]

    class Tracking(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            c.track("ops", "Reise Log", {"msg": record.getMessage()})

    handler = Tracking()
    logger = logging.getLogger("reise")
    logger.addHandler(handler)
    try:
        for i in range(20):  # overflows: the warning is emitted while the caller tracks
            c.track("u", "Overflow", {"i": i})
        assert c.stats()["dropped"] >= 15
    finally:
        logger.removeHandler(handler)
        c.shutdown(0.2)

"""Bad input: clear errors naming the field, rejected events kept as dead letters, never a 500."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import pytest

from tests.helpers import Collector, http


def dead_letters(collector: Collector, marker: str) -> list[dict[str, Any]]:
    """Dead letters whose payload mentions ``marker``."""
    return collector.query(
        "SELECT batch_index, reason, endpoint, source, payload FROM dead_letters"
        " WHERE position(payload, {m:String}) > 0 ORDER BY batch_index", {"m": marker})


def test_malformed_json_is_400_with_reason(collector: Collector) -> None:
    reply = collector.post("/v1/batch", raw=b'{"batch": [', headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.body["error"].startswith("body: invalid JSON")
    for raw, expected in [(b"", "body: empty"), (b"[1,2]", "body: expected a JSON object"),
                          (b'{"batch": {}}', "batch: expected a list"), (b'{"batch": []}', "batch: empty"),
                          (b"\xff\xfe{}", "body: invalid JSON")]:
        reply = collector.post("/v1/batch", raw=raw)
        assert reply.status == 400, raw
        assert reply.body["error"].startswith(expected), (raw, reply.body)


def test_batch_with_invalid_events_stores_the_valid_ones(collector: Collector) -> None:
    marker = uuid.uuid4().hex
    good = {"type": "track", "userId": f"ok-{marker}", "event": "Product Viewed", "properties": {"m": marker}}
    batch = [
        good,
        {"type": "track", "userId": f"u-{marker}", "properties": {"m": marker}},  # no event name
        {"type": "track", "event": "Product Viewed", "properties": {"m": marker}},  # no id
        {"type": "track", "userId": f"u-{marker}", "event": "X", "channel": "fax", "properties": {"m": marker}},
        {"type": "track", "userId": f"u-{marker}", "event": "X", "stage": "bliss", "properties": {"m": marker}},
        {"type": "track", "userId": f"u-{marker}", "event": "X", "timestamp": "yesterday",
         "properties": {"m": marker}},
        {"type": "track", "userId": f"u-{marker}", "event": "X", "properties": {"m": marker, "revenue": "lots"}},
        {"type": "track", "userId": f"u-{marker}", "event": "X", "properties": [marker]},
        {"type": "launch", "userId": f"u-{marker}", "properties": {"m": marker}},
        {"type": "track", "userId": f"u-{marker}", "event": "X", "timestamp": "2999-01-01T00:00:00Z",
         "properties": {"m": marker}},
        f"not an object {marker}",
    ]
    reply = collector.post("/v1/batch", {"batch": batch})
    assert reply.status == 200
    assert reply.body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in reply.body["rejected"]}
    assert sorted(reasons) == list(range(1, len(batch)))
    expected_fields = {1: "event:", 2: "userId or anonymousId", 3: "channel:", 4: "stage:", 5: "timestamp:",
                       6: "properties.revenue:", 7: "properties:", 8: "type:", 9: "timestamp:", 10: "event:"}
    for index, prefix in expected_fields.items():
        assert reasons[index].startswith(prefix), (index, reasons[index])
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1,
                       {"u": f"ok-{marker}"})
    count_sql = "SELECT count() FROM dead_letters WHERE position(payload, {m:String}) > 0"
    collector.wait_for(count_sql, len(batch) - 1, {"m": marker})
    rows = dead_letters(collector, marker)
    assert [r["batch_index"] for r in rows] == list(range(1, len(batch)))
    assert all(r["reason"] == reasons[r["batch_index"]] for r in rows)
    assert {r["source"] for r in rows} == {"test"}


def test_single_event_endpoint_rejects_with_400(collector: Collector) -> None:
    reply = collector.post("/v1/track", {"userId": "u", "event": ""})
    assert reply.status == 400
    assert reply.body["error"].startswith("event:")
    reply = collector.post("/v1/alias", {"userId": "u"})
    assert reply.status == 400
    assert "previousId" in reply.body["error"]


def test_size_limits_are_413(collector: Collector) -> None:
    big = "x" * (33 * 1024)
    reply = collector.post("/v1/track", {"userId": "u", "event": "Big", "properties": {"blob": big}})
    assert reply.status == 413
    assert "body" in reply.body["error"]
    # inside a batch an oversized event is rejected alone (issue 14), the rest stored
    reply = collector.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "B",
                                                     "properties": {"blob": big}}]})
    assert reply.status == 200
    assert reply.body["rejected"][0]["reason"].startswith("event: ") and "larger than 32768" in \
        reply.body["rejected"][0]["reason"]
    events = [{"type": "track", "userId": "u", "event": "B", "properties": {"blob": "y" * 200_000}}] * 25
    reply = collector.post("/v1/batch", {"batch": events})  # 5 MB: past REISE_MAX_BODY_BYTES (4 MiB)
    assert reply.status == 413
    # the limit holds for the decompressed size too
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    reply = collector.post("/v1/batch", raw=bomb, headers={"Content-Encoding": "gzip"})
    assert reply.status == 413


def test_request_level_rejections_from_a_known_source_are_kept(collector: Collector) -> None:
    marker = uuid.uuid4().hex
    assert collector.post("/v1/batch", raw=f'{{"batch": "{marker}'.encode()).status == 400
    collector.wait_for("SELECT count() FROM dead_letters WHERE position(payload, {m:String}) > 0", 1, {"m": marker})
    [row] = dead_letters(collector, marker)
    assert row["batch_index"] == -1
    assert row["endpoint"] == "batch"
    assert row["reason"].startswith("body: invalid JSON")
    assert row["payload"] == f'{{"batch": "{marker}'


@pytest.mark.parametrize(("body", "expected"), [
    (b"\x1f\x8b\x08garbage", "body: invalid gzip data"),
    (b"\x1f\x8b", "body: truncated gzip data"),
    (gzip.compress(b'{"batch": [1, 2, 3]}')[:-12], "body: truncated gzip data"),
])
def test_corrupt_gzip_is_400(collector: Collector, body: bytes, expected: str) -> None:
    reply = collector.post("/v1/batch", raw=body, headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert reply.body["error"].startswith(expected)


def test_unknown_paths_and_methods_are_4xx(collector: Collector) -> None:
    assert http("GET", collector.url + "/v1/batch").status == 405
    assert http("GET", collector.url + "/nope").status == 404

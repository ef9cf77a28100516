"""IP truncation, consent, per-key rate limits."""

from __future__ import annotations

import uuid
from pathlib import Path

from collector.ingest.protocol import anonymise_ip
from tests.helpers import Collector


def test_ip_policy() -> None:
    assert anonymise_ip("203.0.113.77", "truncate") == "203.0.113.0"
    assert anonymise_ip("2001:db8:85a3:8d3:1319:8a2e:370:7348", "truncate") == "2001:db8:85a3::"
    assert anonymise_ip("203.0.113.77", "keep") == "203.0.113.77"
    assert anonymise_ip("203.0.113.77", "drop") == ""
    assert anonymise_ip("not-an-ip", "truncate") == ""


def test_ips_are_truncated_and_refused_consent_is_not_stored(collector: Collector) -> None:
    user = f"priv-{uuid.uuid4().hex[:10]}"
    reply = collector.post("/v1/batch", {"batch": [
        {"type": "track", "userId": user, "event": "Product Viewed", "context": {"ip": "198.51.100.23"}},
        {"type": "track", "userId": user, "event": "Product Viewed", "context": {"consent": False}},
        {"type": "track", "userId": user, "event": "Product Viewed", "context": {"consent": {"analytics": False}}},
        {"type": "track", "userId": user, "event": "Product Viewed", "context": {"consent": {"analytics": True}}},
    ]})
    assert reply.status == 200
    assert (reply.body["accepted"], reply.body["without_consent"], reply.body["rejected"]) == (2, 2, [])
    collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 2, {"u": user})
    assert sorted(r["ip"] for r in collector.query(
        "SELECT ip FROM touchpoints WHERE customer_id = {u:String}", {"u": user})) == ["127.0.0.0", "198.51.100.0"]
    # (without context.ip the connection's address is used, truncated as any other: issue 14)
    assert collector.scalar("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", {"u": user}) == 0


def test_public_key_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    # A limit of 200 events/s holds a second's worth: the first 200 drain it, the next 200 need a whole second
    # to come back, far longer than a request of 200 small events takes even on a busy machine.
    anon = f"rl-{uuid.uuid4().hex[:10]}"
    batch = [{"type": "page", "anonymousId": anon, "channel": "web", "messageId": f"{anon}-{i}"} for i in range(200)]
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_PUBLIC_RATE_LIMIT": "200"}) as collector:
        first = collector.post("/v1/batch", {"batch": batch}, key="pk_site")
        second = collector.post("/v1/batch", {"batch": batch}, key="pk_site")
        assert first.status == 200  # within the public limit
        assert second.status == 429
        assert int(second.headers["Retry-After"]) >= 1
        assert "rate limit" in second.body["error"]
        # secret keys have their own, higher limit
        assert collector.post("/v1/batch", {"batch": batch}).status == 200

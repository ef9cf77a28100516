"""Wire compatibility over raw HTTP: what the Node clients send, batch-level fields, bodies, IPs (issue 14)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

from tests.compat.conftest import TRUSTED_PROXY, post_from, rows
from tests.helpers import Collector


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_original_timestamp_is_used_and_corrected_by_sent_at(compat: Collector) -> None:
    """rudder-sdk-node sends only originalTimestamp; a client clock an hour ahead is corrected by sentAt."""
    user, now = f"ot-{uuid.uuid4().hex[:10]}", datetime.now(UTC)
    ahead = now + timedelta(hours=1)
    batch = [
        {"type": "track", "event": "Old", "userId": user, "originalTimestamp": "2012-05-01T10:00:00.000Z"},
        {"type": "track", "event": "Skewed", "userId": user, "originalTimestamp": _iso(ahead - timedelta(seconds=60))},
    ]
    reply = compat.post("/v1/batch", {"batch": batch, "sentAt": _iso(ahead)})
    assert reply.status == 200 and reply.body["rejected"] == []
    found = rows(compat, "customer_id = {u:String}", {"u": user}, 2,
                 "event, toUnixTimestamp64Milli(timestamp) AS ms")
    old, skewed = found
    assert old["event"] == "Old" and abs(old["ms"] - int((datetime(2012, 5, 1, 10, tzinfo=UTC) - timedelta(hours=1))
                                                      .timestamp() * 1000)) < 30_000
    assert skewed["event"] == "Skewed" and abs(skewed["ms"] / 1000 - (now.timestamp() - 60)) < 30


def test_batch_context_and_integrations_apply_to_each_event_and_the_event_wins(compat: Collector) -> None:
    user = f"bc-{uuid.uuid4().hex[:10]}"
    body = {"batch": [{"type": "track", "event": "A", "userId": user},
                      {"type": "track", "event": "B", "userId": user,
                       "context": {"locale": "fr-FR"}, "integrations": {"All": True}}],
            "context": {"locale": "de-DE", "channel": "pos", "device": {"type": "android"}},
            "integrations": {"All": False, "Mixpanel": True}}
    assert compat.post("/v1/batch", body).body["rejected"] == []
    a, b = sorted(rows(compat, "customer_id = {u:String}", {"u": user}, 2, "event, locale, channel, integrations"),
                  key=lambda r: str(r["event"]))
    assert a == {"event": "A", "locale": "de-DE", "channel": "pos",
                 "integrations": {"All": "false", "Mixpanel": "true"}}
    assert b == {"event": "B", "locale": "fr-FR", "channel": "pos",
                 "integrations": {"All": "true", "Mixpanel": "true"}}


def test_channel_order_properties_then_context_then_the_keys_single_channel(compat: Collector) -> None:
    user = f"ch-{uuid.uuid4().hex[:10]}"
    batch = [
        {"type": "track", "event": "p", "userId": user, "channel": "server", "properties": {"channel": "sms"},
         "context": {"channel": "email"}},
        {"type": "track", "event": "c", "userId": user, "channel": "server", "context": {"channel": "email"}},
        {"type": "track", "event": "w", "userId": user, "context": {"channel": "web"}},
        {"type": "track", "event": "m", "userId": user, "channel": "mobile"},
        {"type": "track", "event": "n", "userId": user, "properties": {"channel": "youtube"}},
    ]
    assert compat.post("/v1/batch", {"batch": batch}).body["rejected"] == []
    found = {r["event"]: r["channel"] for r in rows(compat, "customer_id = {u:String}", {"u": user}, 5,
                                                     "event, channel")}
    assert found == {"p": "sms", "c": "email", "w": "web", "m": "app", "n": "other"}
    till = f"till-{uuid.uuid4().hex[:8]}"
    reply = compat.post("/v1/batch", {"batch": [{"type": "track", "event": "Sale", "userId": till,
                                                  "channel": "server"}]}, key="wk_till")
    assert reply.body["rejected"] == []
    assert rows(compat, "customer_id = {u:String}", {"u": till}, 1, "channel") == [{"channel": "pos"}]


def test_bodies_up_to_4_mb_are_accepted_gzip_included(compat: Collector) -> None:
    user = f"4mb-{uuid.uuid4().hex[:10]}"
    batch = [{"type": "track", "event": "Bulk", "userId": user, "messageId": f"{user}-{n}",
              "properties": {"pad": "z" * 2000}} for n in range(1500)]
    raw = json.dumps({"batch": batch}).encode()
    assert 2_900_000 < len(raw) < 4 * 1024 * 1024  # well past Segment's 500 KB
    reply = compat.post("/v1/batch", raw=raw)
    assert reply.status == 200 and reply.body["accepted"] == 1500
    packed = compat.post("/v1/batch", raw=gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert packed.status == 200 and packed.body["duplicates"] == 1500
    too_big = gzip.compress(b'{"batch": [' + b" " * (5 * 1024 * 1024) + b"]}")  # small on the wire
    refused = compat.post("/v1/batch", raw=too_big, headers={"Content-Encoding": "gzip"})
    assert refused.status == 413 and refused.body["code"] == "payload_too_large"
    assert refused.body["message"] == refused.body["error"]


def test_a_single_event_error_has_code_and_message(compat: Collector) -> None:
    reply = compat.post("/v1/track", {"userId": "x", "event": ""})
    assert reply.status == 400 and reply.body["code"] == "invalid_request" and reply.body["message"]
    unknown = compat.post("/v1/track", {"userId": "x", "event": "e"}, key="wk_nope")
    assert unknown.status == 401 and unknown.body["code"] == "unauthorized"


def test_the_ip_comes_from_the_connection_and_trusted_proxies_only(compat: Collector) -> None:
    user = f"ip-{uuid.uuid4().hex[:10]}"
    uk = "81.2.69.160"  # registered in the United Kingdom
    event = {"type": "track", "userId": user, "event": "x"}
    forwarded = {"X-Forwarded-For": f"203.0.113.9, {uk}"}
    assert compat.post("/v1/batch", {"batch": [{**event, "event": "proxied"}]}, headers=forwarded).status == 200
    assert compat.post("/v1/batch", {"batch": [{**event, "event": "rfc7239"}]},
                       headers={"Forwarded": f'for="{uk}:4711";proto=https'}).status == 200
    status, _ = post_from("127.0.0.2", compat.url + "/v1/batch", {"batch": [{**event, "event": "spoofed"}]},
                          key=compat.write_key, headers=forwarded)
    assert status == 200
    assert compat.post("/v1/batch", {"batch": [{**event, "event": "own",
                                                "context": {"ip": "2a00:1450:4001:82a::2004"}}]}).status == 200
    found = {r["event"]: (r["ip"], r["country"]) for r in rows(
        compat, "customer_id = {u:String}", {"u": user}, 4, "event, ip, country")}
    assert found["proxied"] == ("81.2.69.0", "GB")  # the place from the full address, the address truncated
    assert found["rfc7239"] == ("81.2.69.0", "GB")
    assert found["spoofed"] == ("127.0.0.0", "")  # 127.0.0.2 is no trusted proxy: its header is ignored
    assert found["own"][0] == "2a00:1450:4001::" and len(found["own"][1]) == 2
    assert TRUSTED_PROXY == "127.0.0.1"

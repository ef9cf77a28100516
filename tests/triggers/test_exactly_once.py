"""One transition, one delivery: duplicates, replays, out-of-order identities and a restart fire nothing twice."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.triggers.conftest import SECRET, started, trigger_env, trigger_file
from tests.triggers.receiver import Receiver

TRIGGERS = [
    {"name": "first_purchase", "when": {"enters_stage": "purchase", "first_time": True}},
    {"name": "considering", "when": {"enters_stage": "consideration"}},
]


def _event(mid: str, event: str, stage: str, seconds_ago: float, *, user: str = "", anon: str = "",
           kind: str = "track", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "messageId": mid, "event": event, "stage": stage, "channel": "web",
                            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - seconds_ago))
                            + "Z", **extra}
    if kind == "identify":
        body.pop("event"), body.pop("stage")
    if user:
        body["userId"] = user
    if anon:
        body["anonymousId"] = anon
    return body


def test_each_transition_is_delivered_once_whatever_happens_to_the_events(tmp_path: Path, receiver: Receiver) -> None:
    """Duplicates, a replayed batch, a late anonymous purchase folded in by identify, and a restart."""
    env = trigger_env(trigger_file(tmp_path / "triggers.json", receiver, TRIGGERS))
    collector = started(tmp_path, env)
    journey = [_event("x-m1", "Page Viewed", "awareness", 300, user="x-c1"),
               _event("x-m2", "Product Viewed", "consideration", 200, user="x-c1", campaign="spring"),
               _event("x-m3", "Order Completed", "purchase", 100, user="x-c1", revenue=40)]
    assert collector.post("/v1/batch", {"batch": journey}).status == 200
    assert collector.post("/v1/batch", {"batch": journey}).status == 200  # a duplicate batch
    for event in journey:  # the same events replayed one by one
        assert collector.post("/v1/track", event).status == 200
    # out of order: u3 buys; later a late anonymous purchase (earlier in time) arrives with the identify
    assert collector.post("/v1/batch", {"batch": [_event("x-m4", "Order Completed", "purchase", 50,
                                                         user="x-u3")]}).status == 200
    collector.wait_settled()
    receiver.wait_for(3)
    late = [_event("x-m5", "Order Completed", "purchase", 500, anon="x-a3"),
            _event("x-m6", "", "", 10, user="x-u3", anon="x-a3", kind="identify")]
    assert collector.post("/v1/batch", {"batch": late}).status == 200
    collector.wait_settled()
    collector.stop()  # a restart, then everything again
    collector.start()
    for batch in (journey, late):
        assert collector.post("/v1/batch", {"batch": batch}).status == 200
    collector.wait_settled()
    time.sleep(2.0)  # time for anything wrongly detected to arrive
    collector.stop()

    payloads = receiver.payloads()
    keys = Counter(p["idempotency_key"] for p in payloads)
    assert all(n == 1 for n in keys.values()), keys
    fired = sorted((p["trigger"], p["customer_id"]) for p in payloads)
    assert fired == [("considering", "x-c1"), ("first_purchase", "x-c1"), ("first_purchase", "x-u3")]
    purchase = next(p for p in payloads if p["customer_id"] == "x-c1" and p["trigger"] == "first_purchase")
    assert purchase["stage"] == "purchase" and purchase["previous_stage"] == "consideration"
    assert purchase["touchpoint"]["message_id"] == "x-m3" and purchase["touchpoint"]["event"] == "Order Completed"
    assert purchase["touchpoint"]["channel"] == "web"
    assert purchase["contacts"] == 3 and purchase["revenue"] == 40 and purchase["ids"] == ["x-c1"]
    considering = next(p for p in payloads if p["trigger"] == "considering")
    assert considering["previous_stage"] == "awareness" and considering["touchpoint"]["campaign"] == "spring"
    for request in receiver.received:  # every request signed with the trigger's secret
        stamp, _, digest = request.headers["Reise-Signature"].partition(",v1=")
        t = stamp.removeprefix("t=")
        assert hmac.compare_digest(digest, hmac.new(SECRET.encode(), f"{t}.".encode() + request.body,
                                                    hashlib.sha256).hexdigest())
        assert request.headers["Reise-Idempotency-Key"] == request.payload["idempotency_key"]

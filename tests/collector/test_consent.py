"""Consent: anything that reads as "no", in context.consent, a top-level consent or a category object, is no consent."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from collector.ingest.consent import refused
from tests.channels.conftest import get_raw
from tests.helpers import Collector

NO: list[tuple[str, dict[str, Any]]] = [
    ("context false", {"context": {"consent": False}}),
    ("context 'false'", {"context": {"consent": "false"}}),
    ("context 0", {"context": {"consent": 0}}),
    ("context '0'", {"context": {"consent": "0"}}),
    ("context 'no'", {"context": {"consent": "no"}}),
    ("context ' No '", {"context": {"consent": " No "}}),
    ("context 'denied'", {"context": {"consent": "denied"}}),
    ("context 'maybe' (not a yes)", {"context": {"consent": "maybe"}}),
    ("context []", {"context": {"consent": []}}),
    ("top-level false", {"consent": False}),
    ("top-level 'false'", {"consent": "false"}),
    ("top-level 0", {"consent": 0}),
    ("top-level no, context yes", {"consent": "no", "context": {"consent": True}}),
    ("category false", {"context": {"consent": {"analytics": False}}}),
    ("category 'false'", {"context": {"consent": {"analytics": "false"}}}),
    ("category 0", {"context": {"consent": {"Analytics": 0}}}),
    ("consent mode denied", {"context": {"consent": {"analytics_storage": "denied"}}}),
    ("segment category preferences", {"context": {"consent": {"categoryPreferences": {"Analytics": False}}}}),
    ("top-level category", {"consent": {"statistics": "no"}}),
]
YES: list[tuple[str, dict[str, Any]]] = [
    ("absent", {}),
    ("context null", {"context": {"consent": None}}),
    ("context true", {"context": {"consent": True}}),
    ("context 'yes'", {"context": {"consent": "yes"}}),
    ("context 1", {"context": {"consent": 1}}),
    ("context 'granted'", {"context": {"consent": "granted"}}),
    ("category true", {"context": {"consent": {"analytics": True}}}),
    ("another category refused", {"context": {"consent": {"marketing": False, "analytics": "true"}}}),
    ("top-level true", {"consent": True}),
]


@pytest.mark.parametrize(("name", "value"), [("false", False), ("'false'", "false"), ("0", 0), ("'0'", "0"),
                                             ("'no'", "no"), ("0.0", 0.0), ("'off'", "off")])
def test_every_no_reads_as_no(name: str, value: Any) -> None:
    assert refused(value), name


def test_events_that_say_no_are_not_stored_nor_kept(collector: Collector) -> None:
    user = f"consent-{uuid.uuid4().hex[:8]}"
    batch = [{"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-no-{i}", **fields}
             for i, (_, fields) in enumerate(NO)]
    batch += [{"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"{user}-yes-{i}", **fields}
              for i, (_, fields) in enumerate(YES)]
    reply = collector.post("/v1/batch", {"batch": batch})
    assert reply.status == 200, reply.body
    assert (reply.body["accepted"], reply.body["without_consent"], reply.body["rejected"]) == (len(YES), len(NO), [])
    collector.wait_settled()
    stored = {r["message_id"] for r in collector.query(
        "SELECT message_id FROM touchpoints WHERE customer_id = {u:String}", {"u": user})}
    assert stored == {f"{user}-yes-{i}" for i in range(len(YES))}
    assert collector.scalar("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", {"u": user}) == 0


def test_a_pixel_saying_no_is_not_stored(collector: Collector) -> None:
    user = f"consent-px-{uuid.uuid4().hex[:8]}"
    for consent in ("false", "0", "no"):
        assert get_raw(f"{collector.url}/p.gif?writeKey=pk_site&channel=email&uid={user}&consent={consent}"
                       f"&mid={user}-{consent}").status == 200
    assert get_raw(f"{collector.url}/p.gif?writeKey=pk_site&channel=email&uid={user}&consent=yes"
                   f"&mid={user}-yes").status == 200
    assert collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user}) == 1
    collector.wait_settled()
    assert collector.scalar("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", {"u": user}) == 1

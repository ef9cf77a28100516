"""The per-event memos and fast paths of the ingest hot path answer exactly as the uncached code.

Each memo is keyed by everything its answer depends on: two inputs that differ only in one field must not share
an answer (attribution, stage rules, channel words, IP truncation, the enricher's user-agent lookup), refusals
are never remembered, and what an IngestContext derives once per request follows its fields.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.enrich.mail import _number
from collector.enrich.pipeline import Enricher
from collector.errors import EventRejected
from collector.ingest.attribution import AttributionRules
from collector.ingest.protocol import (
    IngestContext,
    _channel_of,
    _named_channel,
    _truncate,
    anonymise_ip,
    normalise,
)
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH
from collector.store.schema import TOUCHPOINT_COLUMNS

RULES = StageRules.load(DEFAULT_RULES_PATH)
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SHOP = "https://shop.example/p"
NO_UTM = ("", "", "", "", "")


def _row(event: dict[str, Any], ctx: IngestContext) -> dict[str, Any]:
    return dict(zip(TOUCHPOINT_COLUMNS, normalise(event, None, ctx), strict=True))


def test_attribution_is_remembered_by_url_referrer_and_utm_together() -> None:
    rules = AttributionRules.load()
    views = [
        (SHOP, "https://www.google.com/", NO_UTM),
        (SHOP, "https://www.facebook.com/", NO_UTM),  # only the referrer differs
        (SHOP, "https://www.google.com/", ("newsletter", "email", "spring", "", "")),  # only the UTM fields
        (SHOP + "?gclid=abc", "https://www.google.com/", NO_UTM),  # only the URL
        (SHOP, "", NO_UTM),
    ]
    answers = [rules.attribute(*view) for view in views + views[::-1]]
    assert answers == [rules._attribute(*view) for view in views + views[::-1]]
    assert [a.traffic_class for a in answers[:5]] == ["search", "social", "email", "ads", "direct"]
    long_url = SHOP + "?q=" + "x" * 2000  # too long to be remembered: worked out each time, the same way
    assert rules.attribute(long_url, "", NO_UTM) == rules._attribute(long_url, "", NO_UTM)


def test_stage_rules_are_remembered_by_type_event_and_channel(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [
        {"event": "Visit", "channel": "pos", "stage": "purchase"},
        {"event": "Visit", "stage": "awareness"},
        {"type": "page", "stage": "consideration"},
    ]}))
    rules = StageRules.load(path)
    for _ in range(2):  # the second round is answered from the memo
        assert rules.stage_for("track", "Visit", "pos") == "purchase"
        assert rules.stage_for("track", "Visit", "web") == "awareness"  # only the channel differs
        assert rules.stage_for("track", "VISIT", "pos") == "purchase"  # event names compare case-folded
        assert rules.stage_for("page", "Other", "web") == "consideration"
        assert rules.stage_for("track", "Other", "web") == ""  # only the type differs


WORDS = st.one_of(st.none(), st.sampled_from(["web", "Web", "browser", "server", "mobile", "sources", "pos", "POS",
                                              "email", "app", "bogus", ""]), st.integers(0, 2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, WORDS, WORDS), min_size=1, max_size=6))
def test_channel_words_from_the_memo_match_the_rule(calls: list[tuple[Any, Any, Any]]) -> None:
    for raw, in_properties, in_context in calls:
        event = {} if raw is None else {"channel": raw}
        properties = {} if in_properties is None else {"channel": in_properties}
        context = {} if in_context is None else {"channel": in_context}
        try:
            expected: Any = _channel_of(raw, in_properties, in_context)
        except EventRejected as exc:
            expected = exc.reason
        try:
            got: Any = _named_channel(event, properties, context)
        except EventRejected as exc:  # a refusal is never remembered: refused again, with the same reason
            got = exc.reason
        assert got == expected


def test_events_differing_only_in_a_channel_word_get_their_own_channel() -> None:
    ctx = IngestContext(source="s", received_ms=1_750_000_000_000, rules=RULES)
    base = {"type": "track", "event": "Visit", "anonymousId": "a1", "channel": "server"}
    assert _row({**base, "context": {"channel": "pos"}}, ctx)["channel"] == "pos"
    assert _row({**base, "context": {"channel": "mobile"}}, ctx)["channel"] == "app"
    assert _row({**base, "properties": {"channel": "email"}}, ctx)["channel"] == "email"
    assert _row(base, ctx)["channel"] == "other"
    for _ in range(2):
        with pytest.raises(EventRejected, match="channel: must be one of"):
            normalise({**base, "channel": "telegraph"}, None, ctx)


def test_ipv6_truncation_is_remembered_per_address_and_the_mode_still_applies() -> None:
    first, second = "2001:db8:1:2::1", "2001:db8:2:2::1"  # different /48 networks
    assert anonymise_ip(first, "truncate") == "2001:db8:1::"
    assert anonymise_ip(second, "truncate") == "2001:db8:2::"
    assert anonymise_ip(first, "truncate") == "2001:db8:1::"
    assert anonymise_ip(first, "keep") == first
    assert anonymise_ip(first, "drop") == ""
    assert anonymise_ip("::ffff:198.51.100.7", "truncate") == "::"  # an IPv6 address: its /48
    long_text = "2001:db8::1" + " " * 80  # longer than any address: never remembered, still refused
    assert anonymise_ip(long_text, "truncate") == _truncate(long_text) == ""


def test_the_request_context_derives_the_client_address_and_behaviour_from_its_fields() -> None:
    ctx = IngestContext(source="s", received_ms=1_750_000_000_000, rules=RULES, client_ip="203.0.113.77")
    assert (ctx.kept_client_ip, ctx.behaviour, ctx.may_attribute, ctx.single_channel) == \
        ("203.0.113.0", "", True, False)
    kept = replace(ctx, ip_mode="keep", method="HEAD", channels=frozenset({"pos"}))
    assert (kept.kept_client_ip, kept.behaviour, kept.may_attribute, kept.single_channel) == \
        ("203.0.113.77", "request:HEAD", False, True)
    assert replace(ctx, prefetch=True).behaviour == "request:prefetch"
    event = {"type": "track", "event": "Visit", "anonymousId": "a1"}
    assert _row(event, ctx)["ip"] == "203.0.113.0"  # no context.ip: the connection's, truncated
    assert _row({**event, "context": {"ip": "198.51.100.9"}}, ctx)["ip"] == "198.51.100.0"
    assert _row(event, replace(ctx, ip_mode="drop"))["ip"] == ""


def test_the_user_agent_memo_tells_email_from_other_channels() -> None:
    cached, fresh = Enricher(), Enricher
    calls = [("email", GMAIL_PROXY, {}), ("web", GMAIL_PROXY, {}), ("email", GMAIL_PROXY, {}),
             ("app", "", {"device": {"type": "bot"}}), ("app", "", {}), ("app", "", {"device": {"type": "ios"}})]
    for channel, ua, context in calls + calls:
        expected = fresh().columns(type_="track", channel=channel, event="e", ua=ua, ip="", context=context)
        assert cached.live("track", channel, "e", ua, "", context, "", "", "", 0, {}, "") == expected
    assert cached.live("track", "email", "e", GMAIL_PROXY, "", {}, "", "", "", 0, {}, "")[10] == 0  # a person
    assert cached.live("track", "web", "e", GMAIL_PROXY, "", {}, "", "", "", 0, {}, "")[10] == 1  # a crawler
    assert cached.live("track", "app", "e", "", "", {"device": {"type": "bot"}}, "", "", "", 0, {}, "")[12] == \
        ["device:spider"]


@pytest.mark.parametrize("text", ["17.58.101.12", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.02.3.4", "1.2.3",
                                  "256.1.1.1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\x00", "0x1.2.3.4", "1.2.3.4/24",
                                  "\u0661.\u0662.\u0663.\u0664", "::1", "::ffff:17.58.101.12", "fe80::1%eth0",
                                  "2a01:b740::1", "", "not-an-ip"])
def test_mail_networks_read_addresses_as_ipaddress_does(text: str) -> None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        assert _number(text) is None
    else:
        assert _number(text) == (address.version, int(address))

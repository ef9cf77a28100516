"""The pixel's direct row (pixelrow.pixel_row) is the row normalise makes of the hit's event, or declines."""

from __future__ import annotations

import functools
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.enrich.pipeline import Enricher
from collector.errors import EventRejected, EventWithoutConsent
from collector.identity.guards import LinkPolicy
from collector.ingest.pixelrow import pixel_row
from collector.ingest.pixels import pixel_event
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.scopes import ALL_SCOPES, PUBLIC_SCOPES
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH, Settings

NAMES = ["k", "writeKey", "uid", "userId", "aid", "anonymousId", "mid", "messageId", "e", "event", "ch", "channel",
         "c", "campaign", "stage", "type", "name", "consent", "uh", "userHash", "utm_source", "utm_medium",
         "utm_campaign", "utm_term", "utm_content", "url", "ref", "cb", "variant", "referrer", "revenue", "total",
         "currency", "timestamp", "order_id", "orderId", "store_id", "sent_at", "machine_open", "category"]
VALUES = ["x", "u1", "guest", "null", "0", "email_opened", "email_clicked", "link_click", "Order Completed", "email",
          "EMAIL", "Web", "web", "server", "browser", "mobile", "sms", "pos", "bogus", "awareness", "purchase",
          "nirvana", "track", "page", "identify", "denied", "yes", "https://shop.example/p?utm_source=x",
          "12.5", "eur", "2026-01-01T00:00:00Z", "ü-∂", "a" * 300, "b" * 600, "c" * 5000]
# values that matter for a field, beside the shared ones
OWN_VALUES = {
    "stage": ["awareness", "consideration", "purchase", "retention", "nirvana", "Purchase"],
    "type": ["track", "page", "identify", "alias", "nope"],
    "ch": ["email", "EMAIL", "web", "server", "browser", "mobile", "sources", "sms", "pos", "bogus"],
    "e": ["email_opened", "email_clicked", "link_click", "Order Completed", "Product Viewed", "signup"],
}
OWN_VALUES |= {"ref": ["https://a.example/", "c" * 5000], "url": ["https://b.example/", "d" * 5000],
               "utm_source": ["news", "e" * 600], "uid": ["u3", "f" * 300], "aid": ["a1", "g" * 300]}
OWN_VALUES |= {"channel": OWN_VALUES["ch"], "event": OWN_VALUES["e"]}
AGENTS = ["", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
          "curl/8.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "z" * 1500]
ADDRESSES = ["", "203.0.113.9", "66.249.84.12", "2001:db8::1", "not an address", "9" * 70]
REFERERS = ["", "https://mail.example/inbox", "https://shop.example/?utm_source=ig", "r" * 5000]


@functools.cache
def _contexts() -> list[tuple[IngestContext, IngestContext]]:
    """Pairs of equal contexts (key, behaviour, settings) with an enricher each: one for each path.

    The enrichment remembers e-mail opens to judge clicks, so each path gets an enricher of its own that sees
    the same calls in the same order.
    """
    rules = StageRules.load(DEFAULT_RULES_PATH)
    policy = LinkPolicy.of(["blocked-id"], 100)
    enrich = Settings.from_env({"REISE_DSN": "chdb:///tmp/unused", "REISE_ADMIN_KEY": "ak_unused_admin_key"})
    pairs = []
    for channels, ip_mode, scope, enriched, method, prefetch in [
        (frozenset({"email"}), "truncate", PUBLIC_SCOPES, True, "GET", False),
        (frozenset({"email", "web", "sms"}), "keep", ALL_SCOPES, True, "GET", False),
        (None, "drop", PUBLIC_SCOPES, False, "GET", False),
        (frozenset({"web"}), "truncate", ALL_SCOPES, True, "HEAD", False),
        (None, "truncate", ALL_SCOPES, True, "GET", True),
    ]:
        default = next(iter(channels)) if channels and len(channels) == 1 else "other"
        pair = tuple(
            IngestContext(source="mail", received_ms=0, rules=rules, channels=channels, default_channel=default,
                          ip_mode=ip_mode, public=True, identity=policy, scope=scope, method=method,
                          prefetch=prefetch,
                          enricher=Enricher(enabled=enrich.enrich, exclude=enrich.journey_exclude,
                                            mail_window_seconds=enrich.mail_machine_seconds) if enriched else None)
            for _ in range(2))
        pairs.append(pair)
    return pairs  # type: ignore[return-value]


def _general(params: dict[str, str], referer: str, agent: str, ip: str, ctx: IngestContext,
             received_ms: int) -> tuple[Any, ...] | None:
    """The general path's row (None when it refuses the hit)."""
    event = pixel_event(params, page_url=referer, user_agent=agent, ip=ip)
    at = IngestContext(**{name: getattr(ctx, name) for name in (
        "source", "rules", "channels", "default_channel", "ip_mode", "public", "identity", "scope", "method",
        "prefetch", "enricher")}, received_ms=received_ms)
    try:
        return normalise(event, None, at)
    except (EventRejected, EventWithoutConsent):
        return None


common = st.fixed_dictionaries({"uid": st.sampled_from(["u1", "u2", "guest"])}, optional={
    "e": st.sampled_from(["email_opened", "email_clicked", "x"]), "ch": st.sampled_from(["email", "EMAIL", "web"]),
    "mid": st.text(min_size=1, max_size=8), "c": st.sampled_from(["spring", "a" * 600])})
extra = st.lists(st.sampled_from(NAMES), max_size=5).flatmap(lambda names: st.fixed_dictionaries(
    {name: st.sampled_from(OWN_VALUES[name]) | st.sampled_from(VALUES) if name in OWN_VALUES
     else st.sampled_from(VALUES) for name in names}))
hits = st.tuples(common, extra, st.sampled_from(REFERERS), st.sampled_from(AGENTS), st.sampled_from(ADDRESSES),
                 st.integers(0, 4))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hits)
def test_the_direct_row_is_the_general_one(hit: tuple[dict[str, str], dict[str, str], str, str, str, int]) -> None:
    first, more, referer, agent, ip, which = hit
    params = {**first, **more} if len(more) % 2 else {**more, **first}  # the query's order varies too
    fast, general = _contexts()[which]
    received_ms = int(time.time() * 1000)
    row = pixel_row(params, page_url=referer, user_agent=agent, ip=ip, ctx=fast, received_ms=received_ms)
    if row is None:
        return
    expected = _general(params, referer, agent, ip, general, received_ms)
    assert expected is not None, "the direct path took a hit the general path refuses"
    if "mid" in params or "messageId" in params:
        assert row == expected
    else:  # each path draws a fresh messageId
        assert row[1:] == expected[1:] and len(row[0]) == len(expected[0]) == 32


def _direct(query: dict[str, str]) -> tuple[Any, ...] | None:
    return pixel_row(query, page_url="", user_agent=AGENTS[1], ip="203.0.113.9", ctx=_contexts()[0][0],
                     received_ms=int(time.time() * 1000))


def test_a_plain_open_or_click_takes_the_direct_path() -> None:
    for query in ({"k": "pk_x", "uid": "u1", "e": "email_opened", "c": "spring", "mid": "m1"},
                  {"uid": "u1", "ch": "email"}, {"aid": "a1", "e": "email_clicked", "utm_source": "news", "v": "b"}):
        assert _direct(query) is not None, query


def test_hits_the_direct_path_does_not_cover_take_the_general_one() -> None:
    plain = {"uid": "u1", "e": "email_opened"}
    for odd in ({"type": "page"}, {"consent": "denied"}, {"revenue": "12"}, {"currency": "eur"},
                {"order_id": "o1"}, {"referrer": "r"}, {"sent_at": "1"}, {"stage": "nirvana"}, {"ch": "pos"},
                {"c": "a" * 600}, {"uid": "u" * 300}, {"aid": "a" * 300}, {"utm_source": "e" * 600},
                {"utm_content": "e" * 600}, {"url": "u" * 5000}, {"ref": "r" * 5000}, {"stage": "purchase"},
                {"e": "e" * 600}, {"mid": "m" * 300}, {"uid": "", "e": "x"}):
        assert _direct({**plain, **odd} if odd.get("uid") != "" else {"e": "x"}) is None, odd

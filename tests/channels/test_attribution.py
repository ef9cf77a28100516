"""Web attribution: the rules as a table, then page views through a real collector into chDB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.ingest.attribution import AttributionRules
from tests.helpers import Collector

RULES = AttributionRules.load()
SHOP = "https://shop.example/p/shoes"

CASES = [  # url, referrer, utm from context -> channel, class, source
    (SHOP, "", ("", "", "", "", ""), "web", "direct", ""),
    (SHOP, "https://shop.example/", ("", "", "", "", ""), "web", "internal", ""),
    (SHOP, "https://www.google.com/search?q=shoes", ("", "", "", "", ""), "web", "search", "google"),
    (SHOP, "https://www.google.co.uk/", ("", "", "", "", ""), "web", "search", "google"),
    (SHOP, "https://duckduckgo.com/", ("", "", "", "", ""), "web", "search", "duckduckgo"),
    (SHOP, "https://www.bing.com/search?q=x", ("", "", "", "", ""), "web", "search", "bing"),
    (SHOP, "https://l.facebook.com/l.php?u=x", ("", "", "", "", ""), "social", "social", "facebook"),
    (SHOP, "https://www.instagram.com/", ("", "", "", "", ""), "social", "social", "instagram"),
    (SHOP, "https://www.linkedin.com/feed/", ("", "", "", "", ""), "social", "social", "linkedin"),
    (SHOP, "https://lnkd.in/abc", ("", "", "", "", ""), "social", "social", "linkedin"),
    (SHOP, "https://www.tiktok.com/@shop", ("", "", "", "", ""), "social", "social", "tiktok"),
    (SHOP, "https://t.co/abc", ("", "", "", "", ""), "social", "social", "x"),
    (SHOP, "https://twitter.com/shop", ("", "", "", "", ""), "social", "social", "x"),
    (SHOP, "https://x.com/shop", ("", "", "", "", ""), "social", "social", "x"),
    (SHOP, "https://www.pinterest.de/pin/1", ("", "", "", "", ""), "social", "social", "pinterest"),
    (SHOP, "https://m.youtube.com/watch?v=1", ("", "", "", "", ""), "social", "social", "youtube"),
    (SHOP, "https://old.reddit.com/r/shoes", ("", "", "", "", ""), "social", "social", "reddit"),
    (SHOP, "https://mail.google.com/", ("", "", "", "", ""), "email", "email", "gmail"),
    (SHOP, "https://blog.example.org/review", ("", "", "", "", ""), "web", "referral", "blog.example.org"),
    (SHOP + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring", "", ("", "", "", "", ""),
     "email", "email", "newsletter"),
    (SHOP + "?utm_source=google&utm_medium=cpc&utm_campaign=brand", "https://www.google.com/",
     ("", "", "", "", ""), "ads", "ads", "google"),
    (SHOP + "?gclid=abc123", "https://www.google.com/", ("", "", "", "", ""), "ads", "ads", "google"),
    (SHOP + "?utm_source=facebook&utm_campaign=summer", "", ("", "", "", "", ""), "social", "social", "facebook"),
    (SHOP + "?utm_source=partner-shop", "", ("", "", "", "", ""), "web", "referral", "partner-shop"),
    (SHOP + "?utm_medium=sms&utm_source=twilio", "", ("", "", "", "", ""), "sms", "sms", "twilio"),
    (SHOP, "", ("crm", "email", "winback", "", ""), "email", "email", "crm"),  # context.campaign wins
    ("not a url", "::garbage::", ("", "", "", "", ""), "web", "direct", ""),  # no host: as good as none
]


@pytest.mark.parametrize(("url", "referrer", "utm", "channel", "class_", "source"), CASES)
def test_attribution_table(url: str, referrer: str, utm: tuple[str, str, str, str, str], channel: str,
                           class_: str, source: str) -> None:
    found = RULES.attribute(url, referrer, utm)
    assert (found.channel, found.traffic_class, found.traffic_source) == (channel, class_, source)


def test_utm_from_the_url_fills_the_campaign_fields() -> None:
    found = RULES.attribute(SHOP + "?utm_source=nl&utm_medium=email&utm_campaign=spring&utm_term=t&utm_content=c",
                            "", ("", "", "", "", ""))
    assert found.utm == ("nl", "email", "spring", "t", "c")


def test_the_operator_extends_the_mapping(tmp_path: Path) -> None:
    extra = tmp_path / "attribution.json"
    extra.write_text('{"referrers": {"social": {"social.example": "example-social"}}, "mediums": {"ads": ["boost"]}}')
    rules = AttributionRules.load(extra)
    assert rules.attribute(SHOP, "https://m.social.example/x", ("", "", "", "", "")).traffic_source == "example-social"
    assert rules.attribute(SHOP + "?utm_medium=boost", "", ("", "", "", "", "")).channel == "ads"
    assert rules.attribute(SHOP, "https://www.google.de/", ("", "", "", "", "")).traffic_class == "search"
    extra.write_text('{"referrers": {"telepathy": {"x.example": "x"}}}')
    with pytest.raises(ConfigError, match="unknown class"):
        AttributionRules.load(extra)


def test_page_views_are_attributed_at_ingest(channels: Collector) -> None:
    anon = f"attr-{uuid.uuid4().hex[:10]}"
    pages = [
        ({"url": SHOP + "?utm_source=nl&utm_medium=email&utm_campaign=spring"}, None),
        ({"url": SHOP, "referrer": "https://www.instagram.com/"}, None),
        ({"url": SHOP, "referrer": "https://www.google.de/search?q=x"}, None),
        ({"url": SHOP}, None),
        ({"url": SHOP, "referrer": "https://www.instagram.com/"}, "ads"),  # explicit channel: kept as sent
        ({"url": SHOP, "referrer": "https://www.instagram.com/"}, "web"),  # a library's word: attributed (issue 14)
    ]
    batch = [{"type": "page", "anonymousId": anon, "timestamp": f"2026-03-0{i + 1}T00:00:00Z",
              "context": {"page": page}, **({"channel": channel} if channel else {})}
             for i, (page, channel) in enumerate(pages)]
    batch.append({"type": "track", "event": "Product Viewed", "anonymousId": anon, "timestamp": "2026-03-09T00:00:00Z",
                  "context": {"page": {"url": SHOP, "referrer": "https://www.instagram.com/"}}})
    assert channels.post("/v1/batch", {"batch": batch}).body["rejected"] == []
    channels.wait_for("SELECT count() FROM touchpoints WHERE anonymous_id = {a:String}", 7, {"a": anon})
    rows = channels.query("SELECT channel, traffic_class, traffic_source, campaign, utm_medium, stage FROM touchpoints"
                          " WHERE anonymous_id = {a:String} ORDER BY timestamp", {"a": anon})
    assert [(r["channel"], r["traffic_class"], r["traffic_source"]) for r in rows] == [
        ("email", "email", "nl"), ("social", "social", "instagram"), ("web", "search", "google"),
        ("web", "direct", ""), ("ads", "", ""), ("social", "social", "instagram"), ("other", "", "")]
    assert rows[0]["campaign"] == "spring" and rows[0]["utm_medium"] == "email"
    assert rows[0]["stage"] == "awareness"  # page views keep their stage rule


def test_a_public_web_key_may_send_page_views_attributed_to_other_channels(channels: Collector) -> None:
    anon = f"attr-pk-{uuid.uuid4().hex[:10]}"
    event = {"anonymousId": anon, "context": {"page": {"url": SHOP, "referrer": "https://www.tiktok.com/"}}}
    reply = channels.post("/v1/page", event, key="pk_site")
    assert reply.status == 200, reply.body
    channels.wait_for("SELECT channel FROM touchpoints WHERE anonymous_id = {a:String}", "social", {"a": anon})

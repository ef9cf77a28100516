"""The ingest hot path's rows and refusals stay exactly what they were for a varied event mix.

The event loop's per-event work (``normalise`` with every enrichment, the spool's row encoding) is tuned for
speed; none of that may change an answer. A deterministic mix of events (every channel and call type, browser,
mail and crawler user agents, e-mail opens and clicks, HEAD and prefetch requests, batch context and
integrations, kept context keys, IPv4 and IPv6, odd and refused values) is normalised under several request
contexts and encoded as the spool encodes rows; the digest of the result was taken from the code before the
tuning (main at 866a469). A changed row, column, refusal or spool byte changes it.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson

from collector.enrich.pipeline import Enricher
from collector.errors import EventRejected, EventWithoutConsent
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.spool import encode_rows
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH

RECEIVED_MS = 1_764_460_800_000  # 2025-11-30T00:00:00Z
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Barracuda Sentinel (EE)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "",
]
# from the code before the tuning: (sha256 of the encoded rows and refusal reasons, rows, refusals)
EXPECTED = ("bec885a6f7f5ea3703c8b49ff01e843eda8b42831e7e1da90c01198d0fc7797d", 6991, 3509)
IPS = ["81.2.69.160", "17.58.1.9", "148.163.10.20", "10.0.0.7", "2a02:1234:5678::1", "", "not an ip"]
CHANNELS = ["web", "app", "pos", "email", "social", "ads", "sms", "support", "", "browser", "server", "Web"]
NAMES = ["Order Completed", "Email Opened", "Email Link Clicked", "Product Viewed", "Sale", "Ad Clicked",
         "Order Refunded", "Support Contacted", ""]


def _event(rng: random.Random, n: int) -> dict[str, Any]:
    """One event of the mix: mostly valid, some odd, a few refused."""
    type_ = rng.choice(["track", "track", "track", "page", "identify", "screen", "alias", "group", "bogus"])
    event: dict[str, Any] = {"type": type_, "messageId": f"m-{n:05d}",
                             "timestamp": f"2025-11-{rng.randint(1, 29):02d}T{rng.randint(0, 23):02d}:17:05."
                                          f"{rng.randint(0, 999):03d}Z"}
    if rng.random() < 0.7:
        event["userId"] = rng.choice([f"cust-{rng.randint(1, 50)}", "guest", "0", 12345, ""])
    if rng.random() < 0.7 or "userId" not in event:
        event["anonymousId"] = f"anon-{rng.randint(1, 80)}"
    if type_ == "alias":
        event["previousId"] = f"anon-{rng.randint(1, 80)}"
    channel = rng.choice(CHANNELS)
    if channel:
        event["channel"] = channel
    if type_ == "track":
        event["event"] = rng.choice(NAMES)
    properties: dict[str, Any] = {}
    if rng.random() < 0.5:
        properties = {"revenue": rng.choice([19.99, "12.5", 0, -5, None]), "currency": rng.choice(["eur", "USD"]),
                      "order_id": f"o-{rng.randint(1, 30)}", "campaign": rng.choice(["spring", "", None]),
                      "products": [{"sku": "A", "quantity": 2}], "store_id": rng.choice(["s1", ""])}
    if rng.random() < 0.1:
        properties["machine_open"] = True
    if rng.random() < 0.1:
        properties["sent_at"] = "2025-11-10T10:00:00Z"
    if properties:
        event["properties"] = properties
    context: dict[str, Any] = {}
    if rng.random() < 0.9:
        context["ip"] = rng.choice(IPS)
        context["userAgent"] = rng.choice(AGENTS)
        context["library"] = {"name": rng.choice(["analytics.js", "reise-pos"]), "version": "2.4.1"}
    if rng.random() < 0.5:
        context["campaign"] = {"name": "spring", "source": rng.choice(["google", "newsletter"]),
                               "medium": rng.choice(["email", "cpc", "social"]), "content": "a"}
    if type_ == "page" or rng.random() < 0.2:
        context["page"] = {"url": rng.choice(["https://shop.example/p?utm_source=fb&utm_medium=social",
                                              "https://shop.example/", "https://shop.example/?gclid=x"]),
                           "referrer": rng.choice(["https://www.google.com/", "", "https://t.co/x"])}
    if rng.random() < 0.15:
        context["locale"] = "de-DE"
        context["timezone"] = "Europe/Berlin"
        context["app"] = {"name": "Shop", "version": "3.1"}
    if rng.random() < 0.2:
        context["device"] = rng.choice([{"type": "ios", "model": "iPhone15,2"}, {"type": "bot"}])
    if rng.random() < 0.15:
        context["traits"] = {"plan": "gold"}
        context["screen"] = {"width": 390}
    if rng.random() < 0.05:
        context["consent"] = {"categoryPreferences": {"analytics": rng.choice([True, False])}}
    if context or rng.random() < 0.5:
        event["context"] = context
    if rng.random() < 0.1:
        event["integrations"] = {"All": False, "Reise": True}
    if type_ == "identify":
        event["traits"] = {"email_sha256": "ab" * 32, "city": "Wien"}
    if rng.random() < 0.03:
        event["timestamp"] = "yesterday"
    if rng.random() < 0.03:
        event["stage"] = rng.choice(["purchase", "nonsense"])
    return event


def _contexts(enricher: Enricher, rules: StageRules) -> list[IngestContext]:
    """Request contexts: plain, HEAD, prefetch, batch context and integrations, an IP policy, one channel."""
    base: dict[str, Any] = {"source": "test", "received_ms": RECEIVED_MS, "rules": rules, "enricher": enricher,
            "sent_at": "2025-11-30T00:00:01Z", "client_ip": "81.2.69.161"}
    return [
        IngestContext(**base),
        IngestContext(**base, method="HEAD"),
        IngestContext(**base, prefetch=True),
        IngestContext(**base, batch_context={"ip": "2.3.4.5", "locale": "nb-NO", "extra": {"k": 1}},
                      batch_integrations={"Reise": True}),
        IngestContext(**{**base, "client_ip": "2a02:1234:5678::9"}, ip_mode="keep"),
        IngestContext(**base, ip_mode="drop", channels=frozenset({"email"}), default_channel="email"),
        IngestContext(source="plain", received_ms=RECEIVED_MS, rules=rules),
    ]


def _digest() -> tuple[str, int, int]:
    """The digest of every row (as the spool encodes it) and refusal, with the counts of each."""
    rules = StageRules.load(DEFAULT_RULES_PATH)
    contexts = _contexts(Enricher(), rules)
    rng = random.Random(11)
    events = [_event(rng, n) for n in range(1500)]
    digest = hashlib.sha256()
    rows = refusals = 0
    for ctx in contexts:
        batch = []
        for event in events:
            try:
                batch.append(normalise(event, None, ctx))
            except EventWithoutConsent:
                digest.update(b"without consent\n")
                refusals += 1
            except EventRejected as exc:
                digest.update(exc.reason.encode() + b"\n")
                refusals += 1
        digest.update(encode_rows(batch))
        rows += len(batch)
    return digest.hexdigest(), rows, refusals


def test_rows_and_refusals_of_a_varied_mix_are_unchanged() -> None:
    digest, rows, refusals = _digest()
    assert rows > 6000 and refusals > 500  # the mix exercises both
    assert (digest, rows, refusals) == EXPECTED


def test_encode_rows_is_one_json_array_a_line() -> None:
    rows = [("a", 1, 0.5, {"k": "v"}, ["x"], None), ("b\n", -2, 1e-7, {}, [], True)]
    assert encode_rows(rows) == b"".join(orjson.dumps(row) + b"\n" for row in rows)
    assert encode_rows([]) == b""
    assert encode_rows(()) == b""

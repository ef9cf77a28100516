"""One person across every source: reached by e-mail (SendGrid), commenting on Instagram (Meta), browsing
(analytics.js requests) and buying at a Shopify POS till fold into one customer with the right contacts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import reise

from tests.helpers import Collector, http
from tests.sources import payloads
from tests.sources.conftest import (
    META_SECRET,
    SHOP_KEY,
    SHOPIFY_SECRET,
    b64_hmac,
    hex_hmac,
    hook,
    sendgrid_headers,
)


def test_email_instagram_browsing_and_pos_purchase_fold_into_one_customer(sources: Collector) -> None:
    t = uuid.uuid4().hex[:10]
    email, instagram_user, browser = f"alice-{t}@example.com", f"ig{t}", str(uuid.uuid4())
    now = datetime.now(UTC)

    def day(n: int) -> datetime:
        return now - timedelta(days=n)

    # 1. the newsletter: delivered, opened, clicked (SendGrid's Event Webhook, ECDSA-signed)
    mails = [e for e in payloads.sendgrid_batch(t, email)
             if e["event"] in ("delivered", "open", "click") and not e.get("sg_machine_open")]
    for offset, event in enumerate(mails):
        event.update(timestamp=int(day(6).timestamp()) + offset * 60, campaign="spring-sale")
    body = payloads.dumps(mails)
    assert hook(sources, "newsletter", body, sendgrid_headers(body)).body["accepted"] == 3

    # 2. a comment on the shop's Instagram post (Meta's webhook, X-Hub-Signature-256)
    comment = payloads.instagram_comment(f"c{t}", user_id=instagram_user, username="alice.ig")
    comment["entry"][0]["time"] = int(day(5).timestamp())
    body = payloads.dumps(comment)
    assert hook(sources, "meta", body, {"X-Hub-Signature-256": "sha256=" + hex_hmac(META_SECRET, body)}).status == 200

    # 3. browsing, as analytics.js sends it: from Instagram to the shop, then signing in
    def ajs(kind: str, when: datetime, **fields: object) -> None:
        event = {"type": kind, "anonymousId": browser, "messageId": str(uuid.uuid4()), "timestamp": when.isoformat(),
                 "sentAt": datetime.now(UTC).isoformat(), "writeKey": "pk_seg", "context": {
                     "library": {"name": "analytics.js", "version": "next-1.84.3"}, "userAgent": "Mozilla/5.0"},
                 **fields}
        reply = http("POST", f"{sources.url}/v1/{kind}", raw=json.dumps(event).encode(),
                     headers={"Content-Type": "text/plain"})
        assert reply.status == 200, reply.body

    ajs("page", day(3), name="Spring", context={"page": {
        "url": "https://shop.example/spring?utm_source=instagram&utm_medium=social&utm_campaign=spring-sale",
        "referrer": "https://l.instagram.com/"}})
    ajs("page", day(3) + timedelta(minutes=2), name="Shoes", context={"page": {
        "url": "https://shop.example/shoes", "referrer": "https://shop.example/spring"}})
    ajs("identify", day(3) + timedelta(minutes=3), userId=email)

    # the shop's server links the Instagram account the customer connected in their profile
    with reise.Client(SHOP_KEY, sources.url) as shop:
        shop.alias(f"instagram:{instagram_user}", email, timestamp=day(3) + timedelta(minutes=4))

    # 4. the purchase at the Berlin till (Shopify POS, orders/create)
    order = int(uuid.uuid4().int % 10**12)
    doc = payloads.shopify_order(order, email=email.upper(), pos=True, location_id=4711, total="89.00")
    doc["created_at"] = day(1).isoformat()
    body = payloads.dumps(doc)
    assert hook(sources, "shop", body, {"X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, body),
                                        "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": t}).status == 200

    sources.wait_settled()
    ids = (email, f"instagram:{instagram_user}", browser, f"shopify-order:{order}")
    customers = {sources.scalar("SELECT customer_id FROM customer_journey_of(id = {i:String})", {"i": i}) for i in ids}
    assert len(customers) == 1 and None not in customers
    [journey] = sources.query("SELECT contacts, revenue, current_stage FROM customer_journey_of(id = {i:String})",
                              {"i": email})
    assert (journey["revenue"], journey["current_stage"]) == (89.0, "purchase")
    [before] = sources.query("SELECT contacts, contacts_by_channel, first_channel, last_channel, first_campaign "
                             "FROM contacts_before_purchase WHERE customer_id = {c:String}", {"c": customers.pop()})
    assert before["contacts"] == 6  # delivered, opened, clicked; the comment; two page views
    assert before["contacts_by_channel"] == {"email": 3, "social": 2, "web": 1}
    assert (before["first_channel"], before["last_channel"], before["first_campaign"]) == (
        "email", "web", "spring-sale")
    [till] = sources.query("SELECT channel, store_id, source FROM touchpoints WHERE order_id = {o:String}",
                           {"o": str(order)})
    assert till == {"channel": "pos", "store_id": "4711", "source": "shop"}

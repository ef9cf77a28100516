"""Signed webhooks against a real collector: each provider's documented payload signed with its documented
algorithm and a test key is stored; a bad signature gets 401 and a dead letter; a replay is stored once; an
order sent by webhook and by the SDK counts once."""

from __future__ import annotations

import json
import uuid

from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import Collector, http
from tests.sources import payloads
from tests.sources.conftest import (
    META_SECRET,
    META_TOKEN,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    SHOP_KEY,
    SHOPIFY_SECRET,
    SQUARE_KEY,
    SQUARE_URL,
    TILL_SECRET,
    b64_hmac,
    basic,
    dead_letters,
    hex_hmac,
    hook,
    mailgun_signed,
    rows,
    sendgrid_headers,
)


def tag() -> str:
    return uuid.uuid4().hex[:12]


def test_sendgrid_events_become_email_touchpoints(sources: Collector) -> None:
    t = tag()
    email = f"{t}@test.example"
    body = payloads.dumps(payloads.sendgrid_batch(t, email.upper()))
    reply = hook(sources, "newsletter", body, sendgrid_headers(body))
    assert reply.status == 200, reply.body
    assert reply.body["accepted"] == 6  # processed is no contact: skipped
    found = {r["message_id"]: r for r in rows(sources, "customer_id = {e:String}", {"e": email})}
    assert {m.split("-", 1)[1] for m in found if m.startswith("sendgrid:")} == {
        "delivered", "open", "machine-open", "click", "bounce", "unsubscribe"}
    opened, clicked = found[f"sendgrid:{t}-open"], found[f"sendgrid:{t}-click"]
    assert (opened["event"], opened["channel"], opened["stage"], opened["campaign"]) == (
        "Email Opened", "email", "consideration", "cat facts")
    assert (clicked["event"], clicked["stage"]) == ("Email Link Clicked", "consideration")
    assert found[f"sendgrid:{t}-delivered"]["stage"] == "awareness"
    assert found[f"sendgrid:{t}-bounce"]["type"] == "identify"  # reached nobody: no contact
    assert all(r["source"] == "newsletter" for r in found.values())
    machine = sources.scalar("SELECT properties['machine_open'] FROM touchpoints WHERE message_id = {m:String}",
                             {"m": f"sendgrid:{t}-machine-open"})
    assert machine == "true"
    # SendGrid's own verdict flags the open as a machine's (left out of the journey), the human open stays
    flagged = {m: sources.scalar("SELECT (machine, has(flag_reasons, 'provider:machine_open')) FROM touchpoints "
                                 "WHERE message_id = {m:String}", {"m": m})
               for m in (f"sendgrid:{t}-machine-open", f"sendgrid:{t}-open")}
    assert flagged == {f"sendgrid:{t}-machine-open": [1, 1], f"sendgrid:{t}-open": [0, 0]}, flagged


def test_sendgrid_bad_signature_is_401_and_a_dead_letter(sources: Collector) -> None:
    t = tag()
    body = payloads.dumps(payloads.sendgrid_batch(t))
    other = ec.generate_private_key(ec.SECP256R1())
    assert hook(sources, "newsletter", body, sendgrid_headers(body, key=other)).status == 401
    tampered = body.replace(b"cat facts", b"dog facts")
    assert hook(sources, "newsletter", tampered, sendgrid_headers(body)).status == 401
    assert hook(sources, "newsletter", body, {}).status == 401  # unsigned
    assert rows(sources, "startsWith(message_id, {p:String})", {"p": f"sendgrid:{t}"}) == []
    letters = dead_letters(sources, "newsletter", t)
    assert len(letters) == 3 and all(d["reason"].startswith("signature: ") for d in letters)


def test_sendgrid_replay_is_stored_once(sources: Collector) -> None:
    t = tag()
    body = payloads.dumps(payloads.sendgrid_batch(t)[2:3])
    first = hook(sources, "newsletter", body, sendgrid_headers(body))
    again = hook(sources, "newsletter", body, sendgrid_headers(body, timestamp="1700000099"))
    assert (first.body["accepted"], again.body["accepted"], again.body["duplicates"]) == (1, 0, 1)
    assert len(rows(sources, "message_id = {m:String}", {"m": f"sendgrid:{t}-open"})) == 1


def test_mailgun_hmac_over_timestamp_and_token(sources: Collector) -> None:
    t = tag()
    body = mailgun_signed(payloads.mailgun_opened(t, f"{t}@example.com"))
    assert hook(sources, "mailgun", body, {}).body["accepted"] == 1
    assert hook(sources, "mailgun", body, {}).body["duplicates"] == 1  # replay
    wrong = mailgun_signed(payloads.mailgun_opened(t + "x"), key="key-wrong-signing-0123456789")
    assert hook(sources, "mailgun", wrong, {}).status == 401
    forged = json.loads(body)
    forged["signature"]["token"] = "another-token-" + t
    assert hook(sources, "mailgun", json.dumps(forged).encode(), {}).status == 401
    [row] = rows(sources, "message_id = {m:String}", {"m": f"mailgun:{t}-Ase7i2zsRYeDXztHGENqRA"})
    assert (row["event"], row["customer_id"], row["channel"], row["campaign"]) == (
        "Email Opened", f"{t}@example.com", "email", "my_tag_1")
    assert len(dead_letters(sources, "mailgun", t + "x")) == 1


def test_postmark_basic_auth_on_the_url(sources: Collector) -> None:
    t = tag()
    body = payloads.dumps(payloads.postmark_click(t, f"{t}@example.com"))
    good = {"Authorization": basic(POSTMARK_USER, POSTMARK_PASSWORD)}
    assert hook(sources, "postmark", body, good).body["accepted"] == 1
    assert hook(sources, "postmark", body, good).body["duplicates"] == 1
    assert hook(sources, "postmark", body, {"Authorization": basic(POSTMARK_USER, "wrong")}).status == 401
    assert hook(sources, "postmark", body, {}).status == 401
    [row] = rows(sources, "customer_id = {e:String}", {"e": f"{t}@example.com"})
    assert (row["event"], row["campaign"], row["source"]) == ("Email Link Clicked", "welcome-email", "postmark")


def test_shopify_orders_pos_location_and_refunds(sources: Collector) -> None:
    order = int(uuid.uuid4().int % 10**12)
    email = f"{tag()}@example.com"

    def send(topic: str, doc: dict[str, object], webhook_id: str, secret: str = SHOPIFY_SECRET) -> int:
        body = payloads.dumps(doc)
        return hook(sources, "shop", body, {"X-Shopify-Hmac-Sha256": b64_hmac(secret, body),
                                            "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id}).status

    assert send("orders/create", payloads.shopify_order(order, email=email, pos=True, location_id=7), "w1") == 200
    assert send("orders/paid", payloads.shopify_order(order, email=email, pos=True, location_id=7), "w2") == 200
    assert send("refunds/create", payloads.shopify_refund(order + 1, order), "w3") == 200
    assert send("orders/create", payloads.shopify_order(order + 5, email=email), "w4", "wrong-secret-xx") == 401
    found = rows(sources, "order_id = {o:String}", {"o": str(order)})
    assert [(r["event"], r["revenue"], r["channel"], r["store_id"]) for r in found] == [
        ("Order Completed", 199.0, "pos", "7"), ("Order Refunded", -41.94, "web", "")]
    assert found[0]["customer_id"] == email and found[0]["stage"] == "purchase"
    # the refund names only the order: it folds into the buyer through the order's id
    customers = sources.query("SELECT customer_id FROM customer_journey_of(id = {i:String})",
                              {"i": f"shopify-order:{order}"})
    assert customers == sources.query("SELECT customer_id FROM customer_journey_of(id = {i:String})", {"i": email})


def test_an_order_by_webhook_and_by_sdk_counts_once(sources: Collector) -> None:
    order = int(uuid.uuid4().int % 10**12)
    body = payloads.dumps(payloads.shopify_order(order, email="both@example.com"))
    sdk = {"userId": "both@example.com", "event": "Order Completed", "channel": "web",
           "properties": {"order_id": str(order), "revenue": 199.0, "currency": "USD"}}
    assert sources.post("/v1/track", sdk, key=SHOP_KEY).status == 200
    reply = hook(sources, "shop", body, {"X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, body),
                                        "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": tag()})
    assert reply.body["duplicates"] == 1
    assert len(rows(sources, "order_id = {o:String}", {"o": str(order)})) == 1


def test_square_payments_sign_the_notification_url(sources: Collector) -> None:
    t = tag()
    body = payloads.dumps(payloads.square_payment(f"ev-{t}", f"pay-{t}", f"ord-{t}", amount=2599))
    good = {"x-square-hmacsha256-signature": b64_hmac(SQUARE_KEY, SQUARE_URL.encode() + body)}
    assert hook(sources, "square", body, good).body["accepted"] == 1
    assert hook(sources, "square", body, good).body["duplicates"] == 1
    body_only = {"x-square-hmacsha256-signature": b64_hmac(SQUARE_KEY, body)}  # the URL left out
    assert hook(sources, "square", body, body_only).status == 401
    pending = payloads.dumps(payloads.square_payment(f"ev2-{t}", f"pay2-{t}", f"ord2-{t}", status="APPROVED"))
    signed = {"x-square-hmacsha256-signature": b64_hmac(SQUARE_KEY, SQUARE_URL.encode() + pending)}
    assert hook(sources, "square", pending, signed).body["accepted"] == 0  # not a sale yet
    [row] = rows(sources, "order_id = {o:String}", {"o": f"ord-{t}"})
    assert (row["revenue"], row["channel"], row["store_id"], row["stage"]) == (25.99, "pos", "S8GWD5R9QB376",
                                                                               "purchase")


def test_a_signed_event_without_its_id_is_a_dead_letter_not_an_error(sources: Collector) -> None:
    t = tag()
    doc = payloads.square_payment("", f"pay-{t}", f"ord-{t}")
    body = payloads.dumps(doc)
    reply = hook(sources, "square", body, {"x-square-hmacsha256-signature": b64_hmac(SQUARE_KEY, SQUARE_URL.encode()
                                                                                    + body)})
    assert reply.status == 200 and reply.body["accepted"] == 0
    assert reply.body["rejected"][0]["reason"].startswith("event_id: ")
    assert dead_letters(sources, "square", f"pay-{t}")[0]["reason"].startswith("event_id: ")
    order = int(uuid.uuid4().int % 10**12)
    refund = payloads.dumps({"id": order})  # a refund that names no order
    reply = hook(sources, "shop", refund, {"X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, refund),
                                          "X-Shopify-Topic": "refunds/create"})
    assert reply.status == 200 and reply.body["rejected"][0]["reason"].startswith("order_id and id: ")


def test_meta_handshake_and_signed_changes(sources: Collector) -> None:
    t = tag()
    url = f"{sources.url}/hooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
    answer = http("GET", url + META_TOKEN)
    assert (answer.status, answer.body) == (200, 1158201444)
    assert http("GET", url + "wrong-token").status == 403
    for doc in (payloads.instagram_comment(f"c-{t}", user_id=f"u{t}"), payloads.instagram_mention(f"m-{t}"),
                payloads.leadgen(f"l-{t}")):
        body = payloads.dumps(doc)
        reply = hook(sources, "meta", body, {"X-Hub-Signature-256": "sha256=" + hex_hmac(META_SECRET, body)})
        assert reply.body["accepted"] == 1, reply.body
        assert hook(sources, "meta", body, {"X-Hub-Signature-256": "sha256=" + hex_hmac("x" * 20, body)}).status == 401
    found = rows(sources, "endsWith(message_id, {t:String})", {"t": t})
    assert {(r["event"], r["anonymous_id"], r["channel"], r["stage"]) for r in found} == {
        ("Instagram Comment", f"instagram:u{t}", "social", "consideration"),
        ("Instagram Mention", f"instagram-mention:m-{t}", "social", "advocacy"),
        ("Lead Form Submitted", f"facebook-lead:l-{t}", "social", "consideration")}


def test_mapped_till_without_code(sources: Collector) -> None:
    t = tag()
    doc = {"receipts": [
        {"receipt_no": f"R-{t}", "kind": "sale", "customer": {"card": f"card-{t}"}, "time": 1700000000,
         "total": "59.90", "currency": "eur", "store": "berlin-1", "cashier": "7"},
        {"receipt_no": f"R-{t}-1", "kind": "return", "customer": {"card": f"card-{t}"}, "time": 1700003600,
         "total": 10, "currency": "eur", "store": "berlin-1", "return_no": "1"},
        {"receipt_no": f"R-{t}-2", "kind": "drawer-opened"},
        {"kind": "sale"},
    ]}
    body = payloads.dumps(doc)
    reply = hook(sources, "kasse", body, {"X-Kasse-Signature": "sha256=" + hex_hmac(TILL_SECRET, body)})
    assert reply.status == 200, reply.body
    assert (reply.body["accepted"], len(reply.body["rejected"])) == (2, 1)  # one without an id; one not mapped
    assert hook(sources, "kasse", body, {"X-Kasse-Signature": hex_hmac(TILL_SECRET, body)}).status == 401  # no prefix
    assert hook(sources, "kasse", body, {}).status == 401
    found = rows(sources, "customer_id = {c:String}", {"c": f"card-{t}"})
    assert [(r["event"], r["revenue"], r["store_id"], r["channel"], r["source"]) for r in found] == [
        ("Order Completed", 59.9, "berlin-1", "pos", "kasse"), ("Order Refunded", -10.0, "berlin-1", "pos", "kasse")]
    assert sources.scalar("SELECT properties['cashier'] FROM touchpoints WHERE message_id = {m:String}",
                          {"m": f"kasse:R-{t}"}) == "7"


def test_unknown_source_and_garbage(sources: Collector) -> None:
    assert hook(sources, "nobody", b"{}", {}).status == 404
    assert hook(sources, "web-sp", b"{}", {}).status == 404  # Snowplow sources are no webhooks
    body = b"not json at all " + tag().encode()
    reply = hook(sources, "shop", body, {"X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, body),
                                        "X-Shopify-Topic": "orders/create"})
    assert reply.status == 400 and reply.body["error"].startswith("payload: ")
    assert len(dead_letters(sources, "shop", body.decode()[-12:])) == 1


def test_sources_in_metrics(sources: Collector) -> None:
    body = payloads.dumps(payloads.sendgrid_batch(tag())[2:3])
    hook(sources, "newsletter", body, sendgrid_headers(body))
    hook(sources, "newsletter", body, {})
    text = http("GET", f"{sources.url}/metrics").body.decode()
    assert 'reise_source_requests_total{kind="sendgrid",outcome="ok",source="newsletter"}' in text
    assert 'reise_source_requests_total{kind="sendgrid",outcome="bad_signature",source="newsletter"}' in text
    assert 'reise_source_events_total{outcome="accepted",source="newsletter"}' in text

"""A collector with one source of every kind (REISE_SOURCES), and the providers' signing algorithms with test keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import Collector, Response, http

# Test keys. SendGrid's is an ECDSA P-256 pair made here; the public half goes into the sources file as
# SendGrid shows it (base64 DER), the private half signs like SendGrid does.
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
MAILGUN_KEY = "key-mailgun-signing-0123456789"
POSTMARK_USER, POSTMARK_PASSWORD = "postmark", "pm-password-0123456789"
SHOPIFY_SECRET = "shopify-app-secret-0123456789"
SQUARE_KEY = "square-signature-key-0123456789"
SQUARE_URL = "https://collect.example.com/hooks/square"
META_SECRET, META_TOKEN = "meta-app-secret-0123456789", "meta-verify-token-0123"
TILL_SECRET = "kasse-hmac-secret-0123456789"
SHOP_KEY = "wk_shop_sdk"  # the shop's server SDK key: the same source name as the Shopify webhook

MAPPING = {
    "signature": {"scheme": "hmac-sha256", "header": "X-Kasse-Signature", "encoding": "hex", "prefix": "sha256=",
                  "secret": TILL_SECRET},
    "events": "receipts",
    "id": "receipt_no",
    "event": {"path": "kind", "values": {"sale": "Order Completed", "return": "Order Refunded"}},
    "channel": "pos",
    "fields": {"userId": "customer.card", "timestamp": "time", "revenue": "total", "currency": "currency",
               "order_id": "receipt_no", "store_id": "store", "return_id": "return_no"},
    "properties": {"cashier": "cashier"},
}


def sources_file(directory: Path) -> Path:
    """Write the sources file (and the till's mapping beside it) and return its path."""
    (directory / "kasse.json").write_text(json.dumps(MAPPING))
    path = directory / "sources.json"
    path.write_text(json.dumps({"sources": {
        "web-sp": {"kind": "snowplow", "app_ids": ["shop-web", "shop-server"], "scope": "all"},
        "newsletter": {"kind": "sendgrid", "public_key": SENDGRID_PUBLIC},
        "mailgun": {"kind": "mailgun", "signing_key": MAILGUN_KEY},
        "postmark": {"kind": "postmark", "username": POSTMARK_USER, "password": POSTMARK_PASSWORD},
        "shop": {"kind": "shopify", "secret": SHOPIFY_SECRET},
        "square": {"kind": "square", "signature_key": SQUARE_KEY, "notification_url": SQUARE_URL},
        "meta": {"kind": "meta", "app_secret": META_SECRET, "verify_token": META_TOKEN},
        "kasse": {"kind": "mapped", "mapping": "kasse.json"},
    }}))
    return path


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A running collector with every kind of source configured."""
    directory = tmp_path_factory.mktemp("sources")
    with Collector(data_dir=directory / "data", extra_env={
            "REISE_SOURCES": str(sources_file(directory)),
            "REISE_WRITE_KEYS": f"test=wk_test,shop={SHOP_KEY},site=pk_site@web+email,seg=pk_seg@web,"
                                "rud=pk_rud@web"}) as instance:
        yield instance


def hook(collector: Collector, source: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST a raw webhook body to /hooks/{source}."""
    return http("POST", f"{collector.url}/hooks/{source}", raw=body,
                headers={"Content-Type": "application/json", **headers})


def sendgrid_headers(body: bytes, timestamp: str = "1700000000", key: ec.EllipticCurvePrivateKey | None = None,
                     ) -> dict[str, str]:
    """SendGrid's signature: ECDSA P-256 SHA-256 over timestamp + body, base64 DER."""
    signature = (key or SENDGRID_KEY).sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def mailgun_signed(event_data: dict[str, Any], token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                   key: str = MAILGUN_KEY) -> bytes:
    """A Mailgun webhook body: HMAC-SHA256 hex over timestamp + token."""
    timestamp = "1529006854"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                       "event-data": event_data}).encode()


def b64_hmac(secret: str, content: bytes) -> str:
    """Base64 HMAC-SHA256 (Shopify, Square)."""
    return base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


def hex_hmac(secret: str, content: bytes) -> str:
    """Hex HMAC-SHA256 (Meta's X-Hub-Signature-256 after ``sha256=``, the mapped till)."""
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def basic(user: str, password: str) -> str:
    """An HTTP Basic header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def rows(collector: Collector, where: str, params: dict[str, Any] | None = None,
         columns: str = "message_id, type, event, customer_id, anonymous_id, channel, stage, revenue, order_id, "
                        "store_id, source, campaign") -> list[dict[str, Any]]:
    """Touchpoints matching a condition, once the spool is written."""
    collector.wait_settled()
    return collector.query(f"SELECT {columns} FROM touchpoints WHERE {where} ORDER BY timestamp, message_id",
                           params)


def dead_letters(collector: Collector, source: str, needle: str) -> list[dict[str, Any]]:
    """Dead letters of a source whose payload or reason contains a string."""
    collector.wait_settled()
    return collector.query("SELECT source, endpoint, reason, payload FROM dead_letters WHERE source = {s:String} "
                           "AND (position(payload, {n:String}) > 0 OR position(reason, {n:String}) > 0)",
                           {"s": source, "n": needle})

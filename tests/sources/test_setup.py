"""Setting sources up: the sources file is checked at start, secrets never reach dead letters, and every source
is in the dashboard's source list."""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from collector.errors import ConfigError
from collector.settings import Settings
from collector.sources.config import load_sources
from tests.helpers import Collector
from tests.sources import payloads
from tests.sources.conftest import (
    MAPPING,
    SENDGRID_PUBLIC,
    SHOPIFY_SECRET,
    TILL_SECRET,
    b64_hmac,
    dead_letters,
    hook,
    sources_file,
)


def write(tmp_path: Path, entries: dict[str, Any], name: str = "sources.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"sources": entries}))
    return str(path)


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "shopify"}, "needs 'secret'"),
    ({"kind": "shopify", "secret": "short"}, "at least 8 characters"),
    ({"kind": "square", "signature_key": "square-key-0123"}, "needs 'notification_url'"),
    ({"kind": "postmark", "username": "u"}, "needs 'password'"),
    ({"kind": "sendgrid", "public_key": "bm90IGEga2V5IGF0IGFsbA=="}, "not a public key"),
    ({"kind": "zapier", "secret": "0123456789"}, "kind must be one of"),
    ({"kind": "meta", "app_secret": "0123456789", "verify_token": "0123456789", "channels": ["fax"]},
     "unknown channels"),
    ({"kind": "snowplow", "app_ids": []}, "needs 'app_ids'"),
])
def test_a_source_without_what_its_kind_needs_is_refused_at_start(tmp_path: Path, entry: dict[str, Any],
                                                                  message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sources(write(tmp_path, {"src": entry}))


def test_an_unsigned_mapping_is_refused(tmp_path: Path) -> None:
    for signature in ({"scheme": "none"}, {"scheme": "hmac-sha256", "header": "X-Sig"}, None):
        (tmp_path / "m.json").write_text(json.dumps({**MAPPING, "signature": signature}))
        with pytest.raises(ConfigError, match="signature"):
            load_sources(write(tmp_path, {"till": {"kind": "mapped", "mapping": "m.json"}}))
    (tmp_path / "m.json").write_text(json.dumps({**MAPPING, "fields": {"userid": "x"}}))
    with pytest.raises(ConfigError, match="unknown touchpoint fields"):
        load_sources(write(tmp_path, {"till": {"kind": "mapped", "mapping": "m.json"}}))


def test_toml_app_ids_and_scopes(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f'[sources.web]\nkind = "snowplow"\napp_ids = ["a", "b"]\n\n[sources.mail]\nkind = "sendgrid"\n'
                    f'public_key = "{SENDGRID_PUBLIC}"\nscope = "awareness+consideration"\n')
    sources = load_sources(str(path))
    assert sources.for_app_id("b").name == "web"  # type: ignore[union-attr]
    assert sources.get("mail").scope.stages == frozenset({"awareness", "consideration"})  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="the app id 'a' belongs to"):
        load_sources(write(tmp_path, {"x": {"kind": "snowplow", "app_ids": ["a"]},
                                      "y": {"kind": "snowplow", "app_ids": ["a"]}}))
    env = {"REISE_SOURCES": str(path), "REISE_WRITE_KEYS": "shop=sk_shop_0123", "REISE_KEY_SCOPES": "web=all",
           "REISE_DSN": f"chdb://{tmp_path}/data"}
    assert Settings.from_env(env).key_scopes["web"].revenue  # a source of REISE_SOURCES may be scoped there too
    with pytest.raises(ConfigError, match="no write key has the source 'nobody'"):
        Settings.from_env({**env, "REISE_KEY_SCOPES": "nobody=all"})


def test_source_secrets_never_reach_dead_letters(tmp_path: Path) -> None:
    settings = Settings.from_env({"REISE_SOURCES": str(sources_file(tmp_path)), "REISE_DSN": f"chdb://{tmp_path}/d"})
    assert {SHOPIFY_SECRET, TILL_SECRET} <= set(settings.secret_values)
    assert SENDGRID_PUBLIC not in settings.secret_values  # public: nothing to hide


def test_a_leaked_secret_in_a_bad_request_is_redacted(sources: Collector) -> None:
    marker = uuid.uuid4().hex
    body = json.dumps({"receipts": [{"note": f"{marker} {TILL_SECRET}"}]}).encode()
    assert hook(sources, "kasse", body, {"X-Kasse-Signature": "sha256=00"}).status == 401
    [letter] = dead_letters(sources, "kasse", marker)
    assert TILL_SECRET not in letter["payload"] and letter["reason"].startswith("signature: ")


def _call(collector: Collector, method: str, path: str, *, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def test_every_source_is_in_the_dashboard_source_list(sources: Collector) -> None:
    order = uuid.uuid4().int % 10**12
    order_body = payloads.dumps(payloads.shopify_order(order))
    hook(sources, "shop", order_body, {"X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, order_body),
                                      "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": str(order)})
    sources.wait_settled()
    status, headers, _ = _call(sources, "POST", "/dashboard/login", body=urlencode({"key": sources.admin_key}).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    status, _, raw = _call(sources, "GET", "/dashboard/api/sources",
                           headers={"Cookie": cookie, "X-Reise-Dashboard": "1"})
    assert status == 200
    listed = {s["source"]: s for s in json.loads(raw)["sources"]}
    assert {"web-sp", "newsletter", "mailgun", "postmark", "shop", "square", "meta", "kasse", "test", "site"} <= set(
        listed)
    assert listed["shop"]["kinds"] == ["secret key", "shopify"]
    assert listed["shop"]["endpoints"] == ["/hooks/shop", "/v1/batch"]
    assert listed["shop"]["touchpoints"] >= 1
    assert listed["web-sp"]["endpoints"] == ["/i, /com.snowplowanalytics.snowplow/tp2"]
    assert _call(sources, "GET", "/dashboard/api/sources", headers={"X-Reise-Dashboard": "1"})[0] == 401
    page = _call(sources, "GET", "/dashboard", headers={"Cookie": cookie})[2].decode()
    assert 'id="sources-table"' in page and "sources.js" in page

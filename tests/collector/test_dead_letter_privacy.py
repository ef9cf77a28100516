"""Dead letters keep what went wrong, not what the store must never hold: no secrets, no full IP addresses."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from collector.ingest.redact import REDACTED, Redactor, secret_field
from collector.settings import Settings, parse_write_keys
from tests.helpers import Collector, http

PAYLOADS_SQL = "SELECT payload FROM dead_letters WHERE position(payload, {m:String}) > 0"
COUNT_SQL = "SELECT count() FROM dead_letters WHERE position(payload, {m:String}) > 0"


def dead_payloads(collector: Collector, marker: str, expected: int = 1) -> list[str]:
    """The payloads of the dead letters that mention a marker, once ``expected`` of them were written."""
    assert collector.wait_for(COUNT_SQL, expected, {"m": marker}) == expected
    return [row["payload"] for row in collector.query(PAYLOADS_SQL, {"m": marker})]


def test_a_rejected_event_keeps_a_truncated_ip_and_no_secrets(collector: Collector) -> None:
    marker = f"dl-{uuid.uuid4().hex}"
    basic = base64.b64encode(b"wk_till:").decode()
    events = [
        {"type": "track", "userId": marker, "event": "X", "channel": "fax", "writeKey": "wk_other",
         "context": {"ip": "198.51.100.77"},
         "properties": {"apiKey": "sk_live_abcdef123", "note": "sent with ak_test", "header": f"Basic {basic}",
                        "nested": [{"Authorization": "Bearer xyz-token-123"}]}},
        {"type": "track", "userId": marker, "event": "X", "channel": "fax",
         "context": {"ip": "2001:db8:85a3:8d3:1319:8a2e:370:7348"}},
    ]
    reply = collector.post("/v1/batch", {"batch": events})
    assert reply.status == 200 and len(reply.body["rejected"]) == 2
    payloads = "\n".join(dead_payloads(collector, marker, 2))
    for leaked in ("198.51.100.77", "1319:8a2e", "wk_other", "sk_live_abcdef123", "ak_test", basic,
                   "xyz-token-123"):
        assert leaked not in payloads
    assert "198.51.100.0" in payloads and "2001:db8:85a3::" in payloads and REDACTED in payloads


def test_a_malformed_body_keeps_no_ip_and_no_key(collector: Collector) -> None:
    marker = f"dl-{uuid.uuid4().hex}"
    body = (f'{{"writeKey": "wk_other", "batch": [{{"type": "track", "userId": "{marker}", '
            f'"context": {{"ip": "203.0.113.99"}}, "properties": {{"token": "t0k3n-{marker}"}}')  # cut short
    reply = collector.post("/v1/batch", raw=body.encode())
    assert reply.status == 400
    (payload,) = dead_payloads(collector, marker)
    assert "wk_other" not in payload and "203.0.113.99" not in payload and f"t0k3n-{marker}" not in payload
    assert "203.0.113.0" in payload and marker in payload


def test_a_secret_key_in_a_pixel_url_is_not_kept(collector: Collector) -> None:
    marker = f"dl-{uuid.uuid4().hex}"
    for query in (f"k=wk_till&uid={marker}&e=open", f"writeKey=wk_other&uid={marker}&e=open",
                  f"k=sk_guessed_{marker}x&uid={marker}"):
        assert http("GET", f"{collector.url}/p.gif?{query}").status == 200
    payloads = dead_payloads(collector, marker, 3)
    assert all("wk_till" not in p and "wk_other" not in p and "sk_guessed" not in p for p in payloads)
    assert all(f"uid={marker}" in p for p in payloads)


def test_a_single_event_with_its_key_in_the_body_keeps_no_key(collector: Collector) -> None:
    marker = f"dl-{uuid.uuid4().hex}"
    reply = http("POST", collector.url + "/v1/track",
                 {"writeKey": "wk_other", "userId": marker, "event": "X", "channel": "fax"})
    assert reply.status == 400
    (payload,) = dead_payloads(collector, marker)
    assert "wk_other" not in payload and json.loads(payload)["writeKey"] == REDACTED


def test_every_configured_secret_is_redacted_also_from_text_that_is_not_json(tmp_path: Path) -> None:
    settings = Settings(write_keys=parse_write_keys("shop=sk_shop_secret1,site=pk_site_public@web"),
                        admin_key="ak_admin_secret", link_keys=("link-key-0123456789abcdef",),
                        spool_dir=tmp_path, dsn=f"chdb://{tmp_path}")
    assert set(settings.secret_values) == {"sk_shop_secret1", "ak_admin_secret", "link-key-0123456789abcdef"}
    redactor = Redactor.of(settings.secret_values, "drop")
    text = redactor.payload("free text: sk_shop_secret1 / link-key-0123456789abcdef / "
                            "Authorization: Basic " + base64.b64encode(b"ak_admin_secret:").decode(), "batch")
    assert "secret" not in text and "link-key" not in text and text.count(REDACTED) == 3
    assert json.loads(redactor.payload({"context": {"ip": "198.51.100.1"}}, "batch")) == {"context": {"ip": ""}}
    assert redactor.payload("/r/abc?uid=u1&ip=198.51.100.7&key=x", "link") == "/r/abc?uid=u1&ip=&key=[redacted]"
    deep: dict[str, object] = {"writeKey": "sk_deep"}
    for _ in range(100):
        deep = {"a": deep}
    assert "sk_deep" not in redactor.payload(deep, "batch")


def test_fields_that_hold_credentials() -> None:
    redactor = Redactor()
    for name in ("writeKey", "write_key", "k", "K", "key", "apiKey", "api-key", "Authorization", "password",
                 "Pass_Word", "token", "access_token", "client_secret", "linkKey", "bearer", "credentials"):
        assert secret_field(name), name
        # whatever the payload's form, the value goes (the cheap pre-check never skips such a name)
        assert "s3cr3t" not in redactor.payload({"a": [{name: "s3cr3t"}]}, "batch"), name
        assert "s3cr3t" not in redactor.payload(f'{{"a": [{{"{name}" : "s3cr3t", "b', "batch"), name
        assert "s3cr3t" not in redactor.payload(f"uid=1&{name}=s3cr3t", "pixel"), name
        assert "s3cr3t" not in redactor.payload(f"/r/tok?{name}=s3cr3t&x=1", "link"), name
    for payload, endpoint in (({"IP": "198.51.100.9"}, "batch"), ('{"ip": "198.51.100.9", "x', "batch"),
                              ("ip=198.51.100.9&uid=1", "pixel")):
        assert "198.51.100.9" not in redactor.payload(payload, endpoint)
    for name in ("userId", "keyword", "event", "ip", "messageId", "store_id", "tokens_used"):
        assert not secret_field(name), name

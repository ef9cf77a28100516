"""Property-based hostile input at every endpoint: no 5xx, no crash, no memory blow-up, reasons named."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Collector, basic

EXAMPLES = 10_000
ROUTES = [
    ("POST", "/v1/batch"), ("POST", "/v1/import"), ("POST", "/v1/track"), ("POST", "/v1/identify"),
    ("POST", "/v1/alias"), ("POST", "/v1/page"), ("POST", "/v1/screen"), ("POST", "/v1/group"),
    ("POST", "/v1/query"), ("POST", "/v1/admin/writing"), ("POST", "/v1/admin/forget"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/batch"), ("PUT", "/v1/track"),
    ("GET", "/p.gif"), ("GET", "/r/x"), ("GET", "/t.js"), ("GET", "/dashboard"), ("POST", "/dashboard/login"),
]
FIELDS = ["type", "event", "userId", "anonymousId", "previousId", "messageId", "timestamp", "sentAt", "channel",
          "stage", "properties", "traits", "context", "revenue", "currency", "campaign", "order_id", "store_id",
          "name", "writeKey", "batch", "sql", "params", "paused", "customer_id", "consent", "ip", "page"]

nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=20),
    st.sampled_from(["", "track", "page", "identify", "alias", "web", "pos", "purchase", "\u0000", "\ud7ff",
                     "2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "0000-00-00", "1e999", "-1",
                     "'; DROP TABLE touchpoints; --", "SELECT 1", "{x:String}", "../../etc/passwd"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | nasty_text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(FIELDS) | nasty_text,
                                                                      children, max_size=8),
    max_leaves=40,
)
raw_json_texts = st.sampled_from([
    b"[" * 5000 + b"]" * 5000,
    b'{"batch": [' + b"[" * 3000 + b"]" * 3000 + b"]}",
    b'{"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"revenue": 1e999}}]}',
    b'{"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"n": NaN}}]}',
    b'{"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"big": 1234567890123456789012345}}]}',
    b'{"batch": [{"type": "track", "userId": "\\ud800", "event": "e"}]}',
    b'{"userId": "' + b"x" * 1_000_000 + b'", "event": "e"}',
    b'{"batch": [{"type": "track", "userId": "u", "event": "' + b"e" * 600_000 + b'"}]}',
    "{\"userId\": \"\u00e9\", \"event\": \"caf\u00e9\"}".encode("latin-1"),
    b"\xef\xbb\xbf{}", b"\x00\x00\x00", b"null", b"1", b'"s"', b"{}", b'{"batch": null}',
])


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return draw(raw_json_texts)
    value = draw(json_values)
    if kind == 3:  # shaped like a batch, so validation runs deep
        value = {"batch": draw(st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10),
                                        min_size=1, max_size=5))}
    try:
        return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        return b"{}"


@st.composite
def requests(draw: st.DrawFn, collector: Collector) -> tuple[str, str, dict[str, str], bytes]:
    method, path = draw(st.sampled_from(ROUTES))
    query = draw(st.one_of(st.just(""), st.text(max_size=60).map(lambda t: "?" + t.encode("utf-8", "replace")
                                                                 .hex()[:80]),
                           st.sampled_from(["?k=pk_site&e=email_opened&c=email", "?a=%ZZ&b=%00", "?" + "x=1&" * 500,
                                            "?k=" + "A" * 5000, "?e=%F0%9F%92%A9&u=%C3%28"])))
    body = draw(bodies())
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", "application/json; "
                                                     "charset=latin-1", "multipart/form-data", "", "\u00ff"]))}
    auth = draw(st.sampled_from(["write", "admin", "none", "garbage", "bearer", "huge", "basic-bad"]))
    headers["Authorization"] = {
        "write": basic(collector.write_key), "admin": basic(collector.admin_key), "none": "",
        "garbage": "Basic !!!", "bearer": "Bearer " + collector.write_key, "huge": "Basic " + "A" * 6000,
        "basic-bad": "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
    }[auth]
    encoding = draw(st.sampled_from(["", "", "gzip", "gzip-bad", "deflate", "br", "x-unknown"]))
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif encoding == "gzip-bad":
        headers["Content-Encoding"] = "gzip"
    elif encoding:
        headers["Content-Encoding"] = encoding
    return method, path + query, {k: v for k, v in headers.items() if v}, body


class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        for attempt in range(2):
            try:
                self.connection.request(method, target, body=body if method != "GET" else None,
                                        headers={k: v.encode("latin-1", "replace").decode("latin-1")
                                                 for k, v in headers.items()})
                reply = self.connection.getresponse()
                return reply.status, reply.read(), reply.getheader("Content-Type") or ""
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_hostile_requests_never_get_a_5xx(collector: Collector) -> None:
    client = Client(collector.port)
    assert collector.process is not None
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(st.data())
    def one(data: Any) -> None:
        method, target, headers, body = data.draw(requests(collector))
        status, payload, content_type = client.send(method, target, headers, body)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (method, target, headers, body[:300], payload[:300])
        if status >= 400:
            assert payload, (method, target, status)
            if "json" in content_type:
                error = json.loads(payload).get("error")
                assert isinstance(error, str) and error, payload[:300]

    one()
    assert collector.process.poll() is None
    assert sum(seen.values()) >= EXAMPLES
    assert {200, 400, 401} <= set(seen)  # the inputs reached past auth and validation
    assert rss_mib(collector.process.pid) < 2048
    status, _, _ = client.send("GET", "/healthz", {}, b"")
    assert status == 200

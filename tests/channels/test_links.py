"""Signed click links: a valid one records the click and redirects; anything else redirects nowhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from reise import Client

from collector.ingest.linktoken import mint
from tests.channels.conftest import LINK_KEY, OLD_LINK_KEY, get_raw
from tests.helpers import Collector

TARGET = "https://shop.example/spring?utm_source=newsletter&utm_medium=email"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: dict[str, object], key: str = LINK_KEY) -> str:
    """A token signed correctly over any payload, to show the collector's own checks."""
    body = b64(json.dumps(payload).encode())
    return f"{body}.{b64(hmac.new(key.encode(), body.encode(), hashlib.sha256).digest())}"


def test_a_valid_link_records_the_click_and_redirects(channels: Collector) -> None:
    user = f"ln-{uuid.uuid4().hex[:10]}"
    token = mint(LINK_KEY, TARGET, event="email_clicked", channel="email", userId=user, campaign="spring",
                 properties={"position": "hero"})
    reply = get_raw(f"{channels.url}/r/{token}")
    assert reply.status == 302 and reply.headers["Location"] == TARGET
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    row = channels.query("SELECT event, channel, campaign, stage, source, properties FROM touchpoints"
                         " WHERE customer_id = {u:String}", {"u": user})[0]
    assert row == {"event": "email_clicked", "channel": "email", "campaign": "spring", "stage": "consideration",
                   "source": "links", "properties": {"position": "hero", "url": TARGET}}


def test_links_minted_by_the_sdk_with_the_older_key_still_work(channels: Collector) -> None:
    user = f"ln-{uuid.uuid4().hex[:10]}"
    with Client("wk_test", channels.url, link_key=OLD_LINK_KEY, public_key="pk_site") as client:
        url = client.click_url(TARGET, channel="sms", user_id=user, campaign="flash", expires_in=3600)
        pixel = client.pixel_url(user_id=user, campaign="flash")
    assert url.startswith(channels.url + "/r/")
    reply = get_raw(url)
    assert reply.status == 302 and reply.headers["Location"] == TARGET
    assert get_raw(pixel).status == 200
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 2, {"u": user})
    rows = channels.query("SELECT event, channel, campaign FROM touchpoints WHERE customer_id = {u:String}"
                          " ORDER BY event", {"u": user})
    assert rows == [{"event": "email_opened", "channel": "email", "campaign": "flash"},
                    {"event": "sms_clicked", "channel": "sms", "campaign": "flash"}]


def test_a_newsletter_tool_fills_in_the_recipient_after_signing(channels: Collector) -> None:
    user = f"ln-{uuid.uuid4().hex[:10]}"
    token = mint(LINK_KEY, TARGET, channel="email", campaign="weekly")
    reply = get_raw(f"{channels.url}/r/{token}?uid={user}")
    assert reply.status == 302 and reply.headers["Location"] == TARGET
    assert channels.wait_for("SELECT event FROM touchpoints WHERE customer_id = {u:String}", "email_clicked",
                             {"u": user}) == "email_clicked"


def test_a_social_link_without_ids_gets_an_anonymous_id_cookie(channels: Collector) -> None:
    campaign = f"post-{uuid.uuid4().hex[:8]}"
    token = mint(LINK_KEY, "https://shop.example/", channel="social", campaign=campaign)
    first = get_raw(f"{channels.url}/r/{token}")
    assert first.status == 302
    cookie = first.headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("reise_aid=") and "HttpOnly" in first.headers["Set-Cookie"]
    assert get_raw(f"{channels.url}/r/{token}", {"Cookie": cookie}).status == 302
    channels.wait_for("SELECT count() FROM touchpoints WHERE campaign = {c:String}", 2, {"c": campaign})
    ids = channels.query("SELECT DISTINCT anonymous_id, event FROM touchpoints WHERE campaign = {c:String}",
                         {"c": campaign})
    assert ids == [{"anonymous_id": cookie.partition("=")[2], "event": "social_clicked"}]


def tampered_payload() -> str:
    token = mint(LINK_KEY, TARGET, userId="u1")
    sig = token.partition(".")[2]
    evil = b64(json.dumps({"url": "https://evil.example/", "userId": "u1"}).encode())
    return f"{evil}.{sig}"


def tampered_signature() -> str:
    token = mint(LINK_KEY, TARGET, userId="u1")
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


BAD_TOKENS = {
    "tampered payload": (tampered_payload, "token: bad signature"),
    "tampered signature": (tampered_signature, "token: bad signature"),
    "unsigned": (lambda: b64(json.dumps({"url": TARGET}).encode()), "token: unsigned or malformed"),
    "signed with an unknown key": (lambda: mint("some-other-key-0123456", TARGET, userId="u"), "token: bad signature"),
    "expired": (lambda: mint(LINK_KEY, TARGET, userId="u", expires_at=int(time.time()) - 1), "token: expired"),
    "domain not allowed": (lambda: mint(LINK_KEY, "https://evil.example/", userId="u"), "target: domain not allowed"),
    "lookalike domain": (lambda: mint(LINK_KEY, "https://shop.example.evil.example/", userId="u"),
                         "target: domain not allowed"),
    "javascript url": (lambda: signed({"url": "javascript:alert(1)//shop.example"}), "target: must be an absolute"),
    "protocol-relative url": (lambda: signed({"url": "//evil.example/"}), "target: must be an absolute"),
    "header injection": (lambda: signed({"url": "https://shop.example/\r\nSet-Cookie: x=1"}),
                         "target: only printable ASCII"),
    "garbage": (lambda: "!!!.$$$", "token: malformed signature"),
    "huge": (lambda: "a" * 5000 + ".b", "token: too long"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_links_answer_400_and_redirect_nowhere(channels: Collector, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    marker = uuid.uuid4().hex
    reply = get_raw(f"{channels.url}/r/{make()}?marker={marker}")
    assert reply.status == 400
    assert "Location" not in reply.headers and b"invalid" in reply.body
    found = channels.wait_for("SELECT startsWith(reason, {r:String}) FROM dead_letters WHERE endpoint = 'link'"
                              " AND position(payload, {m:String}) > 0", 1, {"m": marker, "r": reason})
    assert found == 1, channels.query("SELECT reason FROM dead_letters WHERE position(payload, {m:String}) > 0",
                                      {"m": marker})


def test_without_link_keys_no_link_works(collector: Collector) -> None:
    reply = get_raw(f"{collector.url}/r/{mint(LINK_KEY, TARGET, userId='u')}")
    assert reply.status == 400 and "Location" not in reply.headers

"""Click-link targets that cannot stand in a Location header: never minted, and answered 400 if met."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid

import pytest
import reise

from collector.errors import LinkInvalid
from collector.ingest.linktoken import mint
from tests.channels.conftest import LINK_KEY, get_raw
from tests.helpers import ROOT, Collector

UNSENDABLE = {
    "DEL": "https://shop.example/a\x7fb",
    "CR LF": "https://shop.example/a\r\nSet-Cookie: x=1",
    "NUL": "https://shop.example/\x00",
    "TAB": "https://shop.example/a\tb",
    "C1 NEL": "https://shop.example/a\x85b",
    "space": "https://shop.example/a b",
    "non-ASCII": "https://shop.example/schöne-schuhe",
    "lone surrogate": "https://shop.example/\ud800",
}


def hand_signed(url: str) -> str:
    """A token signed with the collector's link key over any target, as an old minting would have made it."""
    body = base64.urlsafe_b64encode(json.dumps({"url": url}).encode()).rstrip(b"=").decode()
    signature = hmac.new(LINK_KEY.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize("name", sorted(UNSENDABLE))
def test_minting_refuses_a_target_a_location_header_cannot_carry(name: str) -> None:
    url = UNSENDABLE[name]
    with pytest.raises(LinkInvalid, match="printable ASCII"):
        mint(LINK_KEY, url)
    with pytest.raises(reise.ValidationError, match="printable ASCII"):
        reise.links.click_url("http://127.0.0.1", LINK_KEY, url)


def test_the_cli_refuses_a_target_with_del(channels: Collector) -> None:
    done = subprocess.run([sys.executable, "-m", "collector", "link", UNSENDABLE["DEL"]], cwd=ROOT,
                          env=channels.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "printable ASCII" in done.stderr, done.stderr


@pytest.mark.parametrize("name", sorted(UNSENDABLE))
def test_a_signed_target_that_cannot_be_sent_answers_400(channels: Collector, name: str) -> None:
    reply = get_raw(f"{channels.url}/r/{hand_signed(UNSENDABLE[name])}")
    assert reply.status == 400 and "Location" not in reply.headers, name


def test_a_percent_encoded_target_still_redirects(channels: Collector) -> None:
    target = "https://shop.example/sch%C3%B6ne-schuhe?q=a%20b"
    reply = get_raw(f"{channels.url}/r/{mint(LINK_KEY, target)}")
    assert reply.status == 302 and reply.headers["Location"] == target


def test_ids_from_the_query_string_never_link(channels: Collector) -> None:
    victim, attacker = f"victim-{uuid.uuid4().hex[:8]}", f"attacker-{uuid.uuid4().hex[:8]}"
    token = mint(LINK_KEY, "https://shop.example/news", campaign="news")  # a newsletter link: no ids signed
    assert get_raw(f"{channels.url}/r/{token}?uid={attacker}&aid={victim}").status == 302
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": attacker})
    channels.wait_settled()
    row = channels.query("SELECT anonymous_id FROM touchpoints WHERE customer_id = {u:String}", {"u": attacker})
    assert row == [{"anonymous_id": ""}]
    assert channels.scalar("SELECT count() FROM identity_links WHERE anonymous_id = {v:String}", {"v": victim}) == 0

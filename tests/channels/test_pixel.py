"""The pixel: e-mail opens recorded, and the same GIF for every hit, good or garbage."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from collector.edge.pixel import GIF
from tests.channels.conftest import PUBLIC_KEY, get_raw
from tests.helpers import Collector


def assert_gif(reply_status: int, headers: object, body: bytes) -> None:
    assert reply_status == 200
    assert body == GIF and len(body) == 43
    assert headers["Content-Type"] == "image/gif"  # type: ignore[index]
    assert "no-store" in headers["Cache-Control"]  # type: ignore[index]


def test_an_email_open_is_recorded(channels: Collector) -> None:
    user = f"px-{uuid.uuid4().hex[:10]}"
    query = urlencode({"writeKey": PUBLIC_KEY, "channel": "email", "event": "email_opened", "userId": user,
                       "campaign": "spring-sale", "utm_source": "newsletter", "variant": "b", "cb": "123"})
    reply = get_raw(f"{channels.url}/p.gif?{query}", {"User-Agent": "Mail/1.0"})
    assert_gif(reply.status, reply.headers, reply.body)
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 1, {"u": user})
    row = channels.query("SELECT channel, event, campaign, stage, source, utm_source, user_agent, properties, library"
                         " FROM touchpoints WHERE customer_id = {u:String}", {"u": user})[0]
    assert row == {"channel": "email", "event": "email_opened", "campaign": "spring-sale", "stage": "consideration",
                   "source": "site", "utm_source": "newsletter", "user_agent": "Mail/1.0",
                   "properties": {"variant": "b"}, "library": "reise-pixel/1"}


def test_an_email_pixel_without_an_event_is_an_open(channels: Collector) -> None:
    user = f"px-{uuid.uuid4().hex[:10]}"
    reply = get_raw(f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=email&uid={user}&c=weekly")
    assert_gif(reply.status, reply.headers, reply.body)
    assert channels.wait_for("SELECT event FROM touchpoints WHERE customer_id = {u:String}", "email_opened",
                             {"u": user}) == "email_opened"


def test_a_page_pixel_is_attributed_from_its_url(channels: Collector) -> None:
    anon = f"px-{uuid.uuid4().hex[:10]}"
    url = "https://shop.example/?utm_source=ig&utm_medium=social&utm_campaign=reel"
    reply = get_raw(f"{channels.url}/p.gif?writeKey={PUBLIC_KEY}&type=page&aid={anon}&url={quote(url, safe='')}")
    assert_gif(reply.status, reply.headers, reply.body)
    channels.wait_for("SELECT count() FROM touchpoints WHERE anonymous_id = {a:String}", 1, {"a": anon})
    row = channels.query("SELECT type, channel, campaign, traffic_class FROM touchpoints"
                         " WHERE anonymous_id = {a:String}", {"a": anon})[0]
    assert row == {"type": "page", "channel": "social", "campaign": "reel", "traffic_class": "social"}


@pytest.mark.parametrize(("query", "reason"), [
    ("", "write key: unknown or missing"),
    ("writeKey=pk_nope&event=x&uid={m}", "write key: unknown or missing"),
    ("writeKey=wk_test&event=x&uid={m}", "write key: the pixel takes a public key (pk_)"),
    ("writeKey=pk_site&event=x&uid={m}&channel=pos", "channel: this write key may not write 'pos'"),
    ("writeKey=pk_site&channel=web&uid={m}", "event: a track call needs an event name"),
    ("writeKey=pk_site&event=x&channel=web", "userId or anonymousId: one of them is required"),
    ("writeKey=pk_site&event=x&channel=web&uid={m}&timestamp=&stage=nirvana", "stage: must be one of"),
    ("%ff%fe=%00&&&==&writeKey=pk_site&uid={m}&type=%E2%98%83", "type: must be one of"),
    ("writeKey=pk_site&uid={m}&" + "x" * 5000, "query: longer than 4096 characters"),
    ("writeKey=pk_site&uid={m}&" + "x" * 40_000, "query: longer than 4096 characters"),
    ("writeKey=pk_site&uid={m}&" + "&".join(f"p{i}=1" for i in range(80)), "query: Max number of fields exceeded"),
])
def test_garbage_still_answers_the_gif_and_is_kept_as_a_dead_letter(channels: Collector, query: str,
                                                                     reason: str) -> None:
    marker = f"pxbad-{uuid.uuid4().hex[:10]}"
    reply = get_raw(f"{channels.url}/p.gif?{query.format(m=marker)}&marker={marker}")
    assert_gif(reply.status, reply.headers, reply.body)
    found = channels.wait_for(
        "SELECT startsWith(reason, {r:String}) FROM dead_letters WHERE endpoint = 'pixel'"
        " AND position(payload, {m:String}) > 0", 1, {"m": marker, "r": reason})
    assert found == 1, channels.query("SELECT reason FROM dead_letters WHERE position(payload, {m:String}) > 0",
                                      {"m": marker})


def test_a_flood_of_garbage_gets_gifs_but_costs_bounded_disk(tmp_path: Path) -> None:
    """Keyless junk still answers the GIF; its dead letters pass a rate limit (here 5/s) like events do."""
    marker = f"flood-{uuid.uuid4().hex[:10]}"
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_PUBLIC_RATE_LIMIT": "5"}) as collector:
        for n in range(60):
            reply = get_raw(f"{collector.url}/p.gif?junk={marker}-{n}")
            assert_gif(reply.status, reply.headers, reply.body)
        kept_sql = "SELECT count() FROM dead_letters WHERE position(payload, {m:String}) > 0"
        deadline = time.monotonic() + 30
        while (kept := collector.scalar(kept_sql, {"m": marker})) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert 5 <= kept < 60

"""Pixel hits and click links are counted in the events metric, like the events of every other endpoint."""

from __future__ import annotations

import uuid
from pathlib import Path

from collector.ingest.linktoken import mint
from tests.channels.conftest import LINK_KEY, PUBLIC_KEY, get_raw
from tests.helpers import Collector
from tests.production.test_metrics import scrape, value


def test_pixel_hits_and_clicks_are_counted_in_the_events_metric(channels: Collector) -> None:
    tag = uuid.uuid4().hex[:10]
    before = scrape(channels)
    opened = f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=email&e=email_opened&uid=mx-{tag}&mid=open-{tag}"
    assert get_raw(opened).status == 200  # accepted
    assert get_raw(opened).status == 200  # the same messageId again: a duplicate
    assert get_raw(f"{channels.url}/p.gif?k={PUBLIC_KEY}&ch=pos&e=x&uid=mx-{tag}").status == 200  # pos: refused
    click = mint(LINK_KEY, "https://shop.example/spring", channel="email", userId=f"mx-{tag}")
    assert get_raw(f"{channels.url}/r/{click}").status == 302  # accepted
    after = scrape(channels)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("reise_events_total", outcome="accepted") == 2
    assert delta("reise_events_total", outcome="duplicate") == 1
    assert delta("reise_events_total", outcome="rejected") == 1
    assert delta("reise_events_rejected_total", reason="channel") == 1


def test_pixel_hits_past_the_rate_limit_get_their_gif_and_are_counted_as_rate_limited(tmp_path: Path) -> None:
    """Past its key's limit a hit still gets the GIF; it is not kept, and counted under its own outcome."""
    tag = uuid.uuid4().hex[:10]
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_PUBLIC_RATE_LIMIT": "5"}) as collector:
        before = scrape(collector)
        for n in range(40):
            reply = get_raw(f"{collector.url}/p.gif?k={PUBLIC_KEY}&ch=email&uid=rl-{tag}&mid=rl-{tag}-{n}")
            assert reply.status == 200 and reply.headers["Content-Type"] == "image/gif"
        after = scrape(collector)
        accepted = value(after, "reise_events_total", outcome="accepted") - value(
            before, "reise_events_total", outcome="accepted")
        limited = value(after, "reise_events_total", outcome="rate_limited") - value(
            before, "reise_events_total", outcome="rate_limited")
        assert accepted + limited == 40
        assert 5 <= accepted < 40 and limited >= 1
        kept = collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", accepted,
                                  {"u": f"rl-{tag}"})
        assert kept == accepted
        dead = collector.scalar("SELECT count() FROM dead_letters WHERE position(payload, {t:String}) > 0", {"t": tag})
        assert dead == 0  # dropped, not kept as dead letters

"""Pixel hits and click links are counted in the events metric, like the events of every other endpoint."""

from __future__ import annotations

import uuid

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

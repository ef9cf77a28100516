"""Flagged touchpoints stay in touchpoints but out of the journey by default; configurable; reise enrich."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.channels.conftest import get_raw
from tests.compat.conftest import rows
from tests.helpers import ROOT, Collector, http

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
          "Safari/537.36")
APPLE_MPP = "Mozilla/5.0"


def _visit(collector: Collector, user: str) -> None:
    """Two page views by a crawler, one by a person, an MPP open, a HEAD pixel hit, a human open, then a purchase."""
    pages = [{"type": "page", "userId": user, "timestamp": f"2026-02-0{i + 1}T10:00:00Z",
              "context": {"userAgent": ua, "page": {"url": "https://shop.example/"}}}
             for i, ua in enumerate([GOOGLEBOT, GOOGLEBOT, CHROME])]
    assert collector.post("/v1/batch", {"batch": pages}).body["rejected"] == []
    pixel = f"{collector.url}/p.gif?" + urlencode({"k": "pk_site", "ch": "email", "uid": user, "c": "spring"})
    get_raw(pixel + "&mid=mpp-" + user, {"User-Agent": APPLE_MPP})
    head = http("HEAD", pixel + "&mid=head-" + user, headers={"User-Agent": CHROME})
    assert head.status == 200
    get_raw(pixel + "&mid=open-" + user, {"User-Agent": CHROME})
    purchase = {"type": "track", "event": "Order Completed", "userId": user, "timestamp": "2030-01-01T00:00:00Z",
                "properties": {"revenue": 10}, "context": {"userAgent": CHROME}}
    assert collector.post("/v1/track", {**purchase, "timestamp": None}).status == 200


def _journey(collector: Collector, user: str) -> dict[str, object]:
    collector.wait_settled()
    found = collector.query("SELECT contacts, contacts_by_channel, contacts_before_first_purchase AS before"
                            " FROM customer_journey_of(id = {u:String})", {"u": user})
    assert len(found) == 1, found
    return found[0]


def test_flagged_touchpoints_are_kept_but_left_out_of_the_journey(compat: Collector) -> None:
    user = f"flag-{uuid.uuid4().hex[:10]}"
    _visit(compat, user)
    stored = rows(compat, "customer_id = {u:String}", {"u": user}, 7, "type, channel, bot, machine, flag_reasons, "
                  "in_journey, device_type")
    flagged = [(r["bot"], r["machine"], r["flag_reasons"]) for r in stored if not r["in_journey"]]
    assert sorted(map(str, flagged)) == sorted(map(str, [
        (1, 0, ["ua:Googlebot\\/"]), (1, 0, ["ua:Googlebot\\/"]), (0, 1, ["ua:mpp:apple"]),
        (0, 1, ["request:HEAD"])]))
    journey = _journey(compat, user)
    assert journey["contacts"] == 3  # the person's page view, the human open, the purchase
    assert journey["contacts_by_channel"] == {"web": 1, "email": 1, "other": 1}
    assert journey["before"] == 2
    assert compat.scalar("SELECT count() FROM contacts_before_purchase WHERE customer_id = {u:String}"
                         " AND contacts = 2", {"u": user}) == 1


@pytest.fixture
def keep_flagged(tmp_path: Path) -> Iterator[Collector]:
    """A collector that keeps flagged touchpoints in the journey (REISE_JOURNEY_EXCLUDE=none)."""
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_JOURNEY_EXCLUDE": "none"}) as instance:
        yield instance


def test_flagged_touchpoints_count_when_configured(keep_flagged: Collector) -> None:
    user = f"keep-{uuid.uuid4().hex[:10]}"
    _visit(keep_flagged, user)
    stored = rows(keep_flagged, "customer_id = {u:String}", {"u": user}, 7, "bot, machine, in_journey")
    assert sum(r["bot"] + r["machine"] for r in stored) == 4 and all(r["in_journey"] for r in stored)
    assert _journey(keep_flagged, user)["contacts"] == 7


def _reise(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=collector.env(),
                          capture_output=True, text=True, timeout=120, check=False)


def test_reise_enrich_recomputes_stored_rows_and_recounts_journeys(tmp_path: Path) -> None:
    """Rows stored without enrichment are flagged by ``reise enrich --since``, bursts whole, journeys recounted."""
    collector = Collector(data_dir=tmp_path / "data", extra_env={"REISE_ENRICH": "none"})
    user, anon = f"late-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4().hex[:8]}"
    with collector:
        _visit(collector, user)
        clicks = [{"type": "track", "event": "email_clicked", "userId": user, "channel": "email",
                   "campaign": "spring", "timestamp": f"2026-02-10T10:00:0{n}Z", "properties": {"url": url}}
                  for n, url in enumerate(["https://shop.example/a", "https://shop.example/b"])]
        bots = [{"type": "page", "anonymousId": anon, "timestamp": "2026-02-11T10:00:00Z",
                 "context": {"userAgent": GOOGLEBOT}},
                {"type": "identify", "anonymousId": anon, "userId": user, "timestamp": "2026-02-11T10:00:01Z"}]
        assert collector.post("/v1/batch", {"batch": clicks + bots}).body["rejected"] == []
        rows(collector, "journey_id IN ({u:String}, {a:String})", {"u": user, "a": anon}, 11)
        assert _journey(collector, user)["contacts"] == 10
    collector.extra_env = {"REISE_MAIL_MACHINE_SECONDS": "5"}
    with collector:
        done = _reise(collector, "enrich", "--since", "2026-01-01")
        assert done.returncode == 0, done.stderr
        assert "11 read, 6 changed" in done.stdout, done.stdout  # 3 crawler pages, the MPP open, 2 clicks
        flagged = collector.query("SELECT event, flag_reasons FROM touchpoints WHERE in_journey = 0"
                                  " AND event = 'email_clicked'")
        assert [r["flag_reasons"] for r in flagged] == [["timing:burst"], ["timing:burst"]]
        assert _journey(collector, user)["contacts"] == 4  # 10 less the 6 (the HEAD hit left no trace to flag)
        time.sleep(0.1)
        split = http("POST", collector.url + "/v1/admin/unlink", {"id": anon}, key=collector.admin_key)
        assert split.status == 200, split.body
        assert _journey(collector, anon)["contacts"] == 0  # the recount after an unlink skips flagged rows too
        assert _journey(collector, user)["contacts"] == 4

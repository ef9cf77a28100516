"""Segments: live membership equals a recount, enter and leave fire triggers, merges move members; the CLI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.analyst.test_dashboard_http import api, login, session_cookie
from tests.helpers import ROOT, Collector, http
from tests.triggers.conftest import started, trigger_env, trigger_file
from tests.triggers.receiver import Receiver

SEGMENTS = [
    {"name": "warm_leads", "where": {"reached": "consideration", "contacts_at_least": 3, "purchases_at_most": 0,
                                     "last_seen_within_days": 14}},
    {"name": "till_only", "where": {"bought_on_any": "pos", "bought_on_none": ["web", "app"]}},
]
TRIGGERS = [
    {"name": "warm_in", "when": {"enters_segment": "warm_leads"}},
    {"name": "warm_out", "when": {"leaves_segment": "warm_leads"}},
    {"name": "big_spender", "when": {"enters_stage": "advocacy", "first_time": True}, "url": "/fails"},
]
WARM_RECOUNT = """
SELECT customer_id FROM customer_journey
WHERE furthest_stage_rank >= 2 AND contacts >= 3 AND purchases = 0 AND last_seen >= now() - INTERVAL 14 DAY
ORDER BY customer_id
"""
TILL_RECOUNT = """
SELECT customer_id FROM
(
    SELECT customer_id, max(hidden) AS is_hidden,
           arrayFilter((c, s) -> s = 3, groupArrayArray(contact_channels), groupArrayArray(contact_stages)) AS bought
    FROM customer_state GROUP BY customer_id
)
WHERE is_hidden = 0 AND has(bought, 'pos') AND NOT hasAny(bought, ['web', 'app'])
ORDER BY customer_id
"""


def _ev(mid: str, who: dict[str, str], stage: str, days_ago: float = 0, channel: str = "web",
        kind: str = "track") -> dict[str, Any]:
    event = {"type": kind, "messageId": mid, "event": f"e {mid}", "stage": stage, "channel": channel, **who,
             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - days_ago * 86400 - 60)) + "Z"}
    if kind == "identify":
        del event["event"], event["stage"]
    return event


def _members(collector: Collector, segment: str) -> list[str]:
    rows = collector.query("SELECT customer_id FROM segment_members WHERE segment = {s:String} ORDER BY customer_id",
                           {"s": segment})
    return [r["customer_id"] for r in rows]


def _reise(collector: Collector, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=collector.env(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _settle(collector: Collector) -> None:
    collector.wait_settled()
    time.sleep(1.5)  # the records reach ClickHouse each second


def test_segments_are_live_fire_triggers_and_equal_a_recount(tmp_path: Path, receiver: Receiver) -> None:
    """Enter, leave, time windows, channels and a merge; membership equals the recount; CLI list/show/export."""
    env = trigger_env(trigger_file(tmp_path / "t.json", receiver, TRIGGERS, SEGMENTS),
                      REISE_TRIGGER_MAX_ATTEMPTS="2")
    collector = started(tmp_path, env)
    try:
        u = {"w1": {"userId": "s-w1"}, "w2": {"userId": "s-w2"}, "w3": {"userId": "s-w3"}, "old": {"userId": "s-old"},
             "t1": {"userId": "s-t1"}, "t2": {"userId": "s-t2"}, "a1": {"anonymousId": "s-a1"}}
        batch = [_ev(f"s-{n}-{i}", u[n], "consideration") for n in ("w1", "w3", "a1") for i in range(3)]
        batch += [_ev(f"s-w2-{i}", u["w2"], "consideration") for i in range(2)]
        batch += [_ev(f"s-old-{i}", u["old"], "consideration", days_ago=20) for i in range(3)]
        batch += [_ev("s-t1-0", u["t1"], "purchase", channel="pos"), _ev("s-t2-0", u["t2"], "purchase", channel="pos"),
                  _ev("s-t2-1", u["t2"], "purchase", channel="web")]
        assert collector.post("/v1/batch", {"batch": batch}).status == 200
        _settle(collector)
        assert _members(collector, "warm_leads") == ["s-a1", "s-w1", "s-w3"]
        # w3 buys (leaves); a1 is identified as u1 (the membership moves, no second enter)
        later = [_ev("s-w3-9", u["w3"], "purchase"),
                 _ev("s-u1-id", {"userId": "s-u1", "anonymousId": "s-a1"}, "", kind="identify")]
        assert collector.post("/v1/batch", {"batch": later}).status == 200
        _settle(collector)
        assert _members(collector, "warm_leads") == ["s-u1", "s-w1"]
        assert _members(collector, "warm_leads") == [r["customer_id"] for r in collector.query(WARM_RECOUNT)]
        assert _members(collector, "till_only") == ["s-t1"]
        assert _members(collector, "till_only") == [r["customer_id"] for r in collector.query(TILL_RECOUNT)]
        fired = sorted((p["trigger"], p["customer_id"]) for p in receiver.wait_for(4))
        assert fired == [("warm_in", "s-a1"), ("warm_in", "s-w1"), ("warm_in", "s-w3"), ("warm_out", "s-w3")]
        changes = collector.query("SELECT change, reason FROM segment_changes WHERE customer_id = 's-a1'")
        assert sorted((c["change"], c["reason"]) for c in changes) == [("enter", "condition"), ("leave", "merge")]

        listing = _reise(collector, "segment", "list")
        assert "warm_leads" in listing and "till_only" in listing
        assert "members: 2" in _reise(collector, "segment", "show", "warm_leads")
        exported = list(csv.DictReader(io.StringIO(_reise(collector, "segment", "export", "till_only", "--csv"))))
        assert [(r["customer_id"], r["purchases"]) for r in exported] == [("s-t1", "1")]

        # a failing destination: parked after 2 attempts, listed, replayed once it works
        receiver.status = 500
        assert collector.post("/v1/track", _ev("s-w1-adv", u["w1"], "advocacy")).status == 200
        deadline = time.monotonic() + 20
        while "big_spender" not in _reise(collector, "triggers", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "s-w1" in _reise(collector, "triggers", "failed", "--trigger", "big_spender")
        receiver.status = 200
        assert "1 parked" in _reise(collector, "triggers", "replay", "--trigger", "big_spender")
        delivered = receiver.wait_for(1, trigger="big_spender")
        assert len([r for r in receiver.received if r.path == "/fails"]) == 3
        assert delivered[-1]["customer_id"] == "s-w1"
        _settle(collector)
        attempts = collector.query("SELECT attempt, outcome FROM trigger_attempts WHERE trigger = 'big_spender' "
                                   "ORDER BY attempted_at")
        assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "retry"), (2, "parked"), (1, "delivered")]

        # visible: the dashboard's panel and the metrics
        panel = api(collector, "/dashboard/api/triggers", session_cookie(login(collector, collector.admin_key))).json()
        rows = {r["trigger"]: r for r in panel["triggers"]}
        assert rows["warm_in"]["delivered"] == 3 and rows["big_spender"]["failed_attempts"] == 2
        sizes = {(r["segment"], r["size"]) for r in panel["segments"]}
        assert ("warm_leads", 2) in sizes and ("till_only", 1) in sizes
        metrics = http("GET", collector.url + "/metrics").body.decode()
        assert 'reise_trigger_deliveries_total{outcome="parked",trigger="big_spender"} 1.0' in metrics
        assert "reise_trigger_outbox_pending 0.0" in metrics
    finally:
        collector.stop()

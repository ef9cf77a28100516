"""Dead letters come back: `reise dead-letters` lists them, `replay` restores the journeys exactly, and twice
adds nothing. The store refuses rows for real (a constraint that throws on a sentinel campaign, on chDB)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.collector.test_retention import sql
from tests.helpers import ROOT, Collector, http


def reise(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, capture_output=True, text=True,
                          env=collector.env(), timeout=120)


def events(prefix: str, sentinel: str) -> list[dict[str, Any]]:
    batch = []
    for i in range(200):
        event: dict[str, Any] = {"type": "track", "userId": f"{prefix}-u{i % 10}", "event": "Product Viewed",
                                 "channel": "web", "messageId": f"{prefix}-m{i}",
                                 "timestamp": f"2026-10-01T10:{i // 60:02d}:{i % 60:02d}Z",
                                 "properties": {"campaign": "autumn"}}
        if i % 10 == 3:  # refused by the store
            event["properties"]["campaign"] = sentinel
        if i % 20 == 7:  # rejected by validation
            event["timestamp"] = "last tuesday"
        batch.append(event)
    return batch


def contacts(collector: Collector, prefix: str) -> dict[str, int]:
    rows = collector.query("SELECT customer_id, contacts FROM customer_journey "
                           "WHERE startsWith(customer_id, {p:String})", {"p": prefix + "-"})
    return {r["customer_id"]: int(r["contacts"]) for r in rows}


def test_replay_restores_the_journeys_exactly_and_twice_adds_nothing(tmp_path: Path) -> None:
    prefix = f"dl{uuid.uuid4().hex[:6]}"
    sentinel = f"{prefix}-sentinel"
    collector = Collector(data_dir=tmp_path / "data")
    migrate = subprocess.run([sys.executable, "-m", "collector", "migrate"], cwd=ROOT, env=collector.env(),
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    sql(collector.dsn, f"ALTER TABLE touchpoints ADD CONSTRAINT no_sentinel "
                       f"CHECK throwIf(campaign = '{sentinel}', 'sentinel campaign refused') = 0")
    batch = events(prefix, sentinel)
    expected = {f"{prefix}-u{c}": 20 for c in range(10)}
    with collector:
        answer = collector.post("/v1/batch", {"batch": batch})
        assert answer.status == 200 and answer.body["accepted"] == 190 and len(answer.body["rejected"]) == 10
        collector.wait_settled()
        parked = collector.scalar("SELECT count() FROM dead_letters WHERE endpoint = 'store'")
        assert parked == 20  # exactly the sentinel rows, however the segment was split
        before = contacts(collector, prefix)
        assert sum(before.values()) == 200 - 10 - parked

        listing = reise(collector, "dead-letters", "--json")
        assert listing.returncode == 0, listing.stderr
        reasons = {r["reason"]: r for r in json.loads(listing.stdout)}
        store_reason = next(r for r in reasons if r.startswith("store refused: Code: 395."))
        assert reasons[store_reason]["dead_letters"] == parked
        assert "sentinel campaign refused" in store_reason
        assert f'"message_id":"{prefix}-m' in reasons[store_reason]["sample"]
        rejected_reason = next(r for r in reasons if r.startswith("timestamp:"))
        assert reasons[rejected_reason]["dead_letters"] == 10
        assert reasons[rejected_reason]["first_at"] <= reasons[rejected_reason]["last_at"]
        table = reise(collector, "dead-letters")
        assert table.returncode == 0 and "dead_letters" in table.stdout.splitlines()[0]

        # a dry run changes nothing; a replay without the correction is refused by the store again
        dry = reise(collector, "dead-letters", "replay", "--reason", "store refused", "--set", "campaign=autumn",
                    "--dry-run", "--json")
        assert json.loads(dry.stdout)["accepted"] == parked and json.loads(dry.stdout)["marked"] == 0
        # rejected events: their timestamp corrected
        fixed = reise(collector, "dead-letters", "replay", "--reason", "timestamp:",
                      "--set", "timestamp=2026-10-01T12:00:00Z", "--json")
        assert fixed.returncode == 0, fixed.stderr
        assert json.loads(fixed.stdout) | {"samples": []} == {
            "dead_letters": 10, "events": 10, "accepted": 10, "duplicates": 0, "rejected": 0, "without_consent": 0,
            "not_replayable": 0, "marked": 10, "deleted": 0, "dry_run": False, "samples": []}
        # rows the store refused: their column corrected
        stored = reise(collector, "dead-letters", "replay", "--reason", "store refused", "--set", "campaign=autumn")
        assert stored.returncode == 0, stored.stderr + stored.stdout
        assert f"replayed {parked} events from {parked} dead letters" in stored.stdout
        collector.wait_settled()
        assert contacts(collector, prefix) == expected  # exactly the journeys of all 200 events

        # twice adds nothing: marked letters are left out, and forced again they are duplicates
        again = json.loads(reise(collector, "dead-letters", "replay", "--json").stdout)
        assert (again["dead_letters"], again["accepted"]) == (0, 0)
        forced = json.loads(reise(collector, "dead-letters", "replay", "--include-replayed", "--json",
                                  "--set", "campaign=autumn", "--set", "timestamp=2026-10-01T12:00:00Z").stdout)
        assert (forced["accepted"], forced["duplicates"]) == (0, 10 + parked)
        collector.wait_settled()
        assert contacts(collector, prefix) == expected
        assert collector.scalar("SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})",
                                {"p": prefix + "-"}) == 200
        assert json.loads(reise(collector, "dead-letters", "--json").stdout) == []  # nothing left to replay
        # the admin endpoint wants the admin key
        assert http("POST", collector.url + "/v1/admin/dead-letters/replay", {}, key=collector.write_key).status == 401

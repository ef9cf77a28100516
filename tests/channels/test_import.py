"""``reise import``: historical touchpoints through the collector; importing the same file twice adds nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, Collector


def run_import(collector: Collector, path: Path) -> tuple[int, dict[str, Any]]:
    env = {**collector.env(), "REISE_WRITE_KEY": collector.write_key}
    done = subprocess.run([sys.executable, "-m", "collector", "import", str(path), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_a_jsonl_import_loads_once_and_reports_rejections(channels: Collector, tmp_path: Path) -> None:
    user = f"imp-{uuid.uuid4().hex[:10]}"
    rows = [json.dumps({"userId": user, "event": "Post Viewed", "channel": "social", "campaign": "launch",
                        "timestamp": f"2025-0{m}-01T10:00:00Z"}) for m in range(1, 8)]
    rows.insert(3, "{not json")
    rows.append(json.dumps({"userId": user, "event": "Post Viewed", "channel": "fax"}))
    rows.append(json.dumps({"userId": user, "event": "Order Completed", "channel": "pos",
                            "timestamp": "2025-09-01T10:00:00Z", "properties": {"order_id": "h-1", "revenue": 30}}))
    path = tmp_path / "social.jsonl"
    path.write_text("\n".join(rows) + "\n")
    code, summary = run_import(channels, path)
    assert code == 1  # some rows were rejected
    assert (summary["rows"], summary["loaded"], summary["duplicates"]) == (10, 8, 0)
    assert [r["line"] for r in summary["rejected"]] == [4, 9]
    assert summary["rejected"][0]["reason"].startswith("invalid JSON")
    assert summary["rejected"][1]["reason"].startswith("channel: must be one of")
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 8, {"u": user})
    code, again = run_import(channels, path)
    assert (again["loaded"], again["duplicates"]) == (0, 8)
    journey = channels.query("SELECT contacts, contacts_before_first_purchase, reached_awareness_at"
                             " FROM customer_journey WHERE customer_id = {u:String}", {"u": user})[0]
    assert journey["contacts"] == 8 and journey["contacts_before_first_purchase"] == 7
    assert journey["reached_awareness_at"].startswith("2025-01-01T10:00:00")  # the historical time is kept


def test_a_csv_import_of_till_history(channels: Collector, tmp_path: Path) -> None:
    user = f"imp-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "till.csv"
    path.write_text(
        "timestamp,userId,event,channel,order_id,revenue,currency,store_id,properties.cashier,loyalty_tier\n"
        f"2024-11-02T09:00:00Z,{user},Order Completed,pos,t-1,19.90,EUR,berlin-1,anna,gold\n"
        f"2024-11-03T09:00:00Z,{user},Order Completed,pos,t-2,5.00,EUR,berlin-1,ben,gold\n"
        f"2024-11-04T09:00:00Z,{user},Order Refunded,pos,t-2,5.00,EUR,berlin-1,ben,gold\n"
        f"2024-11-04T09:00:00Z,{user},Order Refunded,pos,t-2,5.00,EUR,berlin-1,ben,gold\n")
    code, summary = run_import(channels, path)
    assert code == 0 and (summary["loaded"], summary["duplicates"]) == (3, 1)
    channels.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 3, {"u": user})
    rows = channels.query("SELECT order_id, revenue, store_id, properties FROM touchpoints"
                          " WHERE customer_id = {u:String} ORDER BY timestamp", {"u": user})
    assert [(r["order_id"], r["revenue"]) for r in rows] == [("t-1", 19.9), ("t-2", 5), ("t-2", -5)]
    assert rows[0]["properties"] == {"cashier": "anna", "loyalty_tier": "gold"}
    code, again = run_import(channels, path)
    assert (again["loaded"], again["duplicates"]) == (0, 4)


def test_an_import_is_recognised_by_the_store_after_a_restart(tmp_path: Path) -> None:
    """With the in-memory window off (REISE_DEDUP_IDS=0) and a restart in between, only the store remembers."""
    user = f"imp-{uuid.uuid4().hex[:10]}"
    events = [{"userId": user, "event": "Post Viewed", "channel": "social", "messageId": f"{user}-{n}$x$",
               "timestamp": f"2025-0{n}-01T10:00:00Z"} for n in range(1, 6)]
    order = {"userId": user, "event": "Order Completed", "channel": "pos", "timestamp": "2025-07-01T10:00:00Z",
             "properties": {"order_id": f"{user}-o1", "revenue": 30}}
    resent_order = {**order, "messageId": f"{user}-resent"}  # the till sent it again with a new messageId
    lines = [*events, events[2], order, resent_order]  # one line repeated within the file
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_DEDUP_IDS": "0"}) as collector:
        code, first = run_import(collector, path)
        assert code == 0 and (first["loaded"], first["duplicates"]) == (6, 2)
        collector.wait_for("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", 6, {"u": user})
        collector.stop()
        collector.start()
        code, again = run_import(collector, path)
        assert code == 0 and (again["loaded"], again["duplicates"]) == (0, 8)
        # nothing was accepted, so nothing is on its way: the store holds each event once
        assert collector.query("SELECT count() AS n, uniqExact(message_id) AS ids FROM touchpoints"
                               " WHERE customer_id = {u:String}", {"u": user}) == [{"n": 6, "ids": 6}]

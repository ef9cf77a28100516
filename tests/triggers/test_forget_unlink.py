"""Forget and unlink reach the triggers: a forgotten person leaves nothing in any trigger table or the outbox, and
the parts of an unlinked customer are judged afresh (a real collector, real receivers)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from collector.triggers.config import parse_trigger_config
from collector.triggers.detect import Marks, detect, reset_marks
from collector.triggers.outbox import Outbox, Result
from collector.triggers.view import Contact, CustomerView
from tests.helpers import Collector, http
from tests.triggers.conftest import started, trigger_env, trigger_file
from tests.triggers.receiver import Receiver
from tests.triggers.test_exactly_once import _event

SEGMENTS = [{"name": "buyers", "where": {"purchases_at_least": 1}}]


def _outbox_rows(collector: Collector, ids: list[str]) -> dict[str, int]:
    """Rows of the outbox database (beside the spool) that name any of these ids, by table."""
    path = collector.data_dir / "spool" / "triggers.sqlite3"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = {}
        for table, text in (("outbox", "customer || CAST(body AS TEXT)"), ("marks", "key || data"),
                            ("members", "key"), ("records", "row")):
            found[table] = sum(conn.execute(f"SELECT count(*) FROM {table} WHERE instr({text}, ?) > 0",
                                            (i,)).fetchone()[0] for i in ids)
        return found
    finally:
        conn.close()


def _clickhouse_rows(collector: Collector, ids: list[str]) -> dict[str, int]:
    """Rows of the trigger tables in ClickHouse that name any of these ids, by table."""
    return {table: collector.scalar(f"SELECT count() FROM {table} WHERE customer_id IN {{ids:Array(String)}}",
                                    {"ids": ids})
            for table in ("trigger_attempts", "segment_changes", "segment_members")}


def test_forget_leaves_nothing_of_the_person_in_the_triggers(tmp_path: Path, receiver: Receiver) -> None:
    """Delivered, pending (a destination down) and recorded: after `forget` none of it names the person, their
    pending webhooks are never sent, and when they come back they are judged as a new customer."""
    down = Receiver().start()
    down.down()
    triggers = [{"name": "first_purchase", "when": {"enters_stage": "purchase", "first_time": True}},
                {"name": "new_buyer", "when": {"enters_segment": "buyers"}},
                {"name": "slow_crm", "when": {"enters_stage": "purchase", "first_time": True}}]
    path = trigger_file(tmp_path / "t.json", receiver, triggers, SEGMENTS)
    path.write_text(path.read_text().replace(f"{receiver.url}/slow_crm", f"{down.url}/slow_crm"))
    collector = started(tmp_path, trigger_env(path, REISE_TRIGGER_MAX_ATTEMPTS="1000"))
    person, other = ["f-anon", "f-cust"], ["f-keep"]
    try:
        batch = [_event("f-1", "Page Viewed", "awareness", 60, anon="f-anon"),
                 _event("f-2", "", "", 50, user="f-cust", anon="f-anon", kind="identify"),
                 _event("f-3", "Order Completed", "purchase", 40, user="f-cust", revenue=20),
                 _event("f-4", "Order Completed", "purchase", 40, user="f-keep", revenue=30)]
        assert collector.post("/v1/batch", {"batch": batch}).status == 200
        collector.wait_settled()
        assert len(receiver.wait_for(4)) == 4  # first_purchase and new_buyer, for both customers
        for who in (person, other):  # the slow destination's failures are recorded, its webhooks still pending
            assert collector.wait_for("SELECT count() > 1 FROM trigger_attempts WHERE trigger = 'slow_crm' AND "
                                      "customer_id IN {ids:Array(String)}", 1, {"ids": who}) == 1
        before = _outbox_rows(collector, person)  # records are copied to ClickHouse each second: maybe none left
        assert all(_clickhouse_rows(collector, person).values()) and before["outbox"] and before["marks"], before

        reply = http("POST", collector.url + "/v1/admin/forget", {"customer_id": "f-anon"}, key=collector.admin_key)
        assert reply.status == 200, reply.body
        assert reply.body["deleted"]["trigger_outbox"] == 3 and reply.body["deleted"]["trigger_attempts"] > 0
        assert _outbox_rows(collector, person) == {"outbox": 0, "marks": 0, "members": 0, "records": 0}
        down.up()  # the pending webhooks may go now: only the other customer's
        assert [p["customer_id"] for p in down.wait_for(1, timeout=10)] == ["f-keep"]
        time.sleep(1.5)  # a copy of records to ClickHouse would have happened by now
        assert _clickhouse_rows(collector, person) == dict.fromkeys(("trigger_attempts", "segment_changes",
                                                                     "segment_members"), 0)
        assert all(_clickhouse_rows(collector, other).values()) and _outbox_rows(collector, other)["marks"]
        assert [p["customer_id"] for p in down.payloads()] == ["f-keep"]

        # they come back: no marks remember them, so they are a new buyer again
        assert collector.post("/v1/batch", {"batch": [_event("f-5", "Order Completed", "purchase", 5,
                                                             user="f-cust", revenue=5)]}).status == 200
        collector.wait_settled()
        again = [p for p in receiver.wait_for(6) if p["customer_id"] == "f-cust"]
        assert sorted(p["trigger"] for p in again) == ["first_purchase", "first_purchase", "new_buyer", "new_buyer"]
    finally:
        collector.stop()
        down.stop()


def test_unlink_resets_the_marks_so_the_parts_are_judged_afresh(tmp_path: Path, receiver: Receiver) -> None:
    """A browser bought, then was wrongly linked to a customer who never bought: after the unlink that customer's
    own first purchase fires (before, the whole's marks said it had fired), each with a key of its own."""
    triggers = [{"name": "first_purchase", "when": {"enters_stage": "purchase", "first_time": True}}]
    collector = started(tmp_path, trigger_env(trigger_file(tmp_path / "t.json", receiver, triggers)))
    try:
        batch = [_event("u-1", "Order Completed", "purchase", 60, anon="u-anon", revenue=10),
                 _event("u-2", "", "", 50, user="u-cust", anon="u-anon", kind="identify"),
                 _event("u-3", "Page Viewed", "awareness", 40, user="u-cust")]
        assert collector.post("/v1/batch", {"batch": batch}).status == 200
        collector.wait_settled()
        first = receiver.wait_for(1)
        assert len(first) == 1
        time.sleep(1.0)  # nothing more fires for the linked customer
        assert len(receiver.payloads()) == 1

        reply = http("POST", collector.url + "/v1/admin/unlink", {"id": "u-anon"}, key=collector.admin_key)
        assert reply.status == 200, reply.body
        assert collector.post("/v1/batch", {"batch": [_event("u-4", "Order Completed", "purchase", 5,
                                                             user="u-cust", revenue=7)]}).status == 200
        collector.wait_settled()
        payloads = receiver.wait_for(3, timeout=20)
        time.sleep(0.5)
        payloads = receiver.payloads()
    finally:
        collector.stop()
    # linked in the same batch, the whole bought first as u-cust; at the unlink the browser's part is judged
    # afresh (its purchase, a key of its own), then the customer's part fires for its own purchase
    fired = [(p["customer_id"], p["touchpoint"]["stage"], p["revenue"]) for p in payloads]
    assert fired == [("u-cust", "purchase", 10), ("u-anon", "purchase", 10), ("u-cust", "purchase", 7)], payloads
    assert len({p["idempotency_key"] for p in payloads}) == 3
    assert payloads[1]["ids"] == ["u-anon"] and payloads[2]["previous_stage"] == "awareness"


def test_an_attempt_of_a_forgotten_item_is_not_recorded(tmp_path: Path) -> None:
    """The outbox forgets a customer in one go; a result that comes back afterwards (a request in flight) leaves
    no record to copy to ClickHouse."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    change = {"segment": "s", "customer_id": "gone", "change": "enter", "reason": "condition", "at": 1.0, "seq": 1}
    items = outbox.commit_detection([("k1", "t", "h:1", "gone", b"{}"), ("k2", "t", "h:1", "kept", b"{}")],
                                    {"gone": Marks(fired={"t"}), "kept": Marks(fired={"t"})},
                                    [("segment_changes", change)], [("s", "gone", True)])
    deleted = outbox.forget(["gone", "never-seen"])
    assert deleted == {"trigger_outbox": 1, "trigger_marks": 1, "trigger_members": 1, "trigger_records": 1}
    outbox.record_results([Result(item.seq, "delivered", 1, 0.0, "", {"customer_id": item.customer})
                           for item in items])
    _first, _last, tables = outbox.records()
    assert [r["customer_id"] for r in tables["trigger_attempts"]] == ["kept"]
    assert set(outbox.marks(["gone", "kept"])) == {"kept"} and outbox.counts() == {"delivered": 1}


def test_reset_marks_judge_afresh_with_new_keys_but_no_past_contacts() -> None:
    """After a reset, a first-time trigger fires again under a new key; an every-time trigger does not fire for
    contacts seen before; the kept key keeps its segment membership."""
    config = parse_trigger_config(
        [{"name": "first", "when": {"enters_stage": "purchase", "first_time": True}, "url": "https://h/x",
          "secret": "s" * 16},
         {"name": "each", "when": {"enters_stage": "purchase"}, "url": "https://h/x", "secret": "s" * 16}],
        [{"name": "buyers", "where": {"purchases_at_least": 1}}], hosts=("h",))
    bought = Contact(1_000, "web", "", 3)
    view = CustomerView(key="k", ids=("a", "k"), stage_key=1_000 * 8 + 3, furthest=3,
                        reached=(None, None, 1_000, None, None), contacts=1, purchases=1, revenue=5.0,
                        last_seen=1_000, history=(bought,))
    fired, _changes, marks = detect(config, view, Marks(), 2_000)
    assert sorted(t.trigger.name for t in fired) == ["each", "first"]
    reset = reset_marks({"k": marks}, ["a", "k"], keeper="k")
    assert reset["k"].member("buyers") and not reset["a"].member("buyers") and reset["a"].epoch == 1
    again, changes, _after = detect(config, view, reset["k"], 3_000)
    assert [t.trigger.name for t in again] == ["first"] and changes == []
    assert again[0].key != next(t.key for t in fired if t.trigger.name == "first")

"""The trigger engine: after a spool segment is stored, find the transitions of the customers it touched.

Runs on the writer thread (``Batcher`` calls ``on_segment`` after the segment's touchpoints are inserted and
its identity links resolved), so it sees every segment once in order, and a replay after a crash sees the
same store. For each touched customer it reads the merged state (one primary-key query for the segment),
compares it with the marks of the customer's ids (collector.triggers.detect) and commits the transitions,
the segment changes and the new marks to the outbox in one transaction. A periodic ``scan`` does the same
for what time alone changes: dormant buyers and segments with a last-seen clause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from collector.ingest.spool import Segment as SpoolSegment
from collector.store.clickhouse import Store
from collector.triggers.config import TriggerConfig
from collector.triggers.detect import DAY_MS, Marks, SegmentChange, Transition, detect, merge_marks, stage_name
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Item, Outbox
from collector.triggers.view import CustomerView, read_customers

__all__ = ["Cause", "TriggerEngine", "touched_by"]

log = structlog.get_logger("reise.triggers")
FIRST_SCAN_LOOKBACK_DAYS = 7.0  # how far back the first scan looks for buyers who went quiet
SCAN_LIMIT = 100_000  # customers one scan considers at most
SCAN_SQL = """
SELECT customer_id
FROM customer_state
GROUP BY customer_id
HAVING max(hidden) = 0 AND sum(purchases) >= {buyers:UInt8}
   AND max(last_seen) >= fromUnixTimestamp64Milli({low:Int64})
   AND max(last_seen) < fromUnixTimestamp64Milli({high:Int64})
LIMIT {limit:UInt32}
"""


@dataclass(frozen=True)
class Cause:
    """The touchpoint behind a transition, as the segment carried it."""

    message_id: str
    event: str
    type: str


def touched_by(segment: SpoolSegment) -> tuple[set[str], dict[tuple[str, int, int], Cause]]:
    """The ids a segment's touchpoints name, and each touchpoint by (journey id, time in ms, stage rank)."""
    ids: set[str] = set()
    causes: dict[tuple[str, int, int], Cause] = {}
    header, *lines = segment.read("touchpoints").splitlines() or [b"[]"]
    names = orjson.loads(header)
    at = {name: i for i, name in enumerate(names)}
    needed = ("journey_id", "customer_id", "anonymous_id", "timestamp", "stage_rank", "message_id", "event", "type")
    if any(n not in at for n in needed):
        return ids, causes
    for line in lines:
        try:
            row = orjson.loads(line)
            journey = str(row[at["journey_id"]])
            ids.update(i for i in (journey, str(row[at["customer_id"]]), str(row[at["anonymous_id"]])) if i)
            key = (journey, round(float(row[at["timestamp"]]) * 1000), int(row[at["stage_rank"]]))
            causes[key] = Cause(str(row[at["message_id"]]), str(row[at["event"]]), str(row[at["type"]]))
        except (orjson.JSONDecodeError, IndexError, TypeError, ValueError):
            continue  # a damaged line is parked by the batcher; it touched nobody
    return ids, causes


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class TriggerEngine:
    """Detects transitions and segment changes and commits them to the outbox."""

    def __init__(self, *, config: TriggerConfig, store: Store, outbox: Outbox, metrics: TriggerMetrics) -> None:
        self.config = config
        self._store = store
        self._outbox = outbox
        self._metrics = metrics
        self._triggers = {t.name: t for t in config.triggers}
        self.notify: Callable[[list[Item]], None] = lambda items: None  # set by the deliverer

    def define_segments(self) -> None:
        """Record the segments' definitions in ``segment_definitions`` (writer thread, once at start)."""
        if self.config.segments:
            rows = [(s.name, s.definition, time.time()) for s in self.config.segments]
            self._store.insert_rows("segment_definitions", ("key", "definition", "defined_at"), rows,
                                    "reise-segments-" + orjson.dumps([r[:2] for r in rows]).hex()[:48])

    def on_segment(self, segment: SpoolSegment, link_ids: Iterable[str] = ()) -> int:
        """Find and queue the transitions of the customers a stored segment touched; how many were queued."""
        ids, causes = touched_by(segment)
        ids.update(link_ids)
        return self.process(read_customers(self._store, ids), causes)

    def reset(self, ids: Iterable[str], keeper: str) -> int:
        """After an unlink split a customer: new marks for all its ids, and the parts judged afresh now (writer
        thread); how many transitions were queued."""
        wanted = sorted(set(ids))
        self._outbox.reset_marks(wanted, keeper)
        return self.process(read_customers(self._store, wanted), {})

    def scan(self, now_ms: int | None = None) -> int:
        """Look at what time alone changes: buyers going quiet, and members of last-seen segments."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        keys: set[str] = set()
        timed = [s for s in self.config.segments if s.time_dependent]
        keys.update(self._outbox.members([s.name for s in timed]))
        last = self._outbox.meta("scanned_at")
        since = int(last) if last else now_ms - int(FIRST_SCAN_LOOKBACK_DAYS * DAY_MS)
        spans = [(t.condition.days, 1) for t in self.config.triggers if t.condition.kind == "dormant"]
        spans += [(float(v), 0) for s in timed for n, v in s.clauses if n == "last_seen_before_days"]
        for days, buyers in spans:
            low, high = since - int(days * DAY_MS), now_ms - int(days * DAY_MS)
            found = self._store.query(SCAN_SQL, {"buyers": buyers, "low": low, "high": high, "limit": SCAN_LIMIT})
            keys.update(str(r[0]) for r in found.rows)
        queued = self.process(read_customers(self._store, keys), {}, now_ms) if keys else 0
        self._outbox.set_meta("scanned_at", str(now_ms))
        return queued

    def process(self, views: Sequence[CustomerView], causes: dict[tuple[str, int, int], Cause],
                now_ms: int | None = None) -> int:
        """Compare each customer with their marks; commit transitions, changes and marks in one transaction."""
        if not views:
            return 0
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        stored = self._outbox.marks({i for v in views for i in (*v.ids, v.key)})
        detected_at = _iso(now_ms)
        items: list[tuple[str, str, str, str, bytes]] = []
        marks: dict[str, Marks] = {}
        changes: list[SegmentChange] = []
        for view in views:
            owned = [i for i in {*view.ids, view.key} if i in stored and not stored[i].merged_into]
            before = merge_marks(stored[i] for i in owned)
            transitions, found, after = detect(self.config, view, before, now_ms)
            own = stored.get(view.key, Marks())
            for other in owned:  # keys merged into this customer: their memberships move here
                if other == view.key:
                    continue
                for name in stored[other].segments:
                    if stored[other].member(name):
                        changes.append(SegmentChange(name, other, "leave", "merge", now_ms))
                marks[other] = Marks(merged_into=view.key)
            for name in before.segments:
                if before.member(name) and not own.member(name) and after.member(name):
                    changes.append(SegmentChange(name, view.key, "enter", "merge", now_ms))
            # a leave of a key that was a member only through a merged key is that key's merge leave, above
            changes += [c for c in found if c.change == "enter" or own.member(c.segment)]
            marks[view.key] = after
            items += [self._item(t, causes, detected_at) for t in transitions]
        seq = time.time_ns()
        records = [("segment_changes", {"segment": c.segment, "customer_id": c.customer, "change": c.change,
                                        "reason": c.reason, "at": c.at / 1000, "seq": seq + i})
                   for i, c in enumerate(changes)]
        members = [(c.segment, c.customer, c.change == "enter") for c in changes]
        queued = self._outbox.commit_detection(items, marks, records, members)
        for item in queued:
            self._metrics.transitions.labels(item.trigger).inc()
        for change in changes:
            self._metrics.segment_changes.labels(change.segment, change.change).inc()
        if queued:
            self.notify(queued)
        return len(queued)

    def _item(self, transition: Transition, causes: dict[tuple[str, int, int], Cause],
              detected_at: str) -> tuple[str, str, str, str, bytes]:
        trigger, view, contact = transition.trigger, transition.customer, transition.cause
        touchpoint: dict[str, Any] | None = None
        if contact is not None:
            found = next((causes[(i, contact.at, contact.rank)] for i in view.ids
                          if (i, contact.at, contact.rank) in causes), None)
            touchpoint = {"message_id": found.message_id if found else None,
                          "type": found.type if found else None,
                          "event": found.event if found else None,
                          "channel": contact.channel, "campaign": contact.campaign or None,
                          "stage": stage_name(contact.rank), "at": _iso(contact.at)}
        payload = {
            "trigger": trigger.name,
            "condition": trigger.condition.kind,
            "idempotency_key": transition.key,
            "customer_id": view.key,
            "ids": list(view.ids),
            "stage": stage_name(transition.stage),
            "previous_stage": stage_name(transition.previous_stage),
            "segment": transition.segment or None,
            "at": _iso(transition.at),
            "detected_at": detected_at,
            "touchpoint": touchpoint,
            "contacts": view.contacts,
            "purchases": view.purchases,
            "revenue": view.revenue,
            "last_seen": _iso(view.last_seen) if view.last_seen is not None else None,
        }
        return transition.key, trigger.name, trigger.destination, view.key, orjson.dumps(payload)


"""Transitions: compare a customer's journey now with what was last seen of them (their *marks*).

Pure functions, no I/O. A customer's marks record the latest staged contact seen, the once-only triggers
that fired, the quiet spells a dormant trigger fired for, and per segment how often membership changed
(odd: a member). Marks are kept per customer key; a customer formed by identity links is compared with the
union of the marks of all their ids, so a transition that fired before the link does not fire again.

Every transition's idempotency key is derived from the trigger, the customer key and what identifies the
transition in the state (the contact that entered a stage, the count of a segment's changes, the last
contact before a quiet spell): detecting it again, after a replay or a restart, gives the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.triggers.config import STAGES, Segment, Trigger, TriggerConfig
from collector.triggers.view import Contact, CustomerView

__all__ = ["Marks", "SegmentChange", "Transition", "detect", "idempotency_key", "in_segment", "merge_marks",
           "reset_marks"]

DAY_MS = 86_400_000


@dataclass
class Marks:
    """What was last seen of a customer key (stored as JSON in the outbox database)."""

    stage_key: int = 0
    fired: set[str] = field(default_factory=set)  # once-only triggers that fired
    dormant: dict[str, int] = field(default_factory=dict)  # trigger -> last contact (ms) it fired for
    segments: dict[str, int] = field(default_factory=dict)  # segment -> changes so far (odd: member)
    merged_into: str = ""  # set once this key's customer was merged into another key
    epoch: int = 0  # how often an unlink reset the marks; part of the keys of what fires after a reset

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        doc = {"s": self.stage_key, "f": sorted(self.fired), "d": self.dormant, "g": self.segments,
               "m": self.merged_into}
        return {**doc, "e": self.epoch} if self.epoch else doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Marks:
        """The marks a ``to_json`` dict describes."""
        return cls(stage_key=int(doc.get("s", 0)), fired=set(doc.get("f", ())), dormant=dict(doc.get("d", {})),
                   segments=dict(doc.get("g", {})), merged_into=str(doc.get("m", "")), epoch=int(doc.get("e", 0)))

    def member(self, segment: str) -> bool:
        """True when the marks say the customer is in the segment."""
        return self.segments.get(segment, 0) % 2 == 1


def merge_marks(parts: Iterable[Marks]) -> Marks:
    """The union of the marks of a customer's ids: latest stage, every firing, a member if any part was."""
    merged = Marks()
    for part in parts:
        merged.stage_key = max(merged.stage_key, part.stage_key)
        merged.epoch = max(merged.epoch, part.epoch)
        merged.fired |= part.fired
        for name, last in part.dormant.items():
            merged.dormant[name] = max(merged.dormant.get(name, 0), last)
        for name, count in part.segments.items():
            was_member = merged.member(name) or count % 2 == 1
            top = max(merged.segments.get(name, 0), count)
            merged.segments[name] = top + (1 if was_member != (top % 2 == 1) else 0)
    return merged


@dataclass(frozen=True)
class Transition:
    """A condition that became true for a customer: one delivery to the trigger's URL."""

    trigger: Trigger
    key: str  # the idempotency key
    customer: CustomerView
    stage: int
    previous_stage: int
    at: int  # ms: the causing contact's time, else the time of detection
    cause: Contact | None
    segment: str = ""


@dataclass(frozen=True)
class SegmentChange:
    """A customer key entering or leaving a segment (reason ``condition`` or ``merge``)."""

    segment: str
    customer: str
    change: str
    reason: str
    at: int


def idempotency_key(*parts: object) -> str:
    """A stable key from the parts that identify a transition (hex, 32 characters)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def reset_marks(marks: dict[str, Marks], ids: Iterable[str], keeper: str) -> dict[str, Marks]:
    """The marks of a customer's ids after an unlink split it: a new epoch, nothing fired, no quiet spell.

    Each part is then judged afresh; what fires again gets a new key (the epoch is part of it). The latest
    staged contact seen stays, so every-time stage triggers do not fire again for past contacts, and the key
    that stays with a part (``keeper``) keeps its segment memberships, as segment_changes record them.
    """
    known = [marks[i] for i in ids if i in marks]
    epoch = max((m.epoch for m in known), default=0) + 1
    stage_key = max((m.stage_key for m in known), default=0)
    kept = dict(marks[keeper].segments) if keeper in marks else {}
    return {i: Marks(stage_key=stage_key, epoch=epoch, segments=kept if i == keeper else {}) for i in ids}


def _key(epoch: int, *parts: object) -> str:
    """``idempotency_key`` of the parts, with the epoch after an unlink reset the marks (keys before unchanged)."""
    return idempotency_key(*parts, "epoch", epoch) if epoch else idempotency_key(*parts)


def in_segment(segment: Segment, view: CustomerView, now_ms: int) -> bool:
    """Whether a customer meets every clause of a segment at ``now_ms``."""
    return all(_clause(name, value, view, now_ms) for name, value in segment.clauses)


def _clause(name: str, value: Any, view: CustomerView, now_ms: int) -> bool:
    if name == "stage":
        return bool(view.stage == value)
    if name == "reached":
        return bool(view.furthest >= value)
    if name == "not_reached":
        return bool(view.furthest < value)
    if name.startswith(("contacts_", "purchases_", "revenue_")):
        have = {"contacts": view.contacts, "purchases": view.purchases, "revenue": view.revenue}[name.split("_")[0]]
        return bool(have >= value if name.endswith("at_least") else have <= value)
    if name == "last_seen_within_days":
        return view.last_seen is not None and bool(view.last_seen >= now_ms - value * DAY_MS)
    if name == "last_seen_before_days":
        return view.last_seen is not None and bool(view.last_seen < now_ms - value * DAY_MS)
    having = view.channels() if name.startswith("channels") else view.bought_on()
    return bool(having & set(value)) if name.endswith("_any") else not having & set(value)


def detect(config: TriggerConfig, view: CustomerView, before: Marks, now_ms: int) -> tuple[
        list[Transition], list[SegmentChange], Marks]:
    """The transitions and segment changes since ``before`` (the merged marks of the customer's ids), and the
    customer's new marks."""
    after = Marks(stage_key=max(before.stage_key, view.stage_key), fired=set(before.fired),
                  dormant=dict(before.dormant), segments=dict(before.segments), epoch=before.epoch)
    epoch = before.epoch
    transitions: list[Transition] = []
    by_kind: dict[str, list[Trigger]] = {}
    for trigger in config.triggers:
        by_kind.setdefault(trigger.condition.kind, []).append(trigger)
    previous = before.stage_key % 8
    for trigger in by_kind.get("enters_stage", []):
        transitions += _enters_stage(trigger, view, before, after)
    for trigger in by_kind.get("contacts_without_purchase", []):
        count = trigger.condition.count
        if trigger.name not in after.fired and view.purchases == 0 and view.contacts >= count:
            after.fired.add(trigger.name)
            cause = view.history[count - 1] if len(view.history) >= count else None
            transitions.append(Transition(trigger, _key(epoch, trigger.name, view.key, "contacts", count), view,
                                          view.stage, previous, cause.at if cause else now_ms, cause))
    for trigger in by_kind.get("dormant", []):
        quiet_since = view.last_seen
        if (view.purchases > 0 and quiet_since is not None
                and quiet_since < now_ms - trigger.condition.days * DAY_MS
                and after.dormant.get(trigger.name) != quiet_since):
            after.dormant[trigger.name] = quiet_since
            transitions.append(Transition(trigger, idempotency_key(trigger.name, view.key, "dormant", quiet_since),
                                          view, view.stage, view.stage, now_ms, None))
    changes: list[SegmentChange] = []
    for segment in config.segments:
        member = in_segment(segment, view, now_ms)
        if member == before.member(segment.name):
            continue
        count = after.segments.get(segment.name, 0) + 1
        after.segments[segment.name] = count
        change = "enter" if member else "leave"
        changes.append(SegmentChange(segment.name, view.key, change, "condition", now_ms))
        for trigger in by_kind.get(f"{'enters' if member else 'leaves'}_segment", []):
            if trigger.condition.segment == segment.name:
                transitions.append(Transition(trigger, _key(epoch, trigger.name, view.key, segment.name, count),
                                              view, view.stage, view.stage, now_ms, None, segment.name))
    return transitions, changes, after


def _enters_stage(trigger: Trigger, view: CustomerView, before: Marks, after: Marks) -> list[Transition]:
    stage = trigger.condition.stage
    if trigger.condition.first_time:
        reached = view.reached[stage - 1]
        if reached is None or trigger.name in after.fired:
            return []
        after.fired.add(trigger.name)
        cause = next((c for c in view.history if c.at == reached and c.rank >= stage), None)
        at_key = cause.at * 8 + cause.rank if cause else reached * 8 + stage
        previous = max((c.at * 8 + c.rank for c in view.history if c.rank and c.at * 8 + c.rank < at_key), default=0)
        return [Transition(trigger, _key(before.epoch, trigger.name, view.key, "first", stage), view, stage,
                           previous % 8, reached, cause)]
    # every time the current stage becomes this stage: walk the staged contacts after the last one seen
    found = []
    current = before.stage_key % 8
    for contact in _staged_after(view.history, before.stage_key):
        if contact.rank != current and contact.rank == stage:
            found.append(Transition(trigger, idempotency_key(trigger.name, view.key, "enters",
                                                             contact.at * 8 + contact.rank),
                                    view, stage, current, contact.at, contact))
        current = contact.rank
    return found


def _staged_after(history: Sequence[Contact], stage_key: int) -> list[Contact]:
    """Staged contacts later than the one ``stage_key`` names, ordered as the state orders them."""
    return sorted((c for c in history if c.rank and c.at * 8 + c.rank > stage_key), key=lambda c: c.at * 8 + c.rank)


def stage_name(rank: int) -> str | None:
    """A stage's name by rank (None for 0)."""
    return STAGES[rank - 1] if 1 <= rank <= len(STAGES) else None

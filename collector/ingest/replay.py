"""Dead-letter replay: kept payloads go back through the normal validation, deduplication and spool.

Rejected events are validated again (after ``--set`` corrections) with their original message ids, so replaying
twice adds nothing: the second time they are duplicates (in memory or in ``event_keys``). An event that had
no message id gets one derived from its dead letter, for the same reason. Rows the store refused (endpoint
``store``) are already normalised rows: corrected and spooled again as they are. A dead letter whose events are
all stored now is marked in ``dead_letter_replays`` (or deleted, with ``delete``); one still rejected stays
as it is, and the answer says why.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.errors import EventRejected, EventWithoutConsent, RequestRejected, TryLater
from collector.ingest.dedup import dedup_key
from collector.ingest.ingestor import Ingestor
from collector.ingest.protocol import EVENT_TYPES, Row, normalise
from collector.settings import WriteKey
from collector.store.clickhouse import Store
from collector.store.deadletters import DeadLetter, Filters, delete_letters, mark_replayed, select_letters
from collector.store.schema import TOUCHPOINT_COLUMNS

__all__ = ["ReplayOutcome", "ReplayRequest", "parse_assignments", "replay_dead_letters"]

MAX_SAMPLES = 20


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay and how: the filters, field corrections, and whether to only tell (dry run) or delete."""

    filters: Filters
    assignments: Mapping[str, Any] = field(default_factory=dict)  # dotted field (or store column) -> value
    dry_run: bool = False
    delete: bool = False


@dataclass
class ReplayOutcome:
    """What a replay did (or, in a dry run, would do)."""

    dead_letters: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    without_consent: int = 0
    not_replayable: int = 0
    marked: int = 0
    deleted: int = 0
    dry_run: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)  # why some were not replayed

    def note(self, letter: DeadLetter, why: str) -> None:
        """Keep a sample of a dead letter that was not replayed, with the reason now."""
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append({"message_id": letter.message_id, "endpoint": letter.endpoint,
                                 "kept_for": letter.reason, "now": why})


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``FIELD=text`` (a string) and ``FIELD:=json`` (any JSON value) into a mapping; RequestRejected if malformed."""
    assignments: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip(":"):
            raise RequestRejected(400, f"set: expected FIELD=VALUE or FIELD:=JSON, got {item!r}")
        if name.endswith(":"):
            try:
                assignments[name[:-1]] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise RequestRejected(400, f"set: {name[:-1]}: not JSON: {value[:40]!r}") from None
        else:
            assignments[name] = value
    return assignments


def _assign(event: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field (``properties.revenue``) in an event, creating objects on the way."""
    *parents, last = path.split(".")
    node = event
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def _events_of(letter: DeadLetter) -> tuple[list[dict[str, Any]], Any] | None:
    """The events a dead letter holds (and a batch's sentAt), or None when its payload is not events."""
    try:
        doc = orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and letter.batch_index < 0 and isinstance(doc.get("batch"), list):
        return [e for e in doc["batch"] if isinstance(e, dict)], doc.get("sentAt")
    if isinstance(doc, dict):
        return [doc], None
    return None


def _stored_row(letter: DeadLetter, assignments: Mapping[str, Any]) -> Row:
    """A row the store refused, corrected, in TOUCHPOINT_COLUMNS order; EventRejected when it cannot be."""
    try:
        values = orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        raise EventRejected("payload: not a stored row") from None
    if isinstance(values, list) and len(values) == len(TOUCHPOINT_COLUMNS):  # kept before rows were objects
        values = dict(zip(TOUCHPOINT_COLUMNS, values, strict=True))
    if not isinstance(values, dict):
        raise EventRejected("payload: not a stored row")
    unknown = sorted(set(assignments) - set(TOUCHPOINT_COLUMNS))
    if unknown:
        raise EventRejected(f"set: {', '.join(unknown)}: not a touchpoint column")
    values.update(assignments)
    if not isinstance(values.get("message_id"), str) or not values["message_id"]:
        raise EventRejected("message_id: missing")
    return tuple(values.get(column, "") for column in TOUCHPOINT_COLUMNS)


def _rows_of(ingestor: Ingestor, letter: DeadLetter, request: ReplayRequest,
             outcome: ReplayOutcome) -> list[Row] | None:
    """A dead letter's events validated again, as rows; None when any is still refused (it stays parked)."""
    if letter.endpoint == "store":
        outcome.events += 1
        try:
            return [_stored_row(letter, request.assignments)]
        except EventRejected as exc:
            outcome.rejected += 1
            outcome.note(letter, exc.reason)
            return None
    found = _events_of(letter) if letter.endpoint != "identity" else None
    if found is None:
        outcome.not_replayable += 1
        outcome.note(letter, "not replayable: the payload holds no events (identity links are made again by "
                             "the events that carry them)")
        return None
    events, sent_at = found
    write_key = next((k for k in ingestor.settings.write_keys.values() if k.source == letter.source), None)
    ctx = ingestor.context(write_key or WriteKey(source=letter.source, key=""), letter.received_ms, sent_at=sent_at)
    default_type = letter.endpoint if letter.endpoint in EVENT_TYPES else None
    rows: list[Row] = []
    refused = False
    for index, original in enumerate(events):
        event = copy.deepcopy(original)
        for path, value in request.assignments.items():
            _assign(event, path, value)
        if not event.get("messageId"):  # a derived id: replaying twice must find the same one
            event["messageId"] = f"dl-{letter.key:016x}-{index}"
        outcome.events += 1
        try:
            rows.append(normalise(event, default_type, ctx))
        except EventWithoutConsent:
            outcome.without_consent += 1
        except EventRejected as exc:
            outcome.rejected += 1
            outcome.note(letter, exc.reason)
            refused = True
    return None if refused else rows


async def replay_dead_letters(ingestor: Ingestor, store: Store, request: ReplayRequest) -> ReplayOutcome:
    """Replay the dead letters a request names through validation, deduplication and the spool.

    The spool is written to the store first, so duplicates are checked against the store (``event_keys``).
    Returns once the replayed events are fsynced in the spool and their dead letters are marked (or deleted).
    Raises StoreUnavailable when the store cannot be read or asked for duplicates, TryLater when the spool
    cannot be written first.
    """
    batcher, dedup = ingestor.batcher, ingestor.dedup
    letters = await batcher.run_exclusive(lambda: select_letters(store, request.filters))
    outcome = ReplayOutcome(dead_letters=len(letters), dry_run=request.dry_run)
    replayable: list[tuple[DeadLetter, list[Row]]] = []
    for letter in letters:
        rows = _rows_of(ingestor, letter, request, outcome)
        if rows is not None:
            replayable.append((letter, rows))
    # against the store, not the recent-ids window: rows the store refused were remembered when accepted
    if not request.dry_run and not await batcher.flush(ingestor.settings.drain_timeout):
        raise TryLater("the spool could not be written to the store first; retry later", retry_after=30)
    unique: dict[str, Row] = {}
    for row in (row for _, rows in replayable for row in rows):
        unique.setdefault(dedup_key(row), row)
    outcome.duplicates = sum(len(rows) for _, rows in replayable) - len(unique)
    fresh = await dedup.not_stored(list(unique.values()), list(unique))
    outcome.duplicates += len(unique) - len(fresh)
    outcome.accepted = len(fresh)
    if request.dry_run:
        return outcome
    batcher.check_capacity()
    dedup.remember_rows(fresh)
    await batcher.submit(fresh)
    done = [(letter.key, len(rows)) for letter, rows in replayable]
    if request.delete:
        await batcher.run_exclusive(lambda: delete_letters(store, [key for key, _ in done]))
        outcome.deleted = len(done)
    else:
        await batcher.run_exclusive(lambda: mark_replayed(store, done))
        outcome.marked = len(done)
    ingestor.metrics.record_events(outcome.accepted, outcome.duplicates, ())
    return outcome

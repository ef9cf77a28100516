"""Accepting events: validate, deduplicate, queue durably; shared by every ingestion endpoint."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from collector.edge.appkeys import ATTRIBUTION, BATCHER, LIMITER, READERS, RECENT_IDS, RULES, SETTINGS, STORE
from collector.errors import EventRejected, EventWithoutConsent, RequestRejected, StoreError
from collector.ingest.protocol import IngestContext, Row, dead_letter_row, dedup_key, normalise
from collector.settings import WriteKey

__all__ = ["Accepted", "accept", "ingest_context", "keep_dead_letter"]

log = structlog.get_logger("reise.ingest")


@dataclass
class Accepted:
    """The outcome of one request's events."""

    accepted: int = 0
    duplicates: int = 0
    without_consent: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The answer body Segment clients expect, plus Reise's counts."""
        return {"success": True, "accepted": self.accepted, "duplicates": self.duplicates,
                "without_consent": self.without_consent, "rejected": self.rejected}


def ingest_context(app: web.Application, key: WriteKey, received_ms: int, sent_at: Any = None) -> IngestContext:
    """What every event of one request shares: its source, key limits, receive time and the rules."""
    return IngestContext(source=key.source, received_ms=received_ms, rules=app[RULES], sent_at=sent_at,
                         channels=key.channels, default_channel=key.default_channel,
                         ip_mode=app[SETTINGS].ip_mode, public=key.public, attribution=app[ATTRIBUTION])


async def accept(
    app: web.Application, ctx: IngestContext, endpoint: str, events: list[Any], default_type: str | None,
    *, check_store: bool = False,
) -> Accepted:
    """Validate and deduplicate events, keep the rejected ones as dead letters, spool the rest durably.

    Recently seen keys are caught in memory; with ``check_store`` (imports) the store is asked too, so a
    file imported again adds nothing however long ago the first import was. Returns once everything is
    fsynced in the spool. Raises RequestRejected: 429 past the key's rate limit, 503 when the spool has no
    room or cannot be written, or the store cannot be asked; nothing of the request is kept then.
    """
    batcher, recent = app[BATCHER], app[RECENT_IDS]
    batcher.check_capacity()
    app[LIMITER].take(ctx.source, len(events), public=ctx.public)
    outcome = Accepted()
    rows, dead, keys = [], [], []
    for index, event in enumerate(events):
        try:
            row = normalise(event, default_type, ctx)
        except EventWithoutConsent:
            outcome.without_consent += 1
            continue
        except EventRejected as exc:
            message_id = event.get("messageId") if isinstance(event, dict) else None
            outcome.rejected.append({"index": index, "messageId": message_id, "reason": exc.reason})
            dead.append(dead_letter_row(ctx=ctx, endpoint=endpoint, index=index, event=event, reason=exc.reason))
            continue
        key = dedup_key(row)
        if recent.add(key):
            rows.append(row)
            keys.append(key)
        else:
            outcome.duplicates += 1
    try:
        if check_store and rows:
            fresh = await _not_stored(app, rows, keys)
            outcome.duplicates += len(rows) - len(fresh)
            rows = fresh
        await batcher.submit(rows, dead)
    except RequestRejected:
        recent.forget(keys)  # not stored: a retry must not be taken for a duplicate
        raise
    outcome.accepted = len(rows)
    return outcome


async def keep_dead_letter(
    app: web.Application, *, source: str, endpoint: str, payload: str, reason: str, public: bool = True
) -> None:
    """Keep a refused request in the dead-letter table, within the spool's room and a rate limit.

    Bad requests must not cost unbounded disk: past the limit (a bucket per source, or per endpoint for
    requests without a key) or with the spool full, the dead letter is dropped and logged instead.
    """
    ctx = IngestContext(source=source, received_ms=int(time.time() * 1000), rules=app[RULES])
    row = dead_letter_row(ctx=ctx, endpoint=endpoint, index=-1, event=payload, reason=reason)
    try:
        app[BATCHER].check_capacity()
        app[LIMITER].take(f"dead letters: {source or endpoint}", 1, public=public)
        await app[BATCHER].submit((), (row,))
    except RequestRejected as exc:
        log.warning("dead letter not kept", endpoint=endpoint, reason=reason, error=exc.reason)


async def _not_stored(app: web.Application, rows: list[Row], keys: list[str]) -> list[Row]:
    """The rows whose keys the store does not hold yet, each key once."""
    loop = asyncio.get_running_loop()
    try:
        stored = await loop.run_in_executor(app[READERS], app[STORE].stored_keys, keys)
    except StoreError as exc:
        raise RequestRejected(503, "store: unavailable, so duplicates cannot be checked; retry later",
                              retry_after=5) from exc
    fresh, seen = [], set(stored)
    for row, key in zip(rows, keys, strict=True):
        if key not in seen:
            seen.add(key)
            fresh.append(row)
    return fresh

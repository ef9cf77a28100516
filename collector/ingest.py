"""Accepting events: validate, deduplicate, queue durably; shared by every ingestion endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from collector.errors import EventRejected, EventWithoutConsent, RequestRejected
from collector.protocol import IngestContext, dead_letter_row, dedup_key, normalise
from collector.settings import WriteKey
from collector.state import ATTRIBUTION, BATCHER, LIMITER, RECENT_IDS, RULES, SETTINGS

__all__ = ["Accepted", "accept", "ingest_context"]


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
    app: web.Application, ctx: IngestContext, endpoint: str, events: list[Any], default_type: str | None
) -> Accepted:
    """Validate and deduplicate events, keep the rejected ones as dead letters, spool the rest durably.

    Returns once everything is fsynced in the spool. Raises RequestRejected: 429 past the key's rate limit,
    503 when the spool has no room or cannot be written; nothing of the request is kept then.
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
        await batcher.submit(rows, dead)
    except RequestRejected:
        recent.forget(keys)  # not stored: a retry must not be taken for a duplicate
        raise
    outcome.accepted = len(rows)
    return outcome

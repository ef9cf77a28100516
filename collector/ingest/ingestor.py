"""The ingest hot path, shared by every endpoint: validate, deduplicate, spool durably, count the outcome."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from collector.enrich.pipeline import Enricher
from collector.errors import EventRejected, EventWithoutConsent, TryLater
from collector.ingest.attribution import AttributionRules
from collector.ingest.batcher import Batcher
from collector.ingest.dedup import Dedup
from collector.ingest.pixels import PixelHits
from collector.ingest.protocol import IngestContext, dead_letter_row, normalise
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.redact import Redactor
from collector.ingest.stages import StageRules
from collector.ingest.suppression import DEAD_LETTER_IDS, TOUCHPOINT_IDS, Suppression
from collector.limits import MAX_EVENT_BYTES
from collector.metrics import Metrics
from collector.settings import Settings, WriteKey

__all__ = ["Accepted", "Ingestor", "build_enricher"]

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


def build_enricher(settings: Settings) -> Enricher | None:
    """The enrichments the settings switch on (REISE_ENRICH ...), None when all are off; loads the rules (~0.3 s)."""
    if not settings.enrich:
        return None
    return Enricher(enabled=settings.enrich, exclude=settings.journey_exclude, geoip_db=settings.geoip_db,
                    mail_window_seconds=settings.mail_machine_seconds)


class Ingestor:
    """Owns what every ingestion endpoint does with its events (the /v1 API, the pixel, click links).

    Built once per application when the store opens (collector.edge.app); the edge holds it under one key.
    Refusals are domain errors (RateLimited, SpoolFull, ShuttingDown, StoreUnavailable ...) that the edge
    maps to HTTP.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        rules: StageRules,
        attribution: AttributionRules,
        limiter: RateLimiter,
        dedup: Dedup,
        batcher: Batcher,
        metrics: Metrics,
        suppression: Suppression,
        enricher: Enricher | None = None,  # built beforehand (collector.edge.app); else from the settings
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.attribution = attribution
        self.limiter = limiter
        self.dedup = dedup
        self.batcher = batcher
        self.metrics = metrics
        self.suppression = suppression  # ids whose events are not kept (forget --suppress)
        self.identity = settings.link_policy
        self.enricher = enricher if enricher is not None else build_enricher(settings)
        self.redactor = Redactor.of(settings.secret_values, settings.ip_mode)  # what dead letters keep
        self.pixels = PixelHits(self)  # the pixel's hits, recorded a loop tick's worth at a time

    def context(
        self, key: WriteKey, received_ms: int, sent_at: Any = None, *, client_ip: str = "", method: str = "POST",
        prefetch: bool = False, batch: Mapping[str, Any] | None = None,
    ) -> IngestContext:
        """What every event of one request shares: its source, key limits, receive time and the rules.

        ``client_ip`` is the connection's client (context.ip of events without one), ``method`` and ``prefetch``
        the request's behaviour, ``batch`` the batch body whose ``context`` and ``integrations`` each event takes.
        """
        batch_context = batch_integrations = None
        if batch is not None:
            if isinstance(batch.get("context"), dict):
                batch_context = batch["context"]
            if isinstance(batch.get("integrations"), dict):
                batch_integrations = batch["integrations"]
        return IngestContext(source=key.source, received_ms=received_ms, rules=self.rules, sent_at=sent_at,
                             channels=key.channels, default_channel=key.default_channel,
                             ip_mode=self.settings.ip_mode, public=key.public, attribution=self.attribution,
                             identity=self.identity, scope=self.settings.scope_of(key),
                             verify_secret=self.settings.verify_secrets.get(key.source, ""), client_ip=client_ip,
                             method=method, prefetch=prefetch, batch_context=batch_context,
                             batch_integrations=batch_integrations, enricher=self.enricher)

    async def accept(
        self, ctx: IngestContext, endpoint: str, events: list[Any], default_type: str | None,
        *, check_store: bool = False, oversized: Mapping[int, int] | None = None,
    ) -> Accepted:
        """Validate and deduplicate events, keep the rejected ones as dead letters, spool the rest durably.

        Recently seen keys are caught in memory; with ``check_store`` (imports) the store is asked too, so a
        file imported again adds nothing however long ago the first import was. Returns once everything is
        fsynced in the spool, and counts the outcome in the metrics. Raises RateLimited past the key's rate
        limit, SpoolFull, SpoolWriteFailed or ShuttingDown when the spool cannot take the events, and
        StoreUnavailable when the store cannot be asked; nothing of the request is kept then. Events at the
        indexes of ``oversized`` (index -> encoded size) are rejected alone, as dead letters (payload truncated).
        """
        batcher, dedup = self.batcher, self.dedup
        batcher.check_capacity()
        self.limiter.take(ctx.source, len(events), public=ctx.public)
        outcome = Accepted()
        valid, dead = [], []
        for index, event in enumerate(events):
            try:
                if oversized and index in oversized:
                    raise EventRejected(f"event: {oversized[index]} bytes, larger than {MAX_EVENT_BYTES} bytes")
                valid.append(normalise(event, default_type, ctx))
            except EventWithoutConsent:
                outcome.without_consent += 1
            except EventRejected as exc:
                message_id = event.get("messageId") if isinstance(event, dict) else None
                outcome.rejected.append({"index": index, "messageId": message_id, "reason": exc.reason})
                dead.append(dead_letter_row(ctx=ctx, endpoint=endpoint, index=index, event=event,
                                            reason=exc.reason, redactor=self.redactor))
        if self.suppression.keys:  # answered as without consent: the sender is not told who asked to be forgotten
            valid, suppressed = self.suppression.drop(valid, TOUCHPOINT_IDS)
            dead, suppressed_dead = self.suppression.drop(dead, DEAD_LETTER_IDS)
            outcome.without_consent += suppressed
            self.metrics.record_suppressed(suppressed + suppressed_dead)
        rows, keys, outcome.duplicates = dedup.fresh(valid)
        try:
            if check_store and rows:
                fresh = await dedup.not_stored(rows, keys)
                outcome.duplicates += len(rows) - len(fresh)
                rows = fresh
            await batcher.submit(rows, dead)
        except Exception:
            dedup.forget(keys)  # not stored: a retry must not be taken for a duplicate
            raise
        outcome.accepted = len(rows)
        self.metrics.record_outcome(outcome)
        return outcome

    async def keep_dead_letter(
        self, *, source: str, endpoint: str, payload: str, reason: str, public: bool = True
    ) -> None:
        """Keep a refused request in the dead-letter table, within the spool's room and a rate limit.

        Bad requests must not cost unbounded disk: past the limit (a bucket per source, or per endpoint for
        requests without a key) or with the spool full, the dead letter is dropped and logged instead.
        """
        ctx = IngestContext(source=source, received_ms=int(time.time() * 1000), rules=self.rules)
        try:
            self.batcher.check_capacity()
            self.limiter.take(f"dead letters: {source or endpoint}", 1, public=public)
            row = dead_letter_row(ctx=ctx, endpoint=endpoint, index=-1, event=payload, reason=reason,
                                  redactor=self.redactor)  # cleaned within the limit: cleaning costs CPU
            await self.batcher.submit((), (row,))
        except TryLater as exc:
            log.warning("dead letter not kept", endpoint=endpoint, reason=reason, error=exc.reason)

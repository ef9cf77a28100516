"""Pixel hits recorded in groups: the handler only notes a hit; one loop callback per tick records them all.

A hit (``GET /p.gif``) is answered with its GIF whatever becomes of it, so the edge does not wait for it:
``PixelHits.add`` appends the raw query, User-Agent and Referer to a list and, for the first hit of a tick,
schedules ``_record`` on the event loop. That callback parses, checks the key and its rate limit,
normalises, deduplicates, encodes and queues the whole group for the spool's next group write in one go.
A plain track hit is built straight into its row (``collector.ingest.pixelrow``); anything else goes
through ``normalise``. The write (fdatasync) is not waited for, and the group may wait up to
``spool.LINGER_SECONDS`` for the next ticks' hits to share it; when the spool's queue is long, the edge waits
for it (back-pressure, ``backlogged``/``written``). A failed write is logged and the group's keys forgotten.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog

from collector.errors import EventRejected, EventWithoutConsent, RateLimited, TryLater
from collector.ingest.pixelrow import LIBRARY, pixel_row, split_params
from collector.ingest.protocol import IngestContext, Row, dead_letter_row, normalise
from collector.ingest.suppression import DEAD_LETTER_IDS, TOUCHPOINT_IDS
from collector.settings import WriteKey, find_write_key

if TYPE_CHECKING:
    from collector.ingest.ingestor import Ingestor

__all__ = ["MAX_PARAMS", "MAX_QUERY_CHARS", "MAX_UNWAITED_ROWS", "PixelHits", "pixel_event", "query_params"]

log = structlog.get_logger("reise.pixel")

MAX_QUERY_CHARS = 4096
MAX_PARAMS = 64
MAX_UNWAITED_ROWS = 10_000  # rows queued for the spool's next write past which a pixel hit waits for it
RATE_LIMIT_LOG_SECONDS = 1.0  # one log line per key and second for hits past the rate limit, with their count
Hit = tuple[str, str, str, int, str, str]  # raw query, User-Agent, Referer, received at (epoch ms), client IP,
# behaviour ("HEAD", "prefetch" or "")


def query_params(raw: str) -> dict[str, str]:
    """The query's fields, first value of each name, blank values left out (as parse_qsl with setdefault).

    A query with nothing escaped (no ``%`` or ``+``), the common case, is split without unquoting.
    Raises ValueError past MAX_PARAMS fields.
    """
    params: dict[str, str] = {}
    if "%" in raw or "+" in raw:
        for name, value in parse_qsl(raw, keep_blank_values=False, max_num_fields=MAX_PARAMS):
            params.setdefault(name, value)
        return params
    if raw.count("&") >= MAX_PARAMS:
        raise ValueError("Max number of fields exceeded")
    for field in raw.split("&"):
        name, _, value = field.partition("=")
        if value and name not in params:
            params[name] = value
    return params


def pixel_event(params: dict[str, str], *, page_url: str = "", user_agent: str = "", ip: str = "") -> dict[str, Any]:
    """The Segment-shaped event a pixel hit stands for (validation is left to the protocol)."""
    fields, campaign, properties = split_params(params)
    event: dict[str, Any] = {"type": "track", **fields}
    if event["type"] == "track" and not event.get("event") and event.get("channel") == "email":
        event["event"] = "email_opened"
    context: dict[str, Any] = {"library": LIBRARY}
    if user_agent:
        context["userAgent"] = user_agent[:1024]
    if ip:
        context["ip"] = ip
    if campaign:
        context["campaign"] = campaign
    url = params.get("url") or page_url
    if url or params.get("ref"):
        context["page"] = {"url": url, "referrer": params.get("ref", "")}
    event["context"] = context
    if properties:
        event["properties"] = properties
    return event


class PixelHits:
    """The pixel's hits of the current loop tick, recorded together (see the module's docstring)."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor
        self._hits: list[Hit] = []
        self._limited: dict[str, int] = {}  # hits past the rate limit not yet logged, per source
        self._limited_logged = 0.0
        # per key and behaviour, what every hit's row takes from its context (received_ms aside: see pixel_row)
        self._templates: dict[tuple[str, str], IngestContext] = {}

    def add(self, raw_query: str, user_agent: str, referer: str, ip: str = "", behaviour: str = "") -> None:
        """Note a hit; it is recorded with the others of this tick by a loop callback."""
        hits = self._hits
        hits.append((raw_query, user_agent, referer, int(time.time() * 1000), ip, behaviour))
        if len(hits) == 1:
            asyncio.get_running_loop().call_soon(self._record)

    @property
    def backlogged(self) -> bool:
        """True when the spool's queue is long: the edge then waits for the write (``written``)."""
        return self._ingestor.batcher.spool.queued_rows >= MAX_UNWAITED_ROWS

    async def written(self) -> None:
        """Wait for the spool's next group write."""
        await self._ingestor.batcher.spool.written()

    def _record(self) -> None:
        hits, self._hits = self._hits, []
        try:
            self._record_group(hits)
        except TryLater as exc:  # shutting down, spool full
            log.warning("pixel hits not kept", hits=len(hits), error=exc.reason)
        except Exception:
            log.exception("pixel hits failed", hits=len(hits))

    def _record_group(self, hits: list[Hit]) -> None:
        ingestor = self._ingestor
        ingestor.batcher.check_capacity()
        limiter, keys = ingestor.limiter, ingestor.settings.write_keys
        contexts: dict[tuple[str, int, str], IngestContext] = {}
        templates = self._templates
        found: dict[str | None, WriteKey | None] = {}
        valid: list[Row] = []
        dead: list[Row] = []
        reasons: list[str] = []
        without_consent = limited = 0
        for raw, user_agent, referer, received_ms, ip, behaviour in hits:
            if len(raw) > MAX_QUERY_CHARS:
                kept = raw if len(raw) <= 2 * MAX_QUERY_CHARS else f"{raw[:MAX_QUERY_CHARS]}...{raw[-MAX_QUERY_CHARS:]}"
                self._dead_letter(dead, "", kept, f"query: longer than {MAX_QUERY_CHARS} characters ({len(raw)})",
                                  received_ms)
                continue
            try:
                params = query_params(raw)
            except ValueError as exc:  # more than MAX_PARAMS fields, undecodable query
                self._dead_letter(dead, "", raw[:MAX_QUERY_CHARS], f"query: {exc}", received_ms)
                continue
            candidate = params.get("writeKey") or params.get("k")
            if candidate in found:
                key = found[candidate]
            else:  # each key given in the group compared once (in constant time) against every key
                key = found[candidate] = find_write_key(keys, candidate)
            if key is None or not key.public:
                reason = "write key: unknown or missing" if key is None else \
                    "write key: the pixel takes a public key (pk_)"
                self._dead_letter(dead, key.source if key else "", raw, reason, received_ms)
                continue
            try:
                limiter.take(key.source, 1, public=True)
            except RateLimited:
                limited += 1
                self._limited[key.source] = self._limited.get(key.source, 0) + 1
                continue
            template = templates.get((key.key, behaviour))
            if template is None:
                template = templates[(key.key, behaviour)] = self._context(key, 0, behaviour)
            row = pixel_row(params, page_url=referer, user_agent=user_agent, ip=ip, ctx=template,
                            received_ms=received_ms)
            if row is not None:  # the common hit, built straight into its row
                valid.append(row)
                continue
            ctx = contexts.get((key.source, received_ms, behaviour))
            if ctx is None:
                ctx = contexts[(key.source, received_ms, behaviour)] = self._context(key, received_ms, behaviour)
            event = pixel_event(params, page_url=referer, user_agent=user_agent, ip=ip)
            try:
                valid.append(normalise(event, None, ctx))
            except EventWithoutConsent:
                without_consent += 1
            except EventRejected as exc:
                reasons.append(exc.reason)
                dead.append(dead_letter_row(ctx=ctx, endpoint="pixel", index=0, event=event, reason=exc.reason,
                                            redactor=ingestor.redactor))
        if ingestor.suppression.keys:
            valid, suppressed = ingestor.suppression.drop(valid, TOUCHPOINT_IDS)
            dead, suppressed_dead = ingestor.suppression.drop(dead, DEAD_LETTER_IDS)
            ingestor.metrics.record_suppressed(suppressed + suppressed_dead)
        rows, dedup_keys, duplicates = ingestor.dedup.fresh(valid)
        written = ingestor.batcher.submit_nowait(rows, dead)
        if written is not None:
            written.add_done_callback(lambda done: self._written(done, dedup_keys, len(rows)))
        ingestor.metrics.record_events(len(rows), duplicates, reasons)
        if limited:
            ingestor.metrics.record_rate_limited(limited)
            self._log_rate_limited()

    def _context(self, key: WriteKey, received_ms: int, behaviour: str) -> IngestContext:
        return self._ingestor.context(key, received_ms, method="HEAD" if behaviour == "HEAD" else "GET",
                                      prefetch=behaviour == "prefetch")

    def _dead_letter(self, dead: list[Row], source: str, payload: str, reason: str, received_ms: int) -> None:
        """Keep a refused hit as a dead letter within the dead letters' rate limit (else log it)."""
        try:
            self._ingestor.limiter.take(f"dead letters: {source or 'pixel'}", 1, public=True)
        except RateLimited as exc:
            log.warning("dead letter not kept", endpoint="pixel", reason=reason, error=exc.reason)
            return
        ctx = IngestContext(source=source, received_ms=received_ms, rules=self._ingestor.rules)
        dead.append(dead_letter_row(ctx=ctx, endpoint="pixel", index=-1, event=payload, reason=reason,
                                    redactor=self._ingestor.redactor))

    def _log_rate_limited(self) -> None:
        now = time.monotonic()
        if now - self._limited_logged < RATE_LIMIT_LOG_SECONDS:
            return
        self._limited_logged = now
        for source, hits in self._limited.items():
            log.warning("pixel hits past the rate limit not kept", source=source, hits=hits,
                        limit=self._ingestor.limiter.public_rate)
        self._limited.clear()

    def _written(self, done: asyncio.Future[None], keys: list[str], rows: int) -> None:
        """After the group's write: on failure nothing was kept, so forget its keys (a resend is no duplicate)."""
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            self._ingestor.dedup.forget(keys)
            log.error("pixel hits not kept: spool write failed", rows=rows, error=str(exc))

"""HTTP handlers: Segment-shaped ingestion, health, and the admin's read-only query endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, replace
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web

from collector.edge.access import authentication_failed, check_address, read_as, require_admin, require_reader
from collector.edge.answers import error_body, json_response
from collector.edge.appkeys import BATCHER, INGESTOR, READ_STORE, READERS, SETTINGS, STORE, TRIGGERS
from collector.edge.auth import basic_user, find_write_key
from collector.edge.body import parse_json, read_body
from collector.edge.clientip import client_address, is_prefetch
from collector.edge.metrics import METRICS
from collector.enrich.recompute import enricher_of, parse_since, recompute_flags
from collector.errors import ConfigError, RequestRejected, StoreError, TryLater
from collector.identity.rebuild import Unlinked
from collector.identity.rebuild import unlink as unlink_id
from collector.ingest.suppression import unsuppress as unsuppress_ids
from collector.journey.analyst import CUSTOMER_SQL
from collector.journey.forget import forget_person
from collector.journey.insights import Runner
from collector.limits import MAX_EVENT_BYTES
from collector.store import sessions
from collector.store.clickhouse import QueryResult

__all__ = ["lookup_runner", "read_store", "readonly_runner", "require_admin", "routes"]

log = structlog.get_logger("reise.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def _ingest(default_type: str | None, *, historical: bool = False) -> Handler:
    """A handler for one of the /v1 ingestion endpoints (default_type None: a batch; historical: /v1/import)."""
    is_batch = default_type is None
    endpoint = "import" if historical else "batch" if is_batch else default_type or ""

    async def handler(request: web.Request) -> web.Response:
        ingestor = request.app[INGESTOR]
        settings = ingestor.settings
        write_keys = settings.write_keys
        limit = settings.max_body_bytes if is_batch else MAX_EVENT_BYTES
        check_address(request)
        header_key = basic_user(request.headers.get("Authorization"))
        key = find_write_key(write_keys, header_key)
        if header_key and key is None:
            authentication_failed(request, "write")
            raise RequestRejected(401, "unknown write key")
        received_ms = int(time.time() * 1000)
        raw = b""
        try:
            raw = await read_body(request, limit)
            doc = parse_json(raw)
            if not isinstance(doc, dict):
                raise RequestRejected(400, "body: expected a JSON object")
            if key is None:
                writekey = doc.get("writeKey")
                key = find_write_key(write_keys, writekey if isinstance(writekey, str) else None)
                if key is None:
                    authentication_failed(request, "write")
                    raise RequestRejected(401, "missing or unknown write key")
            client = client_address(request.remote, request.headers, settings.trusted_proxies)
            ctx = ingestor.context(key, received_ms, sent_at=doc.get("sentAt") if is_batch else None,
                                   client_ip=client, method=request.method, prefetch=is_prefetch(request.headers),
                                   batch=doc if is_batch else None)
            events, oversized = _events(doc, is_batch, len(raw))
            outcome = await ingestor.accept(ctx, endpoint, events, default_type, check_store=historical,
                                            oversized=oversized)
            if default_type is not None and outcome.rejected:
                reason = outcome.rejected[0]["reason"]
                return json_response(error_body(400, reason, rejected=outcome.rejected), 400)
            return json_response(outcome.as_json())
        except RequestRejected as exc:
            # a body never read (too large, refused before reading) leaves no dead letter: it has no payload
            if key is not None and raw and exc.status in (400, 413, 415):
                await ingestor.keep_dead_letter(source=key.source, endpoint=endpoint, public=key.public,
                                                payload=raw.decode("utf-8", "replace"), reason=exc.reason)
            raise

    return handler


def _events(doc: dict[str, Any], is_batch: bool, body_size: int) -> tuple[list[Any], dict[int, int]]:
    """The request's events, and the indexes of those larger than MAX_EVENT_BYTES (rejected alone) with sizes."""
    if not is_batch:
        return [doc], {}
    events = doc.get("batch")
    if not isinstance(events, list):
        raise RequestRejected(400, "batch: expected a list of events")
    if not events:
        raise RequestRejected(400, "batch: empty")
    oversized = {}
    for index, event in enumerate(events if body_size > MAX_EVENT_BYTES else ()):
        size = len(orjson.dumps(event))
        if size > MAX_EVENT_BYTES:
            oversized[index] = size
    return events, oversized


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 while the collector can accept (the spool has room), with the store's state.

    During a store outage the collector keeps accepting into the spool, so it stays ready and says
    ``"store": "unreachable"`` and ``"writing": "retrying"`` with the error; it answers 503 when the spool is
    full, it is shutting down, or the drain loop is down (``drain_error`` says why).
    """
    batcher = request.app[BATCHER]
    spool = batcher.spool
    loop = asyncio.get_running_loop()
    store_ok = await loop.run_in_executor(request.app[READERS], request.app[STORE].ping)
    stats = batcher.stats
    ready = batcher.accepting and not stats.drain_error  # a dead drain loop: nothing would reach the store
    body = {
        "status": "ready" if ready else "not ready",
        "store": "ok" if store_ok else "unreachable",
        "writing": "paused" if batcher.paused else ("ok" if stats.store_ok else "retrying"),
        "drain": "down" if stats.drain_error else "running",
        "drain_error": stats.drain_error,
        "drain_restarts": stats.drain_restarts,
        "retrying_since": stats.retrying_since,
        "retries": stats.retries,
        "spool": {"durable": spool.durable, "rows": spool.rows, "bytes": spool.bytes, "max_bytes": spool.max_bytes,
                  "segments": len(spool.sealed)},
        "inserted": stats.inserted,
        "parked_rows": stats.parked_rows,
        "last_error": stats.last_error,
    }
    return json_response(body, 200 if ready else 503)


async def _admin_body(request: web.Request) -> dict[str, Any]:
    """The admin request's JSON object body (401 without the admin key, 400 when it is not an object)."""
    require_admin(request)
    doc = parse_json(await read_body(request, 4096))
    if not isinstance(doc, dict):
        raise RequestRejected(400, "body: expected a JSON object")
    return doc


def _id_field(doc: Mapping[str, Any], field: str) -> str:
    """The admin body's one id field (a non-empty string of at most 256 characters), or 400."""
    value = doc.get(field)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise RequestRejected(400, f"{field}: expected a non-empty string")
    return value


async def _id_in_body(request: web.Request, field: str) -> str:
    """The admin body's one id field (a non-empty string of at most 256 characters), or 400."""
    return _id_field(await _admin_body(request), field)


async def _after_flush(request: web.Request, job: Callable[[], T]) -> T:
    """Write the spool to the store, then run a deletion on the writer thread (503 if the spool cannot drain).

    Rows of the person still in the spool would otherwise come back after the deletion.
    """
    batcher = request.app[BATCHER]
    if not await batcher.flush(request.app[SETTINGS].drain_timeout):
        raise TryLater("the spool could not be written to the store; retry later", retry_after=30)
    try:
        return await batcher.run_exclusive(job)
    except StoreError as exc:
        exc.retry_after = 30  # a deletion is retried later than an insert
        raise


async def forget(request: web.Request) -> web.Response:
    """Delete a person everywhere (admin key): ``{"customer_id": "...", "suppress": false}``; 503 if the spool
    cannot drain. With ``suppress`` their ids also go on the suppression list: later events are not stored.
    """
    doc = await _admin_body(request)
    customer_id = _id_field(doc, "customer_id")
    suppress = doc.get("suppress", False)
    if not isinstance(suppress, bool):
        raise RequestRejected(400, "suppress: expected true or false")
    store, policy, ingestor = request.app[STORE], request.app[SETTINGS].link_policy, request.app[INGESTOR]
    triggers = request.app.get(TRIGGERS)
    outbox = triggers.forget if triggers is not None else None  # their webhooks, marks and records first
    done = await _after_flush(request, lambda: forget_person(store, customer_id, policy, suppress=suppress,
                                                             before_delete=outbox))
    ingestor.dedup.forget(done.keys)  # a message id of theirs sent again is no duplicate now
    if suppress:  # events accepted before this collector knew the ids are caught by a second pass
        await ingestor.suppression.reload()
        again = await _after_flush(request, lambda: forget_person(store, customer_id, policy, also=done.ids,
                                                                  before_delete=outbox))
        ingestor.dedup.forget(again.keys)
        deleted = {table: n + again.deleted.get(table, 0) for table, n in done.deleted.items()}
        done = replace(done, deleted=deleted)
    request.app[BATCHER].forget_resolved_links()
    log.info("forgot a person", ids=len(done.ids), deleted=done.deleted, suppressed=done.suppressed)
    return json_response(done.answer())


async def unsuppress(request: web.Request) -> web.Response:
    """Lift a suppression (admin key): ``{"id": "..."}``, with every id suppressed with it (``lifted``: 0 if none)."""
    id_ = await _id_in_body(request, "id")
    store, ingestor = request.app[STORE], request.app[INGESTOR]
    done = await request.app[BATCHER].run_exclusive(lambda: unsuppress_ids(store, id_))
    await ingestor.suppression.reload()
    log.info("lifted a suppression", ids=done.lifted)
    return json_response(asdict(done))


async def unlink(request: web.Request) -> web.Response:
    """Undo a wrong link (admin key): ``{"id": "..."}`` leaves its customer, whose journey splits back."""
    id_ = await _id_in_body(request, "id")
    store, triggers = request.app[STORE], request.app.get(TRIGGERS)

    def job() -> Unlinked:
        done = unlink_id(store, id_)
        if triggers is not None:  # the parts are judged afresh: marks reset, transitions detected now
            try:
                triggers.unlinked([m for members in done.customers.values() for m in members], done.customer_id)
            except Exception:  # the marks stay reset: the parts are judged when next touched
                log.exception("judging the parts of an unlinked customer failed", id=id_)
        return done

    done = await _after_flush(request, job)
    request.app[BATCHER].forget_resolved_links()
    log.info("unlinked an id", customers=len(done.customers))
    return json_response(asdict(done))


async def enrich_stored(request: web.Request) -> web.Response:
    """Recompute bot and mail-machine flags since a date (admin key): ``{"since": "2025-01-31"}``."""
    text = await _id_in_body(request, "since")
    try:
        since, enricher = parse_since(text), enricher_of(request.app[SETTINGS])
    except ConfigError as exc:
        raise RequestRejected(400, str(exc)) from None
    store = request.app[STORE]
    done = await _after_flush(request, lambda: recompute_flags(store, enricher, since))
    log.info("recomputed flags", rows=done.rows, changed=done.changed, customers=done.customers)
    return json_response(asdict(done))


async def customer(request: web.Request) -> web.Response:
    """``GET /v1/customers/{id}`` (read key): one customer's journey by any of their ids, 404 if unknown."""
    name = require_reader(request)
    id_ = request.match_info["id"]
    if len(id_) > 256:
        raise RequestRejected(400, "id: longer than 256 characters")
    run = lookup_runner(request.app)
    result = await read_as(request, name, lambda: run(CUSTOMER_SQL, {"id": id_}), what="customer")
    if not result.rows:
        raise RequestRejected(404, f"no customer with the id {id_!r}")
    return json_response(result.records()[0])


async def end_sessions(request: web.Request) -> web.Response:
    """End every dashboard session on every collector (admin key); everyone signs in again."""
    require_admin(request)
    store, settings = request.app[STORE], request.app[SETTINGS]
    await read_store(request.app, lambda: sessions.end(store, sessions.ALL, time.time() + settings.session_ttl))
    request.app[METRICS].sessions_ended.labels("revoke_all").inc()
    log.info("ended every dashboard session")
    return json_response({"ended": "all"})


async def pause_writing(request: web.Request) -> web.Response:
    """Pause or resume writing to the store (admin key): ``{"paused": true}``; accepting goes on."""
    require_admin(request)
    doc = parse_json(await read_body(request, 1024))
    paused = doc.get("paused") if isinstance(doc, dict) else None
    if not isinstance(paused, bool):
        raise RequestRejected(400, "paused: expected true or false")
    request.app[BATCHER].pause(paused)
    return json_response({"paused": paused, "spooled_rows": request.app[BATCHER].pending})


async def query(request: web.Request) -> web.Response:
    """Run one read-only SQL statement for an analyst (read key): ``{"sql": ..., "params": {...}}``."""
    name = require_reader(request)
    doc = parse_json(await read_body(request, 256 * 1024))
    sql = doc.get("sql") if isinstance(doc, dict) else None
    params = doc.get("params", {}) if isinstance(doc, dict) else None
    if not isinstance(sql, str) or not sql.strip():
        raise RequestRejected(400, "sql: expected a non-empty string")
    if not isinstance(params, dict):
        raise RequestRejected(400, "params: expected an object")
    run = readonly_runner(request.app)
    result = await read_as(request, name, lambda: run(sql, params))
    return json_response({"columns": result.columns, "types": result.types, "rows": result.rows})


def readonly_runner(app: web.Application) -> Runner:
    """Runs analysts' queries through the query guard, read-only, within the configured limits (blocking)."""
    limits, store = app[SETTINGS].query_limits, app[READ_STORE]

    def run(sql: str, params: Mapping[str, Any]) -> QueryResult:
        return store.query_readonly(sql, params, limits=limits)

    return run


def lookup_runner(app: web.Application) -> Runner:
    """Runs the collector's own lookup SQL (journey.analyst, the dashboard's search) for an analyst: read-only and
    within the configured limits like ``readonly_runner``, without the query guard (Store.query_own; blocking)."""
    limits, store = app[SETTINGS].query_limits, app[READ_STORE]

    def run(sql: str, params: Mapping[str, Any]) -> QueryResult:
        return store.query_own(sql, params, limits=limits)

    return run


async def read_store(app: web.Application, work: Callable[[], T]) -> T:
    """Run blocking store reads in the reader pool (QueryRefused and StoreUnavailable: see edge.answers)."""
    return await asyncio.get_running_loop().run_in_executor(app[READERS], work)


def routes() -> list[web.RouteDef]:
    """Every route of the collector."""
    return [
        web.post("/v1/batch", _ingest(None)),
        web.post("/v1/import", _ingest(None, historical=True)),
        web.post("/v1/track", _ingest("track")),
        web.post("/v1/identify", _ingest("identify")),
        web.post("/v1/alias", _ingest("alias")),
        web.post("/v1/page", _ingest("page")),
        web.post("/v1/screen", _ingest("screen")),
        web.post("/v1/group", _ingest("group")),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.post("/v1/query", query),
        web.post("/v1/admin/writing", pause_writing),
        web.post("/v1/admin/forget", forget),
        web.post("/v1/admin/unlink", unlink),
        web.post("/v1/admin/enrich", enrich_stored),
        web.post("/v1/admin/sessions/revoke", end_sessions),
        web.post("/v1/admin/unsuppress", unsuppress),
        web.get("/v1/customers/{id}", customer),
    ]

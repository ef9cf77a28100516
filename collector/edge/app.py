"""The aiohttp application factory; resources live in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import structlog
from aiohttp import web

from collector.edge.ajs import ajs_routes
from collector.edge.appkeys import AUTH_FAILURES, BATCHER, INGESTOR, QUERY_SLOTS, READ_STORE, READERS, SETTINGS, STORE
from collector.edge.authlimit import AuthFailures
from collector.edge.channels import install_channels
from collector.edge.dashboard import dashboard_routes
from collector.edge.deadletters import dead_letter_routes
from collector.edge.handlers import routes
from collector.edge.hooks import hook_routes
from collector.edge.metrics import METRICS, metrics_handler
from collector.edge.middleware import fallback_route, with_http
from collector.edge.queryslots import QuerySlots
from collector.edge.snowplow import snowplow_routes
from collector.edge.sourcelist import source_list_routes
from collector.edge.triggers import TRIGGERS, trigger_routes
from collector.enrich.pipeline import Enricher
from collector.errors import ConfigError, ReiseError
from collector.ingest.attribution import AttributionRules
from collector.ingest.batcher import Batcher
from collector.ingest.dedup import Dedup
from collector.ingest.ingestor import Ingestor, build_enricher
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.spool import Spool, spooled_touchpoints
from collector.ingest.stages import StageRules
from collector.ingest.suppression import Suppression
from collector.limits import MAX_BATCH_BYTES
from collector.metrics import Metrics
from collector.settings import Settings
from collector.store.clickhouse import Store
from collector.store.view_settings import write_view_settings
from collector.triggers.config import TriggerConfig, load_trigger_config
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.service import TriggerService

__all__ = ["create_app"]

log = structlog.get_logger("reise.app")
MAX_REQUEST_LINE = 64 * 1024  # aiohttp's default is 8190 bytes
MAX_HEADER_FIELD = 32 * 1024



async def _store_ctx(app: web.Application, rules: StageRules, attribution: AttributionRules,
                     trigger_config: TriggerConfig, enricher: Enricher | None = None) -> AsyncIterator[None]:
    """Open the spool and the store, replay what a previous process left, start draining; drain on exit.

    The Ingestor, the hot path of every ingestion endpoint, is built here once, with everything it owns.
    """
    settings = app[SETTINGS]
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reise-writer")
    readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reise-reader")
    spool_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reise-spool")
    durable = settings.spool == "disk"
    lock = lock_directory(settings.spool_dir) if durable else None
    spool = Spool(directory=settings.spool_dir if durable else None, io=spool_io,
                  segment_rows=settings.batch_size, max_bytes=settings.spool_max_bytes)
    store = Store(dsn=settings.dsn)
    read_store = Store(dsn=settings.read_dsn) if settings.read_dsn else store
    dedup = Dedup(capacity=settings.dedup_ids, store=store, readers=readers)
    dedup.remember_rows(spooled_touchpoints(spool.recover()))
    batcher = Batcher(store=store, writer=writer, spool=spool, dedup=dedup, flush_interval=settings.flush_interval,
                      flush_interval_max=settings.flush_interval_max,
                      links=settings.link_policy, purge_interval=settings.purge_interval,
                      metrics=app[METRICS], cluster=settings.cluster, retention=settings.retention)
    app[METRICS].watch_spool(lambda: float(spool.bytes))
    suppression = Suppression(store=store, readers=readers, interval=settings.suppression_reload)
    app[METRICS].watch_suppressed(lambda: float(len(suppression)))
    app[STORE], app[READ_STORE], app[READERS], app[BATCHER] = store, read_store, readers, batcher
    app[INGESTOR] = Ingestor(
        settings=settings, rules=rules, attribution=attribution, dedup=dedup, batcher=batcher, metrics=app[METRICS],
        limiter=RateLimiter(rate=settings.rate_limit, public_rate=settings.public_rate_limit), suppression=suppression,
        enricher=enricher)
    if not await batcher.connect():
        log.warning("store unreachable at start; accepting into the spool and retrying", dsn=_redacted(settings.dsn))
    triggers = None
    if trigger_config.enabled:  # webhooks and segments (collector.triggers): hooked in before the first drain
        triggers = app[TRIGGERS] = TriggerService.open(settings, trigger_config, store,
                                                      TriggerMetrics(app[METRICS].registry), spool.directory)
        await triggers.start(batcher)
    task = asyncio.create_task(batcher.supervise(), name="reise-batcher")  # restarts a dead drain loop
    reloads = asyncio.create_task(suppression.run(), name="reise-suppression")
    log.info("collector ready", dsn=_redacted(settings.dsn), spool=str(spool.directory or "memory"),
             spooled_rows=spool.rows, remembered_ids=len(dedup))
    try:
        yield
    finally:
        drained = await batcher.drain(settings.drain_timeout)
        for running in (task, reloads):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if triggers is not None:
            await triggers.close()
        log.info("collector stopped", drained=drained, inserted=batcher.stats.inserted, spooled_rows=spool.rows)
        spool_io.submit(spool.close).result()
        writer.submit(store.close).result()
        if read_store is not store:
            read_store.close()
        for pool in (writer, readers, spool_io):
            pool.shutdown(wait=True)
        if lock is not None:
            lock.close()


async def _view_settings_ctx(app: web.Application) -> AsyncIterator[None]:
    """Store the analytics views' settings once the store is ready (the batcher migrates it first)."""

    async def write() -> None:
        batcher, values = app[BATCHER], app[SETTINGS].view_settings
        while not await batcher.connect():
            await asyncio.sleep(5)
        try:
            written = await batcher.run_exclusive(lambda: write_view_settings(app[STORE], values))
        except ReiseError as exc:
            log.warning("analytics view settings not stored", error=str(exc))
        else:
            if written:
                log.info("analytics view settings stored", **written)

    task = asyncio.create_task(write(), name="reise-view-settings")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def lock_directory(directory: Path) -> IO[bytes]:
    """Hold an exclusive lock on a spool directory for this process's lifetime; refuse a second holder."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / ".lock").open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"spool {directory} is in use by another collector process; give each its own "
                          "REISE_SPOOL_DIR") from None
    return handle


def _redacted(dsn: str) -> str:
    """A DSN without its password, for logs."""
    head, sep, tail = dsn.rpartition("@")
    if not sep:
        return dsn
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{tail}"


def create_app(settings: Settings) -> web.Application:
    """Build the collector application from frozen settings."""
    # bodies are decompressed by collector.edge.body within its limits, not by aiohttp; request lines and
    # headers may be long enough for a pixel hit with a long query or Referer to still get its GIF
    app = web.Application(handler_args={"auto_decompress": False, "max_line_size": MAX_REQUEST_LINE,
                                        "max_field_size": MAX_HEADER_FIELD},
                          # no middleware: each route is wrapped instead (request id, errors, CORS, metrics:
                          # collector.edge.middleware), the pixel does that itself (collector.edge.pixel)
                          client_max_size=max(MAX_BATCH_BYTES * 2, settings.max_body_bytes + 64 * 1024))
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[AUTH_FAILURES] = AuthFailures(settings.auth_failures)
    app[QUERY_SLOTS] = QuerySlots(settings.query_concurrency)
    app[METRICS].watch_pending(lambda: float(app[BATCHER].pending) if BATCHER in app else 0.0)
    rules = StageRules.load(settings.stage_rules)  # rules files are checked before anything opens
    attribution = AttributionRules.load(settings.attribution)
    trigger_config = load_trigger_config(settings.triggers, settings.segments, hosts=settings.trigger_hosts)
    enricher = build_enricher(settings)  # its rules load before the spool is locked and the port opens
    install_channels(app)  # pixel, click links, browser snippet, CORS (collector/edge/channels.py)
    app.add_routes(with_http(routes()))
    app.add_routes(with_http(dashboard_routes()))
    app.add_routes(with_http(dead_letter_routes()))
    app.add_routes(with_http(trigger_routes()))
    app.add_routes(with_http(hook_routes()))  # signed webhooks of REISE_SOURCES (collector/edge/hooks.py)
    app.add_routes(with_http(snowplow_routes()))  # the Snowplow tracker protocol (collector/edge/snowplow.py)
    app.add_routes(with_http(ajs_routes()))  # analytics.js settings and Segment's short paths (collector/edge/ajs.py)
    app.add_routes(with_http(source_list_routes()))  # the dashboard's source list (collector/edge/sourcelist.py)
    app.add_routes(with_http([web.get("/metrics", metrics_handler)]))
    app.add_routes([fallback_route()])  # last: JSON 404 and 405 for what no route above takes
    app.cleanup_ctx.append(lambda started: _store_ctx(started, rules, attribution, trigger_config, enricher))
    app.cleanup_ctx.append(_view_settings_ctx)
    return app

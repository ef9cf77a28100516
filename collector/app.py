"""The aiohttp application factory; resources live in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import structlog
from aiohttp import web

from collector.batcher import Batcher
from collector.dedup import RecentIds
from collector.handlers import error_middleware, routes
from collector.migrate import apply_migrations
from collector.protocol import DEDUP_KEY_SQL, MAX_BATCH_BYTES
from collector.settings import Settings
from collector.stages import StageRules
from collector.state import BATCHER, READERS, RECENT_IDS, RULES, SETTINGS, STORE
from collector.store import Store

__all__ = ["create_app"]

log = structlog.get_logger("reise.app")

DRAIN_TIMEOUT = 30.0
RECENT_IDS_SQL = f"""
SELECT {DEDUP_KEY_SQL} FROM touchpoints
WHERE received_at >= now64(3) - INTERVAL 1 DAY
ORDER BY received_at DESC
LIMIT {{n:UInt64}}
"""


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the store, apply migrations, start the batcher; drain and close on shutdown."""
    settings = app[SETTINGS]
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reise-writer")
    readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reise-reader")
    store = Store(dsn=settings.dsn)
    loop = asyncio.get_running_loop()
    applied = await loop.run_in_executor(writer, apply_migrations, store)
    if applied:
        log.info("migrations applied", migrations=applied)
    recent = RecentIds(settings.dedup_ids)
    known = await loop.run_in_executor(
        writer, lambda: store.query(RECENT_IDS_SQL, {"n": settings.dedup_ids}).rows
    )
    for (message_id,) in reversed(known):
        recent.add(message_id)
    batcher = Batcher(store=store, writer=writer, batch_size=settings.batch_size,
                      flush_interval=settings.flush_interval, max_pending=settings.max_pending)
    app[STORE], app[READERS], app[RECENT_IDS], app[BATCHER] = store, readers, recent, batcher
    task = asyncio.create_task(batcher.run(), name="reise-batcher")
    log.info("collector ready", dsn=_redacted(settings.dsn), remembered_ids=len(recent))
    try:
        yield
    finally:
        drained = await batcher.drain(DRAIN_TIMEOUT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("collector stopped", drained=drained, inserted=batcher.stats.inserted, pending=batcher.pending)
        writer.submit(store.close).result()
        writer.shutdown(wait=True)
        readers.shutdown(wait=True)


def _redacted(dsn: str) -> str:
    """A DSN without its password, for logs."""
    head, sep, tail = dsn.rpartition("@")
    if not sep:
        return dsn
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{tail}"


def create_app(settings: Settings) -> web.Application:
    """Build the collector application from frozen settings."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BATCH_BYTES * 2)
    app[SETTINGS] = settings
    app[RULES] = StageRules.load(settings.stage_rules)
    app.add_routes(routes())
    app.cleanup_ctx.append(_store_ctx)
    return app

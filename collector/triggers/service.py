"""The triggers wired into the collector: the engine on the batcher's writer thread, the deliverer and the scan.

``TriggerService.open`` builds everything from the settings and the checked config; the app factory starts it
after the batcher and closes it after the batcher's drain (so the last segments' transitions are queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from collector.errors import StoreError
from collector.ingest.batcher import Batcher
from collector.settings import Settings
from collector.store.clickhouse import Store
from collector.triggers.config import Limits, TriggerConfig
from collector.triggers.deliver import Deliverer, DeliveryPolicy
from collector.triggers.engine import TriggerEngine
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Outbox

__all__ = ["OUTBOX_FILE", "TriggerService", "policy_of"]

log = structlog.get_logger("reise.triggers")
OUTBOX_FILE = "triggers.sqlite3"
KEEP_DELIVERED_DAYS = 7.0


def policy_of(settings: Settings) -> DeliveryPolicy:
    """The delivery policy the settings describe."""
    return DeliveryPolicy(hosts=settings.trigger_hosts, allow_private=settings.trigger_allow_private,
                          max_attempts=settings.trigger_max_attempts, backoff=settings.trigger_backoff,
                          max_backoff=settings.trigger_max_backoff, timeout=settings.trigger_timeout,
                          limits=Limits(settings.trigger_concurrency, settings.trigger_rate))


class TriggerService:
    """Engine, outbox, deliverer and scan of one collector process."""

    def __init__(self, *, engine: TriggerEngine, deliverer: Deliverer, outbox: Outbox, pool: ThreadPoolExecutor,
                 scan_interval: float) -> None:
        self.engine = engine
        self.deliverer = deliverer
        self.outbox = outbox
        self._pool = pool
        self._scan_interval = scan_interval
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, settings: Settings, config: TriggerConfig, store: Store, metrics: TriggerMetrics,
             spool_dir: Path | None) -> TriggerService:
        """Open the outbox (beside the spool; in memory with a memory spool) and build the parts."""
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)
        outbox = Outbox(spool_dir / OUTBOX_FILE if spool_dir is not None else None)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reise-triggers")
        engine = TriggerEngine(config=config, store=store, outbox=outbox, metrics=metrics)
        deliverer = Deliverer(config=config, outbox=outbox, store=store, policy=policy_of(settings), metrics=metrics,
                              pool=pool)
        engine.notify = deliverer.add_threadsafe
        return cls(engine=engine, deliverer=deliverer, outbox=outbox, pool=pool,
                   scan_interval=settings.trigger_scan_interval)

    async def start(self, batcher: Batcher) -> None:
        """Hook the engine into the batcher, start delivering and scanning."""
        batcher.on_stored = self.engine.on_segment
        await self.deliverer.start()
        self._task = asyncio.create_task(self._scan_loop(batcher), name="reise-trigger-scan")
        log.info("triggers ready", triggers=len(self.engine.config.triggers),
                 segments=len(self.engine.config.segments))

    async def _scan_loop(self, batcher: Batcher) -> None:
        """Record the segments' definitions, then scan every interval (on the writer thread, between inserts)."""
        defined = False
        while True:
            try:
                if not defined and await batcher.connect():
                    await batcher.run_exclusive(self.engine.define_segments)
                    defined = True
                if defined:
                    queued = await batcher.run_exclusive(self.engine.scan)
                    if queued:
                        log.info("scan queued transitions", queued=queued)
                    keep = time.time() - KEEP_DELIVERED_DAYS * 86400
                    await asyncio.get_running_loop().run_in_executor(self._pool, self.outbox.prune, keep)
            except StoreError as exc:
                log.warning("trigger scan failed; will retry", error=str(exc))
            except Exception:  # a fault here must not stop the scans for good
                log.exception("trigger scan failed")
            await asyncio.sleep(self._scan_interval if defined else 1.0)

    def forget(self, ids: Sequence[str]) -> dict[str, int]:
        """Forget a person's ids (blocking: the writer thread, before their ClickHouse rows are deleted).

        Their held items are dropped, then their outbox items, marks, memberships and uncopied records are
        deleted on the triggers thread (so no copy of records to ClickHouse is under way meanwhile); an attempt
        in flight finishes but is not recorded. How many rows of each were deleted.
        """
        customers = set(ids)
        self.deliverer.drop_threadsafe(customers)
        deleted = self._pool.submit(self.outbox.forget, sorted(customers)).result()
        self.deliverer.drop_threadsafe(customers)  # anything a replay put back meanwhile
        return deleted

    def unlinked(self, ids: Sequence[str], keeper: str) -> int:
        """After an unlink split the customer of these ids: reset their marks and judge the parts afresh (writer
        thread); how many transitions were queued."""
        return self.engine.reset(ids, keeper)

    async def close(self) -> None:
        """Stop scanning and delivering (what is left stays in the outbox for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.deliverer.close()
        self._pool.shutdown(wait=True)

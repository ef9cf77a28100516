"""A busy writer lets the next spool segment grow (fewer, larger inserts); an idle one seals at the interval."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from collector.edge.appkeys import BATCHER
from collector.ingest.spool import Segment
from collector.store.clickhouse import Store
from tests.durability.inprocess import inprocess

BUSY = 0.5  # seconds the writer spends on each stored segment beyond its inserts (a slow after-store hook)


def event(prefix: str, n: int) -> dict[str, object]:
    return {"type": "track", "userId": f"{prefix}-u{n % 3}", "event": "Product Viewed", "channel": "web",
            "messageId": f"{prefix}-m{n}", "timestamp": "2026-10-01T00:00:00.000Z"}


async def test_a_busy_writer_seals_later_up_to_the_max_and_an_idle_one_at_the_interval(store: Store,
                                                                                          tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex[:8]
    async with inprocess(store, tmp_path / "spool", REISE_FLUSH_INTERVAL="0.2", REISE_FLUSH_INTERVAL_MAX="3") as app:
        batcher = app.app[BATCHER]
        assert batcher.flush_interval == 0.2 and batcher.flush_interval_max == 3
        ages: list[float] = []

        def busy(segment: Segment, _ids: list[str]) -> None:  # the writer thread, after the segment was stored
            ages.append(segment.sealed_at - segment.opened)
            time.sleep(BUSY)

        batcher.on_stored = busy
        for n in range(50):  # a steady trickle for about 2.5 s
            status, _ = await app.post("/v1/batch", {"batch": [event(prefix, n)]})
            assert status == 200
            await asyncio.sleep(0.05)
        await app.settled()
        stored = await app.sql("SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})",
                               {"p": prefix + "-"})
    assert stored == [(50,)]
    assert len(ages) >= 2
    # the first segment waited for the interval only; each later one until three times the writer's last write
    # (at least BUSY each), where without the policy it was sealed as soon as the writer was free (~BUSY old)
    assert ages[0] < 3 * BUSY
    assert all(age >= 3 * BUSY - 0.05 for age in ages[1:]), ages


async def test_the_seal_age_follows_the_writer_within_the_interval_and_the_max(store: Store, tmp_path: Path) -> None:
    async with inprocess(store, tmp_path / "spool", REISE_FLUSH_INTERVAL="0.5") as app:
        batcher = app.app[BATCHER]
        assert batcher.flush_interval_max == 1.0  # unset (0): twice REISE_FLUSH_INTERVAL
        for work, age in ((0.0, 0.5), (0.1, 0.5), (0.2, 0.6), (0.3, 0.9), (5.0, 1.0)):
            batcher.work_seconds = work
            assert batcher.seal_age == pytest.approx(age), work
    async with inprocess(store, tmp_path / "spool2", REISE_FLUSH_INTERVAL="0.5", REISE_FLUSH_INTERVAL_MAX="0.1") as app:
        batcher = app.app[BATCHER]
        batcher.work_seconds = 5.0
        assert batcher.seal_age == 0.5  # a max below the interval: never stretched

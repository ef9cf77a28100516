"""Rows nobody waits for (the pixel's) share group writes across loop ticks; waited rows are never held back."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from collector.ingest.spool import Spool, encode_rows


def _body(n: int) -> dict[str, bytes]:
    return {"touchpoints": encode_rows([(f"m{n}", n)]), "dead_letters": b"", "identity_links": b""}


def _lines_on_disk(spool: Spool) -> int:
    files = list(spool.directory.glob("*.tp")) if spool.directory else []
    return sum(path.read_bytes().count(b"\n") - 1 for path in files)  # the first line names the columns


def test_lingering_rows_of_many_ticks_share_one_write(tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        with ThreadPoolExecutor(1) as io:
            spool = Spool(directory=tmp_path, io=io, segment_rows=10_000, max_bytes=10**9, linger=0.3)
            futures = []
            for n in range(50):  # one hit per loop tick, as a slow trickle of pixel hits arrives
                futures.append(spool.enqueue(_body(n), 1, linger=True))
                await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.gather(*futures), 10)
            spool.close()
            return spool.group_writes, _lines_on_disk(spool)

    writes, lines = asyncio.run(run())
    assert lines == 50
    assert writes == 1


def test_rows_someone_waits_for_are_written_without_lingering(tmp_path: Path) -> None:
    async def run() -> tuple[bool, int]:
        with ThreadPoolExecutor(1) as io:
            spool = Spool(directory=tmp_path, io=io, segment_rows=10_000, max_bytes=10**9, linger=60)
            unwaited = spool.enqueue(_body(1), 1, linger=True)
            await asyncio.sleep(0.05)  # the flusher is lingering now
            await asyncio.wait_for(spool.append(_body(2), 1), 10)  # an event request's rows: fsynced promptly
            done = unwaited.done()  # the lingering rows went with them
            spool.close()
            return done, _lines_on_disk(spool)

    done, lines = asyncio.run(run())
    assert done and lines == 2


def test_without_linger_each_tick_is_written_as_soon_as_possible(tmp_path: Path) -> None:
    async def run() -> int:
        with ThreadPoolExecutor(1) as io:
            spool = Spool(directory=tmp_path, io=io, segment_rows=10_000, max_bytes=10**9, linger=0)
            for n in range(5):
                await asyncio.wait_for(spool.enqueue(_body(n), 1, linger=True), 10)
            spool.close()
            return spool.group_writes

    assert asyncio.run(run()) == 5

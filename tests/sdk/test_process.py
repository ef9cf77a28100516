"""Process life: fork() (gunicorn --preload), interpreter exit, asyncio."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from pathlib import Path

import reise

from .conftest import WRITE_KEY, FakeCollector

FAST = {"flush_interval": 0.05, "backoff_base": 0.05, "max_backoff": 0.3, "timeout": 2.0}


def test_forked_child_gets_a_working_sender(fake: FakeCollector) -> None:
    fake.script.append(("slow", 0.3))  # the parent's sender is mid-request at fork time
    c = reise.Client(WRITE_KEY, fake.url, **FAST)  # type: ignore[arg-type]
    try:
        parent_ids = [c.track("parent", "Before Fork", {"i": i}) for i in range(200)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # child: must never return into pytest
            code = 1
            try:
                for i in range(100):
                    c.track("child", "In Child", {"i": i})
                code = 0 if c.flush(30) and c.stats()["delivered"] == 100 else 2
                c.shutdown(5)
            finally:
                os._exit(code)
        parent_ids += [c.track("parent", "After Fork", {"i": i}) for i in range(50)]
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c.flush(30)
    finally:
        c.shutdown(5)
    events = list(fake.events.values())
    assert sum(e["event"] == "In Child" for e in events) == 100
    assert set(parent_ids) <= set(fake.events)
    assert max(fake.seen.values()) == 1  # the child did not re-send the parent's queue


def test_forked_child_with_durable_spool(fake: FakeCollector, tmp_path: Path) -> None:
    c = reise.Client(WRITE_KEY, fake.url, spool_path=tmp_path / "s.db",
                     **FAST)  # type: ignore[arg-type]
    try:
        c.track("parent", "Before Fork")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for i in range(20):
                    c.track("child", "Durable Child", {"i": i})
                code = 0 if c.flush(30) else 2
                c.shutdown(5)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c.flush(30)
    finally:
        c.shutdown(5)
    names = [e["event"] for e in fake.events.values()]
    assert names.count("Durable Child") == 20 and names.count("Before Fork") == 1


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> int:
    proc = subprocess.run([sys.executable, "-c", script, *args], timeout=60,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)
    return proc.returncode


def test_pending_events_are_flushed_at_interpreter_exit(fake: FakeCollector) -> None:
    script = (
        "import sys, reise\n"
        "c = reise.Client(sys.argv[1], sys.argv[2], flush_interval=60)\n"
        "for i in range(1000):\n"
        "    c.track('u', 'At Exit', {'i': i})\n"
    )
    assert _run(script, WRITE_KEY, fake.url) == 0
    assert len(fake.events) == 1000


def test_exit_is_bounded_when_the_collector_is_down(dead_url: str, tmp_path: Path) -> None:
    script = (
        "import sys, reise\n"
        "c = reise.Client(sys.argv[1], sys.argv[2], exit_timeout=0.5, spool_path=sys.argv[3])\n"
        "c.track('u', 'Stuck')\n"
        "m = reise.Client(sys.argv[1], sys.argv[2], exit_timeout=0.5)\n"
        "m.track('u', 'Lost')\n"
    )
    # Returns (the guard is the 60 s subprocess timeout) and prints nothing.
    assert _run(script, WRITE_KEY, dead_url, str(tmp_path / "s.db")) == 0
    import sqlite3
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_async_client_never_blocks_the_loop(fake: FakeCollector) -> None:
    fake.script.extend([("slow", 0.3)] * 2)

    async def main() -> tuple[int, list[str]]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        async with reise.AsyncClient(WRITE_KEY, fake.url, **FAST) as c:  # type: ignore[arg-type]
            t = asyncio.create_task(ticker())
            mids = [c.track("u", "Async", {"i": i}) for i in range(100)]
            mids.append(c.purchase("A-1", 5, "EUR", user_id="u"))
            assert await c.flush(30)
            done.set()
            await t
        return ticks, mids

    ticks, mids = asyncio.run(main())
    assert set(mids) == set(fake.events)
    assert ticks > 1  # the loop kept running while flush waited on the slow server

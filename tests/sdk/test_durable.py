"""Durable mode: the sqlite spool keeps undelivered events across crashes and restarts."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import reise

from .conftest import WRITE_KEY, FakeCollector

CHILD = str(Path(__file__).with_name("durable_child.py"))
FAST = {"flush_interval": 0.05, "backoff_base": 0.05, "max_backoff": 0.3, "timeout": 2.0}


def spool_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def run_until_killed(url: str, key: str, spool: Path, tag: str, count: int,
                     kill_after: int) -> int:
    """Start the child, SIGKILL it after ``kill_after`` accepted events; return the last index."""
    proc = subprocess.Popen([sys.executable, CHILD, url, key, str(spool), tag, str(count)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = -1
    try:
        for line in proc.stdout:
            last = int(line)
            if last + 1 >= kill_after:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    return last


def test_spool_survives_restart_during_outage(fake: FakeCollector, tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    fake.stop()
    c = reise.Client(WRITE_KEY, fake.url, spool_path=spool, **FAST)  # type: ignore[arg-type]
    mids = [c.track("u", "Offline", {"i": i}, channel="pos") for i in range(300)]
    assert not c.flush(0.5)
    assert c.shutdown(0.1) is False
    assert spool_rows(spool) == 300  # shut down while the collector is down: all on disk
    fake.start()
    with reise.Client(WRITE_KEY, fake.url, spool_path=spool, **FAST) as c:  # type: ignore[arg-type]
        assert c.flush(30)
    assert set(mids) == set(fake.events)
    assert spool_rows(spool) == 0


def test_sigkill_mid_stream_then_new_process_delivers_rest(fake: FakeCollector,
                                                           tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    tag = uuid.uuid4().hex
    fake.script.extend([("slow", 0.2)] * 5)  # keep part of the stream undelivered
    last = run_until_killed(fake.url, WRITE_KEY, spool, tag, 5000, kill_after=1500)
    delivered_before = len(fake.events)
    left = spool_rows(spool)
    assert left > 0  # the kill really happened mid-stream
    with reise.Client(WRITE_KEY, fake.url, spool_path=spool, **FAST) as c:  # type: ignore[arg-type]
        assert c.flush(60)
    got = sorted(e["properties"]["i"] for e in fake.events.values()
                 if e["properties"].get("run") == tag)
    assert set(range(last + 1)) <= set(got)
    assert len(got) == len(set(got))
    assert delivered_before < len(fake.events)
    assert spool_rows(spool) == 0


def test_spool_overflow_policy_applies(fake: FakeCollector, tmp_path: Path) -> None:
    fake.stop()
    c = reise.Client(WRITE_KEY, fake.url, spool_path=tmp_path / "s.db", spool_max_events=20,
                     **FAST)  # type: ignore[arg-type]
    try:
        for i in range(50):
            c.track("u", "Full", {"i": i})
        assert c.stats()["dropped"] == 30
    finally:
        c.shutdown(0.2)
    assert spool_rows(tmp_path / "s.db") == 20

"""`reise serve --workers N`: N processes on one port, each with its own spool; refused on the embedded store."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.cli.workers import worker_settings
from collector.errors import ConfigError
from collector.settings import Settings
from tests.helpers import ROOT, free_port, http


def env_for(tmp_path: Path, dsn: str) -> dict[str, str]:
    """A clean environment for a collector under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
    env.update(REISE_DSN=dsn, REISE_WRITE_KEYS="t=wk_workers", REISE_ADMIN_KEY="ak_workers",
               REISE_SPOOL_DIR=str(tmp_path / "spool"), REISE_LOG_FORMAT="json", REISE_FLUSH_INTERVAL="0.2",
               REISE_DRAIN_TIMEOUT="1")
    return env


def test_the_embedded_store_refuses_several_workers(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "collector", "serve", "--workers", "2", "--port", str(free_port())],
                          cwd=ROOT, env=env_for(tmp_path, f"chdb://{tmp_path}/data"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers 2 needs a ClickHouse server" in done.stderr
    assert "one process only" in done.stderr
    assert not (tmp_path / "data").exists()


def test_worker_count_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="REISE_WORKERS"):
        Settings.from_env({"REISE_WORKERS": "0"})


def test_each_worker_gets_its_own_spool() -> None:
    settings = Settings.from_env({"REISE_DSN": "http://ch:8123/reise", "REISE_SPOOL_DIR": "/var/spool/reise",
                                  "REISE_WORKERS": "3"})
    assert [worker_settings(settings, i).spool_dir for i in range(3)] == [
        Path(f"/var/spool/reise/worker-{i}") for i in range(3)]
    assert worker_settings(settings, 1).dsn == settings.dsn


def locked(lock: Path) -> bool:
    """True while some process holds the spool directory's lock."""
    with lock.open("ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def test_workers_share_one_port_and_stop_together(tmp_path: Path) -> None:
    """Against a server DSN (unreachable here: the collectors accept into their spools and keep retrying)."""
    port = free_port()
    dead_server = f"http://reise:x@127.0.0.1:{free_port()}/reise"
    log = (tmp_path / "workers.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--workers", "2", "--port", str(port)],
                               cwd=ROOT, env=env_for(tmp_path, dead_server), stdout=log, stderr=subprocess.STDOUT)
    try:
        locks = [tmp_path / "spool" / f"worker-{i}" / ".lock" for i in range(2)]
        deadline = time.monotonic() + 60
        while not all(lock.exists() and locked(lock) for lock in locks):
            assert process.poll() is None, (tmp_path / "workers.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()
            time.sleep(0.1)
        answers = [http("POST", f"http://127.0.0.1:{port}/v1/track", {"userId": f"w{i}", "event": "Viewed"},
                        key="wk_workers").status for i in range(20)]
        assert answers == [200] * 20
        assert http("GET", f"http://127.0.0.1:{port}/healthz").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(90)
    assert code == 0, (tmp_path / "workers.log").read_text()
    assert not any(locked(lock) for lock in locks), "a worker outlived the supervisor"
    assert "workers started" in (tmp_path / "workers.log").read_text()

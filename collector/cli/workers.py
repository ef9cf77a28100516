"""Several collector processes on one port (SO_REUSEPORT), each with its own spool, under one supervisor.

Only for a ClickHouse server: the embedded chDB store opens its data directory in one process only, which
``Settings.check`` enforces. Collectors share no state, so the kernel may hand any connection to any worker.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog

from collector.settings import Settings

__all__ = ["run_workers", "worker_settings"]

log = structlog.get_logger("reise.workers")
STOP_TIMEOUT = 60.0


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings of worker ``index``: the spool in its own ``worker-N`` subdirectory."""
    return replace(settings, spool_dir=settings.spool_dir / f"worker-{index}")


def run_workers(settings: Settings, serve: Callable[[Settings], None]) -> int:
    """Start ``settings.workers`` processes running ``serve``; stop them all when one ends or on SIGTERM.

    Returns the exit code of the worker that ended first (0 after a requested stop), so a supervisor
    (Docker, systemd, Kubernetes) restarts the whole collector rather than running it short-handed.
    """
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = [
        context.Process(target=serve, args=(worker_settings(settings, index),), name=f"reise-worker-{index}")
        for index in range(settings.workers)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        # SIGINT from a terminal reaches every process of the group already; SIGTERM reaches only us
        if signum == signal.SIGTERM:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in workers:
            worker.start()
        log.info("workers started", workers=len(workers), pids=[w.pid for w in workers])
        ready = wait([w.sentinel for w in workers])
        first = next(w for w in workers if w.sentinel in ready)
        first.join(STOP_TIMEOUT)  # its sentinel closes a moment before the process is reaped
        if not stopping:
            log.error("a worker ended; stopping the others", worker=first.name, exitcode=first.exitcode)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(STOP_TIMEOUT)
            if worker.is_alive():
                worker.kill()
                worker.join()
        return 0 if stopping else (first.exitcode or 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

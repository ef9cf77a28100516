"""A real collector (the aiohttp app, its spool and drain loop) on a loopback port inside the test process.

It writes to the session's embedded store (chDB opens one data path per process), so a test can break and
mend that store while the collector runs: make a table read-only, drop it, add a constraint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from collector.edge.app import create_app
from collector.settings import Settings
from collector.store.clickhouse import Store
from tests.helpers import basic, free_port

WRITE_KEY, ADMIN_KEY = "wk_inproc", "ak_inproc"


@dataclass
class InProcess:
    """The running app's URL, an HTTP session, and the store it writes to."""

    url: str
    http: aiohttp.ClientSession
    store: Store
    spool: Path
    app: web.Application

    async def get(self, path: str) -> tuple[int, Any]:
        """GET a path; status and parsed JSON (or text)."""
        async with self.http.get(self.url + path) as reply:
            body = await reply.json() if reply.content_type == "application/json" else await reply.text()
            return reply.status, body

    async def post(self, path: str, body: Any, *, key: str = WRITE_KEY) -> tuple[int, Any]:
        """POST JSON with a key; status and parsed JSON."""
        async with self.http.post(self.url + path, json=body, headers={"Authorization": basic(key)}) as reply:
            return reply.status, await reply.json()

    async def sql(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query on the store, run off the event loop."""
        result = await asyncio.to_thread(self.store.query, sql, params)
        return [tuple(row) for row in result.rows]

    async def command(self, sql: str) -> None:
        """Run a statement on the store (DDL that breaks or mends it), off the event loop."""
        await asyncio.to_thread(self.store.command, sql)

    async def until(self, check: Callable[[], Any], timeout: float = 60) -> Any:
        """Poll an async check until it returns something truthy; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"not reached in {timeout} s")

    async def settled(self, timeout: float = 60) -> None:
        """Wait until the spool is empty (everything written)."""
        async def empty() -> bool:
            status, ready = await self.get("/readyz")
            return status == 200 and ready["spool"]["rows"] == 0
        await self.until(empty, timeout)


@asynccontextmanager
async def inprocess(store: Store, spool: Path, **env: str) -> AsyncIterator[InProcess]:
    """Run the collector app on a free loopback port against ``store``; stop it (drained) on exit."""
    settings = Settings.from_env(env={
        "REISE_DSN": store.dsn, "REISE_SPOOL_DIR": str(spool), "REISE_WRITE_KEYS": f"test={WRITE_KEY}",
        "REISE_ADMIN_KEY": ADMIN_KEY, "REISE_FLUSH_INTERVAL": "0.2", "REISE_DRAIN_TIMEOUT": "5", **env})
    port = free_port()
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield InProcess(f"http://127.0.0.1:{port}", http, store, spool, app)
    finally:
        await runner.cleanup()

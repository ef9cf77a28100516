"""A real webhook receiver on a loopback port, in a thread of the test process: it records every request."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers import free_port


@dataclass
class Received:
    """One request the receiver got."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    peer: str = ""  # the client's address and port: one per connection

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body."""
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """Answers ``status`` (200 by default) to every POST, after ``delay`` seconds; ``down()`` closes the port,
    ``up()`` opens it again. ``most_at_once`` is the most requests it was answering at the same time."""

    port: int = field(default_factory=free_port)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0
    most_at_once: int = 0
    _at_once: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        """The base URL (loopback)."""
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.received.append(Received(time.time(), request.path, dict(request.headers), await request.read(),
                                      f"{peer[0]}:{peer[1]}" if peer else ""))
        self._at_once += 1
        self.most_at_once = max(self.most_at_once, self._at_once)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self._at_once -= 1
        return web.Response(status=self.status, headers=self.headers, text="ok")

    def start(self) -> Receiver:
        """Serve in a background thread."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(self._open())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    async def _open(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _close(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def _call(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def down(self) -> None:
        """Stop listening: connections are refused."""
        self._call(self._close())

    def up(self) -> None:
        """Listen again on the same port."""
        self._call(self._open())

    def stop(self) -> None:
        """Stop the server and its thread."""
        assert self._loop is not None and self._runner is not None
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def payloads(self, trigger: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received, optionally of one trigger."""
        found = [r.payload for r in list(self.received)]
        return [p for p in found if trigger is None or p["trigger"] == trigger]

    def wait_for(self, count: int, trigger: str | None = None, timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until at least ``count`` payloads (of the trigger) arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.payloads(trigger)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.payloads(trigger)

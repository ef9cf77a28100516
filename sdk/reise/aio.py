"""``AsyncClient``: the same client for asyncio applications.

Tracking calls are plain (non-async) methods that never wait on I/O: they validate,
serialise and queue, exactly like ``Client``. The sending happens on the client's own
background thread, so the event loop is never blocked; ``await flush()`` and
``await shutdown()`` wait for it without blocking the loop.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from reise.client import Client

if TYPE_CHECKING:
    from typing import Unpack

    from reise.options import ClientOptions

__all__ = ["AsyncClient"]


class AsyncClient:
    """Asyncio flavour of ``Client``: same arguments, same calls, awaitable flush/shutdown."""

    def __init__(self, write_key: str, host: str, **options: Unpack[ClientOptions]) -> None:
        """Create the client; ``options`` are those of ``Client`` (see ``ClientOptions``)."""
        self._client = Client(write_key, host, **options)
        self.track = self._client.track
        self.identify = self._client.identify
        self.alias = self._client.alias
        self.page = self._client.page
        self.screen = self._client.screen
        self.purchase = self._client.purchase
        self.stats = self._client.stats

    @property
    def client(self) -> Client:
        """The underlying thread-based client."""
        return self._client

    async def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait (without blocking the loop) until everything queued so far is sent."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._client.flush, timeout)

    async def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` and stop the sender, without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._client.shutdown, timeout)

    aclose = shutdown

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.shutdown()

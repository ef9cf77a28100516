"""A limit on the queries one key runs at once (REISE_QUERY_CONCURRENCY); beyond it, 429."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from collector.errors import QueryBusy

__all__ = ["QuerySlots"]


class QuerySlots:
    """Counts each key's running queries on the event loop (no lock needed: one thread touches it)."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._running: dict[str, int] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold one of the key's query slots for the block, or raise QueryBusy when all are taken."""
        running = self._running.get(name, 0)
        if running >= self.per_key:
            raise QueryBusy(f"the key {name!r} already runs {running} queries (REISE_QUERY_CONCURRENCY)",
                            retry_after=1)
        self._running[name] = running + 1
        try:
            yield
        finally:
            left = self._running[name] - 1
            if left:
                self._running[name] = left
            else:
                del self._running[name]

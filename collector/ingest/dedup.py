"""Recently seen message ids, so a client's retry of an accepted event is not stored twice."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["RecentIds"]


class RecentIds:
    """A bounded set of message ids that forgets the oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, message_id: str) -> bool:
        """Remember an id; False when it was already remembered (a duplicate)."""
        if message_id in self._seen:
            return False
        if self.capacity <= 0:
            return True
        self._seen.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True

    def forget(self, message_ids: Iterable[str]) -> None:
        """Forget ids whose events were not accepted after all."""
        for message_id in message_ids:
            self._seen.discard(message_id)

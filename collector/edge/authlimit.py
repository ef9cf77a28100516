"""Guessing keys is slow: failed authentications are limited per client address (REISE_AUTH_FAILURES a minute).

Past the limit every request from that address that authenticates (write, read or admin key, dashboard login)
answers 429 with Retry-After until its oldest failure is a minute old, whether or not its key is right: an
answer that differed for the right key would let guessing go on. Successful requests are never counted.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

from collector.errors import RequestRejected

__all__ = ["WINDOW", "AuthFailures"]

WINDOW = 60.0  # seconds over which failures are counted
MAX_ADDRESSES = 100_000  # addresses remembered at once; the oldest are forgotten first


class AuthFailures:
    """Failed authentications per client address over the last minute; ``limit`` 0 turns the limit off."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - WINDOW:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    @property
    def idle(self) -> bool:
        """True when no address has a failure on record (the check is then free)."""
        return not self._failures

    def check(self, address: str) -> None:
        """Raise a 429 (with Retry-After) when the address has used up its failures for now."""
        if not self.limit or not self._failures:
            return
        now = time.monotonic()
        failures = self._recent(address, now)
        if failures is not None and len(failures) >= self.limit:
            wait = max(1, math.ceil(failures[0] + WINDOW - now))
            raise RequestRejected(429, f"too many failed authentications from this address; retry in {wait} s",
                                  retry_after=wait)

    def failed(self, address: str) -> None:
        """Count one failed authentication of the address."""
        if not self.limit:
            return
        now = time.monotonic()
        failures = self._recent(address, now)
        if failures is None:
            failures = self._failures[address] = deque(maxlen=self.limit)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
        failures.append(now)

"""Per-key rate limits: a token bucket per write key, counted in events; the burst is one second's worth."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from collector.errors import RateLimited

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Events per second per key (a second's worth of burst); 0 turns a limit off."""

    rate: float
    public_rate: float
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, events: int, *, public: bool) -> None:
        """Spend ``events`` tokens of the key's bucket, or raise RateLimited with the seconds to wait."""
        rate = self.public_rate if public else self.rate
        if rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=rate, updated=now)
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if events > bucket.tokens:
            wait = (min(events, rate) - bucket.tokens) / rate
            raise RateLimited(f"rate limit of {rate:g} events/s for this write key exceeded",
                              retry_after=max(1, math.ceil(wait)))
        bucket.tokens -= events

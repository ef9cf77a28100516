"""Fast random (version 4) UUIDs for ``messageId``, reseeded in a forked child."""

from __future__ import annotations

import os
import random

__all__ = ["new_message_id"]

_rng = random.Random()  # seeded from os.urandom
_getrandbits = _rng.getrandbits
# Clear the version and variant bits, then set version 4 and variant RFC 4122.
_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_BITS = (0x4000 << 64) | (0x8000 << 48)

if hasattr(os, "register_at_fork"):  # pragma: no branch
    os.register_at_fork(after_in_child=_rng.seed)


def new_message_id() -> str:
    """Return a random UUID4 string, about five times cheaper than ``str(uuid.uuid4())``."""
    h = "%032x" % ((_getrandbits(128) & _MASK) | _BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

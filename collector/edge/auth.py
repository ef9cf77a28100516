"""Write keys and the admin key: looked up in constant time, never revealing which part was wrong."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from collector.settings import WriteKey

__all__ = ["basic_user", "bearer_or_basic", "find_write_key", "is_admin"]


def basic_user(authorization: str | None) -> str | None:
    """The user name of an HTTP Basic header (Segment puts the write key there), or None."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def bearer_or_basic(authorization: str | None) -> str | None:
    """A key from ``Bearer KEY`` or from Basic auth's user name."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return basic_user(authorization)


def find_write_key(write_keys: Mapping[str, WriteKey], candidate: str | None) -> WriteKey | None:
    """The write key matching the candidate, comparing against every key in constant time."""
    if not candidate:
        return None
    found = None
    given = candidate.encode()
    for key, record in write_keys.items():
        if hmac.compare_digest(key.encode(), given):
            found = record
    return found


def is_admin(admin_key: str, candidate: str | None) -> bool:
    """True when the candidate is the admin key (constant-time comparison)."""
    return bool(admin_key) and bool(candidate) and hmac.compare_digest(admin_key.encode(), (candidate or "").encode())

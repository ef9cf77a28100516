"""Write, read and admin keys: looked up in constant time, never revealing which part was wrong."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from collector.settings import find_write_key

__all__ = ["ADMIN", "basic_user", "bearer_or_basic", "find_write_key", "is_admin", "reader_name"]

ADMIN = "admin"  # the admin key's name in logs, metrics and sessions


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


def is_admin(admin_key: str, candidate: str | None) -> bool:
    """True when the candidate is the admin key (constant-time comparison)."""
    return bool(admin_key) and bool(candidate) and hmac.compare_digest(admin_key.encode(), (candidate or "").encode())


def reader_name(admin_key: str, read_keys: Mapping[str, str], candidate: str | None) -> str | None:
    """The name of the key that may read (``admin`` for the admin key, else its REISE_READ_KEYS name), or None.

    Every key is compared, each in constant time, so the answer's timing does not tell which key came close.
    """
    if not candidate:
        return None
    given = candidate.encode()
    found = ADMIN if is_admin(admin_key, candidate) else None
    for key, name in read_keys.items():
        if hmac.compare_digest(key.encode(), given):
            found = name
    return found

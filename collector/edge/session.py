"""Signed, expiring dashboard sessions that the server can end: ``v2.<issued ms>.<expires>.<nonce>.<name>.<hmac>``.

The signing key is derived from the admin key, so rotating the admin key ends every session, and every
collector behind one load balancer accepts the sessions of the others. Logout and the admin's "end every
session" are written to the store (``ended_sessions``, collector.store.sessions), which every collector reads,
so an ended session is refused everywhere, also when its cookie was copied. The name is the key's
(``admin`` or a REISE_READ_KEYS name): logs and metrics show who reads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

__all__ = ["COOKIE", "Session", "issue", "read"]

COOKIE = "reise_session"
_VERSION = "v2"


@dataclass(frozen=True)
class Session:
    """A valid session's key name, nonce, when it was issued (Unix milliseconds) and expires (Unix seconds)."""

    name: str
    nonce: str
    issued_ms: int
    expires: int


def _key(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), b"reise dashboard session v2", hashlib.sha256).digest()


def _sign(admin_key: str, payload: str) -> str:
    return hmac.new(_key(admin_key), payload.encode(), hashlib.sha256).hexdigest()


def issue(admin_key: str, name: str, ttl: float, *, now: float | None = None) -> str:
    """A session token for the key named ``name`` that expires ``ttl`` seconds from now."""
    issued = time.time() if now is None else now
    payload = f"{_VERSION}.{int(issued * 1000)}.{int(issued + ttl)}.{secrets.token_urlsafe(12)}.{name}"
    return f"{payload}.{_sign(admin_key, payload)}"


def read(admin_key: str, token: str | None, *, now: float | None = None) -> Session | None:
    """The session of a token signed with this admin key and not expired (constant-time check), else None.

    Whether the server ended it is a question for the store (collector.store.sessions.ended).
    """
    if not admin_key or not token or token.count(".") < 5:
        return None
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(_sign(admin_key, payload).encode(), signature.encode()):
        return None
    version, issued, expires, nonce, name = payload.split(".", 4)
    if version != _VERSION or not issued.isdigit() or not expires.isdigit():
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return Session(name=name, nonce=nonce, issued_ms=int(issued), expires=int(expires))

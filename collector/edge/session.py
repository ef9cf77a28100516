"""Signed, expiring dashboard sessions: ``v1.<expires>.<nonce>.<hmac>`` in an HttpOnly cookie.

The signing key is derived from the admin key, so rotating the admin key ends every session, and every
collector behind one load balancer accepts the sessions of the others without shared state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["COOKIE", "issue", "valid"]

COOKIE = "reise_session"
_VERSION = "v1"


def _key(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), b"reise dashboard session v1", hashlib.sha256).digest()


def _sign(admin_key: str, payload: str) -> str:
    return hmac.new(_key(admin_key), payload.encode(), hashlib.sha256).hexdigest()


def issue(admin_key: str, ttl: float, *, now: float | None = None) -> str:
    """A session token that expires ``ttl`` seconds from now."""
    expires = int((time.time() if now is None else now) + ttl)
    payload = f"{_VERSION}.{expires}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(admin_key, payload)}"


def valid(admin_key: str, token: str | None, *, now: float | None = None) -> bool:
    """True when the token was signed with this admin key and has not expired (constant-time check)."""
    if not admin_key or not token or token.count(".") != 3:
        return False
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(_sign(admin_key, payload).encode(), signature.encode()):
        return False
    version, expires, _nonce = payload.split(".")
    return version == _VERSION and expires.isdigit() and int(expires) > (time.time() if now is None else now)

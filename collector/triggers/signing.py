"""Webhook signatures: ``Reise-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign"]

SIGNATURE_HEADER = "Reise-Signature"


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The signature header's value for a body, signed at ``at`` (unix seconds, default now)."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"

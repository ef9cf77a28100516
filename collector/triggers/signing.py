"""Webhook signatures: ``Reise-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "Signer", "sign"]

SIGNATURE_HEADER = "Reise-Signature"


class Signer:
    """Signs bodies with one secret; the key's HMAC state is prepared once and copied for each body."""

    def __init__(self, secret: str) -> None:
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, body: bytes, at: int | None = None) -> str:
        """The signature header's value for a body, signed at ``at`` (unix seconds, default now)."""
        stamp = int(time.time()) if at is None else at
        mac = self._keyed.copy()
        mac.update(b"%d." % stamp)
        mac.update(body)
        return f"t={stamp},v1={mac.hexdigest()}"


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The signature header's value for a body, signed at ``at`` (unix seconds, default now)."""
    return Signer(secret)(body, at)

"""Identity verification: the ``userHash`` a shop's server renders for a signed-in customer."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["user_hash"]


def user_hash(secret: str, user_id: str) -> str:
    """``HMAC-SHA256(secret, user_id)`` in lower-case hex: the ``userHash`` of a verifying key.

    Compute it on the server with the source's verification secret (the collector's
    ``REISE_VERIFY_SECRETS``) and never send the secret to a browser.
    """
    return hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()

"""Signed click-link tokens: the target URL and touchpoint fields, HMAC-SHA256 signed, with key rotation.

A token is ``base64url(JSON payload) "." base64url(HMAC-SHA256(key, first part))``, unpadded. The payload holds
``url`` (http or https), optional ``exp`` (epoch seconds) and the touchpoint fields (``event``, ``channel``,
``userId``, ``anonymousId``, ``campaign``, ``stage``, ``properties``). The SDK mints the same format
(``reise.links``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from collector.errors import LinkInvalid

__all__ = ["MAX_TOKEN_CHARS", "check_target", "mint", "sendable", "target_allowed", "verify"]

MAX_TOKEN_CHARS = 4096
_FIELDS = frozenset({"url", "exp", "event", "channel", "userId", "anonymousId", "campaign", "stage", "properties"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _signature(key: str, body: str) -> bytes:
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()


def mint(key: str, url: str, *, expires_at: int | None = None, **fields: Any) -> str:
    """A token for ``url`` carrying touchpoint fields (None values left out), signed with ``key``."""
    payload = {"url": url, **{k: v for k, v in fields.items() if v is not None}}
    if expires_at is not None:
        payload["exp"] = int(expires_at)
    unknown = set(payload) - _FIELDS
    if unknown:
        raise ValueError(f"unknown link fields: {sorted(unknown)}")
    check_target(url)
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_b64(_signature(key, body))}"


def sendable(url: str) -> bool:
    """True when every character of ``url`` may stand in a Location header as it is: printable ASCII, no space.

    Control characters (DEL included), spaces and anything beyond ASCII must be percent-encoded in the target.
    """
    return url.isascii() and url.isprintable() and " " not in url


def check_target(url: str) -> None:
    """Raise LinkInvalid unless ``url`` is an absolute http(s) URL with a host, sendable in a Location header."""
    if not isinstance(url, str) or not sendable(url):
        raise LinkInvalid("target: only printable ASCII may stand in a link target (percent-encode control "
                          "characters, spaces and non-ASCII characters)")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise LinkInvalid("target: not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or "\\" in url:
        raise LinkInvalid("target: must be an absolute http(s) URL")


def target_allowed(url: str, domains: Sequence[str]) -> bool:
    """True when ``url``'s host is one of ``domains`` or a subdomain of one (any host when none are given)."""
    if not domains:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def verify(token: str, keys: Sequence[str], *, now: float, domains: Sequence[str] = ()) -> dict[str, Any]:
    """The payload of a valid token; LinkInvalid naming the problem otherwise.

    Every key is tried (rotation: the newest signs, older ones still verify) and compared in constant time.
    """
    if not keys:
        raise LinkInvalid("links are not configured (REISE_LINK_KEYS)")
    if len(token) > MAX_TOKEN_CHARS:
        raise LinkInvalid("token: too long")
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise LinkInvalid("token: unsigned or malformed")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise LinkInvalid("token: malformed signature") from None
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(_signature(key, body), given)
    if not valid:
        raise LinkInvalid("token: bad signature")
    try:
        payload = orjson.loads(_unb64(body))
    except (binascii.Error, ValueError):
        raise LinkInvalid("token: malformed payload") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
        raise LinkInvalid("token: no target URL")
    expires = payload.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or now > expires):
        raise LinkInvalid("token: expired")
    check_target(payload["url"])
    if not target_allowed(payload["url"], domains):
        raise LinkInvalid("target: domain not allowed (REISE_LINK_DOMAINS)")
    return payload

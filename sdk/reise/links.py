"""Signed click links and pixel URLs for e-mail, SMS and social posts (collector format)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from reise.errors import ValidationError

__all__ = ["click_url", "pixel_url", "sign_link"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_link(
    link_key: str, url: str, fields: Mapping[str, Any], expires_at: float | None = None
) -> str:
    """A token for ``url`` carrying touchpoint ``fields``, HMAC-SHA256 signed with ``link_key``."""
    if not (url.isascii() and url.isprintable()) or " " in url:
        raise ValidationError(
            "click_url: url may hold only printable ASCII (it becomes a Location header); "
            f"percent-encode control characters, spaces and non-ASCII characters: {url!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"click_url: url must be an absolute http(s) URL, got {url!r}")
    payload: dict[str, Any] = {"url": url, **{k: v for k, v in fields.items() if v is not None}}
    if expires_at is not None:
        payload["exp"] = int(expires_at)
    try:
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"click_url: fields are not JSON-serialisable: {exc}") from exc
    signature = hmac.new(link_key.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def click_url(
    host: str,
    link_key: str,
    url: str,
    *,
    event: str | None = None,
    channel: str = "email",
    user_id: str | None = None,
    anonymous_id: str | None = None,
    campaign: str | None = None,
    stage: str | None = None,
    properties: Mapping[str, Any] | None = None,
    expires_in: float | None = None,
) -> str:
    """A collector link that records the click, then redirects to ``url``."""
    fields = {
        "event": event,
        "channel": channel,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "campaign": campaign,
        "stage": stage,
        "properties": dict(properties) if properties else None,
    }
    expires_at = time.time() + expires_in if expires_in is not None else None
    return f"{host.rstrip('/')}/r/{sign_link(link_key, url, fields, expires_at)}"


def pixel_url(
    host: str,
    public_key: str,
    *,
    event: str = "email_opened",
    channel: str = "email",
    user_id: str | None = None,
    anonymous_id: str | None = None,
    campaign: str | None = None,
    stage: str | None = None,
    properties: Mapping[str, str] | None = None,
    user_hash: str | None = None,
) -> str:
    """A tracking-pixel URL (``<img src=...>``) recording ``event``; takes a public (pk_) key.

    ``user_hash`` (``reise.user_hash(secret, user_id)``) is needed when the key verifies identities.
    """
    if not public_key.startswith("pk_"):
        raise ValidationError(
            "pixel_url: needs a public write key (pk_...): e-mails are seen by many"
        )
    params = {
        "writeKey": public_key,
        "channel": channel,
        "event": event,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "campaign": campaign,
        "stage": stage,
        "userHash": user_hash,
        **dict(properties or {}),
    }
    return (
        f"{host.rstrip('/')}/p.gif?{urlencode({k: v for k, v in params.items() if v is not None})}"
    )

"""Signature checks the providers document: HMACs over the raw body (or more), HTTP Basic credentials, tokens.

Every comparison is constant-time; every failure raises SignatureInvalid naming what was wrong (missing or not
matching), never the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from collector.errors import SignatureInvalid

__all__ = ["check_basic", "check_hmac", "check_token", "header", "hmac_digest"]

_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "sha512": hashlib.sha512}


def header(headers: Mapping[str, str], name: str) -> str:
    """A header that must be there (SignatureInvalid when it is missing or empty)."""
    value = headers.get(name, "").strip()
    if not value:
        raise SignatureInvalid(f"missing the {name} header")
    return value


def hmac_digest(secret: str, content: bytes, algorithm: str = "sha256") -> bytes:
    """The raw HMAC of content under a secret."""
    return hmac.new(secret.encode(), content, _ALGORITHMS[algorithm]).digest()


def check_hmac(given: str, secret: str, content: bytes, *, encoding: str, algorithm: str = "sha256",
               prefix: str = "", what: str = "signature") -> None:
    """Check ``given`` (hex or base64, after an optional prefix such as ``sha256=``) is HMAC(secret, content)."""
    if prefix:
        if not given.startswith(prefix):
            raise SignatureInvalid(f"{what} does not start with {prefix!r}")
        given = given[len(prefix):]
    expected = hmac_digest(secret, content, algorithm)
    try:
        raw = bytes.fromhex(given) if encoding == "hex" else base64.b64decode(given, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureInvalid(f"{what} is not {encoding}") from None
    if not hmac.compare_digest(expected, raw):
        raise SignatureInvalid(f"{what} does not match the body")


def check_basic(authorization: str | None, username: str, password: str) -> None:
    """Check HTTP Basic credentials (both compared in constant time, always both)."""
    if not authorization or authorization[:6].lower() != "basic ":
        raise SignatureInvalid("missing HTTP Basic credentials")
    try:
        user, _, secret = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureInvalid("malformed HTTP Basic credentials") from None
    user_ok = hmac.compare_digest(user.encode(), username.encode())
    password_ok = hmac.compare_digest(secret.encode(), password.encode())
    if not (user_ok and password_ok):
        raise SignatureInvalid("wrong HTTP Basic credentials")


def check_token(given: str | None, token: str, what: str) -> None:
    """Check a shared token sent in a header."""
    if not given:
        raise SignatureInvalid(f"missing {what}")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise SignatureInvalid(f"wrong {what}")

"""Key scopes: the stages and revenue a write key may send, and identity verification (``userHash``).

A public key sits in every web page, so by default it may send neither the purchase stage nor revenue
(purchases come from the shop's server or the tills, where order ids deduplicate them); ``REISE_KEY_SCOPES``
widens or narrows any key. A key given a verification secret (``REISE_VERIFY_SECRETS``) takes a ``userId``
only with ``userHash = HMAC-SHA256(secret, userId)``, which the shop's server computes, and only UUIDs as
anonymous ids, so nobody can claim a customer's id, as ``userId`` or as an anonymous id, with it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.errors import ConfigError, EventRejected
from collector.ingest.stages import STAGES

__all__ = [
    "ALL_SCOPES",
    "MIN_SECRET_CHARS",
    "PUBLIC_SCOPES",
    "KeyScope",
    "check_identity",
    "check_scope",
    "parse_key_scopes",
    "parse_verify_secrets",
    "user_hash",
]

MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class KeyScope:
    """What one write key may send: these stages (unstaged events always) and, when ``revenue``, revenue."""

    stages: frozenset[str]
    revenue: bool

    def describe(self) -> str:
        """The scope in REISE_KEY_SCOPES syntax."""
        if self.stages == frozenset(STAGES):
            return "all" if self.revenue else "stages"
        return "+".join([s for s in STAGES if s in self.stages] + (["revenue"] if self.revenue else [])) or "none"


ALL_SCOPES = KeyScope(frozenset(STAGES), True)  # secret keys' default
PUBLIC_SCOPES = KeyScope(frozenset(STAGES) - {"purchase"}, False)  # public keys' default


def _scope(source: str, text: str) -> KeyScope:
    stages: set[str] = set()
    revenue = False
    for token in (t.strip().lower() for t in text.split("+")):
        if token == "all":
            stages.update(STAGES)
            revenue = True
        elif token == "stages":
            stages.update(STAGES)
        elif token == "revenue":
            revenue = True
        elif token in STAGES:
            stages.add(token)
        elif token != "none":
            raise ConfigError(f"REISE_KEY_SCOPES: {source!r}: unknown scope {token!r} (expected stage names, "
                              "revenue, stages, all or none, joined by +)")
    return KeyScope(frozenset(stages), revenue)


def parse_key_scopes(text: str) -> dict[str, KeyScope]:
    """Parse ``source=scope+scope,...`` (stage names, ``revenue``, ``stages``, ``all``, ``none``) per source."""
    scopes: dict[str, KeyScope] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, rest = (p.strip() for p in item.partition("="))
        if not sep or not source or not rest:
            raise ConfigError(f"REISE_KEY_SCOPES: expected source=scope+scope, got {item!r}")
        if source in scopes:
            raise ConfigError(f"REISE_KEY_SCOPES: {source!r} is named twice")
        scopes[source] = _scope(source, rest)
    return scopes


def parse_verify_secrets(text: str) -> dict[str, str]:
    """Parse ``source=secret,...``: the identity-verification secret of each source's keys (16+ characters)."""
    secrets: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, secret = (p.strip() for p in item.partition("="))
        if not sep or not source or not secret:
            raise ConfigError("REISE_VERIFY_SECRETS: expected source=secret,...")
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"REISE_VERIFY_SECRETS: the secret of {source!r} must be at least "
                              f"{MIN_SECRET_CHARS} characters")
        if source in secrets:
            raise ConfigError(f"REISE_VERIFY_SECRETS: {source!r} is named twice")
        secrets[source] = secret
    return secrets


def user_hash(secret: str, user_id: str) -> str:
    """``HMAC-SHA256(secret, userId)`` as lower-case hex: what the shop's server renders for a signed-in user."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def check_scope(scope: KeyScope, stage: str, revenue: float) -> None:
    """Raise EventRejected when the key may not send this stage, or revenue."""
    if stage and stage not in scope.stages:
        raise EventRejected(f"stage: this write key may not send {stage!r} events (REISE_KEY_SCOPES; purchases "
                            "come from the server SDK or the tills)")
    if revenue and not scope.revenue:
        raise EventRejected("revenue: this write key may not send revenue (REISE_KEY_SCOPES; purchases come from "
                            "the server SDK or the tills)")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def check_identity(event: Mapping[str, Any], context: Mapping[str, Any], *, secret: str, alias: bool,
                   customer_id: str, anonymous_id: str) -> None:
    """For a key with a verification secret: a userId needs its userHash; anonymous ids must be UUIDs.

    ``userHash`` is read from the event or from ``context.userHash``. Raises EventRejected naming the field.
    """
    if customer_id:
        given = event.get("userHash") or context.get("userHash")
        if not isinstance(given, str) or not given:
            raise EventRejected("userHash: this write key verifies identities: an event with a userId needs "
                                "userHash = HMAC-SHA256(secret, userId) in hex, computed by the shop's server")
        expected = user_hash(secret, customer_id).encode()
        if not hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace")):
            raise EventRejected("userHash: does not match the userId")
    if anonymous_id and not _is_uuid(anonymous_id):
        field = "previousId" if alias else "anonymousId"
        raise EventRejected(f"{field}: this write key verifies identities and takes only UUIDs as anonymous ids "
                            "(a customer's id would take over their journey)")

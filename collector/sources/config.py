"""The sources file (``REISE_SOURCES``): every Snowplow app and signed webhook a collector accepts, in one place.

A JSON or TOML file holds ``{"sources": {name: {"kind": ..., secrets and options}}}``. The name is the source
recorded on every touchpoint the source sends, its write scope (``scope``, else ``REISE_KEY_SCOPES``) and its
label in the metrics; the secrets are its credentials: a webhook is accepted only with its provider's signature
verified by them. Checked at start: a source without the secrets its kind needs is a ConfigError, so nothing
unsigned is ever accepted from a signed source. Reference: docs/sources.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import ConfigError
from collector.ingest.scopes import KeyScope, parse_key_scopes
from collector.ingest.stages import CHANNELS

__all__ = ["KINDS", "SECRET_FIELDS", "WEBHOOK_KINDS", "Source", "Sources", "load_sources"]

# kind -> (required options, default channels); secrets are the options named in SECRET_FIELDS
KINDS: Mapping[str, tuple[tuple[str, ...], frozenset[str] | None]] = {
    "snowplow": (("app_ids",), frozenset({"web"})),
    "sendgrid": (("public_key",), frozenset({"email"})),
    "mailgun": (("signing_key",), frozenset({"email"})),
    "postmark": (("username", "password"), frozenset({"email"})),
    "shopify": (("secret",), frozenset({"web", "pos"})),
    "square": (("signature_key", "notification_url"), frozenset({"pos"})),
    "meta": (("app_secret", "verify_token"), frozenset({"social"})),
    "mapped": (("mapping",), None),
}
WEBHOOK_KINDS = frozenset(KINDS) - {"snowplow"}
SECRET_FIELDS = frozenset({"public_key", "signing_key", "password", "secret", "signature_key", "app_secret",
                           "verify_token", "token"})
MIN_SECRET_CHARS = 8
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Source:
    """One configured source: its name, kind, options (secrets included), channels and write scope."""

    name: str
    kind: str
    options: Mapping[str, Any]
    channels: frozenset[str] | None
    scope: KeyScope | None = None  # None: REISE_KEY_SCOPES, else the kind's default
    app_ids: frozenset[str] = frozenset()  # Snowplow: the app ids (``aid``) whose events this source takes
    mapping: Mapping[str, Any] = field(default_factory=dict)  # mapped webhooks: the mapping file's contents

    @property
    def public(self) -> bool:
        """Snowplow trackers run in browsers and apps, unsigned: public, like a ``pk_`` key. Webhooks are signed."""
        return self.kind == "snowplow"

    def secrets(self) -> tuple[str, ...]:
        """Every secret of this source (its options', and its mapping's signature secrets): never kept in logs."""
        found = [str(v) for k, v in self.options.items() if k in SECRET_FIELDS and v and k != "public_key"]
        signature = self.mapping.get("signature")
        if isinstance(signature, Mapping):
            found += [str(v) for k, v in signature.items() if k in SECRET_FIELDS and v]
        return tuple(found)

    def option(self, name: str) -> str:
        """A string option the kind requires (checked at load)."""
        return str(self.options[name])


@dataclass(frozen=True)
class Sources:
    """Every configured source by name; Snowplow sources also by app id."""

    by_name: Mapping[str, Source] = field(default_factory=dict)
    path: Path | None = None
    by_app_id: Mapping[str, Source] = field(default_factory=dict)  # Snowplow app id -> its source

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def get(self, name: str) -> Source | None:
        """The source of that name, or None."""
        return self.by_name.get(name)

    def for_app_id(self, app_id: str) -> Source | None:
        """The Snowplow source that takes events of this app id, or None."""
        return self.by_app_id.get(app_id)

    def secrets(self) -> tuple[str, ...]:
        """Every source's secrets."""
        return tuple(secret for source in self.by_name.values() for secret in source.secrets())


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"REISE_SOURCES: cannot read {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"REISE_SOURCES: {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None


def _channels(name: str, value: Any, default: frozenset[str] | None) -> frozenset[str] | None:
    if value is None:
        return default
    items = value.split("+") if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(c, str) for c in items):
        raise ConfigError(f"REISE_SOURCES: {name!r}: channels: expected a list of channel names")
    channels = frozenset(c.strip().lower() for c in items)
    if unknown := sorted(channels - CHANNELS):
        raise ConfigError(f"REISE_SOURCES: {name!r}: unknown channels {unknown}")
    return channels


def _source(name: str, entry: Any, base: Path) -> Source:
    if not _NAME.match(name):
        raise ConfigError(f"REISE_SOURCES: {name!r}: a source name is 1 to 64 letters, digits, '_', '.' or '-'")
    if not isinstance(entry, dict):
        raise ConfigError(f"REISE_SOURCES: {name!r}: expected a table of options")
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"REISE_SOURCES: {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    required, default_channels = KINDS[kind]
    for option in required:
        value = entry.get(option)
        if not value or (option in SECRET_FIELDS and len(str(value)) < MIN_SECRET_CHARS):
            raise ConfigError(f"REISE_SOURCES: {name!r} ({kind}) needs {option!r}"
                              + (f" (at least {MIN_SECRET_CHARS} characters)" if option in SECRET_FIELDS else ""))
    scope = parse_key_scopes(f"{name}={entry['scope']}")[name] if entry.get("scope") else None
    app_ids: frozenset[str] = frozenset()
    if kind == "snowplow":
        ids = entry["app_ids"]
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ConfigError(f"REISE_SOURCES: {name!r}: app_ids: expected a list of app ids")
        app_ids = frozenset(ids)
    if kind == "sendgrid":
        from collector.sources.sendgrid import public_key

        public_key(str(entry["public_key"]))  # a key that cannot verify anything is refused at start
    mapping: dict[str, Any] = {}
    if kind == "mapped":
        from collector.sources.mapped import check_mapping  # the mapping's own rules live with its reader

        mapping_path = (base / str(entry["mapping"])).resolve()
        doc = _read(mapping_path)
        if not isinstance(doc, dict):
            raise ConfigError(f"REISE_SOURCES: {name!r}: the mapping {mapping_path} must be an object")
        check_mapping(name, doc)
        mapping = doc
        default_channels = frozenset({doc["channel"]}) if isinstance(doc.get("channel"), str) else None
    return Source(name=name, kind=kind, options=dict(entry), scope=scope, app_ids=app_ids, mapping=mapping,
                  channels=_channels(name, entry.get("channels"), default_channels))


def load_sources(text: str) -> Sources:
    """Read and check the sources file named by ``REISE_SOURCES`` (JSON, or TOML by its ``.toml`` suffix)."""
    path = Path(text).resolve()
    doc = _read(path)
    entries = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"REISE_SOURCES: {path} must hold a 'sources' table: {{\"sources\": {{name: {{...}}}}}}")
    sources = {name: _source(name, entry, path.parent) for name, entry in entries.items()}
    by_app_id: dict[str, Source] = {}
    for source in sources.values():
        for app_id in source.app_ids:
            if app_id in by_app_id:
                raise ConfigError(f"REISE_SOURCES: the app id {app_id!r} belongs to {by_app_id[app_id].name!r} and "
                                  f"{source.name!r}")
            by_app_id[app_id] = source
    return Sources(by_name=sources, path=path, by_app_id=by_app_id)

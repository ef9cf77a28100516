"""A generic mapped webhook: a mapping file turns any system's signed JSON into touchpoints, without code.

The mapping (docs/sources.md) names the signature scheme and its secret (``hmac-sha256`` over the raw body in
a header, hex or base64, with an optional prefix; HTTP ``basic`` credentials; or a shared ``token`` header;
there is no unsigned scheme), where the events are (``events``: a path to a list; else the body, an object or
a list), the path of each event's id (``id``: the idempotency key), its name (``event``: a constant, or
``{"path": ..., "values": {raw: name}}``; an unlisted value skips the event), ``channel``, ``stage``, ``type``,
and ``fields`` and ``properties``: touchpoint field or property -> path. A path is dot-separated keys and list
indexes (``customer.cards.0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError, EventRejected, PayloadInvalid
from collector.ingest.stages import CHANNELS, STAGES
from collector.sources.config import MIN_SECRET_CHARS, Source
from collector.sources.signatures import check_basic, check_hmac, check_token, header
from collector.sources.webhook import Event, Mapped, Provider, WebhookRequest, each, iso_from_unix, json_body

__all__ = ["FIELDS", "PROVIDER", "check_mapping", "lookup"]

FIELDS = frozenset({"userId", "anonymousId", "timestamp", "revenue", "currency", "order_id", "store_id",
                    "return_id", "campaign", "name"})
_SCHEMES = {"hmac-sha256": ("header", "secret"), "basic": ("username", "password"), "token": ("header", "token")}
_TYPES = frozenset({"track", "page", "identify"})
_MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    """The value at a dot-separated path of keys and list indexes, or None."""
    value = doc
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is _MISSING:
            return None
    return value


def check_mapping(name: str, doc: Mapping[str, Any]) -> None:
    """Raise ConfigError for a mapping that cannot work (an unsigned or unknown scheme, a missing id path ...)."""
    where = f"REISE_SOURCES: {name!r}: mapping"
    signature = doc.get("signature")
    scheme = signature.get("scheme") if isinstance(signature, dict) else None
    if not isinstance(signature, dict) or scheme not in _SCHEMES:
        raise ConfigError(f"{where}: signature.scheme must be one of {', '.join(_SCHEMES)} (unsigned sources are "
                          "not accepted)")
    for option in _SCHEMES[scheme]:
        value = signature.get(option)
        if not isinstance(value, str) or not value or (option != "header" and len(value) < MIN_SECRET_CHARS):
            raise ConfigError(f"{where}: signature.{option} is required"
                              + (f" (at least {MIN_SECRET_CHARS} characters)" if option != "header" else ""))
    if signature.get("encoding", "hex") not in ("hex", "base64"):
        raise ConfigError(f"{where}: signature.encoding must be hex or base64")
    if not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ConfigError(f"{where}: id: the path of each event's id is required (it is the idempotency key)")
    event = doc.get("event")
    if not (isinstance(event, str) and event) and not (
            isinstance(event, dict) and isinstance(event.get("path"), str) and isinstance(event.get("values"), dict)):
        raise ConfigError(f"{where}: event: a name, or {{\"path\": ..., \"values\": {{raw: name}}}}")
    if doc.get("channel") is not None and doc["channel"] not in CHANNELS:
        raise ConfigError(f"{where}: channel must be one of {', '.join(sorted(CHANNELS))}")
    if doc.get("stage") is not None and doc["stage"] not in STAGES:
        raise ConfigError(f"{where}: stage must be one of {', '.join(STAGES)}")
    if doc.get("type", "track") not in _TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(sorted(_TYPES))}")
    for table in ("fields", "properties"):
        paths = doc.get(table, {})
        if not isinstance(paths, dict) or not all(isinstance(p, str) for p in paths.values()):
            raise ConfigError(f"{where}: {table}: expected an object of name -> path")
    if unknown := sorted(set(doc.get("fields", {})) - FIELDS):
        raise ConfigError(f"{where}: fields: unknown touchpoint fields {unknown} (known: {', '.join(sorted(FIELDS))})")


def verify(source: Source, request: WebhookRequest) -> None:
    """Verify the request by the mapping's signature scheme."""
    signature = source.mapping["signature"]
    scheme = signature["scheme"]
    if scheme == "basic":
        check_basic(request.headers.get("Authorization"), signature["username"], signature["password"])
    elif scheme == "token":
        check_token(request.headers.get(signature["header"]), signature["token"], signature["header"])
    else:
        check_hmac(header(request.headers, signature["header"]), signature["secret"], request.body,
                   encoding=signature.get("encoding", "hex"), prefix=signature.get("prefix", ""),
                   what=signature["header"])


def _event(mapping: Mapping[str, Any], source: str, item: Any) -> list[Event]:
    if not isinstance(item, dict):
        raise EventRejected("event: expected a JSON object")
    event_id = lookup(item, mapping["id"])
    if event_id in (None, "") or isinstance(event_id, dict | list):
        raise EventRejected(f"{mapping['id']}: the event's id is missing")
    rule = mapping["event"]
    if isinstance(rule, dict):
        raw = lookup(item, rule["path"])
        name = rule["values"].get(str(raw)) if raw is not None else None
        if name is None:
            return []  # a kind of record the mapping does not keep
    else:
        name = rule
    fields = {field: lookup(item, path) for field, path in mapping.get("fields", {}).items()}
    properties = {key: value for key, path in mapping.get("properties", {}).items()
                  if (value := lookup(item, path)) is not None}
    for field in ("order_id", "store_id", "return_id", "revenue", "currency", "campaign"):
        if fields.get(field) is not None:
            properties[field] = fields[field]
    event: Event = {"type": mapping.get("type", "track"), "messageId": f"{source}:{event_id}",
                    "properties": properties}
    event["event" if event["type"] == "track" else "name"] = name
    for field in ("userId", "anonymousId"):
        if fields.get(field) not in (None, ""):
            event[field] = fields[field]
    if fields.get("timestamp") is not None:
        event["timestamp"] = iso_from_unix(fields["timestamp"])
    for key in ("channel", "stage"):
        if mapping.get(key):
            event[key] = mapping[key]
    return [event]


def events(source: Source, request: WebhookRequest) -> list[Mapped]:
    """The events of the body, each mapped (an item the mapping cannot read is kept with the reason)."""
    doc = json_body(request.body)
    mapping = source.mapping
    items = lookup(doc, mapping["events"]) if mapping.get("events") else doc
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise PayloadInvalid(f"{mapping.get('events') or 'body'}: expected an object or a list of events")
    return each(items, lambda item: _event(mapping, source.name, item))


PROVIDER = Provider(verify=verify, events=events)

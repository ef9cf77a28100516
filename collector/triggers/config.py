"""The triggers file (REISE_TRIGGERS) and the segments file (REISE_SEGMENTS): parsed and checked at start.

Every mistake is a ConfigError naming the entry and the field, so the collector refuses to start with a
sentence an operator can act on. The format is documented in docs/triggers.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from collector.errors import ConfigError
from collector.ingest.stages import CHANNELS

__all__ = [
    "STAGES",
    "Condition",
    "Limits",
    "Segment",
    "Trigger",
    "TriggerConfig",
    "host_allowed",
    "load_trigger_config",
    "parse_trigger_config",
]

STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy")  # rank = index + 1
MIN_SECRET = 16
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
# segment clauses: name -> kind of value
_CLAUSES: dict[str, str] = {
    "stage": "stage", "reached": "stage", "not_reached": "stage",
    "contacts_at_least": "count", "contacts_at_most": "count",
    "purchases_at_least": "count", "purchases_at_most": "count",
    "revenue_at_least": "number", "revenue_at_most": "number",
    "last_seen_within_days": "days", "last_seen_before_days": "days",
    "channels_any": "channels", "channels_none": "channels",
    "bought_on_any": "channels", "bought_on_none": "channels",
}
TIME_CLAUSES = frozenset({"last_seen_within_days", "last_seen_before_days"})


@dataclass(frozen=True)
class Limits:
    """Per-destination delivery limits: requests in flight at once and requests per second (0: no limit)."""

    concurrency: int
    rate: float


@dataclass(frozen=True)
class Condition:
    """When a trigger fires: one of the kinds below, with its parameter."""

    kind: str  # enters_stage, contacts_without_purchase, dormant, enters_segment, leaves_segment
    stage: int = 0  # enters_stage: the stage's rank
    first_time: bool = False  # enters_stage: only the first time the customer reaches it
    count: int = 0  # contacts_without_purchase
    days: float = 0.0  # dormant
    segment: str = ""  # enters_segment, leaves_segment


@dataclass(frozen=True)
class Trigger:
    """A named condition and where to POST when it becomes true, signed with its secret."""

    name: str
    condition: Condition
    url: str
    secret: str
    limits: Limits | None = None  # None: the defaults (REISE_TRIGGER_CONCURRENCY, REISE_TRIGGER_RATE)

    @cached_property
    def destination(self) -> str:
        """``host:port`` of the URL: the unit the delivery limits apply to (worked out once)."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True)
class Segment:
    """A named condition over a customer's journey; ``clauses`` all hold for a member."""

    name: str
    clauses: tuple[tuple[str, Any], ...]
    definition: str  # the clauses as JSON, as the segment_definitions table keeps them

    @property
    def time_dependent(self) -> bool:
        """True when time passing alone can change membership (a last-seen clause)."""
        return any(name in TIME_CLAUSES for name, _ in self.clauses)


@dataclass(frozen=True)
class TriggerConfig:
    """Every trigger and segment, checked."""

    triggers: tuple[Trigger, ...] = ()
    segments: tuple[Segment, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when there is anything to watch."""
        return bool(self.triggers or self.segments)

    def segment(self, name: str) -> Segment | None:
        """The segment of that name, if any."""
        return next((s for s in self.segments if s.name == name), None)


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """True when a host is on the allow-list: an exact name, or under a ``*.example.com`` entry."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def load_trigger_config(triggers_path: Path | None, segments_path: Path | None, *, hosts: Sequence[str],
                        env: Mapping[str, str] | None = None) -> TriggerConfig:
    """Read and check the triggers file and the segments file (either may be None)."""
    triggers: list[Any] = []
    segments: list[Any] = []
    for var, path in (("REISE_TRIGGERS", triggers_path), ("REISE_SEGMENTS", segments_path)):
        if path is None:
            continue
        try:
            doc = orjson.loads(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{var}: cannot read {path}: {exc.strerror or exc}") from None
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{var}: {path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or set(doc) - {"triggers", "segments"}:
            raise ConfigError(f'{var}: {path} must be a JSON object with "triggers" and/or "segments" lists')
        for key, into in (("triggers", triggers), ("segments", segments)):
            value = doc.get(key, [])
            if not isinstance(value, list):
                raise ConfigError(f'{var}: "{key}" must be a list')
            into.extend(value)
    return parse_trigger_config(triggers, segments, hosts=hosts, env=env)


def parse_trigger_config(triggers: Sequence[Any], segments: Sequence[Any], *, hosts: Sequence[str],
                         env: Mapping[str, str] | None = None) -> TriggerConfig:
    """Check decoded trigger and segment entries; ConfigError names the first mistake."""
    env = os.environ if env is None else env
    parsed_segments = tuple(_segment(i, entry) for i, entry in enumerate(segments))
    _unique("segment", [s.name for s in parsed_segments])
    names = {s.name for s in parsed_segments}
    parsed = tuple(_trigger(i, entry, names, hosts, env) for i, entry in enumerate(triggers))
    _unique("trigger", [t.name for t in parsed])
    return TriggerConfig(triggers=parsed, segments=parsed_segments)


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"REISE_TRIGGERS: two {what}s are named {name!r}")
        seen.add(name)


def _name(where: str, entry: Mapping[str, Any]) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or set(name) - _NAME_CHARS:
        raise ConfigError(f"{where}: \"name\" must be 1 to 64 letters, digits, '_', '-' or '.', got {name!r}")
    return name


def _object(where: str, entry: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    return entry


def _stage(where: str, value: Any) -> int:
    if value not in STAGES:
        raise ConfigError(f"{where}: expected a stage ({', '.join(STAGES)}), got {value!r}")
    return STAGES.index(value) + 1


def _number(where: str, value: Any, *, integer: bool = False, minimum: float = 0) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        raise ConfigError(f"{where}: expected {'a whole number' if integer else 'a number'} of at least {minimum}, "
                          f"got {value!r}")
    return float(value)


def _segment(index: int, entry: Any) -> Segment:
    entry = _object(f"REISE_TRIGGERS: segment #{index + 1}", entry, {"name", "where", "description"})
    name = _name(f"REISE_TRIGGERS: segment #{index + 1}", entry)
    where = f"REISE_TRIGGERS: segment {name!r}"
    clauses = entry.get("where")
    if not isinstance(clauses, dict) or not clauses:
        raise ConfigError(f'{where}: "where" must be a non-empty object of clauses ({", ".join(_CLAUSES)})')
    checked: list[tuple[str, Any]] = []
    for clause, value in clauses.items():
        kind = _CLAUSES.get(clause)
        at = f"{where}: {clause}"
        if kind is None:
            raise ConfigError(f"{where}: unknown clause {clause!r} (known: {', '.join(_CLAUSES)})")
        if kind == "stage":
            checked.append((clause, _stage(at, value)))
        elif kind == "count":
            checked.append((clause, int(_number(at, value, integer=True))))
        elif kind in ("number", "days"):
            checked.append((clause, _number(at, value, minimum=0 if kind == "number" else 1e-9)))
        else:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or any(v not in CHANNELS for v in values):
                raise ConfigError(f"{at}: expected a channel or a list of channels ({', '.join(sorted(CHANNELS))}), "
                                  f"got {value!r}")
            checked.append((clause, tuple(values)))
    return Segment(name=name, clauses=tuple(checked), definition=orjson.dumps(clauses).decode())


_CONDITIONS = ("enters_stage", "contacts_without_purchase", "dormant_days", "enters_segment", "leaves_segment")


def _condition(where: str, value: Any, segments: set[str]) -> Condition:
    when = _object(f"{where}: when", value, {*_CONDITIONS, "first_time"})
    kinds = [k for k in _CONDITIONS if k in when]
    if len(kinds) != 1:
        raise ConfigError(f'{where}: "when" must hold exactly one of {", ".join(_CONDITIONS)}')
    kind = kinds[0]
    if "first_time" in when and (kind != "enters_stage" or not isinstance(when["first_time"], bool)):
        raise ConfigError(f'{where}: "first_time" is true or false, and only for enters_stage')
    at = f"{where}: {kind}"
    if kind == "enters_stage":
        return Condition(kind, stage=_stage(at, when[kind]), first_time=bool(when.get("first_time", False)))
    if kind == "contacts_without_purchase":
        return Condition(kind, count=int(_number(at, when[kind], integer=True, minimum=1)))
    if kind == "dormant_days":
        return Condition("dormant", days=_number(at, when[kind], minimum=1e-9))
    if when[kind] not in segments:
        defined = ", ".join(sorted(segments)) or "none"
        raise ConfigError(f"{at}: no segment is named {when[kind]!r} (defined: {defined})")
    return Condition(kind, segment=str(when[kind]))


def _trigger(index: int, entry: Any, segments: set[str], hosts: Sequence[str], env: Mapping[str, str]) -> Trigger:
    fields = {"name", "when", "url", "secret", "secret_env", "concurrency", "rate_per_second", "description"}
    entry = _object(f"REISE_TRIGGERS: trigger #{index + 1}", entry, fields)
    name = _name(f"REISE_TRIGGERS: trigger #{index + 1}", entry)
    where = f"REISE_TRIGGERS: trigger {name!r}"
    condition = _condition(where, entry.get("when"), segments)
    url = entry.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ConfigError(f'{where}: "url" must be an http(s) URL with a host and no user name, got {url!r}')
    try:
        parts.port  # noqa: B018 - a bad port raises
    except ValueError:
        raise ConfigError(f'{where}: "url" has an invalid port: {url!r}') from None
    if any(not "!" <= char <= "~" for char in parts.path + parts.query):  # the request line is written as is
        raise ConfigError(f'{where}: "url" must have its path and query percent-encoded (no spaces or non-ASCII '
                          f'characters), got {url!r}')
    if not hosts:
        raise ConfigError(f"{where}: REISE_TRIGGER_HOSTS is empty; list the hosts triggers may send to")
    if not host_allowed(parts.hostname, hosts):
        raise ConfigError(f"{where}: the host {parts.hostname!r} is not in REISE_TRIGGER_HOSTS "
                          f"({', '.join(hosts)})")
    secret = entry.get("secret")
    if "secret_env" in entry:
        if secret is not None:
            raise ConfigError(f'{where}: give "secret" or "secret_env", not both')
        secret = env.get(str(entry["secret_env"]), "")
        if not secret:
            raise ConfigError(f'{where}: the environment variable {entry["secret_env"]!r} ("secret_env") is not set')
    if not isinstance(secret, str) or len(secret) < MIN_SECRET:
        raise ConfigError(f'{where}: "secret" (or "secret_env") must be a string of at least {MIN_SECRET} characters')
    limits = None
    if "concurrency" in entry or "rate_per_second" in entry:
        limits = Limits(concurrency=int(_number(f"{where}: concurrency", entry.get("concurrency", 8), integer=True,
                                                minimum=1)),
                        rate=_number(f"{where}: rate_per_second", entry.get("rate_per_second", 0)))
    return Trigger(name=name, condition=condition, url=str(url), secret=secret, limits=limits)

"""Settings: read from the environment in this one place, frozen, passed down.

``ClientSettings`` serve the CLI's client commands and check only themselves; ``Settings`` (the server's)
add what ``reise serve`` needs, and its checks.
"""

from __future__ import annotations

import hmac
import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlparse

from collector.edge.clientip import Network, parse_networks
from collector.enrich import ENRICHMENTS, FLAG_KINDS, parse_names
from collector.errors import ConfigError
from collector.identity.guards import DEFAULT_MAX_IDS, DEFAULT_NEVER_LINK, LinkPolicy
from collector.ingest.scopes import ALL_SCOPES, PUBLIC_SCOPES, KeyScope, parse_key_scopes, parse_verify_secrets
from collector.ingest.stages import CHANNELS
from collector.sources.config import Sources, load_sources
from collector.store.readonly import QueryLimits
from collector.store.retention import Retention

__all__ = [
    "DEFAULT_RULES_PATH",
    "EMBEDDED_EXTRA",
    "ClientSettings",
    "Settings",
    "WriteKey",
    "chdb_path",
    "find_write_key",
    "is_embedded",
    "parse_read_keys",
    "parse_write_keys",
    "require_engine",
]

DEFAULT_RULES_PATH = Path(__file__).with_name("stage_rules.json")
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a request body, before and after decompression (REISE_MAX_BODY_BYTES)


@dataclass(frozen=True)
class WriteKey:
    """A write key: the source it stands for, the channels it may write (None: all), public or secret.

    Public keys (``pk_...``) are meant to be seen, in browsers and pixel URLs; secret keys are for servers
    and tills. Neither can read: reads and deletions take the admin key.
    """

    source: str
    key: str
    channels: frozenset[str] | None = None

    @property
    def public(self) -> bool:
        """True for a key meant to be embedded in pages and e-mails."""
        return self.key.startswith("pk_")

    @property
    def default_channel(self) -> str:
        """The channel of an event that names none: the key's only channel, else ``other``."""
        return next(iter(self.channels)) if self.channels and len(self.channels) == 1 else "other"


def parse_write_keys(text: str) -> dict[str, WriteKey]:
    """Parse ``source=key[@channel+channel],...`` into a mapping key -> WriteKey."""
    keys: dict[str, WriteKey] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, rest = (p.strip() for p in item.partition("="))
        key, at, channel_list = (p.strip() for p in rest.partition("@"))
        if not sep or not source or not key:
            raise ConfigError(f"REISE_WRITE_KEYS: expected source=key[@channel+channel], got {item!r}")
        if key in keys:
            raise ConfigError(f"REISE_WRITE_KEYS: key for {source!r} is used twice")
        channels = frozenset(c.strip() for c in channel_list.split("+")) if at else None
        unknown = sorted((channels or frozenset()) - CHANNELS)
        if unknown or (at and not channels):
            raise ConfigError(f"REISE_WRITE_KEYS: {source!r} names unknown channels {unknown or channel_list!r}")
        if key.startswith("pk_") and channels is None:
            raise ConfigError(f"REISE_WRITE_KEYS: public key of {source!r} must name its channels (pk_...@web)")
        keys[key] = WriteKey(source=source, key=key, channels=channels)
    return keys


_KEY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_read_keys(text: str) -> dict[str, str]:
    """Parse ``name=key,...`` (REISE_READ_KEYS) into a mapping key -> name; the name ``admin`` is the admin key's."""
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, key = (p.strip() for p in item.partition("="))
        if not sep or not key or not _KEY_NAME.match(name):
            raise ConfigError(f"REISE_READ_KEYS: expected name=key (name of letters, digits, _.-), got {name!r}")
        if name == "admin" or name in keys.values():
            raise ConfigError(f"REISE_READ_KEYS: the name {name!r} is used twice or is the admin key's")
        if key in keys:
            raise ConfigError(f"REISE_READ_KEYS: the key of {name!r} is used twice")
        keys[key] = name
    return keys


def _comma_list(text: str) -> tuple[str, ...]:
    """``a, b,c`` as ``("a", "b", "c")``, without empty items."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _flag(text: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``."""
    value = text.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"expected true or false, got {text!r}")
    return value in ("1", "true", "yes", "on")


def find_write_key(write_keys: Mapping[str, WriteKey], candidate: str | None) -> WriteKey | None:
    """The write key matching the candidate, comparing against every key in constant time."""
    if not candidate:
        return None
    found = None
    given = candidate.encode()
    for key, record in write_keys.items():
        if hmac.compare_digest(key.encode(), given):
            found = record
    return found


def is_embedded(dsn: str) -> bool:
    """Tell whether a DSN selects the embedded chDB engine."""
    return dsn.startswith("chdb:")


EMBEDDED_EXTRA = "pip install 'reise-collector[embedded]'"


def require_engine(dsn: str) -> None:
    """Raise ConfigError when a chdb:// DSN is used and the embedded engine (the ``embedded`` extra) is absent."""
    if is_embedded(dsn) and importlib.util.find_spec("chdb") is None:
        raise ConfigError(f"REISE_DSN {dsn!r} needs the embedded engine chDB, which is not installed: "
                          f"{EMBEDDED_EXTRA} (or use a ClickHouse server DSN, http(s)://host:8123/db)")


def chdb_path(dsn: str) -> Path | None:
    """The data directory of an embedded DSN (``chdb:///path``), None for a server DSN."""
    if not is_embedded(dsn):
        return None
    parsed = urlparse(dsn)
    location = parsed.path if not parsed.netloc else parsed.netloc
    return Path(location).resolve() if location not in ("", "memory", ":memory:") else None


def default_spool_dir(dsn: str) -> Path:
    """The spool beside the embedded data (``<data>/spool``), or ``./reise-spool`` for a server DSN."""
    data = chdb_path(dsn)
    return data / "spool" if data else Path("reise-spool").resolve()


_Reader = tuple[str, Callable[[str], Any]]


@dataclass(frozen=True, kw_only=True)
class ClientSettings:
    """What the CLI's client commands need (query, forget, customer, link, pixel, import, demo, report, migrate):
    where the store and the collector are and the keys to send. They run only the checks of these settings.
    """

    dsn: str = field(default_factory=lambda: f"chdb://{Path('reise-data').resolve()}")
    url: str = "http://127.0.0.1:8080"
    write_key: str = ""  # what `reise demo` and `reise import` send with (REISE_WRITE_KEY); else the dev key
    admin_key: str = ""
    read_key: str = ""  # what `reise sql` and `reise customer` send with (REISE_READ_KEY); else the admin key
    read_dsn: str = ""  # server mode: the read-only ClickHouse user analysts' queries run as (REISE_READ_DSN)
    link_keys: tuple[str, ...] = ()  # secrets that sign click links; the first signs, all verify
    query_timeout: float = 30.0
    query_max_rows: int = 100_000
    query_max_bytes: int = 64 * 1024**2
    query_max_memory: int = 1024**3
    drain_timeout: float = 30.0
    cluster: str = ""
    verify_secrets: Mapping[str, str] = field(default_factory=dict)  # source -> identity-verification secret
    retention_days: int | None = None  # raw touchpoints and dead letters (None: leave the store's TTL as it is)
    pii_retention_days: int | None = None  # personal columns: ip, user_agent, traits, dead-letter payloads
    attribution_lookback_days: int = 30  # contacts this long before a purchase share its credit (views)
    session_gap_minutes: int = 30  # a contact this long after the previous one starts a session (views)

    ENV: ClassVar[Mapping[str, _Reader]] = {
        "dsn": ("REISE_DSN", str),
        "url": ("REISE_URL", str),
        "write_key": ("REISE_WRITE_KEY", str),
        "admin_key": ("REISE_ADMIN_KEY", str),
        "read_key": ("REISE_READ_KEY", str),
        "read_dsn": ("REISE_READ_DSN", str),
        "link_keys": ("REISE_LINK_KEYS", _comma_list),
        "query_timeout": ("REISE_QUERY_TIMEOUT", float),
        "query_max_rows": ("REISE_QUERY_MAX_ROWS", int),
        "query_max_bytes": ("REISE_QUERY_MAX_BYTES", int),
        "query_max_memory": ("REISE_QUERY_MAX_MEMORY", int),
        "drain_timeout": ("REISE_DRAIN_TIMEOUT", float),
        "cluster": ("REISE_CLUSTER", str),
        "verify_secrets": ("REISE_VERIFY_SECRETS", parse_verify_secrets),
        "retention_days": ("REISE_RETENTION_DAYS", int),
        "pii_retention_days": ("REISE_PII_RETENTION_DAYS", int),
        "attribution_lookback_days": ("REISE_ATTRIBUTION_LOOKBACK_DAYS", int),
        "session_gap_minutes": ("REISE_SESSION_GAP_MINUTES", int),
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from environment variables (``REISE_*``), then apply non-None overrides."""
        env = os.environ if env is None else env
        values = cls._values(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def _values(cls, env: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (var, convert) in cls.ENV.items():
            raw = env.get(var)
            if raw:
                try:
                    values[name] = convert(raw)
                except ValueError as exc:
                    raise ConfigError(f"{var}: {exc}") from exc
        return values

    def check(self) -> None:
        """Raise ConfigError for values that cannot work."""
        if any(len(key) < 16 for key in self.link_keys):
            raise ConfigError("REISE_LINK_KEYS: each link key must be at least 16 characters")
        if not (self.dsn.startswith(("chdb:", "http://", "https://"))):
            raise ConfigError(f"REISE_DSN: expected chdb:///path or http(s)://host:8123/db, got {self.dsn!r}")
        if self.cluster and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.cluster):
            raise ConfigError(f"REISE_CLUSTER: expected a cluster name from remote_servers, got {self.cluster!r}")
        if self.read_dsn and not self.read_dsn.startswith(("http://", "https://")):
            raise ConfigError("REISE_READ_DSN: expected http(s)://reader:password@host:8123/db (a ClickHouse "
                              "server's read-only user; the embedded store has one DSN)")
        if min(self.query_timeout, self.query_max_rows, self.query_max_bytes, self.query_max_memory) <= 0:
            raise ConfigError("REISE_QUERY_TIMEOUT, _MAX_ROWS, _MAX_BYTES and _MAX_MEMORY must be positive")
        for name, days in (("REISE_RETENTION_DAYS", self.retention_days),
                           ("REISE_PII_RETENTION_DAYS", self.pii_retention_days)):
            if days is not None and not 0 <= days <= 100_000:
                raise ConfigError(f"{name} must be 0 (keep for ever) or a number of days, got {days}")
        if not 1 <= self.attribution_lookback_days <= 3650:
            raise ConfigError("REISE_ATTRIBUTION_LOOKBACK_DAYS must be between 1 and 3650")
        if not 1 <= self.session_gap_minutes <= 1440:
            raise ConfigError("REISE_SESSION_GAP_MINUTES must be between 1 and 1440")

    @property
    def query_limits(self) -> QueryLimits:
        """The bounds of every analyst's query."""
        return QueryLimits(timeout=self.query_timeout, max_rows=self.query_max_rows, max_bytes=self.query_max_bytes,
                           max_memory=self.query_max_memory)

    @property
    def reader_dsn(self) -> str:
        """The DSN analysts' queries run on: REISE_READ_DSN when set, else REISE_DSN."""
        return self.read_dsn or self.dsn

    @property
    def retention(self) -> Retention:
        """The TTLs migrations bring the store to (REISE_RETENTION_DAYS, REISE_PII_RETENTION_DAYS)."""
        return Retention(days=self.retention_days, pii_days=self.pii_retention_days)

    @property
    def view_settings(self) -> dict[str, float]:
        """The values the analytics views read from ``analytics_settings`` (migrations/0011_analytics.sql)."""
        return {"attribution_lookback_days": float(self.attribution_lookback_days),
                "session_gap_minutes": float(self.session_gap_minutes)}


@dataclass(frozen=True, kw_only=True)
class Settings(ClientSettings):
    """Every setting of the collector server (``reise serve``): the client's, and the server's own below.

    See the README's configuration table.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    write_keys: Mapping[str, WriteKey] = field(default_factory=dict)
    dev_keys: bool = False
    batch_size: int = 50_000
    flush_interval: float = 1.0
    flush_interval_max: float = 0.0  # a busy writer's longest wait to seal (Batcher.seal_age); 0: twice the interval
    spool: str = "disk"
    spool_dir: Path = field(default_factory=lambda: Path("reise-data/spool").resolve())
    spool_max_bytes: int = 2 * 1024**3
    ip_mode: str = "truncate"
    rate_limit: float = 100_000.0
    public_rate_limit: float = 10_000.0  # an e-mail send's open peak (README "Pixel rate limits")
    stage_rules: Path = DEFAULT_RULES_PATH
    attribution: Path | None = None  # extra web-attribution rules, added to collector/attribution.json
    link_domains: tuple[str, ...] = ()  # domains click links may lead to (and their subdomains); empty: any
    dedup_ids: int = 1_000_000
    log_format: str = "auto"
    session_ttl: float = 12 * 3600.0  # seconds a dashboard login lasts (REISE_SESSION_TTL)
    workers: int = 1
    never_link: tuple[str, ...] = ()  # ids that never link, on top of DEFAULT_NEVER_LINK (REISE_NEVER_LINK)
    max_ids_per_customer: int = DEFAULT_MAX_IDS
    purge_interval: float = 300.0  # seconds between purges of merged-away customer keys (REISE_PURGE_INTERVAL)
    key_scopes: Mapping[str, KeyScope] = field(default_factory=dict)  # source -> stages and revenue it may send
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # a request body, compressed or not (REISE_MAX_BODY_BYTES)
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For/Forwarded is read (REISE_TRUSTED_PROXIES)
    enrich: frozenset[str] = frozenset(ENRICHMENTS)  # the enrichments run at ingest (REISE_ENRICH)
    journey_exclude: frozenset[str] = frozenset(FLAG_KINDS)  # flags left out of the journey (REISE_JOURNEY_EXCLUDE)
    geoip_db: Path | None = None  # a MaxMind-format .mmdb for region and city (REISE_GEOIP_DB)
    mail_machine_seconds: float = 10.0  # clicks this soon after the send or another link's click are a machine's
    read_keys: Mapping[str, str] = field(default_factory=dict)  # key -> name: the analysts' keys (REISE_READ_KEYS)
    query_concurrency: int = 2  # queries one key may run at once (REISE_QUERY_CONCURRENCY)
    auth_failures: int = 10  # failed authentications per minute and client address, then 429 (0: off)
    suppression_reload: float = 60.0  # seconds between reloads of the suppression list (REISE_SUPPRESSION_RELOAD)
    # triggers and segments (docs/triggers.md)
    triggers: Path | None = None  # the triggers file, JSON (REISE_TRIGGERS)
    segments: Path | None = None  # a segments file of its own, JSON (REISE_SEGMENTS)
    trigger_hosts: tuple[str, ...] = ()  # hosts webhooks may go to (REISE_TRIGGER_HOSTS)
    trigger_allow_private: bool = False  # allow private and loopback destinations (REISE_TRIGGER_ALLOW_PRIVATE)
    trigger_max_attempts: int = 10
    trigger_backoff: float = 1.0  # first retry delay, doubling (REISE_TRIGGER_BACKOFF)
    trigger_max_backoff: float = 600.0
    trigger_timeout: float = 10.0
    trigger_concurrency: int = 8  # default per-destination requests at once
    trigger_rate: float = 50.0  # default per-destination requests a second (0: no limit)
    trigger_scan_interval: float = 60.0  # seconds between scans for dormant buyers and last-seen segments
    sources: Sources = field(default_factory=Sources)  # Snowplow apps and signed webhooks (REISE_SOURCES)

    ENV: ClassVar[Mapping[str, _Reader]] = {
        **ClientSettings.ENV,
        "host": ("REISE_HOST", str),
        "port": ("REISE_PORT", int),
        "write_keys": ("REISE_WRITE_KEYS", parse_write_keys),
        "batch_size": ("REISE_BATCH_SIZE", int),
        "flush_interval": ("REISE_FLUSH_INTERVAL", float),
        "flush_interval_max": ("REISE_FLUSH_INTERVAL_MAX", float),
        "spool": ("REISE_SPOOL", str),
        "spool_dir": ("REISE_SPOOL_DIR", lambda v: Path(v).resolve()),
        "spool_max_bytes": ("REISE_SPOOL_MAX_BYTES", int),
        "ip_mode": ("REISE_IP", str),
        "rate_limit": ("REISE_RATE_LIMIT", float),
        "public_rate_limit": ("REISE_PUBLIC_RATE_LIMIT", float),
        "stage_rules": ("REISE_STAGE_RULES", Path),
        "attribution": ("REISE_ATTRIBUTION", Path),
        "link_domains": ("REISE_LINK_DOMAINS", lambda v: tuple(d.lower().lstrip(".") for d in _comma_list(v))),
        "dedup_ids": ("REISE_DEDUP_IDS", int),
        "log_format": ("REISE_LOG_FORMAT", str),
        "session_ttl": ("REISE_SESSION_TTL", float),
        "workers": ("REISE_WORKERS", int),
        "never_link": ("REISE_NEVER_LINK", _comma_list),
        "max_ids_per_customer": ("REISE_MAX_IDS_PER_CUSTOMER", int),
        "purge_interval": ("REISE_PURGE_INTERVAL", float),
        "key_scopes": ("REISE_KEY_SCOPES", parse_key_scopes),
        "max_body_bytes": ("REISE_MAX_BODY_BYTES", int),
        "trusted_proxies": ("REISE_TRUSTED_PROXIES", parse_networks),
        "enrich": ("REISE_ENRICH", lambda v: parse_names(v, ENRICHMENTS)),
        "journey_exclude": ("REISE_JOURNEY_EXCLUDE", lambda v: parse_names(v, FLAG_KINDS)),
        "geoip_db": ("REISE_GEOIP_DB", lambda v: Path(v).resolve()),
        "mail_machine_seconds": ("REISE_MAIL_MACHINE_SECONDS", float),
        "read_keys": ("REISE_READ_KEYS", parse_read_keys),
        "query_concurrency": ("REISE_QUERY_CONCURRENCY", int),
        "auth_failures": ("REISE_AUTH_FAILURES", int),
        "suppression_reload": ("REISE_SUPPRESSION_RELOAD", float),
        "triggers": ("REISE_TRIGGERS", Path),
        "segments": ("REISE_SEGMENTS", Path),
        "trigger_hosts": ("REISE_TRIGGER_HOSTS", lambda v: tuple(h.lower() for h in _comma_list(v))),
        "trigger_allow_private": ("REISE_TRIGGER_ALLOW_PRIVATE", _flag),
        "trigger_max_attempts": ("REISE_TRIGGER_MAX_ATTEMPTS", int),
        "trigger_backoff": ("REISE_TRIGGER_BACKOFF", float),
        "trigger_max_backoff": ("REISE_TRIGGER_MAX_BACKOFF", float),
        "trigger_timeout": ("REISE_TRIGGER_TIMEOUT", float),
        "trigger_concurrency": ("REISE_TRIGGER_CONCURRENCY", int),
        "trigger_rate": ("REISE_TRIGGER_RATE", float),
        "trigger_scan_interval": ("REISE_TRIGGER_SCAN_INTERVAL", float),
        "sources": ("REISE_SOURCES", load_sources),
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from environment variables (``REISE_*``), then apply non-None overrides.

        Without REISE_SPOOL_DIR the spool lives beside the data of the DSN given.
        """
        env = os.environ if env is None else env
        values = cls._values(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "spool_dir" not in values and "dsn" in values:
            values["spool_dir"] = default_spool_dir(values["dsn"])
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ConfigError for values that cannot work."""
        super().check()
        require_engine(self.dsn)  # the server opens its store at start (client commands: when they open it)
        if self.batch_size < 1:
            raise ConfigError("REISE_BATCH_SIZE must be at least 1")
        if self.spool not in ("disk", "memory"):
            raise ConfigError("REISE_SPOOL must be disk (durable, the default) or memory (benchmarks only)")
        if self.ip_mode not in ("truncate", "keep", "drop"):
            raise ConfigError("REISE_IP must be truncate, keep or drop")
        if self.rate_limit < 0 or self.public_rate_limit < 0:
            raise ConfigError("REISE_RATE_LIMIT and REISE_PUBLIC_RATE_LIMIT must be 0 (off) or positive")
        if self.spool_max_bytes < 1024 * 1024:
            raise ConfigError("REISE_SPOOL_MAX_BYTES must be at least 1 MiB")
        if self.flush_interval <= 0:
            raise ConfigError("REISE_FLUSH_INTERVAL must be positive")
        if self.flush_interval_max < 0:
            raise ConfigError("REISE_FLUSH_INTERVAL_MAX must be 0 (twice REISE_FLUSH_INTERVAL) or positive")
        if self.log_format not in ("auto", "json", "console"):
            raise ConfigError("REISE_LOG_FORMAT must be auto, json or console")
        if self.session_ttl <= 0:
            raise ConfigError("REISE_SESSION_TTL must be positive")
        if self.workers < 1:
            raise ConfigError("REISE_WORKERS must be at least 1")
        if self.purge_interval <= 0:
            raise ConfigError("REISE_PURGE_INTERVAL must be positive")
        if not 64 * 1024 <= self.max_body_bytes <= 256 * 1024 * 1024:
            raise ConfigError("REISE_MAX_BODY_BYTES must be between 65536 and 268435456")
        if self.geoip_db is not None and not self.geoip_db.is_file():
            raise ConfigError(f"REISE_GEOIP_DB: no such file {self.geoip_db}")
        if not 0 <= self.mail_machine_seconds <= 3600:
            raise ConfigError("REISE_MAIL_MACHINE_SECONDS must be between 0 and 3600")
        if self.query_concurrency < 1:
            raise ConfigError("REISE_QUERY_CONCURRENCY must be at least 1")
        if self.auth_failures < 0:
            raise ConfigError("REISE_AUTH_FAILURES must be 0 (off) or positive")
        if self.trigger_max_attempts < 1 or self.trigger_concurrency < 1:
            raise ConfigError("REISE_TRIGGER_MAX_ATTEMPTS and REISE_TRIGGER_CONCURRENCY must be at least 1")
        if min(self.trigger_backoff, self.trigger_max_backoff, self.trigger_timeout, self.trigger_scan_interval) <= 0:
            raise ConfigError("REISE_TRIGGER_BACKOFF, _MAX_BACKOFF, _TIMEOUT and _SCAN_INTERVAL must be positive")
        if self.trigger_rate < 0:
            raise ConfigError("REISE_TRIGGER_RATE must be 0 (no limit) or positive")
        if set(self.read_keys) & ({self.admin_key} | set(self.write_keys)):
            raise ConfigError("REISE_READ_KEYS: a read key must differ from the admin key and every write key")
        if self.suppression_reload <= 0:
            raise ConfigError("REISE_SUPPRESSION_RELOAD must be positive")
        if not 2 <= self.max_ids_per_customer <= 100_000:
            raise ConfigError("REISE_MAX_IDS_PER_CUSTOMER must be between 2 and 100000")
        sources = {key.source for key in self.write_keys.values()} | set(self.sources.by_name)
        for var, named in (("REISE_VERIFY_SECRETS", self.verify_secrets), ("REISE_KEY_SCOPES", self.key_scopes)):
            unknown = sorted(set(named) - sources)
            if unknown and (self.write_keys or self.sources):
                raise ConfigError(f"{var}: no write key has the source {', '.join(map(repr, unknown))}")
        if self.workers > 1 and is_embedded(self.dsn):
            raise ConfigError(
                f"--workers {self.workers} needs a ClickHouse server (REISE_DSN=http(s)://...): the embedded "
                "chDB store opens its data directory in one process only; run one process, or scale out "
                "against a server"
            )

    @property
    def link_policy(self) -> LinkPolicy:
        """The identity guards: the built-in placeholder ids and REISE_NEVER_LINK never link; the id cap."""
        return LinkPolicy.of((*DEFAULT_NEVER_LINK, *self.never_link), self.max_ids_per_customer)

    def scope_of(self, key: WriteKey) -> KeyScope:
        """What the key may send: its REISE_KEY_SCOPES entry, else no purchase and no revenue for a public key."""
        return self.key_scopes.get(key.source) or (PUBLIC_SCOPES if key.public else ALL_SCOPES)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret (secret write keys; admin, read and link keys; verification and source secrets).

        What dead letters never keep.
        """
        write = (key for key, record in self.write_keys.items() if not record.public)
        return tuple(filter(None, (*write, self.admin_key, *self.link_keys, *self.read_keys,
                                   *self.verify_secrets.values(), *self.sources.secrets())))

    def with_keys(self, write_keys: Mapping[str, WriteKey], admin_key: str) -> Settings:
        """A copy with generated development keys."""
        return replace(self, write_keys=dict(write_keys), admin_key=admin_key, dev_keys=True)

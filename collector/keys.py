"""Development keys: generated when none are configured, kept beside the embedded data."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import orjson

from collector.errors import ConfigError
from collector.settings import ClientSettings, Settings, WriteKey, chdb_path

__all__ = ["client_write_key", "dev_keys_path", "ensure_keys", "read_dev_admin_key"]


def dev_keys_path(settings: ClientSettings) -> Path | None:
    """Where development keys are kept: inside the embedded data directory, if there is one."""
    data = chdb_path(settings.dsn)
    return data / "dev-keys.json" if data else None


def ensure_keys(settings: Settings) -> Settings:
    """Return settings with keys: the configured ones, else development keys (made once, then reused)."""
    if settings.write_keys or settings.admin_key:
        return settings
    path = dev_keys_path(settings)
    if path and path.exists():
        doc = orjson.loads(path.read_bytes())
        return settings.with_keys({doc["write_key"]: WriteKey("dev", doc["write_key"])}, doc["admin_key"])
    write_key, admin_key = f"wk_dev_{secrets.token_urlsafe(18)}", f"ak_dev_{secrets.token_urlsafe(18)}"
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps({"write_key": write_key, "admin_key": admin_key}))
    return settings.with_keys({write_key: WriteKey("dev", write_key)}, admin_key)


def _read_dev_key(settings: ClientSettings, name: str) -> str:
    path = dev_keys_path(settings)
    if path and path.exists():
        return str(orjson.loads(path.read_bytes()).get(name, ""))
    return ""


def read_dev_admin_key(settings: ClientSettings) -> str:
    """The development admin key of an embedded data directory, or '' when there is none."""
    return _read_dev_key(settings, "admin_key")


def client_write_key(settings: ClientSettings, given: str | None = None) -> str:
    """The write key a command sends with: --write-key, REISE_WRITE_KEY, else the data directory's dev key."""
    key = given or settings.write_key or _read_dev_key(settings, "write_key")
    if not key:
        raise ConfigError("no write key: pass --write-key or set REISE_WRITE_KEY "
                          "(a collector started with `make run` keeps one in ./reise-data/dev-keys.json)")
    return key

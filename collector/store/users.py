"""Server mode: the SQL of a ClickHouse user that may only read Reise's database (``reise migrate --print-users``).

On a ClickHouse server this grant is the real boundary of analysts' queries (the collector runs them as this
user when REISE_READ_DSN names it); the query guard is a second wall. The embedded store has no users: there
the guard is the only wall.
"""

from __future__ import annotations

import re
import secrets

from collector.errors import ConfigError
from collector.store.readonly import QueryLimits

__all__ = ["reader_user_sql"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def reader_user_sql(database: str, limits: QueryLimits, *, user: str = "reise_reader",
                    password: str | None = None, cluster: str | None = None) -> str:
    """CREATE USER, its settings profile (the limits as maximums) and GRANT SELECT on ``database`` only."""
    for what, name in (("database", database), ("user", user)):
        if not _NAME.match(name):
            raise ConfigError(f"--print-users: the {what} name {name!r} is not a plain identifier")
    password = password or secrets.token_urlsafe(24)
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    profile = f"{user}_limits"
    timeout = max(1, int(limits.timeout))
    return f"""-- A ClickHouse user for Reise's analysts: SELECT on `{database}` only, nothing else (no other database,
-- no system tables beyond what every user sees, no files, URLs or remote servers: those need grants it lacks).
-- The settings profile caps each query; the collector also sends these limits and readonly=1 with every query.
-- Then set REISE_READ_DSN=http://{user}:<password>@<host>:8123/{database} on the collector.
CREATE SETTINGS PROFILE IF NOT EXISTS {profile}{on_cluster} SETTINGS
    max_execution_time = {timeout} MAX {timeout},
    max_result_rows = {limits.max_rows} MAX {limits.max_rows},
    max_result_bytes = {limits.max_bytes} MAX {limits.max_bytes},
    result_overflow_mode = 'throw' CONST,
    max_memory_usage = {limits.max_memory} MAX {limits.max_memory},
    allow_introspection_functions = 0 CONST,
    allow_ddl = 0 CONST;
CREATE USER IF NOT EXISTS {user}{on_cluster} IDENTIFIED WITH sha256_password BY {_quoted(password)}
    DEFAULT DATABASE {database} SETTINGS PROFILE {profile};
REVOKE{on_cluster} ALL ON *.* FROM {user};
GRANT{on_cluster} SELECT ON {database}.* TO {user};
"""

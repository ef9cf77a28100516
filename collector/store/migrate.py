"""The migration runner: numbered SQL files applied in order, recorded, safe to rerun."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from collector.errors import ConfigError
from collector.store.clickhouse import Store
from collector.store.cluster import ClusterRenderer, database_of, local_name
from collector.store.retention import RAW_TABLES, Retention, current_definitions, retention_statements

__all__ = [
    "MIGRATIONS_DIR",
    "Migration",
    "apply_migrations",
    "apply_retention",
    "ledger_ddl",
    "load_migrations",
    "migrations_dir",
    "render_migrations",
    "rendered_sql",
    "split_statements",
]

_REPOSITORY_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def migrations_dir() -> Traversable:
    """The numbered SQL files: the package data ``collector.migrations`` of an installed collector.

    The repository keeps them in ``migrations/`` at its top; pyproject.toml maps that folder into the package
    at build time, so a wheel carries them and an editable install finds them in place.
    """
    try:
        packaged = resources.files("collector.migrations")
    except ModuleNotFoundError:  # a source tree run without installing
        return _REPOSITORY_MIGRATIONS
    return packaged if any(entry.name.endswith(".sql") for entry in packaged.iterdir()) else _REPOSITORY_MIGRATIONS


MIGRATIONS_DIR: Traversable = migrations_dir()
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS reise_migrations
(
    version     UInt32,
    name        String,
    applied_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a migration into statements on semicolons that end a line; drop comment-only parts."""
    parts = re.split(r";\s*$", sql, flags=re.MULTILINE)
    statements = []
    for part in parts:
        code = "\n".join(line for line in part.splitlines() if not line.strip().startswith("--")).strip()
        if code:
            statements.append(code)
    return tuple(statements)


def load_migrations(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """Read the numbered migrations in order; refuse duplicate numbers.

    Numbers may skip (branches number their migrations apart); each is applied once, in order, when missing.
    """
    migrations = []
    for path in sorted((p for p in directory.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"migration {path.name}: expected NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), path.name.removesuffix(".sql"),
                                    split_statements(path.read_text(encoding="utf-8"))))
    if not migrations:
        raise ConfigError(f"no migrations found in {directory}: the package is installed without its data files")
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions) or 0 in versions:
        raise ConfigError(f"migrations in {directory} must have distinct numbers from 1, got {versions}")
    return migrations


def ledger_ddl(cluster: str | None = None, database: str = "default") -> str:
    """The DDL of the table recording applied migrations (replicated to every node on a cluster)."""
    return ClusterRenderer(cluster, database).ledger(LEDGER_DDL) if cluster else LEDGER_DDL.strip()


def render_migrations(
    cluster: str | None = None, database: str = "default", directory: Traversable = MIGRATIONS_DIR
) -> list[Migration]:
    """The migrations as they run: unchanged on one server, rendered ON CLUSTER for a cluster."""
    migrations = load_migrations(directory)
    if not cluster:
        return migrations
    renderer = ClusterRenderer(cluster, database)
    rendered = []
    for migration in migrations:
        try:
            statements = tuple(s for statement in migration.statements for s in renderer.render(statement))
        except ConfigError as exc:
            raise ConfigError(f"migration {migration.name}: {exc}") from exc
        rendered.append(Migration(migration.version, migration.name, statements))
    return rendered


def rendered_sql(cluster: str | None = None, database: str = "default", directory: Traversable = MIGRATIONS_DIR,
                 retention: Retention | None = None) -> str:
    """Every statement ``reise migrate`` would run, as one SQL script (``reise migrate --print``).

    With retention settings, the TTL statements they call for follow (``migrate`` runs only those that differ
    from the store; ``REMOVE TTL`` only where a TTL is set).
    """
    parts = [f"-- migration ledger\n{ledger_ddl(cluster, database)};"]
    for migration in render_migrations(cluster, database, directory):
        parts.append(f"-- {migration.name}\n" + "\n\n".join(f"{statement};" for statement in migration.statements))
    ttl = retention_statements(retention, cluster=cluster, database=database) if retention is not None else []
    if ttl:
        header = "-- retention (REISE_RETENTION_DAYS, REISE_PII_RETENTION_DAYS)\n"
        parts.append(header + "\n".join(f"{statement};" for statement in ttl))
    return "\n\n".join(parts) + "\n"


def apply_retention(store: Store, retention: Retention, *, cluster: str | None = None) -> list[str]:
    """Alter the TTLs that differ from the retention settings; return the statements run."""
    if retention.empty:
        return []
    show_create = {}
    for table in RAW_TABLES:
        name = local_name(table) if cluster else table
        rows = store.query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
                           {"n": name}).rows
        if rows and int(rows[0][0]):
            show_create[name] = str(store.query(f"SHOW CREATE TABLE {name}").rows[0][0])
    current = current_definitions(show_create, cluster=bool(cluster))
    statements = retention_statements(retention, current, cluster=cluster, database=database_of(store.dsn))
    for statement in statements:
        store.command(statement)
    return statements


def apply_migrations(store: Store, directory: Traversable = MIGRATIONS_DIR, *, cluster: str | None = None,
                     retention: Retention | None = None) -> list[str]:
    """Apply the migrations not yet recorded (ON CLUSTER when a cluster is named), then alter the TTLs to
    match the retention settings; return the migrations applied now and the TTL statements run.
    """
    database = database_of(store.dsn)
    store.command(ledger_ddl(cluster, database))
    done = {int(row[0]) for row in store.query("SELECT version FROM reise_migrations").rows}
    applied = []
    for migration in render_migrations(cluster, database, directory):
        if migration.version in done:
            continue
        for statement in migration.statements:
            store.command(statement)
        store.command(
            "INSERT INTO reise_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": migration.version, "n": migration.name},
        )
        applied.append(migration.name)
    if retention is not None:
        applied += apply_retention(store, retention, cluster=cluster)
    return applied

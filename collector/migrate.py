"""The migration runner: numbered SQL files applied in order, recorded, safe to rerun."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from collector.errors import ConfigError
from collector.store import Store

__all__ = ["MIGRATIONS_DIR", "Migration", "apply_migrations", "load_migrations", "split_statements"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
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


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read the numbered migrations in order; refuse gaps and duplicate numbers."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"migration {path.name}: expected NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, split_statements(path.read_text())))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ConfigError(f"migrations in {directory} must be numbered 1..N without gaps, got {versions}")
    return migrations


def apply_migrations(store: Store, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now."""
    store.command(LEDGER_DDL)
    done = {int(row[0]) for row in store.query("SELECT version FROM reise_migrations").rows}
    applied = []
    for migration in load_migrations(directory):
        if migration.version in done:
            continue
        for statement in migration.statements:
            store.command(statement)
        store.command(
            "INSERT INTO reise_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": migration.version, "n": migration.name},
        )
        applied.append(migration.name)
    return applied

"""Retention: TTLs on the raw tables and on personal columns, altered to match the settings at every migrate.

``REISE_RETENTION_DAYS`` sets a TTL on the raw rows (touchpoints by event time, dead letters and their replay
marks by the time they were kept); ``REISE_PII_RETENTION_DAYS`` a column TTL on the personal columns, whose
values are blanked (set to their default) after that many days while the row stays. Unset leaves a table as
it is, ``0`` removes the TTL (keep for ever), ``N`` keeps N days. ``reise migrate`` and the collector's start
compare the TTLs in the store with the settings and alter only what differs, so a change needs no rebuild.

The journey aggregates (``customer_state`` and the views over it) are written at insert time and have no TTL:
they outlive the raw rows (docs/operations.md says which views stay exact).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from collector.store.cluster import ClusterRenderer, local_name

__all__ = ["PERSONAL_COLUMNS", "RAW_TABLES", "Retention", "current_definitions", "retention_statements"]

# raw table -> the time its rows expire from
RAW_TABLES: Mapping[str, str] = {
    "touchpoints": "timestamp",
    "dead_letters": "received_at",
    "dead_letter_replays": "replayed_at",
}
# table -> columns holding personal data (blanked after REISE_PII_RETENTION_DAYS); add new personal columns here
PERSONAL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "touchpoints": ("ip", "user_agent", "traits"),
    "dead_letters": ("payload",),  # the event as received: ip, user agent, traits
}


@dataclass(frozen=True)
class Retention:
    """Days raw rows and personal values are kept: None leaves the store as it is, 0 keeps for ever."""

    days: int | None = None
    pii_days: int | None = None

    @property
    def empty(self) -> bool:
        """True when neither setting is given (nothing to alter)."""
        return self.days is None and self.pii_days is None


def _expression(time_column: str, days: int) -> str:
    """A TTL expression as ClickHouse shows it back (so it can be compared with SHOW CREATE TABLE)."""
    return f"toDateTime({time_column}) + toIntervalDay({days})"


def _table_ttl(definition: str) -> str | None:
    match = re.search(r"^TTL (.+)$", definition, re.M)
    return match.group(1).strip() if match else None


def _column_ttl(definition: str, column: str) -> str | None:
    match = re.search(rf"^\s*`{re.escape(column)}` .*?\sTTL (.+?),?$", definition, re.M)
    return match.group(1).strip() if match else None


def retention_statements(
    retention: Retention,
    current: Mapping[str, str] | None = None,
    *,
    cluster: str | None = None,
    database: str = "default",
) -> list[str]:
    """The ALTER statements that bring the TTLs to ``retention``.

    ``current`` maps each table to its SHOW CREATE TABLE text (on a cluster: of its local table); without it
    every statement the settings call for is given (``reise migrate --print``). On a cluster the statements
    alter the local tables ``ON CLUSTER``.
    """
    renderer = ClusterRenderer(cluster, database) if cluster else None
    statements: list[str] = []

    def alter(table: str, action: str) -> None:
        if renderer is not None:
            statements.append(f"ALTER TABLE {local_name(table)} {renderer.on_cluster} {action}")
        else:
            statements.append(f"ALTER TABLE {table} {action}")

    for table, time_column in RAW_TABLES.items():
        definition = current.get(table) if current is not None else None
        if retention.days is not None and (current is None or definition is not None):
            have = _table_ttl(definition) if definition is not None else None
            want = _expression(time_column, retention.days) if retention.days else None
            if want and (current is None or have != want):
                alter(table, f"MODIFY TTL toDateTime({time_column}) + INTERVAL {retention.days} DAY")
            elif not want and (have is not None or current is None):
                alter(table, "REMOVE TTL")
        if retention.pii_days is not None and (current is None or definition is not None):
            for column in PERSONAL_COLUMNS.get(table, ()):
                have = _column_ttl(definition, column) if definition is not None else None
                want = _expression(time_column, retention.pii_days) if retention.pii_days else None
                if want and (current is None or have != want):
                    alter(table, f"MODIFY COLUMN {column} TTL toDateTime({time_column}) + "
                                 f"INTERVAL {retention.pii_days} DAY")
                elif not want and (have is not None or current is None):
                    alter(table, f"MODIFY COLUMN {column} REMOVE TTL")
    return statements


def current_definitions(show_create: Mapping[str, str], *, cluster: bool) -> dict[str, str]:
    """SHOW CREATE TABLE texts keyed by the plain table name (on a cluster they are of the local tables)."""
    return {table: show_create[local_name(table) if cluster else table]
            for table in RAW_TABLES if (local_name(table) if cluster else table) in show_create}

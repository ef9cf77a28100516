"""The settings the analytics views read (``analytics_settings``, migrations/0011_analytics.sql).

Views are plain SQL, so settings reach them as data: ``reise migrate`` and the collector at start write the
configured values (REISE_ATTRIBUTION_LOOKBACK_DAYS, REISE_SESSION_GAP_MINUTES) when they differ from the
stored ones; a view falls back to its default while a key has no row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from collector.store.clickhouse import Store

__all__ = ["CURRENT_SQL", "stored_view_settings", "write_view_settings"]

CURRENT_SQL = "SELECT key, argMax(value, version) AS value FROM analytics_settings GROUP BY key"


def stored_view_settings(store: Store) -> dict[str, float]:
    """The values the views use now (keys without a row are absent: the views use their defaults)."""
    return {str(key): float(value) for key, value in store.query(CURRENT_SQL).rows}


def write_view_settings(store: Store, values: Mapping[str, float]) -> dict[str, float]:
    """Store the values that differ from the stored ones (latest version wins); return those written."""
    current = stored_view_settings(store)
    changed = {key: float(value) for key, value in values.items() if current.get(key) != float(value)}
    if changed:
        version = time.time_ns()
        store.insert_rows("analytics_settings", ("key", "value", "version"),
                          [(key, value, version) for key, value in sorted(changed.items())], f"view-settings-{version}")
    return changed

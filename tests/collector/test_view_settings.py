"""The analytics views' settings: stored only when they change, and the views follow them at once."""

from __future__ import annotations

import pytest

from collector.errors import ConfigError
from collector.settings import ClientSettings
from collector.store.clickhouse import Store
from collector.store.view_settings import stored_view_settings, write_view_settings

TOUCHPOINTS = """
INSERT INTO touchpoints (message_id, type, event, journey_id, channel, stage_rank, timestamp, revenue, order_id)
VALUES ('vs-1', 'track', 'Product Viewed', 'vs-cust', 'web', 2, '2026-03-01 10:00:00', 0, ''),
       ('vs-2', 'track', 'Product Viewed', 'vs-cust', 'web', 2, '2026-03-01 10:10:00', 0, ''),
       ('vs-3', 'track', 'Order Completed', 'vs-cust', 'pos', 3, '2026-03-02 10:10:00', 40, 'vs-o1')
"""
SESSIONS = "SELECT count() FROM sessions WHERE customer_id = 'vs-cust'"
CONTACTS = "SELECT contacts FROM attribution_purchases WHERE customer_id = 'vs-cust'"


def test_the_views_follow_the_stored_settings(store: Store) -> None:
    store.command(TOUCHPOINTS)
    try:
        write_view_settings(store, ClientSettings().view_settings)
        assert store.query(SESSIONS).rows == [(2,)]  # the defaults: a 30-minute gap, a 30-day lookback
        assert store.query(CONTACTS).rows == [(2,)]
        assert write_view_settings(store, {"session_gap_minutes": 5.0, "attribution_lookback_days": 30.0}) == {
            "session_gap_minutes": 5.0}  # only what changed is written
        assert store.query(SESSIONS).rows == [(3,)]
        write_view_settings(store, {"attribution_lookback_days": 0.5})  # twelve hours: only the purchase itself
        assert store.query(CONTACTS).rows == [(0,)]
        assert stored_view_settings(store) == {"session_gap_minutes": 5.0, "attribution_lookback_days": 0.5}
    finally:
        write_view_settings(store, ClientSettings().view_settings)


def test_settings_are_read_from_the_environment_and_checked() -> None:
    settings = ClientSettings.from_env({"REISE_ATTRIBUTION_LOOKBACK_DAYS": "14", "REISE_SESSION_GAP_MINUTES": "20"})
    assert settings.view_settings == {"attribution_lookback_days": 14.0, "session_gap_minutes": 20.0}
    for name, value in (("REISE_ATTRIBUTION_LOOKBACK_DAYS", "0"), ("REISE_SESSION_GAP_MINUTES", "1441")):
        with pytest.raises(ConfigError, match=name):
            ClientSettings.from_env({name: value})

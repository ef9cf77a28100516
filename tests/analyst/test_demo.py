"""`reise demo`: realistic journeys, sent through the SDK, counted exactly as planned by the views."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli.demo_journeys import STORES, Journey, plan
from collector.errors import ConfigError
from collector.keys import client_write_key, ensure_keys
from collector.settings import Settings
from tests.analyst.conftest import DEMO_CUSTOMERS, DEMO_SEED, run_cli
from tests.helpers import Collector


def test_the_plan_is_deterministic_apart_from_time() -> None:
    """The same seed gives the same people, events and message ids; only timestamps follow `now`."""
    early = plan(50, seed=3, now=datetime(2026, 1, 1, tzinfo=UTC))
    late = plan(50, seed=3, now=datetime(2026, 6, 1, tzinfo=UTC))
    assert [[(e.message_id, e.call, e.label, e.channel) for e in j.events] for j in early] == \
           [[(e.message_id, e.call, e.label, e.channel) for e in j.events] for j in late]
    assert [e.message_id for j in plan(50, seed=4) for e in j.events] != [e.message_id for j in early for e in j.events]


def test_the_plan_looks_like_real_journeys() -> None:
    """Weeks of history, every channel that matters, stores, identification, and 7 to 11 contacts typical."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    journeys = plan(1000, seed=7, weeks=8, now=now)
    events = [e for j in journeys for e in j.events]
    times = [e.timestamp for e in events]
    assert max(times) < now and min(times) >= now - timedelta(weeks=8, days=1)
    assert max(times) - min(times) > timedelta(weeks=6)
    assert {"ads", "social", "web", "email", "pos", "app", "support"} <= {e.channel for e in events}
    assert {e.store_id for e in events if e.call == "purchase" and e.channel == "pos"} == set(STORES)
    assert {e.label for e in events} >= {"Ad Impression", "Product Viewed", "Email Opened", "Order Completed",
                                         "Order Delivered", "Loyalty Points Earned", "Review Written"}
    for journey in journeys:
        assert [e.timestamp for e in journey.events] == sorted(e.timestamp for e in journey.events)
    browsed_then_identified = [j for j in journeys if j.events[0].user_id is None and j.identified]
    assert len(browsed_then_identified) > 300
    contacts = [j.contacts_before_first_purchase for j in journeys if j.buys]
    assert 0.3 < len(contacts) / len(journeys) < 0.7
    assert 7 <= statistics.median(c for c in contacts if c is not None) <= 11
    assert sum(1 for c in contacts if c is not None and 7 <= c <= 11) / len(contacts) > 0.6


def test_the_views_count_the_demo_exactly(demo_collector: Collector, demo_plan: list[Journey]) -> None:
    """Customers, identities and contacts before the first purchase match the plan, person by person."""
    rows = demo_collector.query("SELECT customer_id, ids, contacts, contacts_before_first_purchase "
                                "FROM customer_journey WHERE startsWith(customer_id, 'cust-') "
                                "OR startsWith(customer_id, 'anon-')")
    got = {r["customer_id"]: r for r in rows}
    assert len(got) == DEMO_CUSTOMERS
    for journey in demo_plan:
        row = got[journey.resolved_id]
        assert row["contacts"] == sum(1 for e in journey.events if e.is_contact), journey.resolved_id
        assert row["contacts_before_first_purchase"] == journey.contacts_before_first_purchase, journey.resolved_id
        # the anonymous id is one of the customer's ids once it sent a contact of its own or was linked
        used_anonymous = any(e.anonymous_id and not e.user_id for e in journey.events if e.is_contact)
        linked = any(e.anonymous_id and e.user_id for e in journey.events)
        assert (journey.anonymous_id in row["ids"]) == (used_anonymous or linked), journey.resolved_id


def test_a_second_run_is_not_counted_twice(demo_collector: Collector, demo_plan: list[Journey]) -> None:
    """The plan's message ids repeat, so running the demo again adds nothing."""
    total = sum(len(j.events) for j in demo_plan)
    env = {**demo_collector.env(), "REISE_WRITE_KEY": demo_collector.write_key}
    again = run_cli(demo_collector, "demo", "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED), env=env)
    assert again.returncode == 0, again.stderr
    marker = "marker-after-rerun"
    # an identify without an anonymous id is no contact and no link: the other tests' counts stay as planned
    assert demo_collector.post("/v1/identify", {"userId": marker, "messageId": marker}).status == 200
    stored = "SELECT count() FROM touchpoints WHERE message_id = {m:String}"
    assert demo_collector.wait_for(stored, 1, {"m": marker}) == 1
    assert demo_collector.scalar("SELECT count() FROM touchpoints WHERE startsWith(message_id, 'demo-')") == total


def test_the_demo_finds_the_development_write_key(tmp_path: Path) -> None:
    """Like `reise sql` finds the admin key: flag, then REISE_WRITE_KEY, then dev-keys.json in the data dir."""
    settings = Settings.from_env({"REISE_DSN": f"chdb://{tmp_path / 'data'}"})
    with pytest.raises(ConfigError, match="REISE_WRITE_KEY"):
        client_write_key(settings)
    dev = ensure_keys(settings)
    assert client_write_key(settings) == next(iter(dev.write_keys))
    assert client_write_key(Settings.from_env({"REISE_DSN": settings.dsn, "REISE_WRITE_KEY": "wk_env"})) == "wk_env"
    assert client_write_key(settings, "wk_flag") == "wk_flag"


def test_the_demo_says_when_the_collector_refuses(demo_collector: Collector) -> None:
    """A wrong write key is reported, with a non-zero exit, not silently ignored."""
    env = {**demo_collector.env(), "REISE_WRITE_KEY": "wk_wrong"}
    done = run_cli(demo_collector, "demo", "--customers", "2", "--seed", "99", env=env)
    assert done.returncode == 2 and "did not take every event" in done.stderr

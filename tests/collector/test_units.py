"""Pure pieces: settings, stage rules, protocol normalisation, dedup memory, the SQL pre-check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reise import client as sdk_client

from collector.edge.answers import error_answer
from collector.errors import (
    ConfigError,
    EventRejected,
    LinkInvalid,
    QueryRefused,
    RateLimited,
    ShuttingDown,
    SpoolFull,
    StoreUnavailable,
)
from collector.ingest.dedup import RecentIds
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.stages import StageRules
from collector.limits import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from collector.settings import DEFAULT_RULES_PATH, ClientSettings, Settings, chdb_path, parse_write_keys
from collector.store.schema import TOUCHPOINT_COLUMNS

RULES = StageRules.load(DEFAULT_RULES_PATH)
CTX = IngestContext(source="unit", received_ms=1_780_000_000_000, rules=RULES)


def row_of(event: dict[str, Any], default_type: str | None = None) -> dict[str, Any]:
    return dict(zip(TOUCHPOINT_COLUMNS, normalise(event, default_type, CTX), strict=True))


def test_settings_from_env_and_overrides() -> None:
    env = {"REISE_PORT": "9000", "REISE_WRITE_KEYS": "shop=wk_1, till=wk_2@pos, site=pk_3@web+email",
           "REISE_FLUSH_INTERVAL": "0.5"}
    built = Settings.from_env(env, port=9100, dsn="chdb:///tmp/x")
    assert built.port == 9100
    assert built.flush_interval == 0.5
    assert {k: (v.source, v.channels, v.public) for k, v in built.write_keys.items()} == {
        "wk_1": ("shop", None, False), "wk_2": ("till", frozenset({"pos"}), False),
        "pk_3": ("site", frozenset({"web", "email"}), True)}
    assert built.write_keys["wk_2"].default_channel == "pos"
    assert built.write_keys["pk_3"].default_channel == "other"
    assert chdb_path(built.dsn) == Path("/tmp/x")
    assert chdb_path("http://localhost:8123/db") is None
    with pytest.raises(ConfigError, match="REISE_PORT"):
        Settings.from_env({"REISE_PORT": "eighty"})
    with pytest.raises(ConfigError, match="REISE_DSN"):
        Settings.from_env({"REISE_DSN": "postgres://x"})
    with pytest.raises(ConfigError, match="source=key"):
        parse_write_keys("justakey")
    with pytest.raises(ConfigError, match="used twice"):
        parse_write_keys("a=k,b=k")
    with pytest.raises(ConfigError, match="unknown channels"):
        parse_write_keys("a=k@web+fax")
    with pytest.raises(ConfigError, match="must name its channels"):
        parse_write_keys("a=pk_open")
    with pytest.raises(AttributeError):
        built.port = 1  # type: ignore[misc]


def test_rules_file_errors_name_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    for doc, message in [
        ({"rules": [{"event": "X", "stage": "joy"}]}, "rule 1: stage must be one of"),
        ({"rules": [{"stage": "purchase"}]}, "rule 1: needs an 'event' or a 'type'"),
        ({"rules": [{"event": "X", "stage": "purchase", "channel": "fax"}]}, "unknown channel"),
        ({"rules": [{"event": "X", "stage": "purchase", "colour": "red"}]}, "expected an object with fields"),
        ({"nope": []}, "expected an object with a 'rules' list"),
    ]:
        path.write_text(json.dumps(doc))
        with pytest.raises(ConfigError, match=message):
            StageRules.load(path)
    path.write_text("{")
    with pytest.raises(ConfigError):
        StageRules.load(path)


def test_rule_precedence() -> None:
    assert RULES.stage_for("track", "SALE", "pos") == "purchase"
    assert RULES.stage_for("track", "Sale", "web") == ""
    assert RULES.stage_for("track", "Unknown", "support") == "retention"
    assert RULES.stage_for("track", "Order Completed", "support") == "purchase"
    assert RULES.stage_for("page", "", "web") == "awareness"


def test_normalise_reads_hot_fields_and_maps() -> None:
    row = row_of({
        "type": "track", "event": "Order Completed", "userId": 42, "anonymousId": "a-1", "channel": "browser",
        "properties": {"total": "99.999", "currency": "usd", "orderId": "o-7", "items": [{"sku": "x"}],
                       "gift": True, "note": None},
        "context": {"campaign": {"name": "spring", "source": "google", "medium": "cpc"},
                    "library": {"name": "analytics-python", "version": "2.3"}, "ip": "10.1.2.3",
                    "page": {"url": "https://shop/x"}},
    })
    assert row["customer_id"] == "42" and row["journey_id"] == "42" and row["anonymous_id"] == "a-1"
    assert row["channel"] == "web" and row["stage"] == "purchase" and row["stage_rank"] == 3
    assert row["revenue"] == 99.999 and row["currency"] == "USD" and row["order_id"] == "o-7"
    assert row["campaign"] == "spring" and row["utm_source"] == "google" and row["utm_medium"] == "cpc"
    assert row["library"] == "analytics-python/2.3" and row["page_url"] == "https://shop/x"
    assert row["timestamp"] == row["received_at"] == CTX.received_ms / 1000
    assert len(row["message_id"]) == 32  # generated when missing


def test_skew_and_future_rules() -> None:
    hour = 3600
    sent = "2026-05-28T19:26:40+00:00"  # the client clock is an hour slow (received at 20:26:40)
    row = row_of({"type": "track", "event": "x", "userId": "u", "timestamp": "2026-05-28T19:16:40Z",
                  "sentAt": sent})
    assert row["timestamp"] - row["original_timestamp"] == hour
    assert row["received_at"] - row["timestamp"] == 10 * 60
    with pytest.raises(EventRejected, match="timestamp: more than a day in the future"):
        row_of({"type": "track", "event": "x", "userId": "u", "timestamp": "2026-06-01T00:00:00Z"})
    with pytest.raises(EventRejected, match="sentAt"):
        row_of({"type": "track", "event": "x", "userId": "u", "sentAt": 12})


@settings(max_examples=400, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "event", "userId", "anonymousId", "previousId", "timestamp", "sentAt",
                         "channel", "stage", "properties", "context", "traits", "messageId", "revenue",
                         "campaign", "page", "library", "name", "x"]), children, max_size=8),
    max_leaves=30))
def test_normalise_either_returns_a_row_or_names_the_problem(event: Any) -> None:
    try:
        row = normalise(event, None, CTX)
    except EventRejected as exc:
        assert ":" in exc.reason
    else:
        assert len(row) == len(TOUCHPOINT_COLUMNS)


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(3)
    assert [recent.add(i) for i in ("a", "b", "a", "c", "d")] == [True, True, False, True, True]
    assert len(recent) == 3
    assert recent.add("a") is True  # forgotten after d arrived
    recent.forget(["a"])
    assert recent.add("a") is True


def test_the_sdk_mirrors_the_collector_limits() -> None:
    """The SDK (standard library only) copies the wire limits; they must agree with collector.limits."""
    assert (sdk_client.MAX_EVENT_BYTES, sdk_client.MAX_BATCH_BYTES) == (MAX_EVENT_BYTES, MAX_BATCH_BYTES)


def test_client_commands_check_only_the_client_settings() -> None:
    """A CLI command is not refused for a server setting it never uses; the server still checks them all."""
    env = {"REISE_DSN": "chdb:///tmp/x", "REISE_WORKERS": "4", "REISE_IP": "sometimes", "REISE_URL": "http://c:1"}
    client = ClientSettings.from_env(env)
    assert (client.dsn, client.url) == ("chdb:///tmp/x", "http://c:1")
    assert not hasattr(client, "workers")
    with pytest.raises(ConfigError, match="REISE_IP"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="REISE_DSN"):
        ClientSettings.from_env({"REISE_DSN": "postgres://x"})
    with pytest.raises(ConfigError, match="REISE_LINK_KEYS"):
        ClientSettings.from_env({"REISE_LINK_KEYS": "short"})


def test_domain_errors_map_to_http_in_one_table() -> None:
    assert error_answer(SpoolFull("spool is full")) == (503, 5, "spool is full")
    assert error_answer(ShuttingDown("closing")) == (503, 5, "closing")
    assert error_answer(RateLimited("too fast", retry_after=3)) == (429, 3, "too fast")
    assert error_answer(StoreUnavailable("unavailable, retry")) == (503, 5, "store: unavailable, retry")
    assert error_answer(QueryRefused("one statement")) == (400, None, "sql: one statement")
    assert error_answer(LinkInvalid("token: expired")) == (400, None, "token: expired")
    assert error_answer(ConfigError("a bug if it reaches a request")) is None

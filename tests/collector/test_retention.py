"""Retention: TTLs on raw rows and personal columns, set and changed by `reise migrate`, on real chDB.

The store runs in processes of its own (the CLI, tests.chdb_child): TTLs would expire other tests' rows in the
session's shared store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from collector.store.migrate import rendered_sql
from collector.store.retention import Retention, retention_statements
from tests.helpers import ROOT


def reise(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, "REISE_DSN": dsn, **env}, timeout=120)


def sql(dsn: str, *statements: str) -> list[list[list[Any]]]:
    done = subprocess.run([sys.executable, "-m", "tests.chdb_child", dsn], cwd=ROOT, capture_output=True, text=True,
                          input=json.dumps(list(statements)), timeout=120)
    assert done.returncode == 0, done.stderr
    result: list[list[list[Any]]] = json.loads(done.stdout)
    return result


def show(dsn: str, table: str) -> str:
    return str(sql(dsn, f"SHOW CREATE TABLE {table}")[0][0][0])


ROWS = """
INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, channel, timestamp, received_at, ip,
                         user_agent, traits)
SELECT concat('ret-', toString(number)), 'track', 'Product Viewed', 'ret-cust', 'ret-cust', 'web',
       now64(3) - toIntervalDay(number * 10), now64(3), '10.1.2.0', 'Firefox', map('email', 'a@example.com')
FROM numbers(4)
"""  # events of today, 10, 20 and 30 days ago


def test_ttls_follow_the_settings_and_expire_rows(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'data'}"
    assert reise(dsn, "migrate").returncode == 0  # no retention: rows are kept as they come
    before = sql(dsn, ROWS, "SELECT message_id, ip, user_agent, length(traits) FROM touchpoints ORDER BY message_id")[1]
    first = reise(dsn, "migrate", REISE_RETENTION_DAYS="25", REISE_PII_RETENTION_DAYS="5")
    assert first.returncode == 0, first.stderr
    assert "ALTER TABLE touchpoints MODIFY TTL" in first.stdout
    touchpoints, dead = show(dsn, "touchpoints"), show(dsn, "dead_letters")
    assert "\nTTL toDateTime(timestamp) + toIntervalDay(25)" in touchpoints
    for column in ("ip", "user_agent", "traits"):
        assert "TTL toDateTime(timestamp) + toIntervalDay(5)" in \
            next(line for line in touchpoints.splitlines() if line.strip().startswith(f"`{column}`"))
    assert "\nTTL toDateTime(received_at) + toIntervalDay(25)" in dead
    assert "TTL toDateTime(received_at) + toIntervalDay(5)" in \
        next(line for line in dead.splitlines() if line.strip().startswith("`payload`"))
    assert "\nTTL toDateTime(replayed_at) + toIntervalDay(25)" in show(dsn, "dead_letter_replays")

    # the same settings again alter nothing
    again = reise(dsn, "migrate", REISE_RETENTION_DAYS="25", REISE_PII_RETENTION_DAYS="5")
    assert again.stdout.strip() == "reise: migrations up to date", again.stdout

    after, journey = sql(dsn, "OPTIMIZE TABLE touchpoints FINAL",
                         "SELECT message_id, ip, user_agent, length(traits) FROM touchpoints ORDER BY message_id",
                         "SELECT contacts FROM customer_journey WHERE customer_id = 'ret-cust'")[1:]
    assert before == [[f"ret-{i}", "10.1.2.0", "Firefox", 1] for i in range(4)]
    # 30 days old: gone; 10 and 20 days: kept, without ip, user agent and traits; today: untouched
    assert after == [["ret-0", "10.1.2.0", "Firefox", 1], ["ret-1", "", "", 0], ["ret-2", "", "", 0]]
    assert journey == [[4]]  # the journey aggregates outlive the raw rows

    # changed without a rebuild: longer raw retention, personal columns kept for ever
    changed = reise(dsn, "migrate", REISE_RETENTION_DAYS="400", REISE_PII_RETENTION_DAYS="0")
    assert changed.returncode == 0, changed.stderr
    touchpoints = show(dsn, "touchpoints")
    assert "\nTTL toDateTime(timestamp) + toIntervalDay(400)" in touchpoints
    assert "toIntervalDay(5)" not in touchpoints
    # unset: the store is left as it is
    assert reise(dsn, "migrate").stdout.strip() == "reise: migrations up to date"
    assert "toIntervalDay(400)" in show(dsn, "touchpoints")
    # 0: keep for ever
    assert reise(dsn, "migrate", REISE_RETENTION_DAYS="0").returncode == 0
    assert "TTL" not in show(dsn, "touchpoints")


def test_retention_renders_on_cluster_local_tables() -> None:
    statements = retention_statements(Retention(days=90, pii_days=30), cluster="reise", database="reise")
    assert statements[0] == "ALTER TABLE touchpoints_local ON CLUSTER reise MODIFY TTL toDateTime(timestamp) + " \
                            "INTERVAL 90 DAY"
    assert all(s.startswith("ALTER TABLE ") and "_local ON CLUSTER reise " in s for s in statements)
    assert "ALTER TABLE dead_letters_local ON CLUSTER reise MODIFY COLUMN payload TTL toDateTime(received_at) + " \
           "INTERVAL 30 DAY" in statements
    script = rendered_sql("reise", "reise", retention=Retention(days=90, pii_days=30))
    assert script.rstrip().endswith("ALTER TABLE dead_letter_replays_local ON CLUSTER reise MODIFY TTL "
                                    "toDateTime(replayed_at) + INTERVAL 90 DAY;")
    # what a store already has is not altered again; 0 removes only a TTL that is there
    current = {"touchpoints": "CREATE TABLE t\n(\n    `ip` String TTL toDateTime(timestamp) + toIntervalDay(30),\n"
                              "    `user_agent` String\n)\nORDER BY x\nTTL toDateTime(timestamp) + toIntervalDay(90)"}
    assert retention_statements(Retention(days=90, pii_days=30), current) == [
        "ALTER TABLE touchpoints MODIFY COLUMN user_agent TTL toDateTime(timestamp) + INTERVAL 30 DAY",
        "ALTER TABLE touchpoints MODIFY COLUMN traits TTL toDateTime(timestamp) + INTERVAL 30 DAY"]
    assert retention_statements(Retention(days=0, pii_days=0), current) == [
        "ALTER TABLE touchpoints REMOVE TTL", "ALTER TABLE touchpoints MODIFY COLUMN ip REMOVE TTL"]


def test_migrate_print_shows_the_cluster_ttls(tmp_path: Path) -> None:
    shown = reise("http://reise:secret@ch-1:8123/reise", "migrate", "--cluster", "reise", "--print",
                  REISE_RETENTION_DAYS="90", REISE_PII_RETENTION_DAYS="30")
    assert shown.returncode == 0, shown.stderr
    assert "ALTER TABLE touchpoints_local ON CLUSTER reise MODIFY COLUMN ip TTL toDateTime(timestamp) + " \
           "INTERVAL 30 DAY;" in shown.stdout

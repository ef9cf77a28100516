"""The `reise` command against a real collector: sql, customer, migrate."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from tests.helpers import ROOT, Collector


def reise(collector: Collector, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env or collector.env(), timeout=120)


def test_sql_prints_a_table_and_json(collector: Collector) -> None:
    user = f"cli-{uuid.uuid4().hex[:8]}"
    collector.post("/v1/batch", {"batch": [
        {"type": "track", "userId": user, "event": "Ad Impression", "channel": "ads",
         "timestamp": "2026-02-01T09:00:00Z"},
        {"type": "track", "userId": user, "event": "Order Completed", "channel": "web",
         "timestamp": "2026-02-02T09:00:00Z", "properties": {"revenue": 19.99}},
    ]})
    collector.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {u:String}", 2, {"u": user})
    table = reise(collector, "sql", "SELECT customer_id, contacts, revenue FROM customer_journey"
                                    " WHERE customer_id = {u:String}", "--param", f"u={user}")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["customer_id", "contacts", "revenue"]
    assert lines[2].split() == [user, "2", "19.99"]
    assert lines[-1] == "(1 row)"
    as_json = reise(collector, "sql", "--json", "SELECT contacts FROM customer_journey WHERE customer_id = {u:String}",
                    "--param", f"u={user}")
    assert json.loads(as_json.stdout) == [{"contacts": 2}]


def test_sql_refuses_writes_with_a_clear_message(collector: Collector) -> None:
    result = reise(collector, "sql", "DROP TABLE touchpoints")
    assert result.returncode == 2
    assert "DROP: only SELECT" in result.stderr and "HTTP 403" in result.stderr


def test_customer_prints_the_journey_and_timeline(collector: Collector) -> None:
    anon, user = f"cli-a-{uuid.uuid4().hex[:8]}", f"cli-u-{uuid.uuid4().hex[:8]}"
    collector.post("/v1/batch", {"batch": [
        {"type": "page", "anonymousId": anon, "name": "Home", "channel": "web", "timestamp": "2026-02-01T09:00:00Z"},
        {"type": "identify", "anonymousId": anon, "userId": user, "timestamp": "2026-02-01T09:05:00Z"},
        {"type": "track", "userId": user, "event": "Order Completed", "channel": "pos",
         "timestamp": "2026-02-03T09:00:00Z", "properties": {"revenue": 5}},
    ]})
    collector.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {u:String}", 2, {"u": user})
    result = reise(collector, "customer", anon)  # any linked id finds the customer
    assert result.returncode == 0, result.stderr
    assert f"customer_id                     {user}" in result.stdout
    timeline = result.stdout.split("touchpoints:")[1]
    assert timeline.index("page") < timeline.index("identify") < timeline.index("Order Completed")
    as_json = json.loads(reise(collector, "customer", user, "--json").stdout)
    assert as_json["contacts_before_first_purchase"] == 1
    assert [t["type"] for t in as_json["touchpoints"]] == ["page", "identify", "track"]
    missing = reise(collector, "customer", "nobody-" + uuid.uuid4().hex)
    assert missing.returncode == 1
    assert "no customer" in missing.stderr


def test_migrate_twice_on_a_fresh_store(tmp_path: Path, collector: Collector) -> None:
    env = {**collector.env(), "REISE_DSN": f"chdb://{tmp_path / 'data'}"}
    first = reise(collector, "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "0001_touchpoints" in first.stdout and "0005_journey_views" in first.stdout
    second = reise(collector, "migrate", env=env)
    assert second.stdout.strip() == "reise: migrations up to date"


def test_serve_without_keys_generates_and_reuses_development_keys(tmp_path: Path) -> None:
    dev = Collector(data_dir=tmp_path / "data")
    dev.extra_env = {"REISE_WRITE_KEYS": "", "REISE_ADMIN_KEY": ""}
    dev.start()
    try:
        assert dev.log_path is not None
        printed = dev.log_path.read_text()
        write_key = printed.split("write key: ")[1].split()[0]
        admin_key = printed.split("admin key: ")[1].split()[0]
        assert write_key.startswith("wk_dev_") and admin_key.startswith("ak_dev_")
        assert dev.post("/v1/track", {"userId": "d", "event": "x"}, key=write_key).status == 200
        env = {**dev.env(), "REISE_ADMIN_KEY": ""}  # the CLI finds the development admin key itself
        result = reise(dev, "sql", "SELECT 1 AS one", env=env)
        assert result.returncode == 0, result.stderr
        dev.stop()
        dev.start()
        assert dev.post("/v1/track", {"userId": "d", "event": "x"}, key=write_key).status == 200
    finally:
        if dev.process is not None:
            dev.stop()


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(collector: Collector) -> None:
    """`reise sql ... | head -1`: the reader closes the pipe; no traceback, exit status 0."""
    process = subprocess.Popen([sys.executable, "-m", "collector", "sql", "SELECT number FROM numbers(50000)"],
                               cwd=ROOT, env=collector.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().split() == [b"number"]
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert b"Traceback" not in process.stderr.read()

"""The cluster rendering of the migrations: replicated, sharded by customer, views where they belong, dedup kept.

No ClickHouse server or Keeper runs here, so the rendered SQL is checked structurally and parsed by the real
ClickHouse parser in chDB (``formatQuery``); the rewritten query views also run against the embedded schema.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.identity.resolver import Link, resolve_links
from collector.store.clickhouse import Store
from collector.store.cluster import ClusterRenderer, local_name
from collector.store.migrate import LEDGER_DDL, load_migrations, render_migrations, rendered_sql, split_statements
from tests.helpers import ROOT

CLUSTER = "reise_cluster"
SHARD_BY_KEY = {"cityHash64(key)"}  # these tables hold no customer id: keys only
KEYED_TABLES = ("event_keys", "ended_sessions", "dead_letter_replays", "suppressed_ids", "analytics_settings",
                "segment_definitions", "contact_hours")
SHARD_BY_CUSTOMER = {
    "cityHash64(journey_id)",
    "cityHash64(customer_id)",
    "cityHash64(if(customer_id != '', customer_id, anonymous_id))",
}


def rendered() -> list[str]:
    """Every cluster statement, ledger first, as `reise migrate --cluster --print` would show them."""
    return list(split_statements(rendered_sql(CLUSTER, "reise")))


def plain_statements() -> list[str]:
    """Every single-server statement of the migrations."""
    return [s for m in load_migrations() for s in m.statements]


def plain_tables() -> dict[str, str]:
    """Single-server tables -> their CREATE statement."""
    tables = {}
    for statement in plain_statements():
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if match:
            tables[match.group(1)] = statement
    return tables


def creates(kind: str) -> dict[str, str]:
    """Rendered CREATE statements of one kind (TABLE, MATERIALIZED VIEW, VIEW) by name."""
    found = {}
    for statement in rendered():
        match = re.match(rf"CREATE (?:OR REPLACE )?{kind} (?:IF NOT EXISTS )?(\w+) ON CLUSTER (\w+)", statement)
        if match:
            assert match.group(2) == CLUSTER
            found[match.group(1)] = statement
    return found


def test_every_statement_runs_on_the_cluster() -> None:
    statements = rendered()
    assert len(statements) > len(plain_statements())
    for statement in statements:
        if statement.startswith("INSERT INTO"):  # a backfill runs once, through the Distributed table
            continue
        assert f" ON CLUSTER {CLUSTER}" in statement.split("\n", 1)[0], statement[:200]


def test_a_backfill_inserts_once_through_the_distributed_table_reading_every_shard() -> None:
    inserts = [s for s in rendered() if s.startswith("INSERT INTO")]
    assert [s.split("\n", 1)[0] for s in inserts] == ["INSERT INTO customer_state (customer_id, contact_details)",
                                                      "INSERT INTO contact_hours (hour, stage_rank, channel, contacts)"]
    for insert in inserts:
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", insert)
        assert sources and not [s for s in sources if s.endswith("_local")], sources
    assert "GLOBAL LEFT JOIN" in inserts[0]
    # 0019: the live customers' contacts, the merged-away keys found over every shard
    assert "customer_id GLOBAL NOT IN (SELECT customer_id FROM customer_state WHERE hidden = 1)" in inserts[1]


def test_the_analytics_views_read_every_shard() -> None:
    views = creates("VIEW")
    analytics = ("customer_contacts", "attribution_windows", "attribution_contact_credits", "attribution_purchases",
                 "attribution_credits", "attribution", "sessions", "journey_paths", "stage_durations", "cohorts")
    for name in analytics:
        sources = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", views[name]))
        assert sources and not [s for s in sources if s.endswith("_local")], (name, sources)
    # which customers have several state rows is counted over every shard (a key's rows may be on several)
    for name in ("customer_contacts",):  # attribution_windows, sessions and journey_paths read it
        assert views[name].count("GLOBAL NOT IN (SELECT customer_id FROM customer_state") == 1, name
        assert views[name].count("GLOBAL IN (SELECT customer_id FROM customer_state") == 1, name
    assert "analytics_settings" in creates("TABLE") and "analytics_settings_local" in creates("TABLE")


def test_the_journey_views_read_every_shard_in_one_level() -> None:
    """Lookups: the id's key by a scalar sub-query (run once, on the node asked); every journey view: FINAL on each
    shard (0017, 0022), customer_journey with its declared columns after ON CLUSTER, as the engine's grammar has it."""
    views = creates("VIEW")
    lookup, journey, funnel = views["customer_journey_of"], views["customer_journey"], views["stage_funnel"]
    assert lookup.startswith(f"CREATE OR REPLACE VIEW customer_journey_of ON CLUSTER {CLUSTER}")
    assert "PREWHERE customer_id = (\n    SELECT if(count() = 0, {id:String}, argMax(customer_id, version))" in lookup
    assert "FROM identity_keys" in lookup and " IN (" not in lookup
    declared = f"CREATE OR REPLACE VIEW customer_journey ON CLUSTER {CLUSTER}\n(\n    customer_id String,"
    assert journey.startswith(declared)
    assert journey.rstrip().endswith("SETTINGS optimize_move_to_prewhere_if_final = 1")
    for statement in (lookup, journey):  # one level: customer_state itself, no view over a view
        assert re.findall(r"\bFROM\s+(\w+)", statement).count("customer_state") == 1
        assert "customer_journey " not in statement.split("\n", 1)[1]
    # every row of a customer is on the shard of its key: FINAL on the Distributed table merges it there
    for statement in (lookup, journey, funnel):
        assert "FROM customer_state FINAL" in statement and "customer_state_local" not in statement
    assert re.search(r"cityHash64\(customer_id\)", creates("TABLE")["customer_state"])
    # a table's settings (0021) change where its parts are: on each shard's replicated table
    assert ("ALTER TABLE customer_state_local ON CLUSTER reise_cluster MODIFY SETTING min_compress_block_size = 4096, "
            "max_compress_block_size = 16384") in rendered()


def test_every_statement_parses_as_clickhouse_sql(store: Store) -> None:
    for statement in rendered():
        formatted = store.query("SELECT formatQuery({q:String})", {"q": statement}).rows[0][0]
        assert f"ON CLUSTER {CLUSTER}" in formatted or formatted.startswith("INSERT INTO ")


def test_every_table_is_replicated_with_its_dedup_window_kept() -> None:
    tables = creates("TABLE")
    for name, plain in plain_tables().items():
        local = tables[local_name(name)]
        engine = re.search(r"ENGINE = (\w+)\('([^']+)', '\{replica\}'", local)
        assert engine, local
        original = re.search(r"ENGINE = (\w+)", plain)
        assert original and engine.group(1) == "Replicated" + original.group(1)
        assert "{shard}" in engine.group(2) and engine.group(2).endswith("/" + local_name(name))
        window = re.search(r"non_replicated_deduplication_window = (\d+)", plain)
        assert window, f"{name} has no dedup window in the single-server schema"
        assert f"replicated_deduplication_window = {window.group(1)}" in local
        assert "non_replicated" not in local
    ledger = tables["reise_migrations"]
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/reise_migrations'" in ledger
    replicated_or_distributed = [s for s in tables.values() if "Replicated" in s or "Distributed(" in s]
    assert len(replicated_or_distributed) == len(tables)


def test_every_distributed_table_is_sharded_by_the_customer_id() -> None:
    tables = creates("TABLE")
    for name in plain_tables():
        distributed = tables[name]
        match = re.search(r"AS (\w+)\nENGINE = Distributed\('(\w+)', 'reise', '(\w+)', (.+)\)$", distributed)
        assert match, distributed
        assert match.group(1) == match.group(3) == local_name(name)
        assert match.group(2) == CLUSTER
        assert match.group(4) in (SHARD_BY_KEY if name in KEYED_TABLES else SHARD_BY_CUSTOMER)
    # a customer's own touchpoints, state and links meet on one shard: all hash the same id
    assert tables["touchpoints"].endswith("cityHash64(journey_id))")
    # the identity map is sharded like the touchpoints it resolves, so the view's join on each shard is local
    assert tables["identity_keys"].endswith("cityHash64(journey_id))")
    assert tables["customer_state"].endswith("cityHash64(customer_id))")


def test_local_tables_are_created_before_their_distributed_tables() -> None:
    order = [re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", s) for s in rendered()]
    names = [m.group(1) for m in order if m]
    for table in plain_tables():
        assert names.index(local_name(table)) < names.index(table)


def test_materialized_views_read_and_write_local_tables() -> None:
    views = creates("MATERIALIZED VIEW")
    # the first two were dropped again by 0008 (identity links are written by the resolver; per-id state is gone)
    assert set(views) == {"identity_links_mv", "journey_state_mv", "event_keys_mv", "customer_state_mv",
                          "contact_hours_mv"}
    for statement in views.values():
        target = re.search(r"\bTO (\w+)", statement)
        assert target and target.group(1).endswith("_local")
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", statement)
        assert sources and all(source.endswith("_local") for source in sources), sources


def test_query_views_read_every_shard_with_global_joins() -> None:
    views = creates("VIEW")
    assert {"identity_map", "customer_journey", "customer_journey_of", "stage_funnel"} <= set(views)
    for name, statement in views.items():
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", statement)
        assert not [s for s in sources if s.endswith("_local")], (name, sources)
        joins = re.findall(r"(\w+)\s+(?:LEFT\s+|INNER\s+|RIGHT\s+|FULL\s+)?JOIN\b", statement)
        assert all(word in ("GLOBAL", "ARRAY") for word in joins), (name, joins)
    assert "ARRAY JOIN" in views["stage_funnel"] and "GLOBAL ARRAY" not in views["stage_funnel"]


def test_column_changes_reach_both_the_local_and_the_distributed_table() -> None:
    renderer = ClusterRenderer(CLUSTER)
    renderer.render(plain_tables()["touchpoints"])
    add = renderer.render("ALTER TABLE touchpoints ADD COLUMN IF NOT EXISTS x String")
    assert add == [f"ALTER TABLE touchpoints_local ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x String",
                   f"ALTER TABLE touchpoints ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x String"]
    ttl = renderer.render("ALTER TABLE touchpoints MODIFY TTL toDateTime(timestamp) + INTERVAL 2 YEAR")
    assert ttl == [f"ALTER TABLE touchpoints_local ON CLUSTER {CLUSTER} MODIFY TTL toDateTime(timestamp) "
                   "+ INTERVAL 2 YEAR"]
    dropped = renderer.render("DROP TABLE IF EXISTS touchpoints")
    assert dropped == [f"DROP TABLE IF EXISTS touchpoints ON CLUSTER {CLUSTER} SYNC",
                       f"DROP TABLE IF EXISTS touchpoints_local ON CLUSTER {CLUSTER} SYNC"]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("INSERT INTO touchpoints VALUES ('x')", "cannot render"),
        ("CREATE TABLE t (customer_id String) ENGINE = Memory", "MergeTree"),
        ("CREATE TABLE t (x String) ENGINE = MergeTree ORDER BY x", "cannot shard"),
        ("CREATE MATERIALIZED VIEW v TO nowhere AS SELECT 1", "not a replicated table"),
    ],
)
def test_statements_it_cannot_render_are_refused(statement: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClusterRenderer(CLUSTER).render(statement)


def test_names_must_be_identifiers() -> None:
    with pytest.raises(ConfigError, match="identifier"):
        ClusterRenderer("reise; DROP TABLE x")
    with pytest.raises(ConfigError, match="identifier"):
        ClusterRenderer("reise", "db'x")


def test_single_server_rendering_is_the_migrations_unchanged() -> None:
    assert render_migrations(None) == load_migrations()
    assert split_statements(rendered_sql(None)) == (LEDGER_DDL.strip(), *plain_statements())


def test_rewritten_query_views_give_the_same_rows_on_one_server(store: Store) -> None:
    """The cluster views, run embedded (their Distributed tables are the plain tables here), match the originals."""
    store.command(
        "INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, anonymous_id, channel, stage,"
        " stage_rank, timestamp, original_timestamp, received_at, revenue) VALUES"
        " ('cl-1', 'page', 'Viewed', 'cl-anon', '', 'cl-anon', 'web', 'awareness', 1, '2024-01-01', '2024-01-01',"
        "  '2024-01-01', 0),"
        " ('cl-2', 'track', 'Order Completed', 'cl-cust', 'cl-cust', 'cl-anon', 'pos', 'purchase', 3, '2024-01-02',"
        "  '2024-01-02', '2024-01-02', 12.5),"
        " ('cl-3', 'track', 'Order Completed', 'cl-solo', 'cl-solo', '', 'web', 'purchase', 3, '2024-01-03',"
        "  '2024-01-03', '2024-01-03', 3)"
    )
    resolve_links(store, [Link(linked_at=1704153600.0, message_id="cl-2", anonymous_id="cl-anon",
                               customer_id="cl-cust", source="test")], "cluster-views-test", max_ids=100)
    views = creates("VIEW")  # each view as the last migration that defines it renders it
    for name in ("customer_journey", "customer_journey_of", "stage_funnel", "identity_map"):
        sql = re.sub(rf"^CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?{name} ON CLUSTER {CLUSTER}\n", "",
                     views[name])
        store.command(f"CREATE OR REPLACE VIEW cluster_{name} {sql}")
    columns = "customer_id, ids, contacts, purchases, revenue, reached_purchase_at, contacts_before_first_purchase"
    where = "WHERE customer_id LIKE 'cl-%' ORDER BY customer_id"
    original = store.query(f"SELECT {columns} FROM customer_journey {where}").rows
    clustered = store.query(f"SELECT {columns} FROM cluster_customer_journey {where}").rows
    assert [row[0] for row in original] == ["cl-cust", "cl-solo"]
    assert original[0][1] == ["cl-anon", "cl-cust"]
    assert clustered == original
    assert store.query("SELECT * FROM cluster_stage_funnel").rows == store.query("SELECT * FROM stage_funnel").rows
    for key in ("cl-anon", "cl-cust", "cl-solo", "cl-nobody"):
        one = "SELECT * FROM {}customer_journey_of(id = {{id:String}})"
        assert store.query(one.format("cluster_"), {"id": key}).rows == store.query(one.format(""), {"id": key}).rows
    assert store.query("SELECT * FROM cluster_identity_map WHERE anonymous_id = 'cl-anon'").rows == [
        ("cl-anon", "cl-cust")]


def reise(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    """Run the reise CLI."""
    env = {"PATH": "/usr/bin:/bin", "REISE_DSN": dsn}
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_migrate_print_shows_the_cluster_sql_without_a_server(tmp_path: Path) -> None:
    shown = reise("migrate", "--cluster", CLUSTER, "--print", dsn="http://reise:secret@ch-1:8123/reise")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == rendered_sql(CLUSTER, "reise")


def test_migrate_on_a_cluster_refuses_the_embedded_store(tmp_path: Path) -> None:
    refused = reise("migrate", "--cluster", CLUSTER, dsn=f"chdb://{tmp_path}/data")
    assert refused.returncode == 2
    assert "a cluster needs a ClickHouse server" in refused.stderr

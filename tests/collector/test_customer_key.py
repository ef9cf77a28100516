"""reise_customer_key(id) (migration 0020): the customer key of any id, so that the plain view finds a customer by
any of their ids with the rows customer_journey_of gives; allowed by the query guard by name, with every other
user-defined function, CREATE FUNCTION and DROP FUNCTION refused; rendered ON CLUSTER."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.errors import QueryForbidden, QueryRefused
from collector.store.clickhouse import Store
from collector.store.cluster import ClusterRenderer
from collector.store.migrate import load_migrations
from collector.store.readonly import QueryLimits
from tests.e2e.state_rows import write_state_rows

LIMITS = QueryLimits()
# a two-hop chain ck-anon -> ck-card -> ck-cust (links in reverse order of arrival), and ck-alone with no link
TOUCHPOINTS = [("ck-1", "ck-anon", "web", 1, "2025-06-01 10:00:00", 0, "summer"),
               ("ck-2", "ck-card", "pos", 2, "2025-06-02 10:00:00", 0, ""),
               ("ck-3", "ck-cust", "web", 3, "2025-06-03 10:00:00", 25, ""),
               ("ck-4", "ck-alone", "email", 1, "2025-06-04 10:00:00", 0, "")]
LINKS = [("ck-card", "ck-cust", "2025-06-03 10:00:00"), ("ck-anon", "ck-card", "2025-06-02 10:00:00")]
BY_KEY = "SELECT * FROM customer_journey WHERE customer_id = reise_customer_key({id:String})"
VIEW = "SELECT * FROM customer_journey_of(id = {id:String})"


@pytest.fixture(scope="module")
def chained(store: Store) -> Store:
    write_state_rows(store, [TOUCHPOINTS], LINKS, "customer-key-test")
    return store


@pytest.mark.parametrize(("id_", "key"), [("ck-anon", "ck-cust"), ("ck-card", "ck-cust"), ("ck-cust", "ck-cust"),
                                          ("ck-alone", "ck-alone"), ("ck-nobody", None)])
def test_the_function_finds_what_customer_journey_of_finds(chained: Store, id_: str, key: str | None) -> None:
    # through the query guard, as an analyst's query runs: the same columns, types and rows as the view
    found = chained.query_readonly(BY_KEY, {"id": id_}, limits=LIMITS)
    view = chained.query_readonly(VIEW, {"id": id_}, limits=LIMITS)
    assert (found.columns, found.types, found.rows) == (view.columns, view.types, view.rows)
    assert [row[0] for row in found.rows] == ([key] if key else [])
    if id_ == "ck-anon":
        assert found.records()[0]["ids"] == ["ck-anon", "ck-card", "ck-cust"]
        assert found.records()[0]["contacts"] == 3


def test_a_column_as_its_argument_is_an_error_not_a_wrong_answer(chained: Store) -> None:
    for sql in ("SELECT reise_customer_key(journey_id) FROM touchpoints WHERE message_id = 'ck-1'",
                "SELECT reise_customer_key(customer_id) FROM identity_keys LIMIT 1"):
        with pytest.raises(QueryRefused):
            chained.query_readonly(sql, {}, limits=LIMITS)


@pytest.fixture
def other_function(store: Store) -> Iterator[str]:
    """A SQL function the migrations did not create (as an administrator might add one)."""
    store.command("CREATE FUNCTION IF NOT EXISTS ck_other_function AS (x) -> concat(x, '!')")
    try:
        yield "ck_other_function"
    finally:
        store.command("DROP FUNCTION IF EXISTS ck_other_function")


def test_the_guard_allows_reise_functions_only(store: Store, other_function: str) -> None:
    store._guard = None  # read the catalogue again, with the other function in it
    assert store.query_readonly("SELECT reise_customer_key('ck-anon') AS key", {}, limits=LIMITS).rows == [
        ("ck-cust",)]
    with pytest.raises(QueryForbidden, match=other_function):
        store.query_readonly(f"SELECT {other_function}('x')", {}, limits=LIMITS)
    assert store.query(f"SELECT {other_function}('x')").rows == [("x!",)]  # it exists: the guard refused it


@pytest.mark.parametrize(("sql", "refused"), [
    ("CREATE FUNCTION ck_made AS (x) -> x", "CREATE FUNCTION"),
    ("CREATE OR REPLACE FUNCTION reise_customer_key AS (id) -> id", "CREATE FUNCTION"),
    ("DROP FUNCTION reise_customer_key", "DROP FUNCTION"),
])
def test_analysts_cannot_create_or_drop_functions(store: Store, sql: str, refused: str) -> None:
    with pytest.raises(QueryForbidden, match=refused):
        store.query_readonly(sql, {}, limits=LIMITS)
    assert store.query("SELECT count() FROM system.functions WHERE name IN ('ck_made', 'reise_customer_key')"
                       ).rows == [(1,)]
    assert store.query("SELECT reise_customer_key('nobody-ck')").rows == [("nobody-ck",)]  # unchanged


def test_the_function_is_created_on_every_node_of_a_cluster(store: Store) -> None:
    (migration,) = [m for m in load_migrations() if m.version == 20]
    renderer = ClusterRenderer("reise_cluster", "reise")
    (statement,) = [s for plain in migration.statements for s in renderer.render(plain) if "FUNCTION" in s]
    assert statement.startswith("CREATE OR REPLACE FUNCTION reise_customer_key ON CLUSTER reise_cluster AS (id) ->")
    assert "FROM identity_keys\n" in statement  # the Distributed table: every shard's keys
    canonical = store.query("SELECT formatQuery({s:String})", {"s": statement}).rows[0][0]
    assert str(canonical).startswith("CREATE OR REPLACE FUNCTION reise_customer_key ON CLUSTER reise_cluster AS id ->")
    for head in ("CREATE FUNCTION", "CREATE FUNCTION IF NOT EXISTS"):
        assert renderer.render(f"{head} f AS (x) -> x") == [f"{head} f ON CLUSTER reise_cluster AS (x) -> x"]

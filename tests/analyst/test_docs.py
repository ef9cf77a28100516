"""docs/analysts.md: every example query runs and returns rows; every table and view is documented."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, Collector, http

DOC = ROOT / "docs" / "analysts.md"
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.DOTALL)
INTERNAL = ("reise_migrations", "ended_sessions")  # bookkeeping, not data


def _described(collector: Collector, table: str) -> list[list[str]]:
    """DESCRIBE's rows of a table or view; none for a parameterised view (it has no schema without its parameters)."""
    reply = http("POST", collector.url + "/v1/query", {"sql": f"DESCRIBE TABLE {table}"}, key=collector.admin_key)
    return list(reply.body["rows"]) if reply.status == 200 else []


def _blocks() -> list[str]:
    return SQL_BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_ten_example_queries() -> None:
    """Ten questions at least, each with its SQL."""
    assert len(_blocks()) >= 10


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_every_example_query_returns_rows(demo_collector: Collector, index: int) -> None:
    """Each ```sql block of the doc runs read-only against demo data and returns at least one row."""
    sql = _blocks()[index]
    rows = demo_collector.query(sql)
    assert rows, f"no rows from:\n{sql}"
    assert any(value not in (None, 0, "", [], {}) for row in rows for value in row.values()), sql


def test_every_table_and_view_is_documented_with_its_columns(demo_collector: Collector) -> None:
    """A section per table and view (materialized-view triggers aside) naming every column."""
    text = DOC.read_text(encoding="utf-8")
    # system tables are closed to the query endpoint: SHOW TABLES and DESCRIBE are what analysts have too;
    # the materialized views' triggers are named *_mv
    names = [row["name"] for row in demo_collector.query("SHOW TABLES")
             if not row["name"].endswith("_mv") and not row["name"].startswith(".")]
    columns = [{"table": name, "name": column[0]} for name in names
               for column in _described(demo_collector, name)]
    missing = []
    for table in sorted({c["table"] for c in columns} - set(INTERNAL)):
        match = re.search(rf"^### `{re.escape(table)}`.*?(?=^### |^## |\Z)", text, re.DOTALL | re.MULTILINE)
        if not match:
            missing.append(f"{table} (no section)")
            continue
        section = match.group(0)
        missing += [f"{table}.{c['name']}" for c in columns
                    if c["table"] == table and f"`{c['name']}`" not in section]
    assert not missing, f"document these in docs/analysts.md: {missing}"

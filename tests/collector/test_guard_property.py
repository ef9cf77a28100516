"""The query guard, property-tested: generated SELECTs over Reise's tables answer; any generated use of a
forbidden function, table function, clause or table, anywhere in such a SELECT, is refused (issue 12)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import QueryForbidden
from collector.store.clickhouse import Store
from collector.store.readonly import QueryLimits

LIMITS = QueryLimits(timeout=10, max_rows=10_000, max_bytes=16 * 1024**2, max_memory=256 * 1024**2)
TABLES = {
    "touchpoints": ["customer_id", "channel", "stage", "revenue", "event"],
    "customer_journey": ["customer_id", "current_stage", "contacts", "revenue"],
    "dead_letters": ["source", "reason", "customer_id"],
    "identity_links": ["anonymous_id", "customer_id"],
}
AGGREGATES = ["count()", "uniqExact({c})", "any({c})", "countIf(toString({c}) != '')", "max(toString({c}))"]
FORBIDDEN_SCALARS = ["file('/proc/self/environ')", "file('/etc/passwd', 'RawBLOB')", "dictGet('d', 'a', 1)",
                     "joinGet('j', 'v', 1)", "hasColumnInTable('system', 'processes', 'query')",
                     "getServerSetting('path')", "showCertificate()", "addressToSymbol(1)",
                     "filesystemAvailable()", "getMacro('x')"]
FORBIDDEN_TABLES = ["system.processes", "system.disks", "system.stack_trace", "system.errors", "system.tables",
                    "information_schema.tables", "INFORMATION_SCHEMA.COLUMNS", "`system`.`one`"]
FORBIDDEN_TABLE_FUNCTIONS = ["file('/etc/passwd', 'LineAsString')", "url('http://127.0.0.1:1/', 'CSV')",
                             "s3('http://127.0.0.1:1/b/k')", "remote('127.0.0.1', system.one)",
                             "mysql('h:3306', 'd', 't', 'u', 'p')", "postgresql('h:5432', 'd', 't', 'u', 'p')",
                             "executable('id', 'TSV', 'x String')", "input('x String')", "merge('system', '.*')",
                             "jdbc('d', 't')", "odbc('d', 't')", "hdfs('hdfs://h/f', 'TSV')",
                             "azureBlobStorage('x')", "loop(system.one)", "python(x)"]
VALUES = ["{v:String}", "'x'", "lower('Y')"]
TAILS = [" INTO OUTFILE '/tmp/reise-guard-out' TRUNCATE", " SETTINGS max_execution_time = 1000",
         " INTO OUTFILE '/tmp/reise-guard-out' APPEND", " SETTINGS readonly = 0"]


@st.composite
def selects(draw: st.DrawFn) -> str:
    """A SELECT over one of Reise's tables: columns or aggregates, WHERE, GROUP BY, ORDER, LIMIT, maybe in a
    WITH, a subquery, a UNION or a JOIN."""
    table = draw(st.sampled_from(sorted(TABLES)))
    columns = TABLES[table]
    column = draw(st.sampled_from(columns))
    aggregate = draw(st.booleans())
    if aggregate:
        select = f"{column}, " + draw(st.sampled_from(AGGREGATES)).format(c=draw(st.sampled_from(columns)))
    else:
        select = ", ".join(draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True)))
    sql = f"SELECT {select} FROM {table}"
    if draw(st.booleans()):
        value = draw(st.sampled_from(VALUES))
        sql += f" WHERE toString({column}) != {value}"
    if aggregate:
        sql += f" GROUP BY {column}"
    if draw(st.booleans()):
        sql += " ORDER BY 1"
    sql += f" LIMIT {draw(st.integers(1, 50))}"  # LIMIT 0: clickhouse-connect probes and refuses (old bug)
    shape = draw(st.sampled_from(["plain", "with", "subquery", "union", "join"]))
    if shape == "with":
        return f"WITH q AS ({sql}) SELECT * FROM q"
    if shape == "subquery":
        return f"SELECT count() FROM ({sql})"
    if shape == "union":
        return f"SELECT count() AS n FROM ({sql}) UNION ALL SELECT toUInt64(1)"
    if shape == "join":
        return (f"SELECT a.customer_id FROM customer_journey AS a LEFT JOIN ({sql}) AS b ON 1 = 1 "
                f"WHERE a.customer_id IN (SELECT customer_id FROM touchpoints) LIMIT 5")
    return sql


@st.composite
def forbidden(draw: st.DrawFn) -> str:
    """An allowed SELECT with one forbidden thing put into it: a function in the select list or WHERE, a table or a
    table function in FROM, JOIN or a subquery, or an INTO OUTFILE / SETTINGS clause."""
    sql = draw(selects())
    kind = draw(st.sampled_from(["scalar", "table", "table_function", "tail"]))
    if kind == "tail":
        return sql + draw(st.sampled_from(TAILS))
    if kind == "scalar":
        bad = draw(st.sampled_from(FORBIDDEN_SCALARS))
        where = draw(st.sampled_from(["select", "where", "subquery"]))
        if where == "select":
            return f"SELECT length(toString({bad})) AS n, * FROM ({sql})"
        if where == "where":
            return f"SELECT * FROM ({sql}) WHERE length(toString({bad})) > 0"
        return f"SELECT * FROM ({sql}) WHERE 1 IN (SELECT length(toString({bad})))"
    source = draw(st.sampled_from(FORBIDDEN_TABLES if kind == "table" else FORBIDDEN_TABLE_FUNCTIONS))
    where = draw(st.sampled_from(["from", "join", "in"]))
    if where == "from":
        return f"SELECT count() FROM {source}"
    if where == "join":
        return f"SELECT * FROM ({sql}) AS a CROSS JOIN (SELECT * FROM {source} LIMIT 1) AS b"
    return f"SELECT * FROM ({sql}) WHERE 1 IN (SELECT 1 FROM {source})"


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(sql=selects())
def test_generated_selects_over_reise_tables_answer(store: Store, sql: str) -> None:
    result = store.query_readonly(sql, {"v": "x"}, limits=LIMITS)
    assert result.columns


@FAST
@given(sql=forbidden())
def test_any_forbidden_function_clause_or_table_is_refused(store: Store, sql: str) -> None:
    try:
        store.query_readonly(sql, {"v": "x"}, limits=LIMITS)
    except QueryForbidden:
        pass
    else:
        raise AssertionError(f"not refused: {sql}")
    assert not Path("/tmp/reise-guard-out").exists()

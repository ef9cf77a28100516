"""Analysts' queries: parsed by the engine, checked by the query guard, run read-only within byte, memory and
time limits.

1. ``formatQuery`` of the SQL, sent as a parameter: the engine's parser refuses several statements and syntax
   errors, and gives the one statement back in its canonical form (no comments, no trailing semicolon). That
   form is what is explained and run, so nothing the client library appends can become a second statement.
2. ``EXPLAIN AST`` of that statement, checked by ``collector.store.sqlguard.QueryGuard``.
3. The statement itself with ``readonly=1`` and the limits as query settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from collector.errors import QueryForbidden
from collector.store.sqlguard import QueryGuard
from collector.store.times import query_rows

__all__ = ["QueryLimits", "checked_statement", "run_checked"]

SYNTAX_ERROR = 62


def _error_code(exc: DatabaseError) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


@dataclass(frozen=True)
class QueryLimits:
    """The bounds of every analyst's query (REISE_QUERY_TIMEOUT, _MAX_ROWS, _MAX_BYTES, _MAX_MEMORY)."""

    timeout: float = 30.0
    max_rows: int = 100_000
    max_bytes: int = 64 * 1024**2
    max_memory: int = 1024**3

    def settings(self) -> dict[str, Any]:
        """The ClickHouse settings that enforce these limits (readonly last: once set, no other may change)."""
        return {
            "max_execution_time": self.timeout,
            "max_result_rows": self.max_rows,
            "max_result_bytes": self.max_bytes,
            "max_memory_usage": self.max_memory,
            "result_overflow_mode": "throw",
            "readonly": 1,
        }


def checked_statement(client: Client, guard: QueryGuard, sql: str, parameters: Mapping[str, Any]) -> tuple[str, str]:
    """The statement in the engine's canonical form and its kind, once the guard has accepted its tree.

    Raises QueryForbidden for what the guard refuses (a ClickHouseError for what the parser refuses).
    """
    statement = str(client.query("SELECT formatQuery({sql:String})", parameters={"sql": sql}).result_rows[0][0])
    try:
        tree = client.query(f"EXPLAIN AST {statement}", parameters=dict(parameters)).result_rows
    except DatabaseError as exc:
        if _error_code(exc) != SYNTAX_ERROR:
            raise
        # parsed alone but not after EXPLAIN AST: a statement EXPLAIN cannot take (SYSTEM, CREATE, GRANT, ...)
        raise QueryForbidden(f"{statement.split(maxsplit=1)[0].upper()}: only SELECT, DESCRIBE and SHOW TABLES "
                             "are allowed") from None
    return statement, guard.check([str(row[0]) for row in tree])


def run_checked(client: Client, statement: str, kind: str, parameters: Mapping[str, Any],
                limits: QueryLimits) -> tuple[list[str], list[str], Any]:
    """Run a checked statement within the limits: column names, type names and rows.

    chDB sends no column names when no row comes back; they are then taken from ``DESCRIBE``.
    """
    settings = limits.settings()
    names, types, rows = query_rows(client, statement, parameters=parameters, settings=settings)
    if rows or names:
        return names, types, rows
    if kind != "SELECT":
        return [], [], []  # DESCRIBE, SHOW TABLES: nothing to describe
    described = client.query(f"DESCRIBE ({statement})", parameters=dict(parameters), settings=settings).result_rows
    return [str(r[0]) for r in described], [str(r[1]) for r in described], []

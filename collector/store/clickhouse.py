"""ClickHouse access through clickhouse-connect: one client per thread, never on the event loop."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import clickhouse_connect
import orjson
from clickhouse_connect.driver.binding import format_str, quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import QueryRefused, ReiseError, StoreError, StoreUnavailable
from collector.settings import require_engine
from collector.store.decisions import Operation, Verdict, decide, first_line
from collector.store.readonly import QueryLimits, checked_statement, run_checked
from collector.store.schema import TOUCHPOINT_COLUMNS
from collector.store.sqlguard import GuardCatalog, QueryGuard
from collector.store.times import query_rows
from collector.store.typed_insert import BODY_FORMAT, TypedInsert, typed_insert

__all__ = ["QueryResult", "Store", "connect", "heredoc_json"]

INSERT_SETTINGS = {
    "async_insert": 0,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # property and trait maps arrive as JSON objects: non-string values are kept as their JSON text
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
}
# Embedded (chDB) inserts share the collector's cores with its event loop: parsed and run on the writer thread
# alone they cost least CPU (about 2.5 us a touchpoint less than with parallel parsing and a thread pool)
EMBEDDED_INSERT_SETTINGS = {"input_format_parallel_parsing": 0, "max_threads": 1}
# An INSERT ... SELECT squashes its result up to these sizes before writing a part: far above any one statement of
# the resolver, so its copy and its markers are always one part (Store.insert_select)
ONE_BLOCK_SETTINGS = {"min_insert_block_size_rows": 1 << 40, "min_insert_block_size_bytes": 1 << 40}
GUARD_CATALOG_SECONDS = 60.0  # how long the query guard's catalogue is trusted before it is read again
# Embedded (chDB) sessions analyse an ordinary view as the sub-query it is (analyzer_inline_views), so a condition
# on the view's columns is planned once with the view's body instead of across a separately planned view: a lookup
# `customer_journey WHERE customer_id = X` costs about 2.4 ms (17%) less CPU at 1M customers, with the same rows
# (bench/README.md, journey_scale.py). Set only where the engine knows the setting (chDB >= 4.4, ClickHouse 26.x).
EMBEDDED_SESSION_SETTINGS = {"analyzer_inline_views": 1}
KNOWN_SETTINGS_SQL = "SELECT name FROM system.settings WHERE name IN {names:Array(String)}"

COLUMN_TYPES_SQL = """
SELECT name, type FROM system.columns
WHERE database = currentDatabase() AND table = {table:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')
"""

STORED_KEYS_SQL = """
SELECT DISTINCT key FROM event_keys
WHERE key IN (SELECT arrayJoin(keys) FROM format(JSONCompactEachRow, 'keys Array(String)', $keys$))
"""


def heredoc_json(value: Any) -> bytes:
    """A value as one binary ``$name$`` parameter (a heredoc the server reads as is) holding its JSON.

    For long lists of ids, which as ``{name:Array(String)}`` would be spelt out in the SQL text and parsed
    element by element. A ``$`` in the data is sent as the JSON escape ``\\u0024``, so nothing in it can end
    the heredoc. Read it with ``format(JSONCompactEachRow, 'name Type', $name$)``.
    """
    return orjson.dumps([value]).replace(b"$", b"\\u0024")


def _query_size(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Room in ``max_query_size`` for the heredoc parameters (bytes), which travel inside the query text: each as
    often as the statement names it."""
    size = sum(len(v) * max(1, sql.count(name)) for name, v in params.items() if isinstance(v, bytes))
    return {"max_query_size": size + 262_144} if size else {}


def settings_clause(settings: Mapping[str, Any]) -> str:
    """Settings as the body of a SETTINGS clause: ``name = 'value', ...`` (values as quoted string literals, which
    ClickHouse converts to each setting's type). Names must be identifiers (ValueError otherwise)."""
    for name in settings:
        if not name.isidentifier() or not name.isascii():
            raise ValueError(f"not a setting name: {name!r}")
    return ", ".join(f"{name} = {format_str(str(int(value) if isinstance(value, bool) else value))}"
                     for name, value in settings.items())


def connect(dsn: str) -> Client:
    """Open a clickhouse-connect client for a chdb:// or http(s):// DSN (failures decided by ``classify``)."""
    try:
        return clickhouse_connect.get_client(dsn=dsn, settings={"async_insert": 0})
    except ClickHouseError as exc:
        raise classify(exc, "connect") from exc


def _tune_embedded_session(client: Client) -> None:
    """Apply EMBEDDED_SESSION_SETTINGS to a new chDB session, each only if this engine has it."""
    try:
        rows = client.query(KNOWN_SETTINGS_SQL, parameters={"names": list(EMBEDDED_SESSION_SETTINGS)}).result_rows
        known = {str(row[0]) for row in rows}
        for name, value in EMBEDDED_SESSION_SETTINGS.items():
            if name in known:
                client.set_client_setting(name, value)
    except ClickHouseError as exc:
        with suppress(ClickHouseError):
            client.close()
        raise classify(exc, "connect") from exc


def classify(exc: BaseException, operation: Operation = "command") -> ReiseError:
    """The error to raise for a ClickHouse failure, by the one decision of ``store.decisions.decide``.

    StoreUnavailable: retry (writes retry every code but the bad-row ones); StoreError: the rows are bad;
    QueryRefused: a read-only query's statement is at fault (with ClickHouse's message).
    """
    verdict = decide(exc, operation)
    if verdict is Verdict.RETRY:
        return StoreUnavailable(first_line(exc))
    if verdict is Verdict.REFUSED:
        return QueryRefused(_query_message(exc))
    return StoreError(first_line(exc))


@dataclass(frozen=True)
class QueryResult:
    """Rows of a read-only query with their column names and ClickHouse types."""

    columns: list[str]
    types: list[str]
    rows: Sequence[Sequence[Any]]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Store:
    """Thread-aware access to ClickHouse; every method blocks, so call it from a worker thread."""

    def __init__(self, *, dsn: str) -> None:
        require_engine(dsn)  # a chdb:// DSN without the embedded extra: say what to install, now
        self.dsn = dsn
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        self._guard: tuple[float, QueryGuard] | None = None
        self.embedded = dsn.startswith("chdb:")
        self._column_types: dict[str, dict[str, str]] = {}  # per table, read when a body names an unknown column

    def client(self) -> Client:
        """This thread's client, opened on first use."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = connect(self.dsn)
            if self.embedded:
                _tune_embedded_session(client)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _discard_client(self) -> None:
        """Close this thread's client after a failed call; the next call opens a fresh one.

        A query that failed or was killed part-way can leave its output in chDB's connection, where the next
        query on it would read it; a fresh client starts clean (on a server it costs one reconnect).
        """
        client: Client | None = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            with suppress(Exception):
                client.close()

    @contextmanager
    def _errors(self, operation: Operation = "command") -> Iterator[None]:
        try:
            yield
        except ClickHouseError as exc:
            self._discard_client()
            raise classify(exc, operation) from exc

    def ping(self) -> bool:
        """True when ClickHouse answers."""
        try:
            with self._errors():
                return bool(self.client().command("SELECT 1") == 1)
        except StoreError:
            return False

    def insert_touchpoints(self, rows: Sequence[Sequence[Any]], token: str) -> None:
        """Insert touchpoint rows idempotently: a replay with the same token is not counted twice."""
        self.insert_rows("touchpoints", TOUCHPOINT_COLUMNS, rows, token)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], token: str) -> None:
        """Insert rows of the named columns idempotently (nothing when there are none)."""
        if rows:
            body = b"".join([orjson.dumps(list(columns)), b"\n", *(orjson.dumps(r) + b"\n" for r in rows)])
            self.insert_encoded(table, body, token)

    def insert_encoded(self, table: str, body: bytes, token: str) -> None:
        """Insert a JSONCompactEachRowWithNames body (a line of column names, then rows) idempotently.

        The names travel with the rows, so a spool segment written before a schema change still inserts.
        LowCardinality columns are read as their plain type and converted per block (store.typed_insert).
        """
        settings = {**INSERT_SETTINGS, **(EMBEDDED_INSERT_SETTINGS if self.embedded else {}),
                    "insert_deduplication_token": token}
        statement = self._typed(table, body)
        try:
            with self._errors("insert"):
                if statement is None:
                    self.client().raw_insert(table, None, body, settings=settings, fmt=BODY_FORMAT)
                elif self.embedded:
                    self._insert_from_file(statement, body, settings)
                else:
                    self.client().command(statement.from_input(settings), data=body)
        except ReiseError:
            if statement is not None:  # the next attempt reads the columns again: a migration may have run since
                self._column_types.pop(table, None)
            raise

    def _typed(self, table: str, body: bytes) -> TypedInsert | None:
        """The typed insert of a body by the column names on its first line (None: insert it as it is)."""
        end = body.find(b"\n")
        try:
            names = orjson.loads(body[:end]) if end > 0 else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return None
        types = self._column_types.get(table)
        if types is None or not set(names) <= types.keys():  # not read yet, or a migration added columns since
            rows = self.query(COLUMN_TYPES_SQL, {"table": table}).rows
            types = self._column_types[table] = {str(name): str(type_) for name, type_ in rows}
        return typed_insert(table, names, types)

    def _insert_from_file(self, statement: TypedInsert, body: bytes, settings: dict[str, object]) -> None:
        """chDB reads the body from a temporary file, as its raw inserts do (it takes no request body)."""
        handle, path = tempfile.mkstemp(prefix="reise-insert-", suffix=".jsonl")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(body)
            self.client().command(statement.from_file(path, settings))
        finally:
            os.unlink(path)

    def stored_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys (ingest.dedup.dedup_key) the store already holds, in ``event_keys``.

        The keys travel as one binary parameter (a heredoc the server reads as is), not as a literal escaped
        in Python character by character; a ``$`` in a key is sent as the JSON escape ``\\u0024``, so
        nothing in the data can end the heredoc.
        """
        if not keys:
            return set()
        return {str(row[0]) for row in self.query(STORED_KEYS_SQL, {"$keys$": heredoc_json(list(keys))}).rows}

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run one statement (DDL, a small query, an INSERT ... SELECT) and return its result."""
        params = dict(parameters or {})
        with self._errors():
            return self.client().command(sql, parameters=params, settings=_query_size(sql, params) or None)

    def insert_select(self, table: str, columns: Sequence[str], select: str, parameters: Mapping[str, Any] | None,
                      *, token: str) -> None:
        """Run ``INSERT INTO table (columns) SELECT ...`` idempotently like ``insert_encoded``: a replay adds nothing.

        The result is squashed into one block (one part): what one statement writes lands whole or not at all.
        The insert's settings (the token's among them) travel inside the statement, as a SETTINGS clause between the
        column list and the SELECT: clickhouse-connect's chDB backend would otherwise run a command's own settings as
        SET statements around it, reading ``system.settings`` first and setting each back after (about 5 ms a call).
        The query size is a parser setting, applied before a statement's own SETTINGS are read: it goes with the
        request (a server's URL parameters; chDB reads the query's settings before parsing it). Embedded, it runs
        on the calling thread alone, as the other inserts (EMBEDDED_INSERT_SETTINGS: for the resolver's state move
        about a tenth less CPU than with the engine's thread pool beside it, bench/README.md).
        """
        params = dict(parameters or {})
        settings: dict[str, Any] = {**INSERT_SETTINGS, **ONE_BLOCK_SETTINGS, "insert_deduplication_token": token}
        size = _query_size(select, params)
        if self.embedded:
            settings.update(EMBEDDED_INSERT_SETTINGS, **size)
        names = ", ".join(quote_identifier(c) for c in columns)
        statement = f"INSERT INTO {quote_identifier(table)} ({names})\nSETTINGS {settings_clause(settings)}\n{select}"
        with self._errors("insert"):
            self.client().command(statement, parameters=params, settings=None if self.embedded else size or None)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a trusted query (the collector's own SQL) with server-side parameters."""
        params = dict(parameters or {})
        with self._errors():
            names, types, rows = query_rows(self.client(), sql, parameters=params, settings=_query_size(sql, params))
        return QueryResult(names, types, rows)

    def guard(self) -> QueryGuard:
        """The query guard; its catalogue (functions, databases, Reise's views) is read again after a minute."""
        cached = self._guard
        if cached is None or cached[0] < time.monotonic() - GUARD_CATALOG_SECONDS:
            cached = self._guard = (time.monotonic(), QueryGuard(GuardCatalog.load(lambda sql: self.query(sql).rows)))
        return cached[1]

    def query_readonly(self, sql: str, parameters: Mapping[str, Any] | None, *, limits: QueryLimits) -> QueryResult:
        """Run an analyst's query: checked by the query guard (QueryForbidden), read-only, within the limits."""
        guard, params = self.guard(), dict(parameters or {})
        with self._errors("query"):
            client = self.client()
            statement, kind = checked_statement(client, guard, sql, params)
            columns, types, rows = run_checked(client, statement, kind, params, limits)
        return QueryResult(columns, types, rows)

    def query_own(self, sql: str, parameters: Mapping[str, Any] | None, *, limits: QueryLimits) -> QueryResult:
        """Run one of the collector's own reads for an analyst (a customer lookup): read-only, within the limits.

        The SQL is the collector's constant and the analyst's values travel as server-side parameters, so there is
        no statement to check: it skips the query guard's two round trips (``formatQuery``, ``EXPLAIN AST``) that
        ``query_readonly`` spends on SQL an analyst wrote (bench/README.md, journey_scale.py). An empty answer may
        come without column names (chDB sends none then): its callers read rows only, so the ``DESCRIBE`` that
        ``query_readonly`` runs for them is not spent (a lookup of an unknown id, a 404, costs a third less).
        """
        params = dict(parameters or {})
        with self._errors("query"):
            columns, types, rows = query_rows(self.client(), sql, parameters=params, settings=limits.settings())
        return QueryResult(columns, types, rows)

    def close(self) -> None:
        """Close every client this store opened."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with suppress(ClickHouseError):
                client.close()


def _query_message(exc: BaseException) -> str:
    text = str(exc).strip()
    start = text.find("DB::Exception:")
    if start >= 0:
        text = text[start + len("DB::Exception:") :].strip()
        # chDB repeats the prefix for nested errors
        while text.startswith(("Code: ", "DB::Exception:")) and "DB::Exception:" in text:
            text = text[text.find("DB::Exception:") + len("DB::Exception:") :].strip()
    text = text.split(" (version ", 1)[0]
    return text.splitlines()[0][:1000] if text else "query failed"

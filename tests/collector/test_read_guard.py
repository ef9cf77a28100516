"""Issue 12, the read side: the read role, the query guard over HTTP, the limits, and readers that recover."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Collector, http

READ_KEY = "rk_analyst_0123456789"
BI_KEY = "rk_bi_0123456789abc"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector with two read keys and small, quick limits."""
    with Collector(data_dir=tmp_path_factory.mktemp("guarded") / "data", extra_env={
        "REISE_READ_KEYS": f"analyst={READ_KEY},bi={BI_KEY}",
        "REISE_QUERY_CONCURRENCY": "1",
    }) as instance:
        yield instance


def ask(collector: Collector, sql: str, key: str = READ_KEY, params: dict[str, Any] | None = None) -> Any:
    return http("POST", collector.url + "/v1/query", {"sql": sql, "params": params or {}}, key=key)


def test_file_function_is_refused_and_names_it(guarded: Collector) -> None:
    """Finding 1: the scalar file() read the collector's environment (every key in clear)."""
    for sql in ("SELECT file('/proc/self/environ')", "SELECT file('/proc/self/environ', 'RawBLOB') AS e",
                "SELECT length(file('/dev/zero'))", "SELECT * FROM (SELECT 1 AS x) WHERE x IN (SELECT FILE('/x'))"):
        reply = ask(guarded, sql, key=guarded.admin_key)
        assert reply.status == 403, (sql, reply.body)
        assert "file()" in reply.body["error"].lower()
        assert "REISE_" not in str(reply.body)


def test_into_outfile_is_refused_and_writes_nothing(guarded: Collector, tmp_path: Path) -> None:
    """Finding 2: INTO OUTFILE wrote files anywhere the process may write."""
    for clause in ("TRUNCATE", "APPEND", "COMPRESSION 'gzip'", ""):
        target = tmp_path / f"out-{uuid.uuid4().hex}"
        reply = ask(guarded, f"SELECT 'x' INTO OUTFILE '{target}' {clause}")
        assert reply.status == 403, reply.body
        assert "INTO OUTFILE" in reply.body["error"]
        assert not target.exists()


@pytest.mark.parametrize(("sql", "named"), [
    ("KILL QUERY WHERE 1", "KILL"),
    ("SYSTEM FLUSH LOGS", "SYSTEM"),
    ("SET readonly = 0", "SET"),
    ("SELECT 1 SETTINGS max_execution_time = 100000", "SETTINGS"),
    ("SELECT * FROM system.processes", "system.processes"),
    ("SELECT * FROM system.disks", "system.disks"),
    ("SELECT * FROM system.stack_trace", "system.stack_trace"),
    ("SELECT name FROM system.errors", "system.errors"),
    ("SELECT * FROM information_schema.tables", "information_schema.tables"),
    ("SELECT 1 WHERE 1 IN system.one", "system"),
    ("SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString', 'l String')", "url"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "remote"),
    ("SELECT * FROM merge(currentDatabase(), '.*')", "merge"),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", "executable"),
])
def test_kill_system_set_settings_system_tables_and_table_functions_are_refused(
        guarded: Collector, sql: str, named: str) -> None:
    """Findings 3 and 4: KILL was accepted; system.processes, disks, stack_trace and errors were readable."""
    reply = ask(guarded, sql)
    assert reply.status == 403, reply.body
    assert named in reply.body["error"]


def test_a_failed_query_does_not_break_the_next_request_on_its_reader(tmp_path: Path) -> None:
    """Finding 3: a query killed or failed part-way left its output in the reader's connection; the reader's
    next query read it (wrong rows, or 503 "store: unavailable" on /v1/import until a restart)."""
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_QUERY_MAX_ROWS": "100000"}) as collector:
        for _ in range(4):  # both reader threads: fails after its first blocks were sent
            reply = ask(collector, "SELECT number FROM numbers(1000000)", key=collector.admin_key)
            assert reply.status == 400 and "Limit for result" in reply.body["error"]
        for n in range(8):
            reply = ask(collector, f"SELECT {n} AS n", key=collector.admin_key)
            assert (reply.status, reply.body["rows"]) == (200, [[n]]), reply.body
        history = {"type": "track", "event": "Order Completed", "userId": f"imp-{uuid.uuid4().hex[:8]}",
                   "messageId": uuid.uuid4().hex, "timestamp": "2024-03-01T10:00:00Z"}
        for _ in range(4):
            assert collector.post("/v1/import", {"batch": [history]}).status == 200


def test_results_are_bounded_in_bytes_and_memory(guarded: Collector) -> None:
    """Finding 5: groupArray over 10^8 numbers returned about 1 GB after 22 s; now a limit stops it early."""
    started = time.monotonic()
    reply = ask(guarded, "SELECT groupArray(number) FROM numbers(100000000)")
    assert reply.status == 400, reply.body
    assert "limit" in reply.body["error"].lower()
    assert time.monotonic() - started < 15
    big = ask(guarded, "SELECT repeat(toString(number % 10), 1000000) FROM numbers(100)")  # 100 MB
    assert big.status == 400 and "max bytes" in big.body["error"]


def test_allowed_selects_answer(guarded: Collector) -> None:
    for sql in ("SELECT count() AS n FROM touchpoints",
                "WITH t AS (SELECT number AS n FROM numbers(3)) SELECT sum(n) FROM t UNION ALL SELECT 1",
                "SELECT c.customer_id FROM customer_journey AS c LEFT JOIN touchpoints AS t "
                "ON t.customer_id = c.customer_id LIMIT 1",
                "SELECT * FROM customer_journey_of(id = {id:String})",
                "SHOW TABLES", "DESCRIBE TABLE touchpoints", "SELECT 1;"):
        reply = ask(guarded, sql, params={"id": "nobody"})
        assert reply.status == 200, (sql, reply.body)


def test_read_keys_read_and_nothing_else(guarded: Collector) -> None:
    """A read key queries, looks up customers and signs in to the dashboard; it cannot forget, unlink or pause."""
    assert ask(guarded, "SELECT 1 AS one").body["rows"] == [[1]]
    assert ask(guarded, "SELECT 1 AS one", key=BI_KEY).status == 200
    assert http("GET", guarded.url + "/v1/customers/nobody", key=READ_KEY).status == 404
    for path, body in (("/v1/admin/forget", {"customer_id": "x"}), ("/v1/admin/unlink", {"id": "x"}),
                       ("/v1/admin/writing", {"paused": True}), ("/v1/admin/sessions/revoke", {})):
        reply = http("POST", guarded.url + path, body, key=READ_KEY)
        assert reply.status == 403, (path, reply.body)
    assert ask(guarded, "SELECT 1", key=guarded.write_key).status == 401
    assert ask(guarded, "SELECT 1", key="rk_guess").status == 401
    metrics = http("GET", guarded.url + "/metrics").body.decode()
    assert 'reise_queries_total{key="analyst",outcome="ok"}' in metrics
    assert 'reise_queries_total{key="bi",outcome="ok"}' in metrics
    assert '"key": "analyst"' in guarded.log_tail(400) or '"key":"analyst"' in guarded.log_tail(400)


def test_the_cli_reads_with_the_read_key(guarded: Collector) -> None:
    env = {**guarded.env(), "REISE_READ_KEY": READ_KEY, "REISE_ADMIN_KEY": ""}
    done = subprocess.run([sys.executable, "-m", "collector", "sql", "SELECT 41 + 1 AS answer", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"answer":42' in done.stdout
    refused = subprocess.run([sys.executable, "-m", "collector", "sql", "SELECT * FROM system.processes"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "system.processes" in refused.stderr


def test_each_key_runs_a_bounded_number_of_queries_at_once(guarded: Collector) -> None:
    """REISE_QUERY_CONCURRENCY=1: a second query of the same key while one runs gets 429; another key does not."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        slow = pool.submit(ask, guarded, "SELECT sleepEachRow(0.5) FROM numbers(3)", READ_KEY)
        time.sleep(0.4)
        busy = pool.submit(ask, guarded, "SELECT 1", READ_KEY).result()
        other = pool.submit(ask, guarded, "SELECT 1", BI_KEY).result()
        assert slow.result().status == 200
    assert busy.status == 429 and "Retry-After" in busy.headers
    assert other.status == 200


def test_migrate_prints_a_read_only_user() -> None:
    """Server mode: the grant is the real boundary; `reise migrate --print-users` renders it."""
    env = {"PATH": "/usr/bin:/bin", "REISE_DSN": "http://writer:secret@clickhouse:8123/reise"}
    done = subprocess.run([sys.executable, "-m", "collector", "migrate", "--print-users"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sql = done.stdout
    assert "CREATE USER IF NOT EXISTS reise_reader" in sql
    assert "GRANT SELECT ON reise.* TO reise_reader" in sql
    assert "max_result_bytes" in sql and "max_memory_usage" in sql and "max_execution_time" in sql
    assert "GRANT ALL" not in sql and "INSERT" not in sql

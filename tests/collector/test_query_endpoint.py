"""The query endpoint is read-only at the ClickHouse level, guarded, and bounded in time and size."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Collector, http


def run(collector: Collector, sql: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    reply = http("POST", collector.url + "/v1/query", {"sql": sql},
                 key=collector.admin_key if key is None else key)
    return reply.status, reply.body


def test_needs_the_admin_key(collector: Collector) -> None:
    assert run(collector, "SELECT 1", key=collector.write_key)[0] == 401
    assert run(collector, "SELECT 1", key="guess")[0] == 401
    assert http("POST", collector.url + "/v1/query", {"sql": "SELECT 1"}).status == 401
    bearer = http("POST", collector.url + "/v1/query", {"sql": "SELECT 1 AS one"},
                  headers={"Authorization": f"Bearer {collector.admin_key}"})
    assert bearer.status == 200
    assert bearer.body["rows"] == [[1]]


def tables(collector: Collector) -> set[str]:
    return {row["name"] for row in collector.query("SHOW TABLES")}


@pytest.mark.parametrize("sql", [
    "DROP TABLE touchpoints",
    "INSERT INTO touchpoints (message_id) VALUES ('x')",
    "ALTER TABLE touchpoints DELETE WHERE 1",
    "TRUNCATE TABLE dead_letters",
    "SYSTEM FLUSH LOGS",
    "CREATE TABLE evil (x UInt8) ENGINE = Memory",
    "SET readonly = 0",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT count() FROM numbers(10) SETTINGS max_execution_time = 100000",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT 1; DROP TABLE touchpoints",
])
def test_statements_that_write_or_change_settings_are_refused(collector: Collector, sql: str) -> None:
    before = tables(collector)
    status, body = run(collector, sql)
    assert status in (400, 403)  # 400: the parser refused it (several statements), 403: the query guard did
    assert body["error"].startswith("sql: ")
    assert tables(collector) == before
    assert "touchpoints" in before


def test_result_size_and_time_are_limited(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Collector(data_dir=tmp_path / "data",
                   extra_env={"REISE_QUERY_MAX_ROWS": "100", "REISE_QUERY_TIMEOUT": "1"}) as limited:
        status, body = run(limited, "SELECT number FROM numbers(1000)")
        assert status == 400
        assert "Limit for result exceeded" in body["error"]
        status, body = run(limited, "SELECT sleepEachRow(0.5) FROM numbers(4)")
        assert status == 400
        assert "Timeout" in body["error"]
        assert run(limited, "SELECT number FROM numbers(100)")[1]["rows"][-1] == [99]


def test_parameters_are_bound_server_side(collector: Collector) -> None:
    hostile = "x' OR 1=1 --"
    reply = http("POST", collector.url + "/v1/query",
                 {"sql": "SELECT {v:String} AS v, count() AS n FROM touchpoints WHERE customer_id = {v:String}",
                  "params": {"v": hostile}}, key=collector.admin_key)
    assert reply.status == 200
    assert reply.body["rows"] == [[hostile, 0]]


def test_an_empty_result_still_names_its_columns(collector: Collector) -> None:
    reply = http("POST", collector.url + "/v1/query",
                 {"sql": "SELECT customer_id, toFloat64(revenue) AS revenue FROM touchpoints"
                         " WHERE customer_id = {v:String}",
                  "params": {"v": "nobody-at-all"}}, key=collector.admin_key)
    assert reply.status == 200
    assert reply.body["rows"] == []
    assert reply.body["columns"] == ["customer_id", "revenue"]
    assert reply.body["types"] == ["String", "Float64"]


def test_bad_sql_names_the_problem(collector: Collector) -> None:
    status, body = run(collector, "SELEC 1")
    assert status == 400
    assert "Syntax error" in body["error"]
    assert http("POST", collector.url + "/v1/query", {"sql": ""}, key=collector.admin_key).status == 400
    assert http("POST", collector.url + "/v1/query", {"sql": "SELECT 1", "params": []},
                key=collector.admin_key).body["error"] == "params: expected an object"

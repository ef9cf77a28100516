"""Logs of a real collector: JSON lines carrying the request id, which the answer echoes; readable on a terminal."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.edge.requestid import REQUEST_ID_HEADER, request_id
from tests.helpers import Collector, http


@pytest.fixture(scope="module")
def json_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector logging JSON lines to its own log file."""
    with Collector(data_dir=tmp_path_factory.mktemp("logs") / "data") as instance:
        yield instance


def log_lines(collector: Collector, needle: str, timeout: float = 10) -> list[str]:
    """Lines of the collector's log containing needle (polled: the process writes them asynchronously)."""
    assert collector.log_path is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [line for line in collector.log_path.read_text(errors="replace").splitlines() if needle in line]
        if lines:
            break
        time.sleep(0.05)
    return lines


def json_lines(collector: Collector, needle: str) -> list[dict[str, Any]]:
    """The JSON log records whose text contains needle."""
    return [json.loads(line) for line in log_lines(collector, needle)]


def test_an_incoming_request_id_is_logged_and_echoed(json_collector: Collector) -> None:
    rid = "edge-7f3a9c21-test"
    reply = json_collector.post("/v1/track", {"event": "x", "userId": "u"}, key="wk_nobody",
                                headers={REQUEST_ID_HEADER: rid})
    assert reply.status == 401
    assert reply.headers[REQUEST_ID_HEADER] == rid
    [record] = json_lines(json_collector, rid)
    assert record["request_id"] == rid
    assert record["event"] == "request refused" and record["status"] == 401 and record["path"] == "/v1/track"
    assert record["level"] == "info" and "timestamp" in record


def test_a_missing_or_unsafe_request_id_is_replaced(json_collector: Collector) -> None:
    for sent in (None, "x" * 200, "two words", "inject\\nline"):
        headers = {REQUEST_ID_HEADER: sent} if sent else {}
        reply = http("POST", json_collector.url + "/v1/query", {"sql": "SELECT 1"}, headers=headers)
        assert reply.status == 401
        rid = reply.headers[REQUEST_ID_HEADER]
        assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
        [record] = json_lines(json_collector, rid)
        assert record["path"] == "/v1/query"


def test_successful_answers_carry_a_request_id_too(json_collector: Collector) -> None:
    reply = http("GET", json_collector.url + "/healthz", headers={REQUEST_ID_HEADER: "probe-1"})
    assert reply.status == 200 and reply.headers[REQUEST_ID_HEADER] == "probe-1"
    assert http("GET", json_collector.url + "/nowhere").headers[REQUEST_ID_HEADER]


def test_every_line_is_json_and_request_lines_have_an_id(json_collector: Collector) -> None:
    json_collector.post("/v1/batch", {"batch": "not a list"})
    assert log_lines(json_collector, '"status": 400')
    assert json_collector.log_path is not None
    records = [json.loads(line) for line in json_collector.log_path.read_text().splitlines()
               if line.startswith("{")]
    request_records = [r for r in records if "path" in r]
    assert request_records and all(r.get("request_id") for r in request_records)


def test_a_terminal_gets_readable_lines(tmp_path: Path) -> None:
    with Collector(data_dir=tmp_path / "data", extra_env={"REISE_LOG_FORMAT": "console"}) as instance:
        instance.post("/v1/track", {"event": "x", "userId": "u"}, key="wk_nobody",
                      headers={REQUEST_ID_HEADER: "tty-check-1"})
        [line] = log_lines(instance, "tty-check-1")
    assert not line.lstrip().startswith("{")
    assert "request refused" in line and "request_id=tty-check-1" in line and "status=401" in line


def test_request_ids_are_plain_or_fresh() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    assert request_id(None) != request_id(None)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id("bad id"))

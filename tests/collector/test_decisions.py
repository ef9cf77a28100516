"""The one retry decision: a named list of bad-row codes; everything else retried (inserts, connects, statements),
and for analysts' read-only queries a named list of store-side codes."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from collector.errors import QueryRefused, StoreError, StoreUnavailable
from collector.store.clickhouse import Store, classify, connect
from collector.store.decisions import BAD_ROW_CODES, STORE_SIDE_CODES, Verdict, decide


def failure(code: int, text: str = "something failed") -> DatabaseError:
    return DatabaseError(f"Code: {code}. DB::Exception: {text}. (SOME_NAME)")


def test_the_named_codes_are_clickhouses_own_names(store: Store) -> None:
    """Every code in both lists has the name ClickHouse itself gives it (errorCodeToName)."""
    for codes in (BAD_ROW_CODES, STORE_SIDE_CODES):
        names = store.query("SELECT arrayMap(c -> errorCodeToName(c), {codes:Array(Int32)})",
                            {"codes": list(codes)}).rows[0][0]
        assert dict(zip(codes, names, strict=True)) == dict(codes)


@pytest.mark.parametrize("code", [516, 497, 60, 243, 394, 164, 774, 62, 99_999])
def test_writes_retry_everything_but_bad_rows(code: int) -> None:
    """Password rotated, grant revoked, table missing, disk full, query cancelled, read-only, a future code."""
    for operation in ("insert", "connect", "command"):
        assert decide(failure(code), operation) is Verdict.RETRY
    assert isinstance(classify(failure(code), "insert"), StoreUnavailable)


@pytest.mark.parametrize("code", [6, 27, 53, 117, 395, 469])
def test_bad_rows_are_not_retried(code: int) -> None:
    assert decide(failure(code), "insert") is Verdict.BAD_ROWS
    refused = classify(failure(code), "insert")
    assert type(refused) is StoreError and refused.args[0].startswith(f"Code: {code}.")


def test_network_failures_are_retried_for_every_operation() -> None:
    for operation in ("insert", "connect", "command", "query"):
        assert decide(OperationalError("connection refused"), operation) is Verdict.RETRY


def test_read_only_queries_are_refused_unless_the_store_is_unwell() -> None:
    assert isinstance(classify(failure(62, "Syntax error"), "query"), QueryRefused)
    assert isinstance(classify(failure(60, "Unknown table"), "query"), QueryRefused)
    assert isinstance(classify(failure(516, "Authentication failed"), "query"), StoreUnavailable)
    assert isinstance(classify(failure(243, "Not enough space"), "query"), StoreUnavailable)


def test_a_bad_connect_is_retried_not_refused() -> None:
    """An unreachable server is StoreUnavailable (retried), never a refusal of the data."""
    with pytest.raises(StoreUnavailable):
        connect("http://default:@127.0.0.1:9/default")

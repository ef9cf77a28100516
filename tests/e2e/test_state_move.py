"""The resolver's state statement (resolver.STATE_SELECT) reads the moved keys' rows once: every row of a key with
state is copied, whatever parts hold them, the key gets exactly one hidden marker in the same part, a key already
hidden is not copied again even under a new token, and a key without rows is neither copied nor hidden. The
statement runs on the writer thread alone when embedded, and the links of a spool body decode by their column
names."""

from __future__ import annotations

import uuid

import pytest

from collector.identity.resolver import STATE_SELECT, STATE_TARGET, Link, decode_links
from collector.ingest.spool import encode_rows
from collector.store.clickhouse import Store, heredoc_json


def touch(store: Store, prefix: str, n: int, key: str) -> None:
    """One contact of ``key``, inserted alone (its own part of customer_state while merges are stopped)."""
    store.command("INSERT INTO touchpoints (message_id, type, event, journey_id, anonymous_id, channel, timestamp, "
                  "original_timestamp, received_at) VALUES "
                  f"('{prefix}-m{n}', 'track', 'e', '{key}', '{key}', 'web', '2026-04-01 00:0{n}:00', "
                  "'2026-04-01', '2026-04-01')")


def move(store: Store, moves: dict[str, str], ids: dict[str, list[str]], token: str) -> int:
    """Run the state statement as record_map does; how many parts of customer_state it added."""
    parts = ("SELECT count() FROM system.parts "
             "WHERE database = currentDatabase() AND table = 'customer_state' AND active")
    before = int(store.query(parts).rows[0][0])
    store.insert_select("customer_state", STATE_TARGET, STATE_SELECT,
                        {"$moves$": heredoc_json(sorted(moves.items())), "$rows$": heredoc_json(sorted(ids.items()))},
                        token=token)
    return int(store.query(parts).rows[0][0]) - before


def state(store: Store, prefix: str) -> list[tuple[object, ...]]:
    """Per key: rows (an insert's rows of one key are one row), live contacts, hidden markers, ids."""
    return [tuple(r) for r in store.query(
        "SELECT customer_id, count(), sumIf(contacts, hidden = 0), countIf(hidden = 1), "
        "arraySort(groupUniqArrayArray(ids)) FROM customer_state WHERE startsWith(customer_id, {p:String}) "
        "GROUP BY customer_id ORDER BY customer_id", {"p": prefix + "-"}).rows]


def test_every_row_of_a_moved_key_is_copied_once_with_one_marker_in_one_part(merges_stopped: Store) -> None:
    store, prefix = merges_stopped, f"sm{uuid.uuid4().hex[:8]}"
    early, gone, fresh, cust = (f"{prefix}-{x}" for x in ("early", "gone", "fresh", "cust"))
    for n, key in enumerate((early, early, early, gone)):  # early's state in three parts, gone's in one
        touch(store, prefix, n, key)
    assert move(store, {gone: f"{prefix}-other"}, {f"{prefix}-other": [gone]}, f"{prefix}-first") == 1  # gone hidden
    moves = {early: cust, gone: cust, fresh: cust}
    ids = {cust: sorted([early, gone, fresh])}
    for token in ("second", "a replay whose token the engine does not know"):
        assert move(store, moves, ids, f"{prefix}-{token}") == 1  # copy, markers and ids: one part
        assert state(store, prefix) == [
            (cust, 1 + (token != "second"), 3, 0, sorted([early, fresh, gone])),  # early's 3 contacts, once
            (early, 4, 3, 1, [early]),  # its three rows and one marker: copied once though the token is new
            (gone, 2, 1, 1, [gone]),  # hidden before: not copied again
            (f"{prefix}-other", 1, 1, 0, [gone])]


def test_the_state_statement_runs_on_the_calling_thread_alone_when_embedded(store: Store) -> None:
    table = f"sm_threads_{uuid.uuid4().hex[:8]}"
    store.command(f"CREATE TABLE {table} (value String) ENGINE = MergeTree ORDER BY value")
    try:
        store.insert_select(table, ("value",), "SELECT toString(getSetting('max_threads'))", None, token=table)
        assert store.query(f"SELECT value FROM {table}").rows == [("1",)]
    finally:
        store.command(f"DROP TABLE {table} SYNC")


def test_links_decode_by_their_column_names_in_any_order() -> None:
    names = ["source", "message_id", "customer_id", "linked_at", "anonymous_id"]
    body = (heredoc_json(names)[1:-1] + b"\n"
            + encode_rows([("app", "m2", "u", 1775001601.5, "b"), ("web", "m1", "u", "1775001600", "a")]))
    assert decode_links(body) == [Link(1775001601.5, "m2", "b", "u", "app"), Link(1775001600.0, "m1", "a", "u", "web")]
    assert sorted(decode_links(body))[0].anonymous_id == "a"  # links sort by time first
    assert decode_links(b"") == [] and decode_links(heredoc_json(names)[1:-1] + b"\n") == []
    with pytest.raises(ValueError):  # a row whose values do not match the names
        decode_links(heredoc_json(names)[1:-1] + b"\n" + encode_rows([("web", "m1", "u", 1.0)]))


def test_a_segment_moving_many_keys_fits_the_statement_that_names_its_moves_twice(store: Store) -> None:
    """The statement names ``$moves$`` twice, so its text holds the moves twice: the room the store makes in
    ``max_query_size`` counts each heredoc as often as the statement names it (about 1 MB of moves here: counted
    once, the statement was refused as too long and its segment retried for ever)."""
    prefix = f"smbig{uuid.uuid4().hex[:8]}"
    moves = {f"{prefix}-anonymous-id-{n:07d}": f"{prefix}-customer-{n:07d}" for n in range(15_000)}
    assert STATE_SELECT.count("$moves$") == 2 and len(heredoc_json(sorted(moves.items()))) > 900_000
    ids = {customer: [anonymous] for anonymous, customer in moves.items()}
    move(store, moves, ids, f"{prefix}-many")
    listed = store.query("SELECT count() FROM customer_state WHERE startsWith(customer_id, {p:String})",
                         {"p": f"{prefix}-customer-"}).rows[0][0]
    assert listed == 15_000  # each surviving key's ids, written by the same statement

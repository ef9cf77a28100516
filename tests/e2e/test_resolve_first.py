"""A segment's links are resolved before its touchpoints are inserted: the ids linked in the segment never get state
rows of their own, only state of earlier segments moves (copied once, its key hidden once), and a crash at any of
the segment's writes, replayed by a new process, leaves every figure equal to the plain-Python recount."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.identity.resolver import Link, resolve_links
from collector.store.clickhouse import Store, heredoc_json
from tests.durability.inprocess import ADMIN_KEY, InProcess, inprocess
from tests.journeys import Dataset, differences, iso, recount

START = datetime(2026, 4, 1, tzinfo=UTC)


def contact(prefix: str, n: int, minute: int, **ids: str) -> dict[str, Any]:
    return {"type": "track", **ids, "event": "Product Viewed" if n % 3 else "Order Completed", "channel": "web",
            "messageId": f"{prefix}-m{n}", "timestamp": iso(START + timedelta(minutes=minute)),
            **({} if n % 3 else {"properties": {"revenue": 10 + n, "order_id": f"{prefix}-o{n}"}})}


def dataset(prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Two segments' events and the links they make (each id to its final customer).

    First segment: three contacts of browser ``b``. Second: ``b`` identified as ``u`` (its earlier state moves),
    browser ``a`` with two contacts and its identify to ``u`` (linked in the same segment as its events), a chain
    browser ``d`` -> card ``k`` -> customer ``v`` with contacts of each, ``u``'s own contacts, and browser ``c``
    nobody links.
    """
    b, a, u, d, k, v, c = (f"{prefix}-{x}" for x in "baudkvc")
    first = [contact(prefix, n, n, anonymousId=b) for n in range(3)]
    second = [
        contact(prefix, 10, 10, anonymousId=a), contact(prefix, 11, 11, anonymousId=a),
        {"type": "identify", "anonymousId": a, "userId": u, "messageId": f"{prefix}-m12",
         "timestamp": iso(START + timedelta(minutes=12))},
        {"type": "identify", "anonymousId": b, "userId": u, "messageId": f"{prefix}-m13",
         "timestamp": iso(START + timedelta(minutes=13))},
        contact(prefix, 14, 14, userId=u), contact(prefix, 15, 15, userId=u),
        contact(prefix, 20, 20, anonymousId=d),
        {"type": "identify", "anonymousId": d, "userId": k, "messageId": f"{prefix}-m21",
         "timestamp": iso(START + timedelta(minutes=21))},
        contact(prefix, 22, 22, userId=k),
        {"type": "alias", "previousId": k, "userId": v, "messageId": f"{prefix}-m23",
         "timestamp": iso(START + timedelta(minutes=23))},
        contact(prefix, 24, 24, userId=v),
        contact(prefix, 30, 30, anonymousId=c), contact(prefix, 31, 31, anonymousId=c),
    ]
    return first, second, {a: u, b: u, d: v, k: v}


async def journeys(app: InProcess, prefix: str) -> dict[str, dict[str, Any]]:
    status, body = await app.post("/v1/query", {"sql": "SELECT * FROM customer_journey WHERE startsWith(customer_id, "
                                                       "{p:String})", "params": {"p": prefix + "-"}}, key=ADMIN_KEY)
    assert status == 200, body
    return {row[body["columns"].index("customer_id")]: dict(zip(body["columns"], row, strict=True))
            for row in body["rows"]}


async def state_rows(app: InProcess, prefix: str) -> dict[str, tuple[int, int, int]]:
    """Per key of customer_state: (live rows, hidden markers, contacts of the live rows); merges are stopped."""
    rows = await app.sql("SELECT customer_id, countIf(hidden = 0), countIf(hidden = 1), sumIf(contacts, hidden = 0) "
                         "FROM customer_state WHERE startsWith(customer_id, {p:String}) GROUP BY customer_id",
                         {"p": prefix + "-"})
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def check_state_rows(rows: dict[str, tuple[int, int, int]], prefix: str) -> None:
    """No rows for the ids linked in the segment of their events; the earlier browser copied and hidden once."""
    for linked_with_its_events in "adk":
        assert f"{prefix}-{linked_with_its_events}" not in rows
    assert rows[f"{prefix}-b"] == (1, 1, 3)  # its row of the first segment, and one hidden marker
    assert rows[f"{prefix}-u"][1:] == (0, 2 + 3 + 2)  # a's, b's (copied once) and u's own contacts
    assert rows[f"{prefix}-v"][1:] == (0, 3) and rows[f"{prefix}-c"] == (1, 0, 2)


async def post(app: InProcess, events: list[dict[str, Any]]) -> None:
    status, answer = await app.post("/v1/batch", {"batch": events})
    assert status == 200 and answer["accepted"] == len(events), answer


async def test_ids_linked_with_their_events_get_no_state_rows_of_their_own(merges_stopped: Store,
                                                                           tmp_path: Path) -> None:
    prefix = f"rf{uuid.uuid4().hex[:8]}"
    first, second, links = dataset(prefix)
    async with inprocess(merges_stopped, tmp_path / "spool") as app:
        await post(app, first)
        await app.settled()
        await post(app, second)  # one body: one segment
        await app.settled()
        check_state_rows(await state_rows(app, prefix), prefix)
        actual = await journeys(app, prefix)
        data = Dataset(first + second, links)
        assert set(actual) == set(recount(data)) and differences(actual, data) == []


# Each write of a segment, in their order: the resolver's (links, state, members, map), then the touchpoints
WRITES = ("identity_links", "customer_state", "identity_members", "identity_keys", "touchpoints")


@pytest.mark.parametrize("refusing", WRITES)
async def test_a_crash_at_any_write_of_a_segment_replays_to_the_recount(merges_stopped: Store, tmp_path: Path,
                                                                        refusing: str) -> None:
    """The second segment stops at one of its writes (the table refuses every write, the collector retries), the
    process ends with the segment in its spool, and a new process replays it: every figure equals the recount.

    With ``touchpoints`` refusing, the resolver's writes have all landed (the map too) and the touchpoints have not:
    the replay writes the saved plan again (each write deduplicated) and then the touchpoints, which the map sends
    to their customers.
    """
    prefix = f"rf{uuid.uuid4().hex[:8]}"
    first, second, links = dataset(prefix)
    spool = tmp_path / "spool"
    async with inprocess(merges_stopped, spool) as app:
        await post(app, first)
        await app.settled()
    await asyncio.to_thread(merges_stopped.command, f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 1")
    try:  # the process ends with its drain cut short (0.5 s), the segment in its spool: as after a crash
        async with inprocess(merges_stopped, spool, REISE_DRAIN_TIMEOUT="0.5") as app:
            await post(app, second)

            async def stuck() -> bool:
                _, ready = await app.get("/readyz")
                return bool(ready["writing"] == "retrying" and ready["retries"] >= 1)

            await app.until(stuck)
            if refusing == "touchpoints":  # the resolver's writes landed before the touchpoints insert
                assert await app.sql("SELECT count() FROM identity_keys WHERE startsWith(journey_id, {p:String})",
                                     {"p": prefix + "-"}) == [(4,)]
            assert list(spool.rglob("*.plan"))  # saved before the resolver's first write
    finally:
        await asyncio.to_thread(merges_stopped.command, f"ALTER TABLE {refusing} MODIFY SETTING table_readonly = 0")
    assert await asyncio.to_thread(lambda: merges_stopped.query(
        "SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})", {"p": prefix + "-"}).rows) == [
        (len(first),)]
    async with inprocess(merges_stopped, spool) as app:  # the new process replays the spool
        await app.settled()
        assert not list(spool.rglob("*.plan"))
        check_state_rows(await state_rows(app, prefix), prefix)
        actual = await journeys(app, prefix)
        data = Dataset(first + second, links)
        assert set(actual) == set(recount(data)) and differences(actual, data) == []
        keys = await app.sql("SELECT journey_id, argMax(customer_id, version) FROM identity_keys "
                             "WHERE startsWith(journey_id, {p:String}) GROUP BY journey_id ORDER BY 1",
                             {"p": prefix + "-"})
        assert dict(keys) == links
        assert (await app.sql("SELECT count(), uniqExact(message_id) FROM touchpoints "
                              "WHERE startsWith(message_id, {p:String})", {"p": prefix + "-"}))[0] == (
            len(first) + len(second),) * 2


def test_a_moved_key_without_state_gets_no_marker_and_one_with_state_its_copy_once(merges_stopped: Store) -> None:
    """The resolver alone, its state write replayed: a key with rows is copied and hidden once, one without rows
    neither (nothing of it is shown, and the map sends its later touchpoints to the customer)."""
    store, prefix = merges_stopped, f"rf{uuid.uuid4().hex[:8]}"
    early, fresh, customer = f"{prefix}-early", f"{prefix}-fresh", f"{prefix}-cust"
    store.command("INSERT INTO touchpoints (message_id, type, event, journey_id, anonymous_id, channel, timestamp, "
                  "original_timestamp, received_at) VALUES "
                  f"('{prefix}-1', 'track', 'e', '{early}', '{early}', 'web', '2026-04-01', '2026-04-01', "
                  "'2026-04-01')")
    linked = [Link(1775001600.0, f"{prefix}-l1", early, customer, "test"),
              Link(1775001601.0, f"{prefix}-l2", fresh, customer, "test")]
    for _ in range(3):  # a replay of the whole resolution, twice
        resolve_links(store, linked, f"{prefix}-identity_links", max_ids=100)
    rows = store.query("SELECT customer_id, sumIf(contacts, hidden = 0), countIf(hidden = 1), "
                       "arraySort(groupUniqArrayArray(ids)) FROM customer_state "
                       "WHERE startsWith(customer_id, {p:String}) GROUP BY customer_id ORDER BY customer_id",
                       {"p": prefix + "-"}).rows
    assert [tuple(r) for r in rows] == [
        (customer, 1, 0, sorted([early, fresh])),  # the early id's contact copied once, both ids listed
        (early, 1, 1, [early])]  # its own row and one marker; nothing at all for the fresh id


def test_insert_select_carries_its_settings_inline_and_is_idempotent(store: Store) -> None:
    """Store.insert_select: a parameter beyond the default max_query_size, a token with quotes, a replay adds
    nothing, and the session's settings are left as they were."""
    table = f"rf_insert_select_{uuid.uuid4().hex[:8]}"
    store.command(f"CREATE TABLE {table} (id String) ENGINE = MergeTree ORDER BY id "
                  "SETTINGS non_replicated_deduplication_window = 100")
    settings: Callable[[], list[Any]] = lambda: [tuple(r) for r in store.query(  # noqa: E731
        "SELECT name, value FROM system.settings WHERE changed ORDER BY name").rows]
    before = settings()
    try:
        ids = [f"id-{n:07d}" for n in range(30_000)]  # about 390 KB of parameter
        select = "SELECT arrayJoin(ids) FROM format(JSONCompactEachRow, 'ids Array(String)', $ids$)"
        for _ in range(2):
            store.insert_select(table, ("id",), select, {"$ids$": heredoc_json(ids)}, token="it's a \\ token")
        assert store.query(f"SELECT count(), uniqExact(id) FROM {table}").rows[0] == (30_000, 30_000)
        assert settings() == before
    finally:
        store.command(f"DROP TABLE {table} SYNC")

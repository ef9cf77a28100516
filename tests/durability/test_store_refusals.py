"""No good event is parked for a passing fault: the store refuses for real (chDB), the collector retries,
isolates only bad rows, and survives the death of its drain loop.

chDB has no users or grants (CREATE USER and REVOKE need a grant option chDB's user lacks), so a revoked write
is played by its closest real equivalent: the table made read-only (``table_readonly``, code 774).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

import collector.ingest.batcher as batcher_module
from collector.store.clickhouse import Store
from collector.store.decisions import BAD_ROW_CODES
from collector.store.migrate import load_migrations
from tests.durability.inprocess import ADMIN_KEY, InProcess, inprocess


def events(prefix: str, n: int, *, customers: int = 5, campaign: str = "spring") -> list[dict[str, Any]]:
    return [{"type": "track", "userId": f"{prefix}-u{i % customers}", "event": "Product Viewed", "channel": "web",
             "messageId": f"{prefix}-m{i}", "properties": {"campaign": campaign},
             "timestamp": f"2026-10-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"} for i in range(n)]


async def counts(app: InProcess, prefix: str) -> tuple[int, int, int]:
    """Touchpoints stored, contacts in the journeys, dead letters of a prefix."""
    p = {"p": prefix + "-"}
    stored = await app.sql("SELECT count() FROM touchpoints WHERE startsWith(message_id, {p:String})", p)
    contacts = await app.sql("SELECT sum(contacts) FROM customer_journey WHERE startsWith(customer_id, {p:String})", p)
    dead = await app.sql("SELECT count() FROM dead_letters WHERE startsWith(message_id, {p:String})", p)
    return int(stored[0][0]), int(contacts[0][0] or 0), int(dead[0][0])


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def event_keys_ddl() -> str:
    """The migration's own CREATE TABLE of event_keys (to mend the store after dropping it)."""
    migration = next(m for m in load_migrations() if m.name == "0007_event_keys")
    return next(s for s in migration.statements if s.startswith("CREATE TABLE"))


FAULTS = {
    # the closest chDB has to a revoked INSERT grant: the view's target table refuses every write
    "revoked write (table made read-only)": ("ALTER TABLE event_keys MODIFY SETTING table_readonly = 1",
                                             "ALTER TABLE event_keys MODIFY SETTING table_readonly = 0", "774"),
    "dropped table": ("DROP TABLE event_keys SYNC", event_keys_ddl(), "60"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_store_fault_is_retried_not_parked_and_shown(store: Store, tmp_path: Path, fault: str) -> None:
    break_sql, mend_sql, code = FAULTS[fault]
    prefix = f"r{uuid.uuid4().hex[:8]}"
    with structlog.testing.capture_logs() as logs:
        async with inprocess(store, tmp_path / "spool") as app:
            await app.command(break_sql)
            try:
                status, answer = await app.post("/v1/batch", {"batch": events(prefix, 50)})
                assert status == 200 and answer["accepted"] == 50

                async def retrying() -> Any:
                    _, ready = await app.get("/readyz")
                    return ready if ready["writing"] == "retrying" and ready["retries"] >= 2 else None

                ready = await app.until(retrying)
                assert ready["status"] == "ready" and ready["drain"] == "running"  # still accepting
                assert f"Code: {code}." in ready["last_error"] and ready["retrying_since"]
                _, metrics = await app.get("/metrics")
                assert metric(metrics, "reise_store_retries_total", f'{{code="{code}"}}') >= 2
                assert metric(metrics, "reise_store_retrying") == 1.0
                assert await counts(app, prefix) == (0, 0, 0)  # nothing parked
            finally:
                await app.command(mend_sql)
            await app.settled()
            assert await counts(app, prefix) == (50, 50, 0)
            _, ready = await app.get("/readyz")
            assert ready["writing"] == "ok" and ready["retries"] == 0 and ready["retrying_since"] is None
            _, metrics = await app.get("/metrics")
            assert metric(metrics, "reise_store_retrying") == 0.0
    failing = [e for e in logs if e["event"] == "store failing, will retry"]
    assert failing and f"Code: {code}." in failing[0]["error"] and failing[0]["log_level"] == "warning"


async def test_one_bad_row_among_10000_parks_exactly_that_row(store: Store, tmp_path: Path) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    sentinel = f"{prefix}-sentinel"
    batch = events(prefix, 10_000, customers=100)
    batch[6_789]["properties"]["campaign"] = sentinel
    constraint = f"reise_test_{prefix}"
    add_sql = (f"ALTER TABLE touchpoints ADD CONSTRAINT {constraint} "
                 f"CHECK throwIf(campaign = '{sentinel}', 'sentinel campaign refused') = 0")
    # one segment of exactly the 10,000 rows: sealed by size before the timer
    async with inprocess(store, tmp_path / "spool", REISE_BATCH_SIZE="10000", REISE_FLUSH_INTERVAL="30") as app:
        await app.command(add_sql)
        try:
            for start in range(0, 10_000, 1_000):
                status, _ = await app.post("/v1/batch", {"batch": batch[start:start + 1_000]})
                assert status == 200
            await app.settled()
        finally:
            await app.command(f"ALTER TABLE touchpoints DROP CONSTRAINT {constraint}")
        assert await counts(app, prefix) == (9_999, 9_999, 1)
        dead = await app.sql("SELECT message_id, endpoint, reason, payload FROM dead_letters "
                             "WHERE startsWith(message_id, {p:String})", {"p": prefix + "-"})
        message_id, endpoint, reason, payload = dead[0]
        assert (message_id, endpoint) == (f"{prefix}-m6789", "store")
        assert reason.startswith("store refused: Code: 395.") and "sentinel campaign refused" in reason
        assert f'"campaign":"{sentinel}"' in payload  # the row as stored columns, for a replay
        _, metrics = await app.get("/metrics")
        assert metric(metrics, "reise_rows_parked_total", '{table="touchpoints"}') == 1.0
        inserts = metric(metrics, "reise_insert_rows_count", '{table="touchpoints"}')
        assert inserts <= 2 * 14 + 1  # about two inserts per halving of 10,000 rows
        print(f"\n10,000 rows with one bad row: {int(inserts)} touchpoint inserts stored 9,999, parked 1")
        assert not list((tmp_path / "spool").glob("*.bisect"))  # journals go with their segment


class Crash(Exception):
    """The process dying mid-way (the attempt that would have run next never runs)."""


async def test_a_crash_mid_isolation_replays_exactly_once(store: Store, tmp_path: Path) -> None:
    """Parts inserted before a crash are not inserted again: their tokens and the journal of splits."""
    import orjson

    from collector.ingest.bisect import Journals, isolate
    from collector.ingest.protocol import IngestContext, normalise
    from collector.ingest.spool import encode_rows, header_line
    from collector.ingest.stages import StageRules
    from collector.settings import DEFAULT_RULES_PATH

    prefix = f"c{uuid.uuid4().hex[:8]}"
    sentinel = f"{prefix}-sentinel"
    batch = events(prefix, 1_000, customers=10)
    for bad in (3, 700):
        batch[bad]["properties"]["campaign"] = sentinel
    ctx = IngestContext(source="test", received_ms=1_800_000_000_000, rules=StageRules.load(DEFAULT_RULES_PATH))
    body = header_line("touchpoints") + encode_rows([normalise(e, None, ctx) for e in batch])
    header, *lines = body.splitlines()
    constraint = f"reise_test_{prefix}"
    store.command(f"ALTER TABLE touchpoints ADD CONSTRAINT {constraint} "
                  f"CHECK throwIf(campaign = '{sentinel}', 'sentinel campaign refused') = 0")
    try:
        for crash_after in (3, 7, None):  # two crashes, then a run to the end
            done = 0

            async def attempt(part: bytes, token: str, limit: int | None = crash_after) -> str | None:
                nonlocal done
                if limit is not None and done >= limit:
                    raise Crash
                done += 1
                try:
                    store.insert_encoded("touchpoints", part, token)
                except Exception as exc:  # the store's refusal, as the batcher's _attempt returns it
                    return str(exc)
                return None

            journal = Journals(tmp_path).of("reise-seg-touchpoints")  # read back from disk each run
            try:
                parked = await isolate(header + b"\n", lines, "reise-seg-touchpoints", attempt, journal,
                                       None if journal.is_split(0, len(lines)) else "refused whole")
            except Crash:
                continue
        stored = store.query("SELECT count(), uniqExact(message_id) FROM touchpoints "
                             "WHERE startsWith(message_id, {p:String})", {"p": prefix + "-"}).rows[0]
        assert tuple(stored) == (998, 998)
        assert sorted(orjson.loads(p.line)[0] for p in parked) == [f"{prefix}-m3", f"{prefix}-m700"]
        assert list(tmp_path.glob("*.bisect"))
        Journals(tmp_path).remove("reise-seg-")
        assert not list(tmp_path.glob("*.bisect"))
    finally:
        store.command(f"ALTER TABLE touchpoints DROP CONSTRAINT {constraint}")


async def test_a_dead_drain_loop_shows_in_readyz_and_recovers(store: Store, tmp_path: Path) -> None:
    """A segment file the drain cannot read (a directory in its place) kills the loop; it restarts until mended."""
    prefix = f"d{uuid.uuid4().hex[:8]}"
    spool = tmp_path / "spool"
    with structlog.testing.capture_logs() as logs:
        async with inprocess(store, spool, REISE_BATCH_SIZE="20") as app:
            assert (await app.post("/v1/admin/writing", {"paused": True}, key=ADMIN_KEY))[0] == 200
            assert (await app.post("/v1/batch", {"batch": events(prefix, 20)}))[0] == 200
            segment = next(spool.glob("*.tp"))  # sealed at 20 rows, waiting while writing is paused
            kept = segment.read_bytes()
            segment.unlink()
            segment.mkdir()
            assert (await app.post("/v1/admin/writing", {"paused": False}, key=ADMIN_KEY))[0] == 200

            async def down() -> Any:
                status, ready = await app.get("/readyz")
                return (status, ready) if ready["drain"] == "down" else None

            status, ready = await app.until(down)
            assert status == 503 and ready["status"] == "not ready"
            assert ready["drain_error"].startswith("IsADirectoryError")
            assert (await app.until(lambda: _restarts(app, 2)))  # restarted, and dying again, with backoff
            segment.rmdir()
            segment.write_bytes(kept)
            await app.settled(timeout=30)
            status, ready = await app.get("/readyz")
            assert status == 200 and ready["drain"] == "running" and ready["drain_error"] == ""
            assert await counts(app, prefix) == (20, 20, 0)
    died = [e for e in logs if e["event"] == "drain loop died; restarting it"]
    assert died and died[0]["exc_info"] is True and died[0]["log_level"] == "error"
    assert any(e["event"] == "drain loop recovered" for e in logs)


async def _restarts(app: InProcess, at_least: int) -> bool:
    _, metrics = await app.get("/metrics")
    return metric(metrics, "reise_drain_restarts_total") >= at_least and \
        metric(metrics, "reise_drain_up") in (0.0, 1.0)


async def test_a_damaged_spool_line_is_parked_and_the_rest_of_its_segment_stored(store: Store, tmp_path: Path) -> None:
    """A parse error (the named bad-row codes) for one line a disk damaged: that line alone becomes a dead letter."""
    import orjson

    from collector.ingest.protocol import IngestContext, normalise
    from collector.ingest.spool import encode_rows, header_line
    from collector.ingest.stages import StageRules
    from collector.settings import DEFAULT_RULES_PATH

    prefix = f"g{uuid.uuid4().hex[:8]}"
    ctx = IngestContext(source="test", received_ms=1_800_000_000_000, rules=StageRules.load(DEFAULT_RULES_PATH))
    lines = encode_rows([normalise(e, None, ctx) for e in events(prefix, 100)]).splitlines()
    lines[40] = lines[40][:30] + b"\x00garbage"
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "00000000000000000001-0000beef.tp").write_bytes(header_line("touchpoints") + b"\n".join(lines) + b"\n")
    async with inprocess(store, spool) as app:
        await app.settled()
        assert await counts(app, f"{prefix}") == (99, 99, 0)
        dead = await app.sql("SELECT endpoint, reason, payload FROM dead_letters WHERE endpoint = 'store' "
                             "AND startsWith(payload, {p:String})", {"p": lines[40][:20].decode()})
        assert len(dead) == 1 and dead[0][1].startswith("store refused: Code: ")
        assert int(dead[0][1].split("Code: ")[1].split(".")[0]) in BAD_ROW_CODES
    assert orjson.loads(lines[0])[0] == f"{prefix}-m0"


async def test_a_body_the_store_takes_is_not_split_into_lines(store: Store, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain loop runs on the event loop: a segment's body (tens of thousands of rows) is split into lines
    only when the store refuses it (isolation) or a crash left it split, never for an insert that succeeds."""
    split: list[int] = []
    real = batcher_module._lines

    def counted(body: bytes) -> list[bytes]:
        split.append(len(body))
        return real(body)

    monkeypatch.setattr(batcher_module, "_lines", counted)
    prefix = f"s{uuid.uuid4().hex[:8]}"
    async with inprocess(store, tmp_path / "spool") as app:
        status, _ = await app.post("/v1/batch", {"batch": events(prefix, 200)})
        assert status == 200
        await app.settled()
        assert await counts(app, prefix) == (200, 200, 0)
    assert split == []

"""Typed inserts (store.typed_insert) store exactly the rows the raw insert of the same bodies stored.

Two child processes (chDB opens one data path per process) take the same bodies, one through the insert as it
was before (``raw_insert`` of the body, every LowCardinality value parsed on its own), one through
``Store.insert_encoded``; with merges stopped, every row of every table (touchpoints and what their views and
the identity resolver write) must compare equal, a replay with the same tokens adding nothing in either.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.enrich.pipeline import Enricher
from collector.errors import EventRejected, ReiseError
from collector.identity.guards import DEFAULT_POLICY
from collector.ingest.protocol import IngestContext, normalise
from collector.ingest.spool import encode_rows, header_line
from collector.ingest.stages import StageRules
from collector.settings import DEFAULT_RULES_PATH
from collector.store.clickhouse import Store
from collector.store.schema import DEAD_LETTER_COLUMNS, TOUCHPOINT_COLUMNS
from collector.store.typed_insert import plain_type, typed_insert

ROOT = Path(__file__).resolve().parents[2]
RECEIVED_MS = int(time.time() * 1000)  # the bench events are of the last 30 days
ODD = ["", "ü", "a'b", 'a"b', "a\\b", "x\ny\tz", "😀 emoji", "中文", "€" * 300, " padded ", "null"]


def _old_insert_encoded(store: Any, table: str, body: bytes, token: str) -> None:
    """Store.insert_encoded before typed inserts (the reference)."""
    from collector.store.clickhouse import INSERT_SETTINGS

    settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
    with store._errors("insert"):
        store.client().raw_insert(table, None, body, settings=settings, fmt="JSONCompactEachRowWithNames")


class _Clock:
    """The resolver's clock in the children: the same versions in both (time.time_ns otherwise)."""

    def __init__(self) -> None:
        self.ticks = 0

    def time_ns(self) -> int:
        self.ticks += 1
        return 1_700_000_000_000_000_000 + self.ticks

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _child(mode: str, data_dir: str, steps_path: str) -> None:
    """In a process of its own: run the steps through one insert path and print every table's rows."""
    from collector.identity import resolver
    from collector.identity.resolver import decode_links, resolve_links
    from collector.store.clickhouse import Store
    from collector.store.migrate import apply_migrations

    store = Store(dsn=f"chdb://{data_dir}")
    apply_migrations(store)
    store.command("SYSTEM STOP MERGES")
    setattr(resolver, "time", _Clock())  # noqa: B010 - the module's clock, for these children only
    if mode == "raw":
        Store.insert_encoded = _old_insert_encoded  # type: ignore[method-assign,assignment]
    for step in json.loads(Path(steps_path).read_text()):
        body = step["body"].encode()
        if step["kind"] == "links":
            resolve_links(store, decode_links(body), step["token"], max_ids=100)
        else:
            store.insert_encoded(step["table"], body, step["token"])
    tables = [str(row[0]) for row in store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        " AND name != 'reise_migrations' ORDER BY name").rows]
    dump = {}
    for table in tables:
        result = store.query(f"SELECT * FROM {table}")
        dump[table] = sorted(orjson.dumps(list(row), default=str).decode() for row in result.rows)
    store.close()
    sys.stdout.write(json.dumps(dump))


def _events() -> list[dict[str, Any]]:
    """Bench events (every channel and call, purchases, bots, mail agents) and hand-made odd ones."""
    generate_bodies = runpy.run_path(str(ROOT / "bench" / "ingest.py"))["generate_bodies"]  # bench/ is no package
    events = [event for body in generate_bodies(1500, 100, run_id="typed", seed=11)
              for event in orjson.loads(body)["batch"]]
    for n, text in enumerate(ODD):
        events.append({
            "type": "track", "event": f"Odd {text}", "messageId": f"odd-{n}", "userId": f"odd-user-{n % 3}",
            "anonymousId": f"odd-anon-{n}", "channel": "web", "timestamp": "2026-01-02T03:04:05.678Z",
            "properties": {"text": text, "nested": {"a": [1, 2.5, None, True], "b": text}, "flag": False,
                           "big": 12345678901234567890, "revenue": -12.5, "currency": "eur", "order_id": f"o-{n}"},
            "context": {"locale": "de-CH", "timezone": "Europe/Zurich", "app": {"name": text, "version": "1.2"},
                        "groupId": f"g-{n}", "custom": {"deep": {"deeper": text}}, "page": {"url": f"/p?q={text}"},
                        "ip": "2001:db8::1" if n % 2 else "203.0.113.9",
                        "userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
                        if n % 3 == 0 else "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"},
            "integrations": {"All": False, text or "empty": True},
            "traits": {"name": text, "tags": ["x", text]},
        })
    events.append({"type": "group", "groupId": "acme", "userId": "odd-user-1", "messageId": "odd-group",
                   "traits": {"plan": "pro"}})
    events.append({"type": "alias", "previousId": "odd-anon-0", "userId": "odd-user-0", "messageId": "odd-alias"})
    events.append({"type": "screen", "name": "Home", "category": "Start", "anonymousId": "odd-anon-1",
                   "messageId": "odd-screen", "properties": {"category": "ignored"}, "stage": "retention"})
    return events


def _steps() -> list[dict[str, str]]:
    """Touchpoint bodies in two segments with the links between them resolved, a replay, and dead letters."""
    enricher, rules = Enricher(), StageRules.load(DEFAULT_RULES_PATH)
    rows = []
    for event in _events():
        ctx = IngestContext(source="typed", received_ms=RECEIVED_MS, rules=rules, enricher=enricher,
                            client_ip="198.51.100.7")
        try:
            rows.append(normalise(event, None, ctx))
        except EventRejected:
            continue
    # every LowCardinality column (and the others) also holds odd text
    for n, text in enumerate(ODD):
        row = dict(zip(TOUCHPOINT_COLUMNS, rows[n], strict=True))
        for column in ("channel", "stage", "currency", "utm_source", "utm_medium", "store_id", "source", "library",
                       "traffic_class", "traffic_source", "locale", "timezone", "app", "browser", "browser_version",
                       "os", "os_version", "device_type", "device_brand", "device_model", "country", "region",
                       "city", "campaign", "page_url"):
            row[column] = text
        row.update(message_id=f"lc-{n}", flag_reasons=[text, "ua:crawler"], in_journey=n % 2, sent_at=None,
                   properties={text or "k": text}, context={"k": text}, integrations={text or "i": "true"})
        rows.append(tuple(row.values()))
    half = len(rows) // 2
    links = DEFAULT_POLICY.links_in(rows[:half])
    first = header_line("touchpoints") + encode_rows(rows[:half])
    dead = [(RECEIVED_MS / 1000, "typed", text or "batch", n, f"dl-{n}", "c", "a", f"reason {text}", text)
            for n, text in enumerate(ODD)]
    assert len(dead[0]) == len(DEAD_LETTER_COLUMNS)
    return [
        {"kind": "insert", "table": "touchpoints", "body": first.decode(), "token": "seg-1-touchpoints"},
        {"kind": "links", "body": (header_line("identity_links") + encode_rows(links)).decode(), "token": "seg-1-l"},
        {"kind": "insert", "table": "touchpoints", "body": (header_line("touchpoints") + encode_rows(rows[half:]))
         .decode(), "token": "seg-2-touchpoints"},
        {"kind": "insert", "table": "touchpoints", "body": first.decode(), "token": "seg-1-touchpoints"},  # replay
        {"kind": "insert", "table": "dead_letters", "body": (header_line("dead_letters") + encode_rows(dead))
         .decode(), "token": "seg-1-dead_letters"},
    ]


def test_typed_inserts_store_the_same_rows_in_every_table(tmp_path: Path) -> None:
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps(_steps()))
    children = {mode: subprocess.Popen(
        [sys.executable, "-m", "tests.collector.test_typed_insert", mode, str(tmp_path / mode), str(steps)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for mode in ("raw", "typed")}
    dumps = {}
    for mode, child in children.items():
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err.decode()[-3000:]
        dumps[mode] = json.loads(out)
    raw, typed = dumps["raw"], dumps["typed"]
    assert raw.keys() == typed.keys()
    assert len(raw["touchpoints"]) > 1500 and raw["customer_state"] and raw["event_keys"] and raw["dead_letters"]
    assert [table for table in raw if typed[table] != raw[table]] == []


@pytest.mark.parametrize(("given", "plain"), [
    ("LowCardinality(String)", "String"),
    ("Map(LowCardinality(String), String)", "Map(String, String)"),
    ("Array(LowCardinality(String))", "Array(String)"),
    ("LowCardinality(Nullable(String))", "Nullable(String)"),
    ("Tuple(a LowCardinality(String), b Map(LowCardinality(String), LowCardinality(String)))",
     "Tuple(a String, b Map(String, String))"),
    ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"),
])
def test_plain_type_takes_off_every_low_cardinality_wrapper(given: str, plain: str) -> None:
    assert plain_type(given) == plain


def test_a_body_naming_an_unknown_column_or_no_low_cardinality_one_goes_in_as_it_is() -> None:
    types = {"a": "LowCardinality(String)", "b": "String", "c": "DateTime64(3, 'UTC')"}
    statement = typed_insert("t", ["a", "c"], types)
    assert statement is not None and statement.columns == ("a", "c")
    assert statement.structure == "`a` String, `c` DateTime64(3, 'UTC')"
    assert "FROM input('`a` String, `c` DateTime64(3, \\'UTC\\')') FORMAT" in statement.from_input({"x": 1})
    assert typed_insert("t", ["a", "z"], types) is None  # z: not a column, the engine decides as before
    assert typed_insert("t", ["b", "c"], types) is None  # nothing to gain
    assert typed_insert("t", ["a", "a"], types) is None
    assert typed_insert("t", [], types) is None


def test_the_columns_are_read_again_after_a_migration_changed_the_table(store: Store) -> None:
    store.command("CREATE TABLE typed_probe (a LowCardinality(String), b String) ENGINE = MergeTree ORDER BY a")
    try:
        store.insert_encoded("typed_probe", b'["a","b"]\n["x","y"]\n', "probe-1")
        store.command("ALTER TABLE typed_probe ADD COLUMN c LowCardinality(String)")
        store.insert_encoded("typed_probe", b'["a","c"]\n["x2","z"]\n', "probe-2")  # c: read again, then typed
        store.command("ALTER TABLE typed_probe DROP COLUMN b")
        with pytest.raises(ReiseError):  # the columns read before still name b: refused, and forgotten
            store.insert_encoded("typed_probe", b'["a","b"]\n["x3","w"]\n', "probe-3")
        # read again: b is no column, so the body goes in as it is and the engine decides (it skips b)
        store.insert_encoded("typed_probe", b'["a","b"]\n["x3","w"]\n', "probe-3")
        rows = store.query("SELECT a, c FROM typed_probe ORDER BY a").rows
        assert [tuple(row) for row in rows] == [("x", ""), ("x2", "z"), ("x3", "")]
    finally:
        store.command("DROP TABLE IF EXISTS typed_probe")


if __name__ == "__main__":
    _child(*sys.argv[1:4])

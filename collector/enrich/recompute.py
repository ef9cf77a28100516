"""``reise enrich --since DATE``: flags recomputed for stored touchpoints, and the journeys they change recounted.

The user agent, the truncated IP (enough for the networks, which are /24 or wider) and the request reasons
(``request:HEAD``, ``request:prefetch``) are kept on each touchpoint, so bot and mail-machine flags can be
computed again with the current lists and settings; the place cannot (the full IP is gone) and stays as stored.
Mail-click bursts are found over the stored clicks, so the first click of a burst is flagged too. Changed rows
are updated in place (one mutation per page); the customers whose journey changed are recounted from their
raw touchpoints (collector.identity.rebuild), as an unlink does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from collector.enrich.mail import is_click, sent_ms
from collector.enrich.pipeline import Enricher
from collector.errors import ConfigError
from collector.identity.rebuild import rebuild_state
from collector.identity.resolver import customers_of
from collector.store.clickhouse import Store

if TYPE_CHECKING:
    from collector.settings import Settings

__all__ = ["Recomputed", "enricher_of", "parse_since", "recompute_flags"]

PAGE_ROWS = 50_000
READ_SQL = """
SELECT message_id, journey_id, toUnixTimestamp64Milli(timestamp), toString(type), toString(channel), event,
       user_agent, ip, campaign, page_url, properties['sent_at'], flag_reasons, bot, machine, in_journey
FROM touchpoints
WHERE timestamp >= {since:DateTime64(3, 'UTC')} AND journey_id > {after:String}
ORDER BY journey_id, timestamp, message_id
LIMIT {limit:UInt32}
"""
UPDATE_SQL = """
ALTER TABLE touchpoints UPDATE
    bot = transform(message_id, {ids:Array(String)}, {bots:Array(UInt8)}, bot),
    machine = transform(message_id, {ids:Array(String)}, {machines:Array(UInt8)}, machine),
    in_journey = transform(message_id, {ids:Array(String)}, {journey:Array(UInt8)}, in_journey),
    flag_reasons = arrayFilter(r -> r != '', splitByChar('\x1F', transform(message_id, {ids:Array(String)},
                               {reasons:Array(String)}, arrayStringConcat(flag_reasons, '\x1F'))))
WHERE message_id IN {ids:Array(String)} AND timestamp >= {since:DateTime64(3, 'UTC')}
SETTINGS mutations_sync = 2
"""


@dataclass(frozen=True)
class Recomputed:
    """What ``reise enrich`` did: rows read, rows whose flags changed, customers recounted."""

    since: str
    rows: int
    changed: int
    customers: int


def _bursts(rows: Sequence[Sequence[Any]], window_ms: int) -> dict[str, str]:
    """message_id -> timing reason for the stored e-mail clicks (whole bursts across links of one message)."""
    found: dict[str, str] = {}
    clicks: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
    for row in rows:
        if row[4] == "email" and row[3] == "track" and is_click(str(row[5])):
            at, message_id = int(row[2]), str(row[0])
            sent = sent_ms(row[10])
            if sent is not None and 0 <= at - sent <= window_ms:
                found[message_id] = "timing:after_send"
            clicks.setdefault((str(row[1]), str(row[8])), []).append((at, str(row[9]), message_id))
    for group in clicks.values():
        group.sort()
        for (at, url, mid), (next_at, next_url, next_mid) in pairwise(group):
            if url != next_url and next_at - at <= window_ms:
                found.setdefault(mid, "timing:burst")
                found.setdefault(next_mid, "timing:burst")
    return found


def _pages(store: Store, since: datetime) -> Any:
    """The touchpoints since ``since`` in pages that never split one journey id's rows."""
    after = ""
    while True:
        rows = store.query(READ_SQL, {"since": since, "after": after, "limit": PAGE_ROWS}).rows
        if len(rows) < PAGE_ROWS:
            if rows:
                yield rows
            return
        last = rows[-1][1]
        whole: Sequence[Sequence[Any]] = [r for r in rows if r[1] != last]
        if not whole:  # one id with more rows than a page: read it alone
            whole = store.query(READ_SQL.replace("journey_id > {after:String}", "journey_id = {after:String}"),
                                {"since": since, "after": last, "limit": 10_000_000}).rows
            after = last
        else:
            after = whole[-1][1]
        yield whole


def recompute_flags(store: Store, enricher: Enricher, since: datetime) -> Recomputed:
    """Recompute the flags of the touchpoints since ``since``; recount the journeys whose rows changed."""
    window = enricher.mail.window_ms if enricher.mail is not None else 0
    read = changed = 0
    touched: set[str] = set()
    for rows in _pages(store, since):
        read += len(rows)
        timing = _bursts(rows, window) if enricher.mail is not None else {}
        update: list[tuple[str, int, int, int, str]] = []
        for row in rows:
            message_id, journey_id, _at, type_, channel, event, ua, ip = (str(v) for v in row[:8])
            kept = [r for r in row[11] if str(r).startswith("request:")]
            columns = enricher.columns(
                type_=type_, channel=channel, event=event, ua=ua, ip=ip, context={}, journey_id=journey_id,
                method="HEAD" if "request:HEAD" in kept else "GET", prefetch="request:prefetch" in kept,
                place=False, timing=timing.get(message_id, ""))
            bot, machine, reasons, journey = columns[10], columns[11], columns[12], columns[13]
            if (bot, machine, journey, sorted(reasons)) != (int(row[12]), int(row[13]), int(row[14]),
                                                           sorted(str(r) for r in row[11])):
                update.append((message_id, bot, machine, journey, "\x1f".join(reasons)))
                if journey != int(row[14]):
                    touched.add(journey_id)
        if update:
            store.command(UPDATE_SQL, {"ids": [u[0] for u in update], "bots": [u[1] for u in update],
                                       "machines": [u[2] for u in update], "journey": [u[3] for u in update],
                                       "reasons": [u[4] for u in update], "since": since})
            changed += len(update)
    customers = 0
    if touched:
        keys, members = customers_of(store, touched)
        key_of = {member: key for key in set(keys.values()) for member in members[key]}
        rebuild_state(store, key_of)
        customers = len(members)
    return Recomputed(since=since.isoformat(), rows=read, changed=changed, customers=customers)


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time (naive is UTC); ConfigError when unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since: expected an ISO 8601 date such as 2025-01-31, got {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def enricher_of(settings: Settings) -> Enricher:
    """The enricher the settings configure, for recomputing (place is never recomputed)."""
    if not settings.enrich:
        raise ConfigError("REISE_ENRICH is none: no flags to recompute")
    return Enricher(enabled=settings.enrich - {"place"}, exclude=settings.journey_exclude,
                    mail_window_seconds=settings.mail_machine_seconds)

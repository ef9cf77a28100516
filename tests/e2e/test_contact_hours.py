"""Migration 0019's contacts per hour give the channel mix the contact arrays give, through several unmerged state
rows, identity moves, a replayed insert, an unlink, a forget and the final merges; and the campaigns query's new
form gives the rows of the old one.

The overview's channel mix reads contact_hours (kept at insert by contact_hours_mv, negatives written by forget)
when the filters allow (no channel, no campaign, a range on whole hours) and the arrays otherwise. A contact counted
twice (a replay, a moved key), not at all, or left behind by forget would show here against the arrays, which
the previous query read; and against a plain-Python recount of the touchpoints written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collector.identity.rebuild import unlink
from collector.journey import insights
from collector.journey.forget import forget_person
from collector.store.clickhouse import Store
from collector.store.migrate import load_migrations
from tests.e2e.state_rows import Touchpoint, write_state_rows

# (message id, journey id, channel, stage rank, time, revenue, campaign); one insert per list, each a state row per
# key; in 2031, a range no other test writes
BATCHES: list[list[Touchpoint]] = [
    [("ch-1", "ch-anon", "ads", 1, "2031-03-01 10:00:00", 0, "spring"),
     ("ch-2", "ch-anon", "web", 2, "2031-03-01 10:59:59.999", 0, ""),
     ("ch-3", "ch-solo", "social", 1, "2031-03-03 08:00:00", 0, "radio"),
     ("ch-4", "ch-solo", "web", 0, "2031-03-03 08:30:00", 0, "")],  # no stage: not in the mix
    [("ch-5", "ch-cust", "email", 2, "2031-03-04 09:00:00", 0, "news"),
     ("ch-6", "ch-cust", "web", 3, "2031-03-04 09:30:00", 80, "spring"),
     ("ch-7", "ch-solo", "web", 3, "2031-03-03 08:10:00", 25, ""),
     ("ch-8", "ch-anon", "web", 2, "2031-03-05 10:00:00", 0, "radio")],
    [("ch-9", "ch-gone", "web", 1, "2031-03-02 07:00:00", 0, "spring"),
     ("ch-10", "ch-gone", "ads", 3, "2031-03-02 07:20:00", 10, "spring"),
     ("ch-11", "ch-solo", "pos", 4, "2031-03-06 12:00:00", 0, ""),
     ("ch-14", "ch-solo", "ch-1969", 2, "1969-12-31 23:30:00", 0, "")],  # its hour starts before 1970
]
LINKS = [("ch-anon", "ch-cust", "2031-03-04 09:00:00")]
# a later insert sent twice under one token (a replayed spool segment): counted once
REPLAYED = [("ch-12", "ch-cust", "pos", 4, "2031-03-07 15:45:00", 0, "news"),
            ("ch-13", "ch-gone", "email", 5, "2031-03-07 16:00:00", 0, "")]
SINCE, UNTIL = datetime(2031, 3, 1), datetime(2031, 3, 10)
RANGE = insights.Filters(since=SINCE, until=UNTIL)
# filters the kept counts answer (no channel or campaign, whole hours) and filters they do not (the arrays answer)
HOURLY = [RANGE, insights.Filters(since=datetime(2031, 3, 2), until=datetime(2031, 3, 5, 10))]
ARRAYS = [insights.Filters(since=datetime(2031, 3, 1, 10, 30), until=UNTIL),
          insights.Filters(since=SINCE, until=UNTIL, channel="web"),
          insights.Filters(since=SINCE, until=UNTIL, campaign="spring")]

# the channel mix as before 0019: every live row's contact arrays unrolled
ARRAYS_MIX = f"""
SELECT stage_rank, ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][stage_rank] AS stage,
       channel, count() AS touchpoints
FROM (SELECT contact_times, contact_channels, contact_stages FROM customer_state WHERE {insights._LIVE_ROWS})
ARRAY JOIN contact_times AS t, contact_channels AS channel, contact_stages AS stage_rank
WHERE stage_rank > 0 AND {insights._IN_RANGE}
GROUP BY stage_rank, channel
ORDER BY stage_rank, touchpoints DESC
"""
# the campaigns as before: the first touch of each campaign per customer, by minMap
MINMAP_CAMPAIGNS = f"""
SELECT campaign,
       countIf(first_purchase IS NULL OR first_touch < first_purchase) AS customers,
       countIf(first_touch < first_purchase) AS buyers,
       if(customers = 0, 0, buyers / customers) AS conversion,
       sumIf(revenue, first_touch < first_purchase) AS revenue
FROM
(
    SELECT customer_id, min(reached_3) AS first_purchase, sum(revenue) AS revenue,
           minMap(arrayFilter((c, t) -> c != '' AND {insights._IN_RANGE}, contact_campaigns, contact_times),
                  arrayFilter((t, c) -> c != '' AND {insights._IN_RANGE}, contact_times, contact_campaigns)) AS touches
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND {insights._PICKED}
)
ARRAY JOIN touches.1 AS campaign, touches.2 AS first_touch
GROUP BY campaign
HAVING customers > 0
ORDER BY conversion DESC, customers DESC, campaign
LIMIT {{limit:UInt32}}
"""


def _mix(rows: Sequence[Sequence[Any]]) -> dict[tuple[int, str], int]:
    return {(int(r[0]), str(r[2])): int(r[3]) for r in rows}


def _recount(touchpoints: list[Touchpoint], since: datetime, until: datetime) -> dict[tuple[int, str], int]:
    """The channel mix of these touchpoints in plain Python: contacts with a stage in [since, until)."""
    return dict(Counter((rank, channel) for _, _, channel, rank, at, _, _ in touchpoints
                        if rank > 0 and since <= datetime.fromisoformat(at) < until))


def _same(store: Store) -> dict[tuple[int, str], int]:
    """Every filter: the overview's channel mix equals the arrays' (and campaigns the minMap form); the mix in RANGE."""
    for filters in HOURLY + ARRAYS:
        params = {**filters.params(), "limit": 1000}
        assert _mix(store.query(insights.CHANNEL_MIX_SQL, params).rows) == \
            _mix(store.query(ARRAYS_MIX, params).rows), filters
        assert store.query(insights.CAMPAIGNS_SQL, params).rows == store.query(MINMAP_CAMPAIGNS, params).rows, filters
    return _mix(store.query(insights.CHANNEL_MIX_SQL, RANGE.params()).rows)


def test_contact_hours_equal_the_arrays_through_moves_replay_unlink_forget_and_merge(merges_stopped: Store) -> None:
    store = merges_stopped
    store.command("SYSTEM STOP MERGES contact_hours")
    try:
        write_state_rows(store, BATCHES, LINKS, "contact-hours-test")
        written = [t for batch in BATCHES for t in batch]
        assert _same(store) == _recount(written, SINCE, UNTIL)
        # the kept counts are read for whole hours only: an until 1 ms before the hour's end is answered by the arrays
        odd = insights.Filters(since=datetime(2031, 3, 1, 10), until=datetime(2031, 3, 1, 10, 59, 59, 999000))
        assert _mix(store.query(insights.CHANNEL_MIX_SQL, odd.params()).rows) == {(1, "ads"): 1}
        # an hour before 1970 is floored, not truncated towards 1970
        for since, until, found in ((datetime(1969, 12, 31, 23), datetime(1970, 1, 1), 1),
                                    (datetime(1970, 1, 1), datetime(1970, 1, 1, 1), 0)):
            mix = _mix(store.query(insights.CHANNEL_MIX_SQL, insights.Filters(since=since, until=until).params()).rows)
            assert mix.get((2, "ch-1969"), 0) == found, since

        columns = ("message_id", "type", "event", "journey_id", "customer_id", "anonymous_id", "channel",
                   "stage_rank", "timestamp", "original_timestamp", "received_at", "revenue", "campaign")
        rows = [(m, "track", "e", j, "", j, ch, rank, at, at, at, revenue, campaign)
                for m, j, ch, rank, at, revenue, campaign in REPLAYED]
        for _ in range(2):
            store.insert_rows("touchpoints", columns, rows, "contact-hours-test-replayed")
        written += REPLAYED
        assert _same(store) == _recount(written, SINCE, UNTIL)

        store.command("SYSTEM START MERGES customer_state")  # unlink and forget delete rows: a mutation
        unlink(store, "ch-anon")  # the browser's contacts go back to their own key: the mix does not change
        assert _same(store) == _recount(written, SINCE, UNTIL)

        forget_person(store, "ch-gone")
        written = [t for t in written if t[1] != "ch-gone"]
        assert _same(store) == _recount(written, SINCE, UNTIL)
        assert store.query("SELECT count() FROM customer_state WHERE customer_id = 'ch-gone'").rows == [(0,)]

        store.command("SYSTEM START MERGES contact_hours")
        store.command("OPTIMIZE TABLE customer_state FINAL")
        store.command("OPTIMIZE TABLE contact_hours FINAL")
        assert _same(store) == _recount(written, SINCE, UNTIL)
        # the forgotten person's hours summed to nothing and are gone (SummingMergeTree drops zero sums)
        assert store.query("SELECT count() FROM contact_hours WHERE hour = '2031-03-02 07:00:00'").rows == [(0,)]
        # migration 0019 on a store with data: its backfill counts the live contacts the arrays count
        backfill = next(s for m in load_migrations() if m.version == 19 for s in m.statements
                        if s.startswith("INSERT INTO contact_hours"))
        params = RANGE.params()
        counted = store.query(f"SELECT stage_rank, '', toString(channel), sum(contacts)"
                              f" FROM ({backfill[backfill.index('SELECT'):]})"
                              " WHERE hour >= {since:DateTime64(3, 'UTC')} AND hour < {until:DateTime64(3, 'UTC')}"
                              " GROUP BY stage_rank, channel", params).rows
        assert _mix(counted) == _recount(written, SINCE, UNTIL)
    finally:
        store.command("SYSTEM START MERGES contact_hours")


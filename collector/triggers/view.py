"""One customer's journey as the triggers see it, read from ``customer_state`` by primary key.

The state of the customers a spool segment touched is read in one round trip after the segment is stored
and its links resolved: the ids go to their keys through ``identity_keys``, the keys' rows are merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.identity.resolver import KEYED_IDS_CTE
from collector.store.clickhouse import Store, heredoc_json

__all__ = ["Contact", "CustomerView", "read_customers"]

STATE_SQL = KEYED_IDS_CTE + """SELECT
    customer_id,
    arraySort(groupUniqArrayArray(ids)) AS all_ids,
    max(stage_key) AS stage_key,
    max(furthest_stage) AS furthest,
    [toUnixTimestamp64Milli(min(reached_1)), toUnixTimestamp64Milli(min(reached_2)),
     toUnixTimestamp64Milli(min(reached_3)), toUnixTimestamp64Milli(min(reached_4)),
     toUnixTimestamp64Milli(min(reached_5))] AS reached,
    sum(contacts) AS contacts,
    sum(purchases) AS purchases,
    toFloat64(sum(revenue)) AS revenue,
    toUnixTimestamp64Milli(max(last_seen)) AS last_seen,
    arrayMap(t -> toUnixTimestamp64Milli(t), groupArrayArray(contact_times)) AS times,
    groupArrayArray(contact_channels) AS channels,
    groupArrayArray(contact_campaigns) AS campaigns,
    groupArrayArray(contact_stages) AS stages
FROM customer_state
WHERE customer_id IN (SELECT id FROM wanted WHERE id NOT IN (SELECT journey_id FROM keyed) UNION DISTINCT
                      SELECT key FROM keyed)
GROUP BY customer_id
HAVING max(hidden) = 0
"""


@dataclass(frozen=True, order=True)
class Contact:
    """One contact of a customer: its time (ms), channel, campaign and stage rank (0: none)."""

    at: int
    channel: str
    campaign: str
    rank: int


@dataclass(frozen=True)
class CustomerView:
    """What conditions are evaluated on: one customer's merged state."""

    key: str
    ids: tuple[str, ...]
    stage_key: int  # time (ms) * 8 + rank of the latest staged contact; 0 when none
    furthest: int
    reached: tuple[int | None, ...]  # first time (ms) each stage 1..5 was reached
    contacts: int
    purchases: int
    revenue: float
    last_seen: int | None
    history: tuple[Contact, ...]  # in time order

    @property
    def stage(self) -> int:
        """The current stage's rank (of the latest staged contact), 0 when none."""
        return self.stage_key % 8

    def channels(self) -> set[str]:
        """Channels the customer had contacts on."""
        return {c.channel for c in self.history}

    def bought_on(self) -> set[str]:
        """Channels the customer bought on (contacts at the purchase stage)."""
        return {c.channel for c in self.history if c.rank == 3}


def read_customers(store: Store, ids: Iterable[str]) -> list[CustomerView]:
    """The live customers the ids belong to (blocking: the writer thread)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    result = store.query(STATE_SQL, {"$ids$": heredoc_json(wanted)})
    views = []
    for (key, all_ids, stage_key, furthest, reached, contacts, purchases, revenue, last_seen, times, channels,
         campaigns, stages) in result.rows:
        history = sorted(Contact(int(t), str(ch), str(cp), int(r))
                         for t, ch, cp, r in zip(times, channels, campaigns, stages, strict=True))
        views.append(CustomerView(
            key=str(key), ids=tuple(sorted({str(i) for i in all_ids} | {str(key)})), stage_key=int(stage_key),
            furthest=int(furthest), reached=tuple(None if r is None else int(r) for r in reached),
            contacts=int(contacts), purchases=int(purchases), revenue=float(revenue),
            last_seen=None if last_seen is None else int(last_seen), history=tuple(history)))
    return views

"""The analyst's overview of the journey: funnel, contacts before purchase, channel mix, entries, campaigns.

One set of parameterised queries serves both ``reise report`` and the dashboard. Filters pick customers:
those with at least one contact in the date range, on the channel, from the campaign (each optional). Every
figure is about those customers; counts of touchpoints (channel mix) and of stage entries count only those
in the date range. Filter values travel as server-side ``{name:Type}`` parameters, never inside the SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from collector.ingest.stages import STAGES
from collector.store.clickhouse import QueryResult

__all__ = [
    "CAMPAIGNS_SQL",
    "CHANNEL_MIX_SQL",
    "CONTACTS_SQL",
    "ENTRIES_SQL",
    "FILTER_OPTIONS_SQL",
    "FUNNEL_SQL",
    "SEARCH_SQL",
    "STEPS",
    "Filters",
    "Runner",
    "contacts_summary",
    "funnel_rows",
    "overview",
    "percentile",
]

LITERATURE_RANGE = (7, 11)  # contacts before a purchase, by the rule of thumb
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2200, 1, 1)

Runner = Callable[[str, Mapping[str, Any]], QueryResult]
"""Runs one read-only query with server-side parameters (CLI: through the collector; dashboard: in a reader)."""

# Constant SQL fragments, joined once at import time; user input only ever arrives as parameters.
# Every figure is read from customer_state (one set of rows per resolved customer), never from the raw
# touchpoints: a customer's contacts are there as aligned arrays of time, channel, campaign, stage. The selected
# customers (_CUSTOMERS: funnel, stage entries) are read with FINAL: the engine merges a customer's rows as a
# background merge would (each column's own function: max, sum, min), for the columns a question reads only, which
# cost less than a GROUP BY over every customer; conditions on the merged row apply after the merge. The questions
# on contact arrays (contacts before purchase, campaigns) keep the GROUP BY: FINAL copies every array through the
# merge and cost as much or more (bench/journey_scale.py --compare).
_CONTACT = "t.type IN ('track', 'page', 'screen')"
_UNFILTERED = ("{channel:String} = '' AND {campaign:String} = ''"
               " AND {since:DateTime64(3, 'UTC')} <= '1970-01-01' AND {until:DateTime64(3, 'UTC')} >= '2200-01-01'")
_MATCHES = ("(t, ch, cp) -> t >= {since:DateTime64(3, 'UTC')} AND t < {until:DateTime64(3, 'UTC')}"
            " AND ({channel:String} = '' OR ch = {channel:String})"
            " AND ({campaign:String} = '' OR cp = {campaign:String})")
# a row of a customer counts towards the filters when one of its contacts matches (constant-folded when unfiltered)
_PICKED = (f"max(if({_UNFILTERED}, contacts > 0,"
           f" arrayExists({_MATCHES}, contact_times, contact_channels, contact_campaigns)))")
# the same for a customer's merged row (FINAL): one of its contacts matches
_PICKED_ROW = (f"if({_UNFILTERED}, contacts > 0,"
               f" arrayExists({_MATCHES}, contact_times, contact_channels, contact_campaigns))")
_TIME = "'Nullable(DateTime64(3, \\'UTC\\'))'"
_IN_RANGE = "t >= {since:DateTime64(3, 'UTC')} AND t < {until:DateTime64(3, 'UTC')}"
# the selected customers: live (not merged into another) with a contact that matches the filters
_CUSTOMERS = f"""
    SELECT customer_id, toUInt8(furthest_stage) AS furthest, CAST(revenue, 'Decimal(38, 4)') AS revenue,
           CAST(reached_3, {_TIME}) AS first_purchase,
           [CAST(reached_1, {_TIME}), CAST(reached_2, {_TIME}), CAST(reached_3, {_TIME}), CAST(reached_4, {_TIME}),
            CAST(reached_5, {_TIME})] AS reached
    FROM customer_state FINAL
    WHERE hidden = 0 AND {_PICKED_ROW}
"""
# the rows of live customers' contacts: not of a key merged into another (a small set once purged) and, when
# filtered, of a selected customer (unfiltered, that set is not even read)
_LIVE_ROWS = f"""
    hidden = 0
    AND customer_id NOT IN (SELECT customer_id FROM customer_state WHERE hidden = 1)
    AND (({_UNFILTERED}) OR customer_id IN (
        SELECT customer_id FROM customer_state WHERE NOT ({_UNFILTERED})
        GROUP BY customer_id HAVING max(hidden) = 0 AND {_PICKED}))
"""

FUNNEL_SQL = f"""
SELECT count() AS customers,
       countIf(furthest >= 1) AS awareness,
       countIf(furthest >= 2) AS consideration,
       countIf(furthest >= 3) AS purchase,
       countIf(furthest >= 4) AS retention,
       countIf(furthest >= 5) AS advocacy,
       sum(revenue) AS revenue
FROM ({_CUSTOMERS})
"""

# customers whose contacts before the first purchase are kept at insert (customer_state.pre_purchase_contacts holds
# the count when pre_purchase_last is before the first purchase; migrations/0018): their arrays are not merged
_KEPT = "hidden = 0 AND reached_3 IS NOT NULL AND pre_purchase_last < reached_3"
# the keys of the others (rows not merged yet with contacts between the first purchase and a row's own purchase)
_NOT_KEPT = "customer_id IN (SELECT customer_id FROM customer_state FINAL WHERE pre_purchase_last >= reached_3)"

# per buyer: contacts before the first purchase and the channel of the first of them; the kept count and first
# contact (FINAL) where it holds, else each row's earliest contact, then the earliest over the rows (no array of a
# customer is copied)
CONTACTS_SQL = f"""
SELECT if(before = 0, '', first_contact_channel) AS first_channel, before AS contacts, count() AS customers
FROM
(
    SELECT toUInt64(pre_purchase_contacts) AS before, substring(first_contact, 21) AS first_contact_channel
    FROM customer_state FINAL
    WHERE {_KEPT} AND {_PICKED_ROW}
    UNION ALL
    SELECT before, first_contact_channel
    FROM
    (
        SELECT min(reached_3) AS first_purchase,
               toUInt64(arraySum(times -> arrayCount(t -> t < first_purchase, times), groupArray(contact_times)))
                   AS before,
               argMinIf(contact_channels[indexOf(contact_times, arrayMin(contact_times))], arrayMin(contact_times),
                        notEmpty(contact_times)) AS first_contact_channel
        FROM customer_state
        WHERE {_NOT_KEPT}
        GROUP BY customer_id
        HAVING max(hidden) = 0 AND first_purchase IS NOT NULL AND {_PICKED}
    )
)
GROUP BY first_channel, contacts
ORDER BY first_channel, contacts
"""

# the channel mix can be read from the contacts kept per hour (contact_hours, migrations/0019) when every contact in
# the range belongs to a selected customer (no channel, no campaign) and the range is on whole hours (constant-folded)
_HOURLY = ("{channel:String} = '' AND {campaign:String} = ''"
           " AND toUnixTimestamp64Milli({since:DateTime64(3, 'UTC')}) % 3600000 = 0"
           " AND toUnixTimestamp64Milli({until:DateTime64(3, 'UTC')}) % 3600000 = 0")
_STAGE_NAME = "['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][stage_rank]"

CHANNEL_MIX_SQL = f"""
SELECT stage_rank, stage, channel, touchpoints
FROM
(
    SELECT stage_rank, {_STAGE_NAME} AS stage, toString(channel) AS channel, toUInt64(sum(contacts)) AS touchpoints
    FROM contact_hours
    WHERE ({_HOURLY}) AND hour >= {{since:DateTime64(3, 'UTC')}} AND hour < {{until:DateTime64(3, 'UTC')}}
    GROUP BY stage_rank, channel
    HAVING sum(contacts) != 0
    UNION ALL
    SELECT stage_rank, {_STAGE_NAME} AS stage, channel, count() AS touchpoints
    FROM (SELECT contact_times, contact_channels, contact_stages FROM customer_state
          WHERE NOT ({_HOURLY}) AND {_LIVE_ROWS})
    ARRAY JOIN contact_times AS t, contact_channels AS channel, contact_stages AS stage_rank
    WHERE stage_rank > 0 AND {_IN_RANGE}
    GROUP BY stage_rank, channel
)
ORDER BY stage_rank, touchpoints DESC
"""

# each customer's stage entries in the range as numbers (day * 8 + stage rank), counted per number
ENTRIES_SQL = f"""
SELECT toDate(intDiv(entry, 8)) AS day, toUInt8(entry % 8) AS stage_rank, count() AS customers
FROM
(
    SELECT arrayFilter(e -> e > 0, arrayMap(
               (reached_at, rank) -> if(reached_at >= {{since:DateTime64(3, 'UTC')}}
                                        AND reached_at < {{until:DateTime64(3, 'UTC')}},
                                        toUInt32(toDate(assumeNotNull(reached_at))) * 8 + rank, 0),
               reached, [1, 2, 3, 4, 5])) AS entries
    FROM ({_CUSTOMERS})
)
ARRAY JOIN entries AS entry
GROUP BY entry
ORDER BY day, stage_rank
"""

# per customer, the campaigns that reached them: touched in the range before their first purchase (any time when they
# never bought). A customer's (campaign, time) touches in the range are gathered over their rows as one array of
# pairs (groupArrayArray: cheaper than a minMap state per customer, bench/README.md), then filtered by the first
# purchase and made distinct: each campaign counts the customer once, and as a buyer when they bought.
CAMPAIGNS_SQL = f"""
SELECT campaign,
       count() AS customers,
       countIf(first_purchase IS NOT NULL) AS buyers,
       if(customers = 0, 0, buyers / customers) AS conversion,
       sumIf(revenue, first_purchase IS NOT NULL) AS revenue
FROM
(
    SELECT min(reached_3) AS first_purchase, sum(revenue) AS revenue,
           groupArrayArray(arrayFilter(touch -> touch.1 != '' AND touch.2 >= {{since:DateTime64(3, 'UTC')}}
                                                AND touch.2 < {{until:DateTime64(3, 'UTC')}},
                                       arrayZip(contact_campaigns, contact_times))) AS touches
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND {_PICKED}
)
ARRAY JOIN arrayDistinct(arrayMap(touch -> touch.1, arrayFilter(touch -> ifNull(touch.2 < first_purchase, 1), touches)))
    AS campaign
GROUP BY campaign
HAVING customers > 0
ORDER BY conversion DESC, customers DESC, campaign
LIMIT {{limit:UInt32}}
"""

FILTER_OPTIONS_SQL = f"""
SELECT kind, value, touchpoints FROM
(
    SELECT 'channel' AS kind, toString(t.channel) AS value, count() AS touchpoints FROM touchpoints AS t
    WHERE {_CONTACT} GROUP BY value
    UNION ALL
    SELECT 'campaign' AS kind, t.campaign AS value, count() AS touchpoints FROM touchpoints AS t
    WHERE {_CONTACT} AND t.campaign != '' GROUP BY value
)
ORDER BY kind, touchpoints DESC, value
"""

# by prefix of the customer's key or of any id mapped to it: two primary-key ranges, then the journeys
SEARCH_SQL = """
SELECT customer_id, furthest_stage, contacts, revenue
FROM customer_journey
WHERE customer_id IN (
    SELECT customer_id FROM (
        SELECT DISTINCT customer_id FROM customer_state WHERE startsWith(customer_id, {prefix:String}) LIMIT 200
        UNION DISTINCT
        SELECT DISTINCT customer_id FROM identity_map WHERE startsWith(anonymous_id, {prefix:String}) LIMIT 200
    )
)
ORDER BY contacts DESC, customer_id
LIMIT 20
"""

STEPS = ("funnel", "contacts before purchase", "channel mix", "stage entries", "campaigns")


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Which customers a report covers: active between since and until, on a channel, from a campaign."""

    since: datetime | None = None
    until: datetime | None = None
    channel: str = ""
    campaign: str = ""

    def params(self) -> dict[str, Any]:
        """The filters as query parameters (naive UTC times as text, empty strings for "any")."""
        return {
            "since": _sql_time(self.since or EARLIEST),
            "until": _sql_time(self.until or LATEST),
            "channel": self.channel,
            "campaign": self.campaign,
        }

    def describe(self) -> str:
        """The filters in words, for report headings."""
        parts = []
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d}")
        if self.until:
            parts.append(f"until {self.until:%Y-%m-%d}")
        if self.channel:
            parts.append(f"channel {self.channel}")
        if self.campaign:
            parts.append(f"campaign {self.campaign}")
        return ", ".join(parts) if parts else "all customers"


def _sql_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.000")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else 0.0


def funnel_rows(reached: Sequence[int]) -> list[dict[str, Any]]:
    """Per stage: customers who reached it, conversion from the stage before, and how many stopped there."""
    rows = []
    for index, stage in enumerate(STAGES):
        customers = int(reached[index])
        previous = int(reached[index - 1]) if index else None
        following = int(reached[index + 1]) if index + 1 < len(STAGES) else customers
        rows.append({
            "stage": stage,
            "customers": customers,
            "conversion": customers / previous if previous else None,
            "dropped": customers - following,
            "drop_share": (customers - following) / customers if customers else None,
        })
    return rows


def percentile(histogram: Mapping[int, int], share: float) -> int | None:
    """Nearest-rank percentile of a value -> count histogram (the median is ``share=0.5``)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-total * share // 1))  # ceil without floats drifting
    values = sorted(histogram)
    return next(v for v, seen in zip(values, accumulate(histogram[v] for v in values), strict=True) if seen >= rank)


def _contacts_stats(histogram: Mapping[int, int]) -> dict[str, Any]:
    total = sum(histogram.values())
    low, high = LITERATURE_RANGE
    within = sum(n for value, n in histogram.items() if low <= value <= high)
    return {
        "buyers": total,
        "median": percentile(histogram, 0.5),
        "p90": percentile(histogram, 0.9),
        "within_7_11": within / total if total else None,
    }


def contacts_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Histogram and statistics of contacts before the first purchase, overall and by first channel."""
    overall: dict[int, int] = defaultdict(int)
    by_channel: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        contacts, customers = int(row["contacts"]), int(row["customers"])
        overall[contacts] += customers
        by_channel[row["first_channel"] or "(purchase first)"][contacts] += customers
    top = max(overall, default=0)
    return {
        "histogram": [{"contacts": c, "customers": overall.get(c, 0)} for c in range(top + 1)] if overall else [],
        **_contacts_stats(overall),
        "by_first_channel": sorted(
            ({"first_channel": channel, **_contacts_stats(hist)} for channel, hist in by_channel.items()),
            key=lambda r: (-r["buyers"], r["first_channel"]),
        ),
    }


def _channel_mix(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    channels = sorted({r["channel"] for r in rows}, key=lambda c: -sum(r["touchpoints"] for r in rows
                                                                        if r["channel"] == c))
    stages = []
    for stage in STAGES:
        counts = {r["channel"]: int(r["touchpoints"]) for r in rows if r["stage"] == stage}
        total = sum(counts.values())
        stages.append({"stage": stage, "touchpoints": total,
                       "shares": {c: counts.get(c, 0) / total if total else 0.0 for c in channels}})
    return {"channels": channels, "stages": stages}


def _entries(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stage entries per day, or per week (from Monday) when they span more than six weeks."""
    per_day: dict[date, list[int]] = defaultdict(lambda: [0] * len(STAGES))
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"])[:10])
        per_day[day][int(row["stage_rank"]) - 1] += int(row["customers"])
    if not per_day:
        return {"bucket": "day", "days": [], "series": {s: [] for s in STAGES}}
    weekly = (max(per_day) - min(per_day)).days > 42
    step = timedelta(days=7 if weekly else 1)
    buckets: dict[date, list[int]] = defaultdict(lambda: [0] * len(STAGES))
    for day, counts in per_day.items():
        start = day - timedelta(days=day.weekday()) if weekly else day
        buckets[start] = [a + b for a, b in zip(buckets[start], counts, strict=True)]
    first, last = min(buckets), max(buckets)
    days = [first + step * i for i in range((last - first) // step + 1)]
    return {"bucket": "week" if weekly else "day", "days": [d.isoformat() for d in days],
            "series": {stage: [buckets[d][i] if d in buckets else 0 for d in days] for i, stage in enumerate(STAGES)}}


def overview(run: Runner, filters: Filters, *, campaigns: int = 10,
             on_step: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Every figure of the report and the dashboard for the given filters (five read-only queries)."""
    params = filters.params()

    def step(index: int, sql: str, extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if on_step:
            on_step(index, STEPS[index])
        return run(sql, {**params, **(extra or {})}).records()

    totals = step(0, FUNNEL_SQL)[0]
    contacts = contacts_summary(step(1, CONTACTS_SQL))
    mix = _channel_mix(step(2, CHANNEL_MIX_SQL))
    entries = _entries(step(3, ENTRIES_SQL))
    top = [{**r, "customers": int(r["customers"]), "buyers": int(r["buyers"]),
            "conversion": _number(r["conversion"]), "revenue": _number(r["revenue"])}
           for r in step(4, CAMPAIGNS_SQL, {"limit": campaigns})]
    return {
        "customers": int(totals["customers"]),
        "revenue": _number(totals["revenue"]),
        "funnel": funnel_rows([int(totals[s]) for s in STAGES]),
        "contacts_before_purchase": contacts,
        "channel_mix": mix,
        "stage_entries": entries,
        "campaigns": top,
    }

"""The analyst's depth for ``reise report`` and the dashboard: attribution, time between stages, paths, cohorts.

Every figure comes from the analytics views (migrations/0011_analytics.sql, rewritten in 0016_analytics_speed.sql).
Attribution takes the filters of the overview: purchases in the date range, of customers picked as the overview
picks them (a contact in the range, on the channel, from the campaign); durations, paths and cohorts cover every
customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from collector.journey.insights import Filters, Runner

__all__ = [
    "ATTRIBUTION_SQL",
    "COHORTS_SQL",
    "DURATIONS_SQL",
    "MODELS",
    "PATHS_SQL",
    "STEPS",
    "analytics",
    "attribution_table",
]

MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
STEPS = ("attribution", "time between stages", "paths", "cohorts")

_UNFILTERED = "{channel:String} = '' AND {campaign:String} = ''"
_MATCHES = ("arrayExists((t, ch, cp) -> t >= {since:DateTime64(3, 'UTC')} AND t < {until:DateTime64(3, 'UTC')}"
            " AND ({channel:String} = '' OR ch = {channel:String})"
            " AND ({campaign:String} = '' OR cp = {campaign:String}), contact_times, contact_channels,"
            " contact_campaigns)")

# The sums of attribution_credits per model, channel and campaign for the purchases picked, summed per credited
# contact (attribution_contact_credits, migrations/0016) and unrolled by model after grouping, as the attribution
# view does: a model has a row for a channel and campaign only where it credited one of their contacts.
ATTRIBUTION_SQL = f"""
SELECT model, channel, campaign, credited[k] AS purchases, credited_revenue[k] AS revenue
FROM
(
    SELECT
        channel,
        campaign,
        [sum(first_touch), sum(last_touch), sum(last_non_direct), sum(linear), sum(position_based),
         sum(time_decay)] AS credited,
        [sum(first_touch * toFloat64(revenue)), sum(last_touch * toFloat64(revenue)),
         sum(last_non_direct * toFloat64(revenue)), sum(linear * toFloat64(revenue)),
         sum(position_based * toFloat64(revenue)), sum(time_decay * toFloat64(revenue))] AS credited_revenue,
        [max(first_touch) > 0, max(last_touch) > 0, max(last_non_direct) > 0, true, true, true] AS given
    FROM attribution_contact_credits
    WHERE purchased_at >= {{since:DateTime64(3, 'UTC')}} AND purchased_at < {{until:DateTime64(3, 'UTC')}}
      AND (({_UNFILTERED}) OR customer_id IN (
          SELECT customer_id FROM customer_state WHERE NOT ({_UNFILTERED})
          GROUP BY customer_id HAVING max(hidden) = 0 AND max({_MATCHES})))
    GROUP BY channel, campaign
)
ARRAY JOIN {list(MODELS)!r} AS model, arrayEnumerate(credited) AS k
WHERE given[k]
ORDER BY model, purchases DESC, channel, campaign
"""

DURATIONS_SQL = "SELECT from_stage, to_stage, customers, median_seconds, p75_seconds, p90_seconds FROM stage_durations"

PATHS_SQL = """
SELECT kind, path, customers, buyers, conversion, median_days_to_purchase
FROM journey_paths
ORDER BY kind, customers DESC, path
LIMIT {limit:UInt32} BY kind
"""

COHORTS_SQL = """
SELECT cohort_week, stage, customers, by_week_1, by_week_2, by_week_4, by_week_8, by_week_12
FROM cohorts
WHERE cohort_week >= (SELECT max(cohort_week) FROM cohorts) - {weeks:UInt32} * 7
ORDER BY cohort_week
"""


def _float(value: Any) -> float:
    return float(value) if value is not None else 0.0


def attribution_table(rows: Sequence[Mapping[str, Any]], *, top: int = 5) -> dict[str, Any]:
    """Credited purchases and revenue per model: by channel (every channel, side by side) and top campaigns."""
    by_channel: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    by_campaign: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for row in rows:
        for table, key in ((by_channel, row["channel"]), (by_campaign, row["campaign"] or "(none)")):
            total = table[row["model"]][key]
            total[0] += _float(row["purchases"])
            total[1] += _float(row["revenue"])
    channels = sorted({c for model in by_channel.values() for c in model},
                      key=lambda c: (-sum(by_channel[m][c][0] for m in by_channel), c))
    return {
        "models": list(MODELS),
        "channels": [{"channel": c, **{m: {"purchases": by_channel[m][c][0], "revenue": by_channel[m][c][1]}
                                      for m in MODELS}} for c in channels],
        "campaigns": {m: [{"campaign": name, "purchases": v[0], "revenue": v[1]}
                          for name, v in sorted(by_campaign[m].items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]]
                      for m in MODELS},
        "purchases": sum(v[0] for v in by_channel["last_touch"].values()),
    }


def _paths(rows: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [{"path": list(r["path"]), "customers": int(r["customers"]), "buyers": int(r["buyers"]),
             "conversion": _float(r["conversion"]),
             "median_days": None if r["median_days_to_purchase"] is None else float(r["median_days_to_purchase"])}
            for r in rows if r["kind"] == kind]


def analytics(run: Runner, filters: Filters, *, paths: int = 30, weeks: int = 12,
              on_step: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Attribution (filtered), time between stages, the top paths and recent cohorts (four queries)."""
    params = filters.params()

    def step(index: int, sql: str, extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if on_step:
            on_step(index, STEPS[index])
        return run(sql, {**params, **(extra or {})} if index == 0 else dict(extra or {})).records()

    attribution = attribution_table(step(0, ATTRIBUTION_SQL))
    durations = [{**r, "customers": int(r["customers"]), **{k: _float(r[k]) for k in
                                                              ("median_seconds", "p75_seconds", "p90_seconds")}}
                 for r in step(1, DURATIONS_SQL)]
    found = step(2, PATHS_SQL, {"limit": paths})
    cohort_rows = step(3, COHORTS_SQL, {"weeks": weeks})
    cohorts: dict[str, dict[str, Any]] = {}
    for r in cohort_rows:
        week = str(r["cohort_week"])[:10]
        entry = cohorts.setdefault(week, {"week": week, "customers": int(r["customers"]), "stages": {}})
        entry["stages"][r["stage"]] = [r[f"by_week_{n}"] for n in (1, 2, 4, 8, 12)]
    return {
        "attribution": attribution,
        "stage_durations": durations,
        "paths": {"channel": _paths(found, "channel"), "stage": _paths(found, "stage")},
        "cohorts": {"weeks": [1, 2, 4, 8, 12], "rows": list(cohorts.values())},
    }

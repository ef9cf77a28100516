"""The analytics views equal a plain-Python recount of a generated dataset sent through HTTP.

The collector runs with a 14-day lookback and a 20-minute session gap (not the defaults), so the test also shows
that the settings reach the views. The dataset has multi-hop identities, returns, purchases on several channels,
purchases without contacts, contacts at the lookback edge, contacts exactly one session gap apart, and crawlers'
and mail machines' events (no contacts) among the people's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import analytics as recount
from tests.analytics import AnalyticsData, Contact, generate
from tests.helpers import Collector, http
from tests.journeys import parse

PREFIX = "an"
LOOKBACK_DAYS = 14
GAP_MINUTES = 20

RAW_SQL = """
SELECT message_id, journey_id, timestamp, toString(channel) AS channel, campaign,
       toString(traffic_class) AS traffic_class, stage_rank, revenue, order_id, page_url
FROM touchpoints WHERE type IN ('track', 'page', 'screen')
"""


@pytest.fixture(scope="module")
def analytics_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector of its own (the views cover every customer) with non-default analytics settings."""
    with Collector(data_dir=Path(tmp_path_factory.mktemp("analytics")) / "data",
                   extra_env={"REISE_ATTRIBUTION_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
                              "REISE_SESSION_GAP_MINUTES": str(GAP_MINUTES)}) as instance:
        yield instance


@pytest.fixture(scope="module")
def loaded(analytics_collector: Collector) -> tuple[AnalyticsData, dict[str, list[Contact]]]:
    """The dataset stored and its identities resolved; the stored contacts per customer (resolved in Python)."""
    data = generate(160, seed=11, prefix=PREFIX, lookback_days=LOOKBACK_DAYS, gap_minutes=GAP_MINUTES)
    for start in range(0, len(data.events), 200):
        reply = analytics_collector.post("/v1/batch", {"batch": data.events[start:start + 200]})
        assert reply.status == 200 and not reply.body["rejected"], reply.body
    stored = analytics_collector.wait_for("SELECT count() FROM touchpoints", len(data.events))
    assert stored == len(data.events)
    analytics_collector.wait_settled()
    linked = analytics_collector.wait_for("SELECT count() FROM identity_map", len(data.links))
    assert linked == len(data.links)
    settings = {"attribution_lookback_days": float(LOOKBACK_DAYS), "session_gap_minutes": float(GAP_MINUTES)}
    stored_settings = "SELECT groupArray((key, value)) FROM (SELECT key, argMax(value, version) AS value" \
                      " FROM analytics_settings GROUP BY key ORDER BY key)"
    assert analytics_collector.wait_for(stored_settings, [list(kv) for kv in sorted(settings.items())])  # written
    people = [r for r in analytics_collector.query(RAW_SQL) if r["message_id"] not in data.flagged]
    return data, recount.contacts_by_customer(people, data.links)


def test_the_dataset_has_what_the_views_must_handle(loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    data, customers = loaded
    chains = Counter(key for key in data.links.values())
    assert max(chains.values()) == 2  # three ids, two hops
    contacts = [c for cs in customers.values() for c in cs]
    assert any(c.revenue < 0 for c in contacts)  # returns
    assert len({c.channel for c in contacts if c.rank == 3}) >= 3  # purchases on several channels
    assert {"direct", "search", "email"} <= {c.traffic_class for c in contacts}
    assert any(c.campaign == "edge-in" for c in contacts) and any(c.campaign == "edge-out" for c in contacts)
    gap_ms = GAP_MINUTES * 60_000
    assert any(a.ms - b.ms == gap_ms for cs in customers.values() for a, b in zip(cs[1:], cs[:-1], strict=True))
    ids = [str(e.get("userId") or e.get("anonymousId")) for e in data.events if e["type"] in ("track", "page")]
    assert set(customers) == {data.links.get(i, i) for i in ids}


def test_the_dataset_has_crawlers_and_mail_machines_that_would_change_every_view(
        analytics_collector: Collector, loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    """The collector flags exactly the generator's crawler and machine events, and counting them would show."""
    data, customers = loaded
    flagged = analytics_collector.query("SELECT message_id, bot, machine, flag_reasons FROM touchpoints"
                                        " WHERE in_journey = 0")
    assert {r["message_id"] for r in flagged} == data.flagged
    assert any(r["bot"] for r in flagged) and any(r["machine"] for r in flagged)
    assert {"provider:machine_open", "ua:mpp:apple"} <= {reason for r in flagged for reason in r["flag_reasons"]}
    by_id = {e["messageId"]: e for e in data.events}
    assert any(by_id[m]["type"] == "track" and by_id[m]["event"] == "Order Completed" for m in data.flagged)
    everyone = recount.contacts_by_customer(analytics_collector.query(RAW_SQL), data.links)
    assert recount.attribution(recount.attribution_credits(everyone, LOOKBACK_DAYS)) != recount.attribution(
        recount.attribution_credits(customers, LOOKBACK_DAYS))
    assert recount.sessions(everyone, GAP_MINUTES) != recount.sessions(customers, GAP_MINUTES)
    assert recount.journey_paths(everyone) != recount.journey_paths(customers)
    assert recount.stage_durations(everyone) != recount.stage_durations(customers)
    today = datetime.now(UTC).date()
    assert recount.cohorts(everyone, today) != recount.cohorts(customers, today)


def test_attribution_equals_recount(analytics_collector: Collector,
                                    loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    _data, customers = loaded
    credits = recount.attribution_credits(customers, LOOKBACK_DAYS)
    rows = analytics_collector.query("SELECT * FROM attribution_credits")
    assert len(rows) == len(credits)
    by_purchase = Counter((r["customer_id"], round(parse(r["purchased_at"]).timestamp() * 1000), r["model"],
                           r["contacts"], Decimal(str(r["revenue"]))) for r in rows)
    assert by_purchase == Counter((c["customer_id"], c["purchased_at"], c["model"], c["contacts"], c["revenue"])
                                  for c in credits)
    # without contacts in the window, the purchase credits its own channel and campaign
    assert any(c["contacts"] == 0 for c in credits) and any(c["contacts"] > 2 for c in credits)
    want = recount.attribution(credits)
    got = {(r["model"], r["channel"], r["campaign"]): (r["credited_purchases"], r["credited_revenue"])
           for r in analytics_collector.query("SELECT * FROM attribution")}
    assert set(got) == set(want)
    for key, (purchases, revenue) in want.items():
        assert got[key] == (pytest.approx(purchases, abs=1e-9), pytest.approx(revenue, abs=1e-6)), key
    purchases = sum(1 for cs in customers.values() for c in cs if c.rank == 3)
    for model in recount.MODELS:  # every purchase gives each model exactly one credit
        assert sum(v[0] for k, v in got.items() if k[0] == model) == pytest.approx(purchases)
    # the edge: a contact exactly the lookback before its purchase counts, one millisecond earlier does not
    lookback_ms = LOOKBACK_DAYS * 86_400_000
    ages = Counter(round((parse(r["purchased_at"]) - parse(r["touched_at"])).total_seconds() * 1000)
                   for r in rows if r["model"] == "linear" and r["touched_at"] is not None)
    assert ages[lookback_ms] > 0 and max(ages) == lookback_ms
    edge_out = [(p.ms, c.ms) for cs in customers.values() for p in cs for c in cs
                if p.rank == 3 and p.ms - c.ms == lookback_ms + 1]
    assert edge_out  # such contacts exist, and no credit is older than the lookback


def test_sessions_equal_recount(analytics_collector: Collector,
                                loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    _data, customers = loaded
    want = {r["session_id"]: r for r in recount.sessions(customers, GAP_MINUTES)}
    rows = analytics_collector.query("SELECT * FROM sessions")
    got = {}
    for r in rows:
        r["started_at"] = round(parse(r["started_at"]).timestamp() * 1000)
        r["ended_at"] = round(parse(r["ended_at"]).timestamp() * 1000)
        got[r["session_id"]] = r
    assert got == want


def test_journey_paths_equal_recount(analytics_collector: Collector,
                                     loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    _data, customers = loaded
    want = recount.journey_paths(customers)
    rows = analytics_collector.query("SELECT * FROM journey_paths")
    got = {(r["kind"], tuple(r["path"])): r for r in rows}
    assert set(got) == set(want)
    for key, expected in want.items():
        row = got[key]
        assert row["steps"] == len(key[1])
        assert (row["customers"], row["buyers"]) == (expected["customers"], expected["buyers"]), key
        assert row["conversion"] == pytest.approx(expected["conversion"])
        if expected["median_days_to_purchase"] is None:
            assert row["median_days_to_purchase"] is None
        else:
            assert row["median_days_to_purchase"] == pytest.approx(expected["median_days_to_purchase"])
    stage_paths = [path for kind, path in want if kind == "stage"]
    assert any(path.index("consideration") < len(path) - 1 and "awareness" in path[path.index("consideration"):]
               for path in stage_paths if "consideration" in path)  # a move backward


def test_stage_durations_equal_recount(analytics_collector: Collector,
                                       loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    _data, customers = loaded
    rows = analytics_collector.query("SELECT * FROM stage_durations")
    got = {f"{r['from_stage']}->{r['to_stage']}": {k: r[k] for k in ("customers", "median_seconds", "p75_seconds",
                                                                     "p90_seconds")} for r in rows}
    assert got == recount.stage_durations(customers)
    assert len(got) == 4


def test_cohorts_equal_recount(analytics_collector: Collector,
                               loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    _data, customers = loaded
    rows = analytics_collector.query("SELECT * FROM cohorts")
    got: dict[tuple[date, str], dict[str, Any]] = {}
    for r in rows:
        week = date.fromisoformat(str(r.pop("cohort_week"))[:10])
        got[(week, r.pop("stage"))] = r
    assert got == recount.cohorts(customers, datetime.now(UTC).date())
    assert len({week for week, _stage in got}) >= 8


def test_views_stay_exact_after_unlink_and_forget(analytics_collector: Collector,
                                                  loaded: tuple[AnalyticsData, dict[str, list[Contact]]]) -> None:
    """Split a three-id buyer back into its ids and forget another buyer: every view equals the new recount.

    Runs last in this module: it changes the collector's data (the tests above read it unchanged).
    """
    data, customers = loaded
    chains: dict[str, list[str]] = {}
    for id_, key in data.links.items():
        chains.setdefault(key, []).append(id_)
    buyers = [key for key, ids in sorted(chains.items())
              if len(ids) == 2 and any(c.rank == 3 for c in customers.get(key, []))]
    split, forgotten = buyers[0], buyers[1]
    middle = next(i for i in chains[split] if "-k" in i)
    reply = http("POST", analytics_collector.url + "/v1/admin/unlink", {"id": middle},
                 key=analytics_collector.admin_key)
    assert reply.status == 200, reply.body
    reply = http("POST", analytics_collector.url + "/v1/admin/forget", {"customer_id": forgotten},
                 key=analytics_collector.admin_key)
    assert reply.status == 200, reply.body
    analytics_collector.wait_settled()
    links = {i: k for i, k in data.links.items() if k != split}  # every link of the middle id is gone
    people = [r for r in analytics_collector.query(RAW_SQL) if r["message_id"] not in data.flagged]
    after = recount.contacts_by_customer(people, links)
    assert forgotten not in after and len([k for k in after if k in (split, *chains[split])]) == 3
    now = (data, after)
    test_attribution_equals_recount(analytics_collector, now)
    test_sessions_equal_recount(analytics_collector, now)
    test_journey_paths_equal_recount(analytics_collector, now)
    test_stage_durations_equal_recount(analytics_collector, now)
    test_cohorts_equal_recount(analytics_collector, now)

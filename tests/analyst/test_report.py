"""`reise report`: the overview as terminal tables, with filters and a progress indicator."""

from __future__ import annotations

import re

from collector.cli.demo_journeys import Journey
from collector.journey.insights import funnel_rows, percentile
from tests.analyst.conftest import DEMO_CUSTOMERS, run_cli
from tests.helpers import Collector


def _customers(stdout: str) -> int:
    match = re.search(r"^(\d+) customers, revenue", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1))


def test_report_prints_every_section(demo_collector: Collector) -> None:
    """Funnel with the views' numbers, contacts before purchase, channel mix and campaigns; progress on stderr."""
    done = run_cli(demo_collector, "report")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert _customers(out) == DEMO_CUSTOMERS
    for row in demo_collector.query("SELECT stage, customers, dropped_here FROM stage_funnel"):
        assert re.search(rf"^{row['stage']}\s+{row['customers']}\s.*\s{row['dropped_here']}\s", out, re.MULTILINE), row
    contacts = [r["contacts"] for r in demo_collector.query("SELECT contacts FROM contacts_before_purchase")]
    median = percentile({c: contacts.count(c) for c in set(contacts)}, 0.5)
    assert f"Contacts before the first purchase: {len(contacts)} buyers, median {median}," in out
    for heading in ("Channel mix per stage", "Top campaigns by conversion", "first channel", "within 7-11"):
        assert heading in out
    assert "(5/5)" in done.stderr and "campaigns" in done.stderr


def test_report_filters_narrow_the_customers(demo_collector: Collector, demo_plan: list[Journey]) -> None:
    """--channel and --campaign pick the customers who had such a contact; --since in the future picks none."""
    by_pos = sum(1 for j in demo_plan if any(e.is_contact and e.channel == "pos" for e in j.events))
    pos = run_cli(demo_collector, "report", "--channel", "pos")
    assert pos.returncode == 0 and _customers(pos.stdout) == by_pos and "channel pos" in pos.stdout
    by_campaign = sum(1 for j in demo_plan if any(e.is_contact and e.campaign == "retargeting" for e in j.events))
    campaign = run_cli(demo_collector, "report", "--campaign", "retargeting")
    assert campaign.returncode == 0 and _customers(campaign.stdout) == by_campaign
    future = run_cli(demo_collector, "report", "--since", "2999-01-01")
    assert future.returncode == 0 and _customers(future.stdout) == 0 and "no customers match" in future.stderr
    bad = run_cli(demo_collector, "report", "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_percentile_and_funnel_arithmetic() -> None:
    """Nearest-rank percentiles of a histogram; conversion and drop-off per stage."""
    assert percentile({}, 0.5) is None
    assert percentile({9: 1}, 0.9) == 9
    assert percentile({1: 1, 2: 1, 3: 1, 4: 1}, 0.5) == 2
    assert percentile({1: 9, 20: 1}, 0.9) == 1 and percentile({1: 9, 20: 1}, 0.95) == 20
    rows = funnel_rows([100, 50, 25, 0, 0])
    assert [r["conversion"] for r in rows] == [None, 0.5, 0.5, 0.0, None]
    assert [r["dropped"] for r in rows] == [50, 25, 25, 0, 0]
    assert rows[0]["drop_share"] == 0.5 and rows[3]["drop_share"] is None

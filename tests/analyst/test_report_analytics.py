"""`reise report`'s deeper sections: attribution by model side by side, time between stages, the top paths."""

from __future__ import annotations

import re

from collector.cli.report import duration
from tests.analyst.conftest import run_cli
from tests.helpers import Collector


def test_report_compares_models_and_shows_durations_and_paths(demo_collector: Collector) -> None:
    """Each model's credited purchases per channel, the stage durations and the top path, as the views say."""
    done = run_cli(demo_collector, "report")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "(4/4)" in done.stderr and "cohorts" in done.stderr
    section = out[out.index("Attribution:"):out.index("Top campaigns under each model")]
    totals = demo_collector.query("SELECT model, channel, sum(credited_purchases) AS n FROM attribution"
                                  " GROUP BY model, channel")
    credited = {(r["model"], r["channel"]): r["n"] for r in totals}
    purchases = demo_collector.scalar("SELECT count() FROM attribution_purchases")
    assert purchases > 0 and f"Attribution: {purchases:,} purchases" in out
    models = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
    for channel in {c for _m, c in credited}:
        cells = [f"{credited.get((m, channel), 0.0):.1f}" for m in models]
        assert re.search(rf"^{channel}\s+" + r"\s+".join(map(re.escape, cells)) + r"\s*$", section, re.M), channel
    for row in demo_collector.query("SELECT * FROM stage_durations"):
        assert re.search(rf"^{row['from_stage']}\s+{row['to_stage']}\s+{row['customers']}\s+"
                         rf"{re.escape(duration(row['median_seconds']))}\s", out, re.M), row
    top = demo_collector.query("SELECT path, customers FROM journey_paths WHERE kind = 'channel'"
                               " ORDER BY customers DESC, path LIMIT 1")[0]
    assert re.search(rf"^{re.escape(' > '.join(top['path']))}\s+{top['customers']}\s", out, re.M), top


def test_report_attribution_follows_the_date_filter(demo_collector: Collector) -> None:
    """Purchases after --since only: none in the far future."""
    future = run_cli(demo_collector, "report", "--since", "2999-01-01")
    assert future.returncode == 0 and "Attribution: 0 purchases" in future.stdout


def test_durations_read_in_the_largest_sensible_unit() -> None:
    assert [duration(s) for s in (5, 90, 5400, 3 * 86400)] == ["5 s", "1.5 min", "1.5 h", "3.0 d"]

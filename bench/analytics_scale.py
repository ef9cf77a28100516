"""The analytics views at scale: attribution, sessions, paths, time between stages and cohorts at 100k and N customers.

Builds the dataset of ``bench/journey_scale.py`` (about 8 touchpoints per customer, a third of them under two
hops of identity links, through the migrations and the identity resolver) in a fresh chDB directory and prints
the median time of each view's question at 100k and at N customers (default 1M), and their growth.

    .venv/bin/python bench/analytics_scale.py                    # 100k and 1M customers
    .venv/bin/python bench/analytics_scale.py --customers 300000 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from journey_scale import load, settle, size_of, timed

from collector.identity.resolver import purge_merged
from collector.journey.analytics import analytics
from collector.journey.insights import Filters
from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations

QUESTIONS = {
    "attribution (every model, channel, campaign)": "SELECT * FROM attribution",
    "attribution_credits, last 30 days by channel": "SELECT model, channel, sum(credit) FROM attribution_credits"
                                                    " WHERE purchased_at >= '2026-01-10' GROUP BY model, channel",
    "sessions: count and contacts": "SELECT count(), sum(touchpoints), sum(has_purchase) FROM sessions",
    "sessions by entry channel": "SELECT entry_channel, count() FROM sessions GROUP BY entry_channel",
    "journey_paths: top 10 channel paths": "SELECT * FROM journey_paths WHERE kind = 'channel'"
                                           " ORDER BY customers DESC LIMIT 10",
    "stage_durations": "SELECT * FROM stage_durations",
    "cohorts": "SELECT * FROM cohorts",
}


def queries(store: Store) -> dict[str, Callable[[], Any]]:
    """Each view's question, and the dashboard's whole analytics panel (four queries)."""
    def one(sql: str) -> Callable[[], Any]:
        return lambda: store.query(sql).rows

    runs = {name: one(sql) for name, sql in QUESTIONS.items()}
    runs["dashboard analytics panel (four queries)"] = lambda: analytics(lambda s, p: store.query(s, p), Filters())
    return runs


def main() -> None:
    """Load 100k customers, measure, grow to N, measure again, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="N, the large size (default 1M)")
    parser.add_argument("--small", type=int, default=100_000, help="the small size (default 100k)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query; the median is printed")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds for background merges after a load")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="reise-analytics-scale-"))
    store = Store(dsn=f"chdb://{directory / 'data'}")
    try:
        apply_migrations(store)
        figures: dict[int, dict[str, float]] = {}
        loaded = 0
        for size in (args.small, args.customers):
            started = time.perf_counter()
            load(store, loaded, size - loaded)
            loaded = size
            purge_merged(store)
            print(f"loaded {size:,} customers in {time.perf_counter() - started:.1f} s; "
                  f"disk {size_of(directory) / 2**20:,.0f} MiB", flush=True)
            settle(store, args.settle)
            figures[size] = {name: timed(run, args.repeat) for name, run in queries(store).items()}
        small, large = args.small, args.customers
        print(f"\n{'question (median ms)':48s} {small:>12,} {large:>12,} {'growth':>8s}")
        for name in figures[small]:
            a, b = figures[small][name], figures[large][name]
            print(f"{name:48s} {a:12.1f} {b:12.1f} {b / a:7.2f}x")
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

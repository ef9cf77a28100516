"""Journey at scale: one customer by any id, and the bulk questions, at 100k and at N customers.

Builds N customers (default 1M) with about 8 touchpoints each into a fresh chDB directory, through the
migrations and so every view, the way the collector writes them: each chunk's touchpoints are inserted into
``touchpoints`` (the views fire), then the chunk's identity links go through the collector's resolver. A
third of the customers come as an anonymous browser id, a loyalty card at the till and then a customer id
(links browser -> card -> customer, two hops); a third as a browser id, then a customer id; a third known
from the start. Prints the median of several runs of each query at 100k and at N, their growth ratio, the
load time and the disk size.

    .venv/bin/python bench/journey_scale.py                      # 100k and 1M customers
    .venv/bin/python bench/journey_scale.py --customers 10000000 # and 10M
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.identity.resolver import Link, purge_merged, resolve_links
from collector.journey.insights import FUNNEL_SQL, Filters, overview
from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations

CHUNK = 50_000  # customers per load step: one insert of their touchpoints, then their links
START_MS = 1_767_225_600_000  # 2026-01-01

# Eight touchpoints per customer c (k = 0..7). Kinds by c % 3: 0 browser -> card -> customer,
# 1 browser -> customer, 2 customer only. Identify/alias calls carry the links.
TOUCHPOINTS_SQL = """
INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, anonymous_id, channel, stage,
                         stage_rank, timestamp, original_timestamp, received_at, revenue, currency, campaign,
                         source)
SELECT
    concat('m', toString(c), '-', toString(k)) AS message_id,
    multiIf(kind = 0 AND k = 3, 'identify', kind = 0 AND k = 5, 'alias', kind = 1 AND k = 4, 'identify',
            k = 2, 'page', 'track') AS type,
    ['ad_impression', 'page_view', 'product_viewed', 'identify', 'store_visit', 'order_completed',
     'delivered', 'review_written'][k + 1] AS event,
    if(customer != '', customer, anonymous) AS journey_id,
    multiIf(kind = 0 AND k IN (3, 4), concat('card', toString(c)), kind = 0 AND k >= 5, concat('cust', toString(c)),
            kind = 1 AND k >= 4, concat('cust', toString(c)), kind = 2, concat('cust', toString(c)), '') AS customer,
    multiIf(kind = 0 AND k <= 3, concat('anon', toString(c)), kind = 0 AND k = 5, concat('card', toString(c)),
            kind = 1 AND k <= 4, concat('anon', toString(c)), '') AS anonymous,
    ['ads', 'web', 'web', 'web', 'pos', 'web', 'email', 'social'][k + 1] AS channel,
    ['awareness', 'awareness', 'consideration', '', 'consideration', 'purchase', 'retention',
     'advocacy'][k + 1] AS stage,
    [1, 1, 2, 0, 2, 3, 4, 5][k + 1] * (c % 4 != 3 OR k < 5) AS stage_rank,
    fromUnixTimestamp64Milli(toInt64({start:Int64} + c * 1000 + k * 3600000 * (1 + c % 5)), 'UTC') AS timestamp,
    timestamp AS original_timestamp,
    timestamp AS received_at,
    if(stage_rank = 3, toDecimal64(20 + c % 80, 4), toDecimal64(0, 4)) AS revenue,
    'EUR' AS currency,
    if(k < 2, concat('campaign-', toString(c % 40)), '') AS campaign,
    'bench' AS source
FROM (SELECT {first:UInt64} + intDiv(number, 8) AS c, number % 8 AS k, c % 3 AS kind FROM numbers({rows:UInt64}))
SETTINGS max_insert_block_size = 50000, min_insert_block_size_rows = 50000
"""


def links_of(first: int, count: int) -> list[Link]:
    """The identity links the identify and alias calls of these customers carry (as the collector spools them)."""
    links = []
    for c in range(first, first + count):
        kind = c % 3
        if kind == 0:
            links.append(Link(linked_at=(START_MS + c * 1000 + 3 * 3600000 * (1 + c % 5)) / 1000,
                              message_id=f"m{c}-3", anonymous_id=f"anon{c}", customer_id=f"card{c}", source="bench"))
            links.append(Link(linked_at=(START_MS + c * 1000 + 5 * 3600000 * (1 + c % 5)) / 1000,
                              message_id=f"m{c}-5", anonymous_id=f"card{c}", customer_id=f"cust{c}", source="bench"))
        elif kind == 1:
            links.append(Link(linked_at=(START_MS + c * 1000 + 4 * 3600000 * (1 + c % 5)) / 1000,
                              message_id=f"m{c}-4", anonymous_id=f"anon{c}", customer_id=f"cust{c}", source="bench"))
    return links


def load(store: Store, first: int, count: int) -> None:
    """Customers first..first+count-1: their touchpoints (views fire), then their links through the resolver."""
    for start in range(first, first + count, CHUNK):
        n = min(CHUNK, first + count - start)
        store.command(TOUCHPOINTS_SQL, {"first": start, "rows": n * 8, "start": START_MS})
        resolve_links(store, links_of(start, n), f"bench-{start}", max_ids=100)


def timed(run: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def queries(store: Store, customers: int) -> dict[str, Callable[[], Any]]:
    """The questions measured, each a callable running it once."""
    probe = customers // 2 - (customers // 2) % 3  # a two-hop customer in the middle of the key range
    run = store.query

    def one(sql: str, **params: Any) -> Callable[[], Any]:
        return lambda: run(sql, params).rows

    return {
        "round trip floor (SELECT 1)": one("SELECT 1"),
        "customer_journey WHERE customer_id = X": one(
            "SELECT * FROM customer_journey WHERE customer_id = {id:String}", id=f"cust{probe}"),
        "customer_journey_of(id = browser id)": one(
            "SELECT * FROM customer_journey_of(id = {id:String})", id=f"anon{probe}"),
        "customer_journey_of(id = loyalty card)": one(
            "SELECT * FROM customer_journey_of(id = {id:String})", id=f"card{probe}"),
        "stage funnel (stage_funnel)": one("SELECT * FROM stage_funnel"),
        "contacts before first purchase, distribution": one(
            "SELECT contacts, count() FROM contacts_before_purchase GROUP BY contacts ORDER BY contacts"),
        "customers per current stage": one(
            "SELECT current_stage, count() FROM customer_journey GROUP BY current_stage"),
        "dashboard overview (all five queries)": lambda: overview(
            lambda sql, params: run(sql, params), Filters()),
        "funnel as the dashboard asks it": one(FUNNEL_SQL, **Filters().params()),
    }


def size_of(path: Path) -> int:
    """Bytes on disk under a directory; parts a background merge removes while it is counted are skipped."""
    total = 0
    for folder, _, files in os.walk(path):  # os.walk ignores a folder that vanished under it
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total


def main() -> None:
    """Load 100k customers, measure, grow to N, measure again, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="N, the large size (default 1M)")
    parser.add_argument("--small", type=int, default=100_000, help="the small size (default 100k)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per query; the median is printed")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds to let background merges run after each load, as between bursts in production")
    parser.add_argument("--keep", action="store_true", help="keep the chDB directory")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="reise-journey-scale-"))
    store = Store(dsn=f"chdb://{directory / 'data'}")
    try:
        apply_migrations(store)
        figures: dict[int, dict[str, float]] = {}
        loaded, load_seconds = 0, {}
        for size in (args.small, args.customers):
            started = time.perf_counter()
            load(store, loaded, size - loaded)
            load_seconds[size] = time.perf_counter() - started
            loaded = size
            purge_merged(store)  # as the collector does every REISE_PURGE_INTERVAL
            time.sleep(args.settle)
            figures[size] = {name: timed(run, args.repeat) for name, run in queries(store, size).items()}
            print(f"loaded {size:,} customers ({size * 8:,} touchpoints) in {load_seconds[size]:.1f} s; "
                  f"disk {size_of(directory) / 2**20:,.0f} MiB", flush=True)
        small, large = args.small, args.customers
        print(f"\n{'query (median ms)':48s} {small:>12,} {large:>12,} {'growth':>8s}")
        for name in figures[small]:
            a, b = figures[small][name], figures[large][name]
            print(f"{name:48s} {a:12.1f} {b:12.1f} {b / a:7.2f}x")
    finally:
        store.close()
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

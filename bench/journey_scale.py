"""Journey at scale: one customer by any id, and the bulk questions, at 100k and at N customers.

Builds N customers (default 1M) with about 8 touchpoints each into a fresh chDB directory, through the
migrations and so every view, the way the collector writes them: each chunk's identity links go through the
collector's resolver, then its touchpoints are inserted into ``touchpoints`` (the views fire). A
third of the customers come as an anonymous browser id, a loyalty card at the till and then a customer id
(links browser -> card -> customer, two hops); a third as a browser id, then a customer id; a third known
from the start. Prints the median of several runs of each query at 100k and at N, their growth ratio, the
load time and the disk size.

    .venv/bin/python bench/journey_scale.py                      # 100k and 1M customers
    .venv/bin/python bench/journey_scale.py --customers 10000000 # and 10M
    .venv/bin/python bench/journey_scale.py --compare main       # old and new views on one 1M store
    .venv/bin/python bench/journey_scale.py --late-links         # every link after its events: all state moves

Every customer's touchpoints and links come in one load chunk, so, resolved first, no linked id gets state of its
own: the best case, as when a visitor signs in within the segment of their anonymous visits (or an import of a
shop's history). ``--late-links`` is the worst case: every link arrives after the events it joins, so the state of
every anonymous id and loyalty card is recorded, moved, hidden and purged.

``--compare REV`` loads N customers once, then runs every question with the views and the dashboard's queries of
git revision REV (the views as migrations up to REV define them, created beside the current ones as ``prev_*``;
collector/journey/insights.py as REV has it) and with the current ones, alternating, and prints both medians of
wall time and of this process's CPU time (the engine runs in-process), after checking that both give the same
rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.identity.resolver import Link, purge_merged, resolve_links
from collector.journey.analyst import CUSTOMER_SQL, look_up_customer
from collector.journey.insights import FUNNEL_SQL, Filters, Runner, overview
from collector.store.clickhouse import QueryResult, Store
from collector.store.migrate import apply_migrations, split_statements
from collector.store.readonly import QueryLimits

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


def load(store: Store, first: int, count: int, *, late_links: bool = False) -> None:
    """Customers first..first+count-1 in the collector's order: each chunk's links through the resolver, then its
    touchpoints (views fire, mapping the linked ids straight to their customers).

    ``late_links``: each chunk's links come after its touchpoints, as when they arrive in a later segment than the
    events they join: the state of every linked id is recorded under it first, then moved and hidden (then purged).
    """
    for start in range(first, first + count, CHUNK):
        n = min(CHUNK, first + count - start)
        if not late_links:
            resolve_links(store, links_of(start, n), f"bench-{start}", max_ids=100)
        store.command(TOUCHPOINTS_SQL, {"first": start, "rows": n * 8, "start": START_MS})
        if late_links:
            resolve_links(store, links_of(start, n), f"bench-{start}", max_ids=100)


MERGES_SQL = "SELECT count() FROM system.merges WHERE database = currentDatabase()"


def settle(store: Store, seconds: float, limit: float = 600.0) -> None:
    """Let background merges run after a load: ``seconds``, then until none is running (at most ``limit`` more), so
    that lookups are timed on a store as it stands between bursts, not beside the merges of a bulk load."""
    time.sleep(seconds)
    started = time.monotonic()
    while store.query(MERGES_SQL).rows[0][0] and time.monotonic() - started < limit:
        time.sleep(2.0)
    waited = time.monotonic() - started
    if waited >= 2.0:
        print(f"waited {waited:.0f} s more for the load's merges", flush=True)


def timed(run: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


PHASES = {"analysis": "QueryAnalysisMicroseconds", "plan": "QueryPlanBuildMicroseconds",
          "optimise plan": "QueryPlanOptimizeMicroseconds", "pipeline": "QueryPipelineBuildMicroseconds"}
QUERY_TIME = "QueryTimeMicroseconds"
EVENTS_SQL = "SELECT event, value FROM system.events WHERE event IN {names:Array(String)}"
LOOKUPS = ("round trip floor (SELECT 1)", "customer_journey WHERE customer_id = X",
           "customer_journey_of(id = browser id)", "... = reise_customer_key(browser id)",
           "GET /v1/customers/{id} (store side)")


def engine_phases(store: Store, run: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Where the engine spends a question's time: its own counters (system.events) over ``repeat`` runs, per run
    in ms, for each phase of PHASES and the whole query (QUERY_TIME). The counters are the process's (or the
    server's), so read them on a quiet store; the two reads of them are taken out. An analysis nested in another
    (a parameterised view's, a sub-query's) counts in both, so the phases may add up to more than the query."""
    names = [*PHASES.values(), QUERY_TIME]

    def counters() -> dict[str, int]:
        return {str(name): int(value) for name, value in store.query(EVENTS_SQL, {"names": names}).rows}

    first, second = counters(), counters()
    for _ in range(repeat):
        run()
    third = counters()
    per_run = {name: ((third.get(name, 0) - second.get(name, 0)) - (second.get(name, 0) - first.get(name, 0)))
               / repeat / 1000 for name in names}
    return {**{phase: per_run[name] for phase, name in PHASES.items()}, "query": per_run[QUERY_TIME]}


def runners(store: Store) -> tuple[Runner, Runner]:
    """How the lookup callers ran their SQL before (through the query guard) and now (Store.query_own)."""
    limits = QueryLimits()

    def guarded(sql: str, params: Any) -> QueryResult:
        return store.query_readonly(sql, params, limits=limits)

    def own(sql: str, params: Any) -> QueryResult:
        return store.query_own(sql, params, limits=limits)

    return guarded, own


def probes(customers: int) -> Callable[[], int]:
    """The next two-hop customer to look up: a different one each run (64 spread over the key range, in turn), so
    that no cache of one customer's parts or sub-query flatters a lookup's time."""
    chosen = itertools.cycle(random.Random(11).sample(range(0, customers - 2, 3), min(64, customers // 3)))
    return lambda: next(chosen)


def callers(store: Store, probe: Callable[[], int]) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """The lookup callers' store side, before and now: GET /v1/customers/{id} and the dashboard's customer page
    (journey, touchpoints, links), both by the browser id of a two-hop customer (``probe()``: one per run), and
    the endpoint's 404 for an id nobody has."""
    guarded, own = runners(store)
    return {
        "GET /v1/customers/{id} (store side)": (lambda: guarded(CUSTOMER_SQL, {"id": f"anon{probe()}"}),
                                                lambda: own(CUSTOMER_SQL, {"id": f"anon{probe()}"})),
        "GET /v1/customers/{id}, unknown id (404)": (lambda: guarded(CUSTOMER_SQL, {"id": f"nobody{probe()}"}),
                                                     lambda: own(CUSTOMER_SQL, {"id": f"nobody{probe()}"})),
        "dashboard customer (journey, touchpoints, links)": (
            lambda: look_up_customer(guarded, f"anon{probe()}", with_links=True),
            lambda: look_up_customer(own, f"anon{probe()}", with_links=True)),
    }


def queries(store: Store, customers: int) -> dict[str, Callable[[], Any]]:
    """The questions measured, each a callable running it once; a lookup asks for another customer each run."""
    probe = probes(customers)
    run = store.query
    lookups = {name: now for name, (_, now) in callers(store, probe).items()}

    def one(sql: str, **params: Any) -> Callable[[], Any]:
        return lambda: run(sql, params).rows

    def lookup(sql: str, id_of: Callable[[int], str]) -> Callable[[], Any]:
        return lambda: run(sql, {"id": id_of(probe())}).rows

    by_function = "SELECT * FROM customer_journey WHERE customer_id = reise_customer_key({id:String})"
    return {
        "round trip floor (SELECT 1)": one("SELECT 1"),
        "customer_journey WHERE customer_id = X": lookup(
            "SELECT * FROM customer_journey WHERE customer_id = {id:String}", lambda c: f"cust{c}"),
        "customer_journey_of(id = browser id)": lookup(
            "SELECT * FROM customer_journey_of(id = {id:String})", lambda c: f"anon{c}"),
        "customer_journey_of(id = loyalty card)": lookup(
            "SELECT * FROM customer_journey_of(id = {id:String})", lambda c: f"card{c}"),
        "... = reise_customer_key(browser id)": lookup(by_function, lambda c: f"anon{c}"),
        "... = reise_customer_key(loyalty card)": lookup(by_function, lambda c: f"card{c}"),
        "stage funnel (stage_funnel)": one("SELECT * FROM stage_funnel"),
        "contacts before first purchase, distribution": one(
            "SELECT contacts, count() FROM contacts_before_purchase GROUP BY contacts ORDER BY contacts"),
        "customers per current stage": one(
            "SELECT current_stage, count() FROM customer_journey GROUP BY current_stage"),
        "dashboard overview (all five queries)": lambda: overview(
            lambda sql, params: run(sql, params), Filters()),
        "funnel as the dashboard asks it": one(FUNNEL_SQL, **Filters().params()),
        **lookups,
    }


ROOT = Path(__file__).resolve().parent.parent
JOURNEY_VIEWS = ("customer_journey_of", "customer_journey", "contacts_before_purchase", "stage_funnel")
_VIEW = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_NAMES = re.compile(r"\b(" + "|".join(JOURNEY_VIEWS) + r")\b")
PREFIX = "prev_"


def at_revision(path: str, revision: str) -> str:
    """A file of the repository as git revision ``revision`` has it."""
    return subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def previous_views(revision: str) -> list[str]:
    """The journey views as ``revision``'s migrations define them, renamed prev_* (also where they read each other)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", revision, "migrations/"], check=True,
                           capture_output=True, text=True).stdout.split()
    latest: dict[str, str] = {}
    for name in sorted(f for f in files if f.endswith(".sql")):
        for statement in split_statements(at_revision(name, revision)):
            view = _VIEW.match(statement)
            if view and view.group(1) in JOURNEY_VIEWS:
                body = _NAMES.sub(lambda m: PREFIX + m.group(1), statement[view.end():])
                latest[view.group(1)] = f"CREATE OR REPLACE VIEW {PREFIX}{view.group(1)}{body}"
    return list(latest.values())


def previous_insights(revision: str) -> Any:
    """collector/journey/insights.py as ``revision`` has it, loaded as a module of its own."""
    folder = Path(tempfile.mkdtemp(prefix="reise-insights-"))
    path = folder / "insights_previous.py"
    path.write_text(at_revision("collector/journey/insights.py", revision))
    spec = importlib.util.spec_from_file_location("insights_previous", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["insights_previous"] = module
    spec.loader.exec_module(module)
    shutil.rmtree(folder, ignore_errors=True)
    return module


def compared(store: Store, customers: int, revision: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each question as (previous SQL, current SQL, parameters); the previous views must exist (prev_*)."""
    import collector.journey.insights as current

    previous = previous_insights(revision)
    probe = customers // 2 - (customers // 2) % 3
    views = {
        "customer_journey WHERE customer_id = X": (
            "SELECT * FROM {v}customer_journey WHERE customer_id = {{id:String}}", {"id": f"cust{probe}"}),
        "customer_journey_of(id = browser id)": (
            "SELECT * FROM {v}customer_journey_of(id = {{id:String}})", {"id": f"anon{probe}"}),
        "customer_journey_of(id = loyalty card)": (
            "SELECT * FROM {v}customer_journey_of(id = {{id:String}})", {"id": f"card{probe}"}),
        "stage funnel (stage_funnel)": ("SELECT * FROM {v}stage_funnel", {}),
        "contacts before first purchase, distribution": (
            "SELECT contacts, count() FROM {v}contacts_before_purchase GROUP BY contacts ORDER BY contacts", {}),
        "customers per current stage": (
            "SELECT current_stage, count() FROM {v}customer_journey GROUP BY current_stage ORDER BY current_stage", {}),
    }
    questions = {name: (sql.format(v=PREFIX), sql.format(v=""), params) for name, (sql, params) in views.items()}
    params = {**Filters().params(), "limit": 10}
    for name in ("FUNNEL_SQL", "CONTACTS_SQL", "CHANNEL_MIX_SQL", "ENTRIES_SQL", "CAMPAIGNS_SQL"):
        questions[f"overview: {name}"] = (getattr(previous, name), getattr(current, name), params)
    return questions


def compare(store: Store, customers: int, revision: str, repeat: int) -> None:
    """Previous and current views and queries on one store: same rows, then medians of wall and CPU, alternating."""
    for statement in previous_views(revision):
        store.command(statement)
    questions = compared(store, customers, revision)
    for view in ("customer_journey", "contacts_before_purchase", "stage_funnel"):
        for a, b in ((PREFIX + view, view), (view, PREFIX + view)):
            extra = store.query(f"SELECT count() FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").rows[0][0]
            if extra:
                raise SystemExit(f"{view}: {extra} rows of {a} are not in {b}")
    for name, (old, new, params) in questions.items():
        if sorted(map(repr, store.query(old, params).rows)) != sorted(map(repr, store.query(new, params).rows)):
            raise SystemExit(f"{name}: previous and current answers differ")
    print(f"same rows from both for every question; medians of {repeat} alternating runs (ms)", flush=True)
    print(f"\n{'question':48s} {'old wall':>9s} {'new wall':>9s} {'old CPU':>9s} {'new CPU':>9s}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name, (old, new, params) in questions.items():
        runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for _ in range(repeat):
            for side, sql in (("old", old), ("new", new)):
                cpu, wall = time.process_time(), time.perf_counter()
                store.query(sql, params)
                runs[side].append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        # old wall, new wall, old CPU, new CPU
        figures = [statistics.median(run[k] for run in runs[side]) for k in (0, 1) for side in ("old", "new")]
        if name.startswith("overview"):
            totals = [t + f for t, f in zip(totals, figures, strict=True)]
        print(f"{name:48s} " + " ".join(f"{f:9.1f}" for f in figures), flush=True)
    print(f"{'overview, the five queries':48s} " + " ".join(f"{f:9.1f}" for f in totals))
    print("\nlookup callers, store side: old = through the query guard (as REV ran them), new = Store.query_own")
    for name, (before, now) in callers(store, probes(customers)).items():
        timings: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for _ in range(repeat):
            for side, run in (("old", before), ("new", now)):
                cpu, wall = time.process_time(), time.perf_counter()
                run()
                timings[side].append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        figures = [statistics.median(run[k] for run in timings[side]) for k in (0, 1) for side in ("old", "new")]
        print(f"{name:48s} " + " ".join(f"{f:9.1f}" for f in figures), flush=True)


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
                        help="seconds to let background merges run after each load (then until none runs), as between "
                             "bursts in production")
    parser.add_argument("--late-links", action="store_true",
                        help="each chunk's links after its touchpoints (as in a later segment): every linked id's "
                             "state moves, the store holds hidden rows until purged and merged")
    parser.add_argument("--keep", action="store_true", help="keep the chDB directory")
    parser.add_argument("--compare", metavar="REV",
                        help="load N customers once and compare REV's views and overview queries with these")
    parser.add_argument("--store", type=Path,
                        help="with --compare: a chDB directory this bench loaded before (--keep) to reuse")
    args = parser.parse_args()
    directory = args.store or Path(tempfile.mkdtemp(prefix="reise-journey-scale-"))
    store = Store(dsn=f"chdb://{directory / 'data'}")
    try:
        apply_migrations(store)
        if args.compare:
            if not args.store:
                started = time.perf_counter()
                load(store, 0, args.customers, late_links=args.late_links)
                purge_merged(store, wait=True)  # as the collector's purges leave it
                settle(store, args.settle)
                print(f"loaded {args.customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
            compare(store, args.customers, args.compare, args.repeat)
            return
        figures: dict[int, dict[str, float]] = {}
        loaded, load_seconds = 0, {}
        for size in (args.small, args.customers):
            started = time.perf_counter()
            load(store, loaded, size - loaded, late_links=args.late_links)
            load_seconds[size] = time.perf_counter() - started
            loaded = size
            purge_merged(store, wait=True)  # as the collector's purges (every REISE_PURGE_INTERVAL) leave it
            settle(store, args.settle)
            questions = queries(store, size)  # the last size's are split by phase below
            figures[size] = {name: timed(run, args.repeat) for name, run in questions.items()}
            print(f"loaded {size:,} customers ({size * 8:,} touchpoints) in {load_seconds[size]:.1f} s; "
                  f"disk {size_of(directory) / 2**20:,.0f} MiB", flush=True)
        small, large = args.small, args.customers
        print(f"\nwhere the engine spends a lookup's time at {large:,} (ms a query, its own counters; nested analyses "
              "count in their query's too)")
        print(f"{'question':48s}" + "".join(f"{phase:>14s}" for phase in [*PHASES, "query"]))
        for name in LOOKUPS:
            split = engine_phases(store, questions[name], args.repeat)
            print(f"{name:48s}" + "".join(f"{value:14.1f}" for value in split.values()))
        print(f"\n{'query (median ms)':48s} {small:>12,} {large:>12,} {'growth':>8s}")
        for name in figures[small]:
            a, b = figures[small][name], figures[large][name]
            print(f"{name:48s} {a:12.1f} {b:12.1f} {b / a:7.2f}x")
    finally:
        store.close()
        if args.keep or args.store:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

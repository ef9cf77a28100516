"""The collector of this tree with the journey design before issue 11, for bench/design_cost.py only.

    python bench/old_design_serve.py [--details] serve --port N   (the arguments of ``python -m collector``)

Everything at ingest is this tree's (request path, enrichment, spool, writer) except what issue 11's design added:

- ``customer_state_mv`` and ``contact_hours_mv`` are dropped after the migrations, and the views of before the design
  are created in their place from the migrations that first made them: ``journey_state_mv`` (per-id state,
  0004) and ``identity_links_mv`` (links straight from the touchpoints, 0003);
- the writer does not resolve identities (no ``identity_keys``/``identity_members`` writes, no moved state, no
  saved plans) and does not purge merged keys;
- with ``--details``, ``journey_state`` also keeps analytics' per-contact tuples (``contact_details``, migration
  0011, issue 14) per id, as analytics on the per-id design would have: the design then carries no other issue's
  per-event work that its baseline lacks.

The store it leaves is not a valid Reise store: it exists to price the design at ingest, back to back.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collector.cli.main import main  # noqa: E402
from collector.ingest import batcher  # noqa: E402
from collector.store.clickhouse import Store  # noqa: E402
from collector.store.migrate import apply_migrations, load_migrations  # noqa: E402

# (migration, a word its statement holds): the statements of before the design, as first written
OLD_STATEMENTS = ((3, "identity_links_mv"), (4, "journey_state"))
NEW_VIEWS = ("customer_state_mv", "contact_hours_mv")


def old_design_statements() -> list[str]:
    """DROP the design's ingest views, then the old views (and journey_state) as migrations 3 and 4 made them."""
    by_version = {m.version: m.statements for m in load_migrations()}
    statements = [f"DROP VIEW IF EXISTS {name}" for name in NEW_VIEWS]
    for version, word in OLD_STATEMENTS:
        statements += [s for s in by_version[version] if word in s and not s.startswith("CREATE VIEW")]
    return statements


# ``--details``: the per-id state also keeps analytics' contact details (migration 0011) as a per-id design
# would have had to, so that the ratio prices issue 11's design alone and not issue 14's per-contact tuples too
DETAILS_COLUMN = """ALTER TABLE journey_state ADD COLUMN IF NOT EXISTS contact_details
    SimpleAggregateFunction(groupArrayArray,
        Array(Tuple(at DateTime64(3, 'UTC'), channel String, campaign String, stage UInt8,
                    revenue Decimal(18, 4), order_id String, traffic_class String, page_url String)))"""
# 0004's view ends with its contact log; the details follow it (t.revenue: the view names its sum ``revenue``)
LOG_END = " AS contact_log\nFROM touchpoints\n"
DETAILS_END = (" AS contact_log,\n    groupArray((t.timestamp, toString(t.channel), t.campaign, t.stage_rank,"
               " t.revenue, t.order_id, toString(t.traffic_class), t.page_url)) AS contact_details\n"
               "FROM touchpoints AS t\n")


def details_statements() -> list[str]:
    """Add ``contact_details`` to journey_state and make 0004's view fill it too."""
    statements = next(m.statements for m in load_migrations() if m.version == 4)
    view = next(s for s in statements if s.startswith("CREATE MATERIALIZED VIEW"))
    if LOG_END not in view:
        raise SystemExit("migration 0004's view changed: update LOG_END")
    return [DETAILS_COLUMN, "DROP VIEW IF EXISTS journey_state_mv", view.replace(LOG_END, DETAILS_END)]


WITH_DETAILS = "--details" in sys.argv[1:2]


def _migrate_to_old_design(store: Store, *args: Any, **kwargs: Any) -> list[str]:
    applied: list[str] = _apply_migrations(store, *args, **kwargs)
    for statement in old_design_statements() + (details_statements() if WITH_DETAILS else []):
        store.command(statement)
    return applied


async def _no_resolution(self: batcher.Batcher, body: bytes, token: str) -> list[tuple[Any, ...]]:
    """Before the design, links were only rows (identity_links_mv); nothing was resolved (or refused) at ingest."""
    return []


def _no_purge(store: Store, *, wait: bool = False) -> bool:
    """Before the design there were no merged keys to purge."""
    return False


_apply_migrations = apply_migrations
batcher.apply_migrations = _migrate_to_old_design  # type: ignore[attr-defined]  # the writer's names for them
batcher.purge_merged = _no_purge  # type: ignore[attr-defined]
batcher.Batcher._resolve_until_done = _no_resolution  # type: ignore[method-assign]

if __name__ == "__main__":
    if WITH_DETAILS:
        del sys.argv[1]
    main()

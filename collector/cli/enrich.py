"""``reise enrich --since DATE``: recompute bot and mail-machine flags of stored touchpoints (enrich.recompute)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from collector.enrich.recompute import enricher_of, parse_since, recompute_flags
from collector.journey.analyst import post_admin
from collector.settings import ClientSettings, Settings, is_embedded
from collector.store.clickhouse import Store

__all__ = ["add_enrich_parser", "run_enrich"]


def add_enrich_parser(commands: Any) -> None:
    """Add ``enrich`` to the CLI's subcommands."""
    enrich = commands.add_parser("enrich", help="recompute bot and mail-machine flags of stored touchpoints "
                                                "(the journeys they change are recounted)")
    enrich.add_argument("--since", required=True, help="touchpoints from this date or time on (ISO 8601, UTC)")
    enrich.add_argument("--dsn", help="as for serve (REISE_DSN)")


def run_enrich(settings: ClientSettings, args: argparse.Namespace) -> int:
    """Recompute through the collector (embedded store) or straight on a server; print what changed."""
    since = parse_since(args.since)
    if is_embedded(settings.dsn):
        done = dict(post_admin(settings, "/v1/admin/enrich", {"since": since.isoformat()}))
    else:
        server = Settings.from_env(dsn=settings.dsn)
        store = Store(dsn=settings.dsn)
        try:
            done = asdict(recompute_flags(store, enricher_of(server), since))
        finally:
            store.close()
    print(f"reise: enriched touchpoints since {done['since']}: {done['rows']} read, {done['changed']} changed, "
          f"{done['customers']} customers recounted")
    return 0

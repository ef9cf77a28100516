"""``reise dead-letters``: list dead letters by reason, and ``replay`` them through the collector."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from collector.cli.tables import format_table
from collector.journey.analyst import post_admin
from collector.settings import ClientSettings, is_embedded
from collector.store.clickhouse import Store
from collector.store.deadletters import list_reasons

__all__ = ["add_dead_letter_parser", "run_dead_letters"]


def add_dead_letter_parser(commands: Any) -> None:
    """Register ``reise dead-letters`` (listing) and ``reise dead-letters replay`` on the CLI's subparsers."""
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--reason", default="", help="only dead letters whose reason contains this text")
    filters.add_argument("--since", default="", help="only dead letters kept on or after this day (ISO date, UTC)")
    filters.add_argument("--json", action="store_true", help="print JSON")
    filters.add_argument("--dsn", help="as for serve (REISE_DSN)")
    listing = commands.add_parser("dead-letters", parents=[filters],
                                  help="list dead letters by reason (count, first and last time, a sample); "
                                       "`replay` sends them back through validation")
    actions = listing.add_subparsers(dest="dead_letter_action")
    replay = actions.add_parser("replay", parents=[filters],
                                help="send kept payloads back through the collector's validation, keeping their "
                                     "message ids (a second replay adds nothing); marks what it replayed")
    replay.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="assignments",
                        help="correct a field first (dotted, e.g. properties.revenue:=12 for a JSON value; "
                             "for rows the store refused, a touchpoint column)")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed; change nothing")
    replay.add_argument("--delete", action="store_true", help="delete replayed dead letters instead of marking them")
    replay.add_argument("--include-replayed", action="store_true", help="take dead letters replayed before too")
    replay.add_argument("--limit", type=int, default=100_000, help="most dead letters to take (default 100000)")


def run_dead_letters(settings: ClientSettings, args: argparse.Namespace) -> int:
    """Run ``reise dead-letters [replay]``; the exit status (1 when some dead letters could not be replayed)."""
    body: dict[str, Any] = {"reason": args.reason, "since": args.since}
    if args.dead_letter_action == "replay":
        body.update({"set": args.assignments, "dry_run": args.dry_run, "delete": args.delete,
                     "include_replayed": args.include_replayed, "limit": args.limit})
        outcome = post_admin(settings, "/v1/admin/dead-letters/replay", body)  # the collector validates
        if args.json:
            sys.stdout.write(orjson.dumps(outcome).decode() + "\n")
        else:
            _print_outcome(outcome)
        return 1 if outcome["rejected"] or outcome["not_replayable"] else 0
    columns, rows = _reasons(settings, body)
    if args.json:
        sys.stdout.write(orjson.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str,
                                      option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    else:
        print(format_table(columns, rows))
    return 0


def _reasons(settings: ClientSettings, body: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """The listing: through the collector (embedded store), or straight from a ClickHouse server."""
    if is_embedded(settings.dsn):
        doc = post_admin(settings, "/v1/admin/dead-letters", body)
        return list(doc["columns"]), [tuple(row) for row in doc["rows"]]
    from collector.edge.deadletters import filters_of  # the same checks as the endpoint

    store = Store(dsn=settings.dsn)
    try:
        result = list_reasons(store, filters_of(body, limit=100))
    finally:
        store.close()
    return result.columns, list(result.rows)


def _print_outcome(outcome: dict[str, Any]) -> None:
    verb = "would replay" if outcome["dry_run"] else "replayed"
    print(f"reise: {verb} {outcome['accepted']} events from {outcome['dead_letters']} dead letters "
          f"({outcome['events']} events: {outcome['accepted']} new, {outcome['duplicates']} already stored, "
          f"{outcome['rejected']} still rejected, {outcome['without_consent']} without consent; "
          f"{outcome['not_replayable']} dead letters not replayable)")
    if not outcome["dry_run"]:
        print(f"reise: {outcome['marked']} dead letters marked replayed, {outcome['deleted']} deleted")
    for sample in outcome["samples"]:
        print(f"  {sample['message_id'] or '-'} ({sample['endpoint']}): {sample['now']}")

"""``reise triggers failed|replay`` (parked deliveries) and ``reise segment list|show|export`` (segments)."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import orjson

from collector.cli.tables import format_table
from collector.errors import NotFound
from collector.journey.analyst import post_admin, run_query
from collector.settings import ClientSettings

__all__ = ["TRIGGER_COMMANDS", "add_trigger_parsers", "run_trigger_command"]

TRIGGER_COMMANDS = ("triggers", "segment")
SIZES_SQL = """
SELECT d.key AS segment, d.definition AS definition, countIf(m.customer_id != '') AS members
FROM (SELECT key, argMax(definition, defined_at) AS definition FROM segment_definitions GROUP BY key) AS d
LEFT JOIN segment_members AS m ON m.segment = d.key
WHERE {name:String} = '' OR d.key = {name:String}
GROUP BY d.key, d.definition
ORDER BY d.key
"""
MEMBERS_SQL = """
SELECT m.customer_id AS customer_id, m.entered_at AS entered_at, j.current_stage AS current_stage,
       j.contacts AS contacts, j.purchases AS purchases, j.revenue AS revenue, j.last_seen AS last_seen,
       arrayStringConcat(j.ids, ' ') AS ids
FROM segment_members AS m
LEFT JOIN customer_journey AS j ON j.customer_id = m.customer_id
WHERE m.segment = {name:String}
ORDER BY m.customer_id
"""


def add_trigger_parsers(commands: Any) -> None:
    """Register ``reise triggers`` and ``reise segment`` on the CLI's subparsers."""
    triggers = commands.add_parser("triggers", help="webhook deliveries: list parked ones, send them again")
    actions = triggers.add_subparsers(dest="trigger_action", required=True)
    failed = actions.add_parser("failed", help="deliveries parked after REISE_TRIGGER_MAX_ATTEMPTS failures")
    failed.add_argument("--trigger", default="", help="only this trigger's")
    failed.add_argument("--json", action="store_true", help="print JSON")
    replay = actions.add_parser("replay", help="send parked deliveries again (same idempotency keys)")
    replay.add_argument("--trigger", default="", help="only this trigger's")
    replay.add_argument("--key", default="", help="only the delivery with this idempotency key")

    segment = commands.add_parser("segment", help="segments: list them, show one, export its members")
    seg_actions = segment.add_subparsers(dest="segment_action", required=True)
    seg_actions.add_parser("list", help="every segment, its definition and its size")
    show = seg_actions.add_parser("show", help="one segment's definition, size and first members")
    show.add_argument("name")
    export = seg_actions.add_parser("export", help="every member of a segment with their journey figures")
    export.add_argument("name")
    export.add_argument("--csv", action="store_true", help="CSV with a header line (the default prints a table)")
    for parser in (triggers, segment):
        parser.add_argument("--dsn", help="as for serve (REISE_DSN)")


def run_trigger_command(settings: ClientSettings, args: argparse.Namespace) -> int:
    """Run ``reise triggers ...`` or ``reise segment ...``; the exit status."""
    if args.command == "triggers":
        if args.trigger_action == "failed":
            parked = post_admin(settings, "/v1/admin/triggers/failed", {"trigger": args.trigger})["parked"]
            if args.json:
                sys.stdout.write(orjson.dumps(parked).decode() + "\n")
            else:
                columns = ["trigger", "idempotency_key", "customer_id", "attempts", "last_error"]
                print(format_table(columns, [[p[c] for c in columns] for p in parked]))
            return 0
        done = post_admin(settings, "/v1/admin/triggers/replay", {"trigger": args.trigger, "key": args.key})
        print(f"reise: {done['replayed']} parked deliveries queued again")
        return 0
    if args.segment_action == "list":
        sizes = run_query(settings, SIZES_SQL, {"name": ""})
        print(format_table(sizes.columns, sizes.rows))
        return 0
    sizes = run_query(settings, SIZES_SQL, {"name": args.name})
    if not sizes.rows:
        raise NotFound(f"no segment named {args.name!r}")
    members = run_query(settings, MEMBERS_SQL, {"name": args.name})
    if args.segment_action == "show":
        segment, definition, count = sizes.rows[0]
        print(f"segment: {segment}\ndefinition: {definition}\nmembers: {count}\n")
        print(format_table(members.columns, members.rows[:20]))
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(members.columns)
        writer.writerows(members.rows)
    else:
        print(format_table(members.columns, members.rows))
    return 0

"""The CLI's channel commands: ``reise import``, ``reise link`` (signed click links) and ``reise pixel``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from collector.cli.importer import import_file, print_summary
from collector.errors import ConfigError, LinkInvalid, ReiseError
from collector.ingest.linktoken import mint
from collector.ingest.stages import CHANNELS, STAGES
from collector.keys import client_write_key
from collector.settings import ClientSettings

__all__ = ["CHANNEL_COMMANDS", "add_channel_parsers", "run_channel_command"]

CHANNEL_COMMANDS = frozenset({"import", "link", "pixel"})


def add_channel_parsers(commands: Any) -> None:
    """Add ``import``, ``link`` and ``pixel`` to the CLI's subcommands."""
    imp = commands.add_parser("import", help="load touchpoints from a JSON Lines or CSV file")
    imp.add_argument("file", type=Path, help="a .jsonl/.ndjson or .csv file of Segment-shaped events")
    imp.add_argument("--format", choices=("jsonl", "csv"), help="file format (default: from the extension)")
    imp.add_argument("--write-key", help="write key (REISE_WRITE_KEY; default: the development key)")
    imp.add_argument("--batch-size", type=int, default=500, help="events per request (default 500)")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")

    link = commands.add_parser("link", help="print a signed click link (REISE_LINK_KEYS) for email, SMS, social")
    link.add_argument("url", help="where the link leads (http or https)")
    _touchpoint_options(link, channel="email", event=None)
    link.add_argument("--expires-in", type=float, metavar="DAYS", help="the link stops working after DAYS days")

    pixel = commands.add_parser("pixel", help="print a tracking-pixel URL (a public write key) for e-mail opens")
    _touchpoint_options(pixel, channel="email", event="email_opened")
    pixel.add_argument("--write-key", help="public write key, pk_... (REISE_WRITE_KEY)")


def _touchpoint_options(parser: argparse.ArgumentParser, *, channel: str, event: str | None) -> None:
    parser.add_argument("--channel", default=channel, choices=sorted(CHANNELS), help=f"channel (default {channel})")
    parser.add_argument("--event", default=event, help="event name (default: <channel>_clicked or email_opened)")
    parser.add_argument("--campaign", help="campaign name")
    parser.add_argument("--stage", choices=STAGES, help="journey stage (default: from the stage rules)")
    parser.add_argument("--user-id", help="the recipient's id (else append ?uid=... per recipient)")
    parser.add_argument("--prop", action="append", default=[], metavar="NAME=VALUE", help="a property")


def _props(pairs: list[str]) -> dict[str, str] | None:
    props = dict(p.partition("=")[::2] for p in pairs)
    return props or None


def _link(settings: ClientSettings, args: argparse.Namespace) -> str:
    if not settings.link_keys:
        raise ConfigError("no link keys: set REISE_LINK_KEYS (the collector must have the same keys)")
    expires = int(time.time() + args.expires_in * 86400) if args.expires_in else None
    try:
        token = mint(settings.link_keys[0], args.url, expires_at=expires, event=args.event, channel=args.channel,
                     campaign=args.campaign, stage=args.stage, userId=args.user_id, properties=_props(args.prop))
    except LinkInvalid as exc:
        raise ConfigError(str(exc)) from None
    return f"{settings.url.rstrip('/')}/r/{token}"


def _pixel(settings: ClientSettings, args: argparse.Namespace) -> str:
    key = client_write_key(settings, args.write_key)
    if not key.startswith("pk_"):
        raise ConfigError("the pixel takes a public write key (pk_...): a URL in an e-mail is seen by everyone")
    params = {"writeKey": key, "channel": args.channel, "event": args.event, "campaign": args.campaign,
              "stage": args.stage, "userId": args.user_id, **(_props(args.prop) or {})}
    return f"{settings.url.rstrip('/')}/p.gif?{urlencode({k: v for k, v in params.items() if v})}"


def run_channel_command(settings: ClientSettings, args: argparse.Namespace) -> int:
    """Run ``import``, ``link`` or ``pixel``; the exit status (1 when an import rejected rows)."""
    if args.command == "link":
        print(_link(settings, args))
        return 0
    if args.command == "pixel":
        print(_pixel(settings, args))
        return 0
    if not args.file.is_file():
        raise ReiseError(f"{args.file}: no such file")
    summary = import_file(args.file, url=settings.url, write_key=client_write_key(settings, args.write_key),
                          fmt=args.format, batch_events=max(1, min(args.batch_size, 500)),
                          progress=sys.stderr if sys.stderr.isatty() else None)
    if args.json:
        sys.stdout.write(orjson.dumps({"file": str(args.file), **summary.as_json()}).decode() + "\n")
    else:
        print_summary(args.file, summary)
    return 1 if summary.rejected else 0

"""``reise report``: the journey overview as readable terminal tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from collector.cli.tables import format_table
from collector.errors import ConfigError
from collector.journey.analyst import run_query
from collector.journey.insights import STEPS, Filters, overview
from collector.settings import ClientSettings

__all__ = ["add_report_parser", "parse_day", "render", "run_report"]


def add_report_parser(commands: Any) -> None:
    """Register ``reise report`` on the CLI's subparsers."""
    report = commands.add_parser("report", help="print the funnel, contacts before purchase, channels, campaigns")
    report.add_argument("--since", help="only customers active on or after this day (YYYY-MM-DD, UTC)")
    report.add_argument("--until", help="... and before this day (YYYY-MM-DD, UTC, exclusive)")
    report.add_argument("--channel", default="", help="only customers with a contact on this channel")
    report.add_argument("--campaign", default="", help="only customers with a contact from this campaign")
    report.add_argument("--dsn", help="as for serve (REISE_DSN)")


def parse_day(text: str | None, flag: str) -> datetime | None:
    """A YYYY-MM-DD (or ISO time) argument as a naive UTC datetime."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: expected a date such as 2026-05-01, got {text!r}") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _bar(share: float, width: int = 24) -> str:
    return "█" * round(share * width)


def render(data: Mapping[str, Any], description: str) -> str:
    """The overview as text: headline, funnel, contacts before purchase, channel mix, campaigns."""
    out = [f"Reise journey report: {description}",
           f"{data['customers']} customers, revenue {data['revenue']:,.2f}", ""]
    funnel = data["funnel"]
    top = max((row["customers"] for row in funnel), default=0) or 1
    out += ["Funnel (customers who reached at least each stage)",
            format_table(["stage", "customers", "from previous", "dropped here", "drop-off", ""],
                         [(r["stage"], r["customers"], _pct(r["conversion"]), r["dropped"], _pct(r["drop_share"]),
                           _bar(r["customers"] / top)) for r in funnel]), ""]
    cbp = data["contacts_before_purchase"]
    out += [f"Contacts before the first purchase: {cbp['buyers']} buyers, median {cbp['median'] or '-'}, "
            f"p90 {cbp['p90'] or '-'}, within 7 to 11: {_pct(cbp['within_7_11'])}",
            format_table(["first channel", "buyers", "median", "p90", "within 7-11"],
                         [(r["first_channel"], r["buyers"], r["median"], r["p90"], _pct(r["within_7_11"]))
                          for r in cbp["by_first_channel"]]), ""]
    histogram = cbp["histogram"]
    peak = max((h["customers"] for h in histogram), default=0) or 1
    out += ["Distribution", format_table(["contacts", "buyers", ""],
                                         [(h["contacts"], h["customers"], _bar(h["customers"] / peak, 40))
                                          for h in histogram if h["customers"]]), ""]
    mix = data["channel_mix"]
    out += ["Channel mix per stage (share of touchpoints)",
            format_table(["stage", "touchpoints", *mix["channels"]],
                         [(s["stage"], s["touchpoints"], *(_pct(s["shares"][c]) if s["touchpoints"] else "-"
                                                            for c in mix["channels"]))
                          for s in mix["stages"]]), ""]
    out += ["Top campaigns by conversion (customers reached by the campaign before any purchase; buyers among them)",
            format_table(["campaign", "customers", "buyers", "conversion", "revenue"],
                         [(c["campaign"], c["customers"], c["buyers"], _pct(c["conversion"]), round(c["revenue"], 2))
                          for c in data["campaigns"]])]
    return "\n".join(out)


class _Progress:
    """Which query runs now, on stderr: one updating line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.tty = stream, stream.isatty()

    def step(self, index: int, name: str) -> None:
        text = f"reise: querying {name} ({index + 1}/{len(STEPS)}) ..."
        self.stream.write(("\r\033[K" + text) if self.tty else text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run_report(settings: ClientSettings, args: argparse.Namespace) -> int:
    """Query the overview for the command's filters and print it."""
    filters = Filters(since=parse_day(args.since, "--since"), until=parse_day(args.until, "--until"),
                      channel=args.channel, campaign=args.campaign)
    progress = _Progress(sys.stderr)
    try:
        data = overview(lambda sql, params: run_query(settings, sql, params), filters, on_step=progress.step)
    finally:
        progress.done()
    print(render(data, filters.describe()))
    if not data["customers"]:
        print("\nreise: no customers match; is there data (reise demo) and are the filters right?", file=sys.stderr)
    return 0

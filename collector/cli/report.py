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
from collector.journey.analytics import MODELS, analytics
from collector.journey.analytics import STEPS as ANALYTICS_STEPS
from collector.journey.insights import STEPS, Filters, overview
from collector.settings import ClientSettings

__all__ = ["add_report_parser", "duration", "parse_day", "render", "render_analytics", "run_report"]


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


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: 45 s, 12 min, 5.5 h, 3.2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _path(steps: list[str]) -> str:
    return " > ".join(steps) if steps else "(purchase first)"


def render_analytics(data: Mapping[str, Any]) -> str:
    """Attribution by model side by side, time between stages and the top paths, as text."""
    attribution = data["attribution"]
    short = {"first_touch": "first", "last_touch": "last", "last_non_direct": "last non-direct",
             "linear": "linear", "position_based": "position", "time_decay": "time decay"}
    out = [f"Attribution: {attribution['purchases']:,.0f} purchases credited to the contacts before them "
           "(credited purchases per channel, by model)",
           format_table(["channel", *(short[m] for m in MODELS)],
                        [(c["channel"], *(f"{c[m]['purchases']:.1f}" for m in MODELS))
                         for c in attribution["channels"]]), "",
           "Top campaigns under each model (credited purchases, revenue)"]
    campaigns = attribution["campaigns"]
    depth = max((len(v) for v in campaigns.values()), default=0)
    out += [format_table(["#", *(short[m] for m in MODELS)],
                         [(i + 1, *(f"{campaigns[m][i]['campaign']} {campaigns[m][i]['purchases']:.1f} "
                                    f"({campaigns[m][i]['revenue']:,.0f})" if i < len(campaigns[m]) else ""
                                    for m in MODELS)) for i in range(depth)]), ""]
    out += ["Time between stages (first reaching one, then the next; all customers)",
            format_table(["from", "to", "customers", "median", "p75", "p90"],
                         [(r["from_stage"], r["to_stage"], r["customers"], duration(r["median_seconds"]),
                           duration(r["p75_seconds"]), duration(r["p90_seconds"])) for r in data["stage_durations"]]),
            ""]
    for kind, title in (("channel", "Top channel paths before the first purchase (last five steps)"),
                        ("stage", "Top stage paths before the first purchase (moves backward included)")):
        out += [title, format_table(["path", "customers", "buyers", "conversion", "median days to buy"],
                                    [(_path(p["path"]), p["customers"], p["buyers"], _pct(p["conversion"]),
                                      "-" if p["median_days"] is None else f"{p['median_days']:.1f}")
                                     for p in data["paths"][kind][:10]]), ""]
    return "\n".join(out).rstrip()


class _Progress:
    """Which query runs now, on stderr: one updating line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, steps: int = len(STEPS)) -> None:
        self.stream, self.tty, self.steps = stream, stream.isatty(), steps

    def step(self, index: int, name: str) -> None:
        text = f"reise: querying {name} ({index + 1}/{self.steps}) ..."
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
    deeper = _Progress(sys.stderr, len(ANALYTICS_STEPS))
    try:
        data = overview(lambda sql, params: run_query(settings, sql, params), filters, on_step=progress.step)
        depth = analytics(lambda sql, params: run_query(settings, sql, params), filters, on_step=deeper.step)
    finally:
        progress.done()
    print(render(data, filters.describe()))
    print("\n" + render_analytics(depth))
    if not data["customers"]:
        print("\nreise: no customers match; is there data (reise demo) and are the filters right?", file=sys.stderr)
    return 0

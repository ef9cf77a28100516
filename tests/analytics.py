"""A generated dataset for the analytics views and a plain-Python recount of each view.

Customers come under chains of one to three ids (anonymous browser -> loyalty card -> customer id, linked by
``identify`` and ``alias`` calls), buy on several channels, return part of some orders (negative revenue),
and have contacts exactly at the lookback edge and just past it, and contacts exactly one session gap apart.
Crawlers and mail machines (Apple Mail Privacy Protection opens, opens the e-mail service calls machine opens)
act under their ids too: page views, e-mail opens and even purchases, before a customer's first contact, inside
purchases' lookback windows and between contacts closer than the session gap; they are no contacts. The
recount reads the stored contact rows (``touchpoints``: what the collector derived from each event), leaves out
the events the generator made as a crawler or a machine, and resolves ids with the dataset's own links, in
Python.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.journeys import iso

STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy")
MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
CONTACT_TYPES = ("track", "page", "screen")
TRACKS = [("Ad Impression", "ads"), ("Post Viewed", "social"), ("Product Viewed", "web"), ("Email Opened", "email"),
          ("Store Visit", "pos"), ("Product Viewed", "app"), ("Wishlist Synced", "app"),
          ("Support Contacted", "support"), ("Review Written", "social")]
# page views naming no channel: the collector attributes them (direct, search, e-mail)
PAGES = [({}, ""), ({"referrer": "https://www.google.com/"}, ""), ({}, "utm_medium=email&utm_campaign=autumn")]
BUY_CHANNELS = ("web", "pos", "app")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
APPLE_MPP = "Mozilla/5.0"  # Apple Mail Privacy Protection's image fetcher


@dataclass
class AnalyticsData:
    """Events to send, each id's customer key, and the settings the views run with."""

    lookback_days: int
    gap_minutes: int
    events: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)  # message ids of the crawlers' and mail machines' events


def _flagged_event(rng: random.Random, prefix: str, n: int, who: dict[str, str]) -> dict[str, Any]:
    """A crawler's page view or purchase, or a mail machine's open, under a customer's id."""
    kind = rng.random()
    if kind < 0.35:
        return {"type": "page", "name": "Product", **who,
                "context": {"userAgent": GOOGLEBOT, "page": {"url": f"https://shop.example/bot{rng.randint(1, 3)}"}}}
    if kind < 0.55:
        return {"type": "track", "event": "Order Completed", "channel": "web", **who,
                "context": {"userAgent": GOOGLEBOT},
                "properties": {"order_id": f"{prefix}-bot{n}-{rng.randint(1, 10**9)}", "revenue": 999,
                               "currency": "EUR", "campaign": "bot"}}
    if kind < 0.8:
        return {"type": "track", "event": "Email Opened", "channel": "email", **who,
                "context": {"userAgent": APPLE_MPP}, "properties": {"campaign": "mpp"}}
    return {"type": "track", "event": "Email Opened", "channel": "email", **who,
            "properties": {"campaign": "scanner", "machine_open": True}}


def generate(customers: int, seed: int, prefix: str, *, lookback_days: int, gap_minutes: int,
             start: datetime = datetime(2026, 7, 6, tzinfo=UTC)) -> AnalyticsData:
    """Customers over about ten weeks from ``start``, each under a chain of ids.

    The crawlers and machines draw from a random generator of their own, so the people's events are the same
    with or without them.
    """
    rng = random.Random(seed)
    machines = random.Random(seed + 1)
    data = AnalyticsData(lookback_days=lookback_days, gap_minutes=gap_minutes)
    lookback_ms, gap_ms = lookback_days * DAY_MS, gap_minutes * 60_000

    def add(event: dict[str, Any], at_ms: int) -> None:
        event.update(timestamp=iso(start + timedelta(milliseconds=at_ms)), messageId=f"{prefix}-m{len(data.events)}")
        data.events.append(event)
        who: dict[str, str] = {k: str(event[k]) for k in ("userId", "anonymousId")
                               if k in event and event["type"] in CONTACT_TYPES}
        if who and event["messageId"] not in data.flagged and machines.random() < 0.3:
            # before it (as the first touch, in a purchase's window) or after it, within the session gap
            offset = machines.choice([-DAY_MS, -machines.randint(1, gap_ms - 1), machines.randint(1, gap_ms - 1)])
            data.flagged.add(f"{prefix}-m{len(data.events)}")
            add(_flagged_event(machines, prefix, len(data.events), who), at_ms + offset)

    for n in range(customers):
        ids = [f"{prefix}-a{n}", f"{prefix}-k{n}", f"{prefix}-u{n}"][3 - rng.randint(1, 3):]
        at = rng.randint(0, 70) * DAY_MS + rng.randint(0, DAY_MS)
        order = 0
        for j, id_ in enumerate(ids):
            who = {"anonymousId" if j == 0 and len(ids) > 1 else "userId": id_}
            for _ in range(rng.randint(1, 6)):
                at += rng.choice([rng.randint(1, gap_ms - 1), gap_ms, rng.randint(1, 20) * 3_600_000,
                                  rng.randint(1, 12) * DAY_MS + rng.randint(0, DAY_MS)])
                roll = rng.random()
                if roll < 0.2:
                    order += 1
                    order_id = f"{prefix}-o{n}-{order}"
                    revenue = rng.randint(10, 400)
                    if rng.random() < 0.3:  # contacts at the lookback edge: one just inside, one just outside
                        add({"type": "track", "event": "Email Opened", "channel": "email", **who,
                             "properties": {"campaign": "edge-in"}}, at - lookback_ms)
                        add({"type": "track", "event": "Ad Impression", "channel": "ads", **who,
                             "properties": {"campaign": "edge-out"}}, at - lookback_ms - 1)
                    add({"type": "track", "event": "Order Completed", "channel": rng.choice(BUY_CHANNELS), **who,
                         "properties": {"order_id": order_id, "revenue": revenue, "currency": "EUR",
                                        "campaign": rng.choice(["", "autumn", "radio"])}}, at)
                    if rng.random() < 0.35:  # a return of part of the order, later and maybe at a till
                        add({"type": "track", "event": "Order Returned", "channel": rng.choice(BUY_CHANNELS), **who,
                             "properties": {"order_id": order_id, "return_id": "r1",
                                            "revenue": rng.randint(1, revenue), "currency": "EUR"}},
                            at + rng.randint(1, 10) * DAY_MS)
                elif roll < 0.45:
                    page, query = rng.choice(PAGES)
                    url = f"https://shop.example/p{rng.randint(1, 5)}" + (f"?{query}" if query else "")
                    add({"type": "page", "name": "Product", **who, "context": {"page": {"url": url, **page}}}, at)
                else:
                    name, channel = rng.choice(TRACKS)
                    add({"type": "track", "event": name, "channel": channel, **who,
                         "properties": {"campaign": rng.choice(["", "", "spring", "radio", "autumn"])}}, at)
            if j + 1 < len(ids):
                at += rng.randint(1, 3_600_000)
                kind = rng.choice(["identify", "alias"])
                add({"type": kind, "userId": ids[j + 1], ("previousId" if kind == "alias" else "anonymousId"): id_},
                    at)
        for id_ in ids[:-1]:
            data.links[id_] = ids[-1]
    return data


@dataclass(frozen=True, order=True)
class Contact:
    """One stored contact row, in the recount's terms; sorted as the views sort them (field by field)."""

    ms: int
    channel: str
    campaign: str
    rank: int
    revenue: Decimal
    order_id: str
    traffic_class: str
    page_url: str


def contacts_by_customer(rows: list[dict[str, Any]], links: dict[str, str]) -> dict[str, list[Contact]]:
    """Stored contact rows (journey_id, timestamp, ...) per customer key, each customer's in time order."""
    out: dict[str, list[Contact]] = defaultdict(list)
    for r in rows:
        moment = datetime.fromisoformat(str(r["timestamp"]).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        ms = round(moment.timestamp() * 1000)
        out[links.get(r["journey_id"], r["journey_id"])].append(Contact(
            ms, r["channel"], r["campaign"], int(r["stage_rank"]), Decimal(str(r["revenue"])), r["order_id"],
            r["traffic_class"], r["page_url"]))
    return {customer: sorted(cs) for customer, cs in out.items()}


def _credits(contacts: list[Contact], purchase: Contact) -> dict[str, list[tuple[Contact, float]]]:
    """Each model's credit over a purchase's contacts."""
    n = len(contacts)
    last_non_direct = max((i for i, c in enumerate(contacts) if c.traffic_class not in ("direct", "internal")),
                          default=n - 1)
    decay = [2 ** (-(purchase.ms - c.ms) / WEEK_MS) for c in contacts]
    position = [1.0] if n == 1 else [0.5, 0.5] if n == 2 else [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    return {
        "first_touch": [(contacts[0], 1.0)],
        "last_touch": [(contacts[-1], 1.0)],
        "last_non_direct": [(contacts[last_non_direct], 1.0)],
        "linear": [(c, 1 / n) for c in contacts],
        "position_based": list(zip(contacts, position, strict=True)),
        "time_decay": [(c, d / sum(decay)) for c, d in zip(contacts, decay, strict=True)],
    }


def attribution_credits(customers: dict[str, list[Contact]], lookback_days: int) -> list[dict[str, Any]]:
    """One row per purchase, model and credited (channel, campaign): the attribution_credits view."""
    rows = []
    for customer, cs in customers.items():
        first_of_order: dict[str, int] = {}
        for i, c in enumerate(cs):
            if c.rank == 3 and c.order_id:
                first_of_order.setdefault(c.order_id, i)
        for index, p in enumerate(cs):
            if p.rank != 3:
                continue
            window = [c for c in cs if c.rank != 3 and p.ms - lookback_days * DAY_MS <= c.ms < p.ms]
            revenue = p.revenue
            if p.order_id and first_of_order[p.order_id] == index:
                revenue += sum((c.revenue for c in cs if c.rank != 3 and c.order_id == p.order_id and c.revenue < 0),
                               Decimal(0))
            for model in MODELS:
                given = _credits(window, p)[model] if window else [(p, 1.0)]
                for contact, credit in given:
                    rows.append({"customer_id": customer, "purchased_at": p.ms, "model": model,
                                 "channel": contact.channel, "campaign": contact.campaign, "credit": credit,
                                 "revenue": revenue, "contacts": len(window)})
    return rows


def attribution(credits: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """The attribution view: (model, channel, campaign) -> (credited purchases, credited revenue)."""
    out: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in credits:
        total = out[(r["model"], r["channel"], r["campaign"])]
        total[0] += r["credit"]
        total[1] += r["credit"] * float(r["revenue"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def sessions(customers: dict[str, list[Contact]], gap_minutes: int) -> list[dict[str, Any]]:
    """The sessions view."""
    rows = []
    for customer, cs in customers.items():
        groups: list[list[Contact]] = []
        for c in cs:
            if not groups or c.ms - groups[-1][-1].ms >= gap_minutes * 60_000:
                groups.append([])
            groups[-1].append(c)
        for number, group in enumerate(groups, start=1):
            rows.append({"customer_id": customer, "session_id": f"{customer}#{number}", "started_at": group[0].ms,
                         "ended_at": group[-1].ms, "touchpoints": len(group), "entry_channel": group[0].channel,
                         "entry_campaign": group[0].campaign,
                         "landing_page": next((c.page_url for c in group if c.page_url), ""),
                         "has_purchase": int(any(c.rank == 3 for c in group))})
    return rows


def quantile_exact(values: list[float], level: float) -> float:
    """ClickHouse's quantileExact: the sorted values' element at floor(level * n)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(level * len(ordered)))]


def _collapsed(steps: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for step in steps:
        if not out or out[-1] != step:
            out.append(step)
    return tuple(out[-5:])


def journey_paths(customers: dict[str, list[Contact]]) -> dict[tuple[str, tuple[str, ...]], dict[str, Any]]:
    """(kind, path) -> customers, buyers, conversion and median days to purchase."""
    groups: dict[tuple[str, tuple[str, ...]], list[float | None]] = defaultdict(list)
    for cs in customers.values():
        bought = min((c.ms for c in cs if c.rank >= 3), default=None)
        before = [c for c in cs if bought is None or c.ms < bought]
        days = None if bought is None else (bought - cs[0].ms) / DAY_MS
        groups[("channel", _collapsed([c.channel for c in before]))].append(days)
        groups[("stage", _collapsed([STAGES[c.rank - 1] for c in before if c.rank]))].append(days)
    out = {}
    for key, days_list in groups.items():
        buyer_days = [d for d in days_list if d is not None]
        out[key] = {"customers": len(days_list), "buyers": len(buyer_days),
                    "conversion": len(buyer_days) / len(days_list),
                    "median_days_to_purchase": quantile_exact(buyer_days, 0.5) if buyer_days else None}
    return out


def reached(cs: list[Contact]) -> list[int | None]:
    """The first time (ms) each stage rank 1..5, or a later one, was reached."""
    return [min((c.ms for c in cs if c.rank >= k), default=None) for k in range(1, 6)]


def stage_durations(customers: dict[str, list[Contact]]) -> dict[str, dict[str, Any]]:
    """'from->to' -> customers and the median, p75 and p90 seconds between first reaching the two."""
    pairs: dict[int, list[float]] = defaultdict(list)
    for cs in customers.values():
        times = reached(cs)
        for k in range(4):
            before, after = times[k], times[k + 1]
            if after is not None and before is not None:
                pairs[k].append((after - before) / 1000)
    return {f"{STAGES[k]}->{STAGES[k + 1]}": {
        "customers": len(v), "median_seconds": quantile_exact(v, 0.5), "p75_seconds": quantile_exact(v, 0.75),
        "p90_seconds": quantile_exact(v, 0.9)} for k, v in pairs.items()}


def cohorts(customers: dict[str, list[Contact]], today: date) -> dict[tuple[date, str], dict[str, Any]]:
    """(cohort week, stage) -> customers and the share who reached the stage by week 1, 2, 4, 8 and 12."""
    members: dict[date, list[list[Contact]]] = defaultdict(list)
    for cs in customers.values():
        first = datetime.fromtimestamp(cs[0].ms / 1000, UTC).date()
        members[first - timedelta(days=first.weekday())].append(cs)
    out = {}
    for week, group in members.items():
        for k, stage in enumerate(STAGES):
            row: dict[str, Any] = {"customers": len(group)}
            for n in (1, 2, 4, 8, 12):
                done = sum(1 for cs in group if (t := reached(cs)[k]) is not None and t - cs[0].ms < n * WEEK_MS)
                row[f"by_week_{n}"] = None if week + timedelta(days=7 * (n + 1)) > today else done / len(group)
            out[(week, stage)] = row
    return out

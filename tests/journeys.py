"""A generated multi-channel dataset and a plain-Python recount of what the journey views must show."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy")
RANK = {name: rank for rank, name in enumerate(STAGES, start=1)}
CHANNELS = ("web", "pos", "email", "social", "ads", "sms", "app", "support", "other")
# (event, rule stage) pairs the default rules know, plus events no rule knows
EVENTS = [
    ("Ad Impression", "awareness"), ("Post Viewed", "awareness"), ("Product Viewed", "consideration"),
    ("Newsletter Signup", "consideration"), ("Store Visit", "consideration"), ("Email Opened", "consideration"),
    ("Order Completed", "purchase"), ("Order Delivered", "retention"), ("Loyalty Points Earned", "retention"),
    ("Review Written", "advocacy"), ("Referral Sent", "advocacy"), ("Wishlist Synced", ""), ("Coupon Shown", ""),
]
CONTACT_TYPES = ("track", "page", "screen")


def iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Dataset:
    """Events to send and the links among their ids."""

    events: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


def generate(n_events: int, seed: int, prefix: str) -> Dataset:
    """Customers with anonymous and known ids, across every channel, with distinct timestamps per id."""
    rng = random.Random(seed)
    data = Dataset()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    tick = 0
    customer = 0
    while len(data.events) < n_events:
        customer += 1
        user = f"{prefix}-u{customer}"
        anon = f"{prefix}-a{customer}"
        identified = rng.random() < 0.7
        n = rng.randint(3, 25)
        link_at = rng.randint(1, n - 1) if identified else None
        for step in range(n):
            tick += rng.randint(1, 5000)
            moment = start + timedelta(milliseconds=tick)
            known = link_at is not None and step >= link_at
            ids: dict[str, str] = {"userId": user} if known else {"anonymousId": anon}
            if step == link_at:
                data.events.append({"type": "identify", "anonymousId": anon, "userId": user,
                                    "timestamp": iso(moment), "messageId": f"{prefix}-m{len(data.events)}",
                                    "traits": {"plan": "gold"}})
                data.links[anon] = user
                continue
            kind = rng.choices(CONTACT_TYPES, weights=(8, 2, 1))[0]
            event: dict[str, Any] = {"type": kind, **ids, "timestamp": iso(moment),
                                     "messageId": f"{prefix}-m{len(data.events)}",
                                     "channel": rng.choice(CHANNELS)}
            if kind == "track":
                name, _ = rng.choice(EVENTS)
                event["event"] = name
                event["properties"] = {"campaign": rng.choice(["spring", "summer", "radio", ""])}
                if name == "Order Completed":
                    event["properties"].update(order_id=f"o{len(data.events)}",
                                               revenue=round(rng.uniform(5, 500), 2), currency="EUR")
                if rng.random() < 0.1:
                    event["stage"] = rng.choice(STAGES)  # explicit stage wins over the rules
            else:
                event["name"] = rng.choice(["Home", "Catalogue", "Loyalty"])
            data.events.append(event)
    return data


def stage_of(event: dict[str, Any]) -> str:
    """The stage the default rules (or the event itself) give an event."""
    if event.get("stage"):
        return str(event["stage"])
    if event["type"] in ("page", "screen"):
        return "awareness"
    by_name = dict(EVENTS).get(event["event"], "")
    if not by_name and event["channel"] == "support":
        return "retention"  # the default rules' type-wide rule for support contacts
    return by_name


def parse(ts: str) -> datetime:
    """An ISO time from the dataset or from the query endpoint, as an aware UTC datetime."""
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recount(data: Dataset) -> dict[str, dict[str, Any]]:
    """customer_journey, computed from the raw events in plain Python."""
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in data.events:
        if event["type"] not in CONTACT_TYPES:
            continue
        journey_id = event.get("userId") or event["anonymousId"]
        by_customer[data.links.get(journey_id, journey_id)].append(event)
    expected = {}
    for customer_id, events in by_customer.items():
        times = [parse(e["timestamp"]) for e in events]
        staged = [(parse(e["timestamp"]), RANK[stage_of(e)]) for e in events if stage_of(e)]
        reached = {k: min((t for t, r in staged if r >= k), default=None) for k in range(1, 6)}
        first_purchase = reached[3]
        expected[customer_id] = {
            "contacts": len(events),
            "contacts_by_channel": dict(Counter(e["channel"] for e in events)),
            "current_stage": STAGES[max(staged)[1] - 1] if staged else None,
            "furthest_stage": STAGES[max(r for _, r in staged) - 1] if staged else None,
            "first_seen": min(times),
            "last_seen": max(times),
            "purchases": sum(1 for e in events if stage_of(e) == "purchase"),
            "revenue": sum((Decimal(str(e.get("properties", {}).get("revenue", 0))) for e in events), Decimal(0)),
            "contacts_before_first_purchase":
                None if first_purchase is None else sum(1 for t in times if t < first_purchase),
            **{f"reached_{STAGES[k - 1]}_at": reached[k] for k in range(1, 6)},
        }
    return expected


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    """A customer_journey row (from the query endpoint) in the recount's types."""
    out = {k: row[k] for k in ("contacts", "contacts_by_channel", "current_stage", "furthest_stage", "purchases",
                                "contacts_before_first_purchase")}
    out["revenue"] = Decimal(str(row["revenue"])).quantize(Decimal("0.01"))
    for key in ("first_seen", "last_seen", *(f"reached_{s}_at" for s in STAGES)):
        out[key] = parse(row[key]) if row[key] is not None else None
    return out


def differences(actual: dict[str, dict[str, Any]], data: Dataset) -> list[tuple[str, dict[str, Any]]]:
    """Customers whose customer_journey row differs from the recount, with the fields that differ."""
    differing = []
    for customer_id, want in recount(data).items():
        want = {**want, "revenue": want["revenue"].quantize(Decimal("0.01"))}
        got = normalised(actual[customer_id])
        if got != want:
            differing.append((customer_id, {k: (got[k], want[k]) for k in want if got[k] != want[k]}))
    return differing

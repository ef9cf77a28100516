"""Realistic demo journeys: awareness from ads and social, consideration on the web and by email, purchases
online and at tills, retention and advocacy; anonymous browsing later identified.

The plan is deterministic for a seed (ids, events, order); only the timestamps move with ``now``, so a
second run with the same seed repeats the same message ids and the collector does not count them twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CAMPAIGNS", "DEFAULT_SEED", "STORES", "DemoEvent", "Journey", "plan"]

DEFAULT_SEED = 7  # its people are cust-00001, cust-00002, ...; another seed's are cust-s<seed>-00001, ...
STORES = ("berlin-mitte", "hamburg-altona", "munich-marienplatz", "cologne-dom", "vienna-graben")
# campaign -> (channel it runs on, how much more or less likely its audience buys)
CAMPAIGNS: dict[str, tuple[str, float]] = {
    "spring-sale": ("ads", 1.15),
    "summer-launch": ("ads", 0.95),
    "retargeting": ("ads", 1.35),
    "influencer-lena": ("social", 0.9),
    "ugc-stories": ("social", 0.7),
    "radio-city": ("web", 0.8),
    "newsletter-weekly": ("email", 1.1),
    "welcome-series": ("email", 1.2),
}
ENTRY = (("ads", 34), ("social", 28), ("web", 22), ("radio", 6), ("pos", 10))
AWARENESS = {
    "ads": ("Ad Impression", "Ad Clicked"),
    "social": ("Social Post Seen", "Post Viewed"),
}
CONSIDERATION_WEB = ("Product Viewed", "Product List Viewed", "Products Searched", "Review Read",
                     "Product Compared", "Product Added", "Cart Viewed")
PAGES = ("Home", "Catalogue", "Lookbook", "Stores", "Offers")


@dataclass(frozen=True)
class DemoEvent:
    """One SDK call of a demo journey."""

    call: str  # track, page, identify or purchase
    timestamp: datetime
    channel: str
    message_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str = ""
    campaign: str | None = None
    store_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def is_contact(self) -> bool:
        """Whether the collector counts this call as a contact (identify is not one)."""
        return self.call != "identify"

    @property
    def label(self) -> str:
        """The event name the collector records (pages by their name)."""
        if self.call == "purchase":
            return "Order Completed"
        return str(self.properties.get("name", "")) if self.call == "page" else self.event


@dataclass
class Journey:
    """One person's demo journey: their ids and calls in time order."""

    customer_id: str
    anonymous_id: str
    identified: bool
    buys: bool
    events: list[DemoEvent] = field(default_factory=list)

    @property
    def resolved_id(self) -> str:
        """The id the journey views show this person under."""
        return self.customer_id if self.identified else self.anonymous_id

    @property
    def contacts_before_first_purchase(self) -> int | None:
        """Contacts before the first purchase, as the views count them (None for a non-buyer)."""
        first = next((e.timestamp for e in self.events if e.call == "purchase"), None)
        return None if first is None else sum(1 for e in self.events if e.is_contact and e.timestamp < first)


class _Builder:
    """Appends a journey's calls with growing timestamps (offsets from the journey's start)."""

    def __init__(self, rng: random.Random, journey: Journey, prefix: str) -> None:
        self.rng, self.journey, self.prefix = rng, journey, prefix
        self.offset = timedelta(hours=rng.uniform(8, 20))
        self.known = False
        self.raw: list[tuple[timedelta, dict[str, Any]]] = []

    def wait(self, mean_hours: float) -> None:
        self.offset += timedelta(hours=self.rng.expovariate(1 / mean_hours) + 0.05)

    def add(self, call: str, channel: str, *, event: str = "", campaign: str | None = None,
            store_id: str | None = None, both_ids: bool = False, **properties: Any) -> None:
        ids: dict[str, Any] = {}
        if self.known or both_ids:
            ids["user_id"] = self.journey.customer_id
        if not self.known or both_ids:
            ids["anonymous_id"] = self.journey.anonymous_id
        self.raw.append((self.offset, dict(call=call, channel=channel, event=event, campaign=campaign,
                                           store_id=store_id, properties=properties, **ids)))

    def identify(self, channel: str, **traits: Any) -> None:
        self.add("identify", channel, both_ids=True, **traits)
        self.known = True
        self.journey.identified = True

    def finish(self, start: datetime) -> None:
        for index, (offset, spec) in enumerate(self.raw):
            message_id = f"{self.prefix}-{self.journey.customer_id}-{index:03d}"
            self.journey.events.append(DemoEvent(timestamp=start + offset, message_id=message_id, **spec))


def _awareness(b: _Builder, entry: str, campaign: str | None, n: int) -> None:
    rng = b.rng
    for i in range(n):
        b.wait(30)
        if entry in AWARENESS and (i == 0 or rng.random() < 0.5):
            b.add("track", entry, event=rng.choice(AWARENESS[entry]), campaign=campaign)
        elif entry == "radio" and i == 0:
            b.add("track", "web", event="Campaign Landing", campaign="radio-city")
        else:
            b.add("page", "web", campaign=campaign if rng.random() < 0.3 else None, name=rng.choice(PAGES))


def _consideration(b: _Builder, campaign: str | None, n: int, signup_at: int | None, store: str) -> None:
    rng = b.rng
    for i in range(n):
        b.wait(20)
        if i == signup_at:
            b.add("track", "web", event="Newsletter Signup", both_ids=True, campaign=campaign)
            b.identify("web", newsletter="weekly", preferred_store=store)
            continue
        roll = rng.random()
        if b.known and roll < 0.3:
            name = rng.choice(("Email Opened", "Email Link Clicked"))
            mail = rng.choice(("newsletter-weekly", "welcome-series"))
            b.add("track", "email", event=name, campaign=mail)
        elif b.known and roll < 0.42:
            b.add("track", "pos", event="Store Visit", store_id=store)
        elif rng.random() < 0.12:
            b.add("track", "app", event="Product Viewed", campaign=campaign if rng.random() < 0.2 else None)
        else:
            b.add("track", "web", event=rng.choice(CONSIDERATION_WEB),
                  campaign=campaign if rng.random() < 0.25 else None)


def _purchase(b: _Builder, journey_index: int, store: str, campaign: str | None, online: bool) -> None:
    rng = b.rng
    b.wait(24)
    revenue = round(min(480.0, max(9.9, rng.gauss(85, 45))), 2)
    order = f"{b.prefix}-o{journey_index:05d}"
    if online:
        b.add("purchase", "web", both_ids=True, order_id=order, revenue=revenue, campaign=campaign)
    else:
        b.add("purchase", "pos", order_id=order, revenue=revenue, store_id=store)
    b.known = True
    b.journey.identified = True


def _after_purchase(b: _Builder, journey_index: int, store: str, online: bool) -> None:
    rng = b.rng
    if rng.random() > 0.78:
        return
    if online:
        b.wait(40)
        b.add("track", "email", event="Order Delivered")
    for _ in range(rng.randint(1, 3)):
        b.wait(72)
        kind = rng.random()
        if kind < 0.35:
            b.add("track", "email", event="Onboarding Email Opened", campaign="welcome-series")
        elif kind < 0.7:
            b.add("track", rng.choice(("pos", "app")), event="Loyalty Points Earned", store_id=store)
        else:
            b.add("track", "support", event="Support Contacted")
    if rng.random() > 0.45:
        return
    for i in range(rng.randint(1, 3)):
        b.wait(96)
        kind = rng.random()
        if kind < 0.3:
            b.add("track", "web", event="Review Written", rating=rng.randint(4, 5))
        elif kind < 0.55:
            b.add("track", "social", event="Social Share")
        elif kind < 0.75:
            b.add("track", "app", event="Referral Sent")
        else:
            in_store = rng.random() < 0.5
            b.add("track", "pos" if in_store else "web", event="Repeat Purchase",
                  store_id=store if in_store else None, order_id=f"{b.prefix}-o{journey_index:05d}-r{i}",
                  revenue=round(rng.uniform(15, 220), 2), currency="EUR")


def _journey(rng: random.Random, index: int, seed: int, prefix: str) -> tuple[Journey, _Builder]:
    entry = rng.choices([e for e, _ in ENTRY], weights=[w for _, w in ENTRY])[0]
    campaigns = [c for c, (channel, _) in CAMPAIGNS.items() if channel == entry]
    campaign = rng.choice(campaigns) if campaigns else ("radio-city" if entry == "radio" else None)
    person = f"cust-{index:05d}" if seed == DEFAULT_SEED else f"cust-s{seed}-{index:05d}"
    journey = Journey(customer_id=person, anonymous_id=f"anon-{rng.getrandbits(40):010x}",
                      identified=False, buys=False)
    builder = _Builder(rng, journey, prefix)
    store = rng.choice(STORES)
    lift = CAMPAIGNS[campaign][1] if campaign else 1.0
    contacts = min(18, max(3, round(rng.gauss(9, 2.2))))  # the literature's 7 to 11, with tails
    journey.buys = rng.random() < min(0.9, 0.5 * lift)
    if entry == "pos":  # walked into a store: known by loyalty card from the start
        builder.known = journey.identified = True
        builder.add("track", "pos", event="Store Visit", store_id=store)
        contacts -= 1
    n_aware = max(1, round(contacts * rng.uniform(0.25, 0.45)))
    n_consider = contacts - n_aware
    if not journey.buys:  # stop somewhere along the way
        n_aware = rng.randint(1, n_aware + 1)
        n_consider = rng.randint(0, n_consider) if rng.random() < 0.6 else 0
    signup_at = rng.randint(0, n_consider - 1) if n_consider and not builder.known and rng.random() < 0.55 else None
    _awareness(builder, entry, campaign, n_aware)
    _consideration(builder, campaign, n_consider, signup_at, store)
    if journey.buys:
        online = not builder.known or rng.random() < 0.45  # a till knows people by their loyalty card
        _purchase(builder, index, store, campaign, online)
        _after_purchase(builder, index, store, online)
    return journey, builder


def plan(customers: int, *, seed: int = DEFAULT_SEED, weeks: int = 8, now: datetime | None = None,
         prefix: str = "demo") -> list[Journey]:
    """Journeys for ``customers`` people, spread over the past ``weeks`` and ending before ``now``."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    window = timedelta(weeks=weeks)
    journeys = []
    for index in range(1, customers + 1):
        journey, builder = _journey(rng, index, seed, f"{prefix}-s{seed}")
        span = builder.raw[-1][0] if builder.raw else timedelta(0)
        if span > window:  # squeeze an unusually long journey into the window, keeping its order
            factor = window / span * 0.95
            builder.raw = [(offset * factor, spec) for offset, spec in builder.raw]
            span = builder.raw[-1][0]
        slack = (window - span).total_seconds()
        start = now - timedelta(minutes=5) - span - timedelta(seconds=rng.uniform(0, max(0.0, slack)))
        builder.finish(start)
        journeys.append(journey)
    return journeys

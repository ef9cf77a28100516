"""``reise demo``: send the demo journeys through the Python SDK to a running collector."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from collector.cli.demo_journeys import DEFAULT_SEED, DemoEvent, Journey, plan
from collector.errors import ConfigError, ReiseError
from collector.journey.analyst import run_query
from collector.keys import client_write_key, read_dev_admin_key
from collector.settings import ClientSettings

__all__ = ["add_demo_parser", "run_demo", "send"]

PREFIX = "demo"
STORED_SQL = "SELECT count() FROM touchpoints WHERE startsWith(message_id, {prefix:String})"


def add_demo_parser(commands: Any) -> None:
    """Register ``reise demo`` on the CLI's subparsers."""
    demo = commands.add_parser("demo", help="send realistic demo journeys to a running collector")
    demo.add_argument("--customers", type=int, default=1000, help="how many people (default 1000)")
    demo.add_argument("--weeks", type=int, default=8, help="spread the journeys over this many past weeks")
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED, help="another seed sends other people (default 7)")
    demo.add_argument("--write-key", help="write key (REISE_WRITE_KEY; default: the development key)")
    demo.add_argument("--dsn", help="as for serve: where to find the development key (REISE_DSN)")


def _call(client: Any, event: DemoEvent) -> None:
    common: dict[str, Any] = {"anonymous_id": event.anonymous_id, "timestamp": event.timestamp,
                              "channel": event.channel, "message_id": event.message_id}
    if event.call == "identify":
        client.identify(event.user_id, event.properties, **common)
    elif event.call == "page":
        props = {k: v for k, v in event.properties.items() if k != "name"}
        client.page(event.user_id, None, event.properties.get("name"), props or None,
                    campaign=event.campaign, **common)
    elif event.call == "purchase":
        props = {k: v for k, v in event.properties.items() if k not in ("order_id", "revenue")}
        client.purchase(event.properties["order_id"], event.properties["revenue"], "EUR", None,
                        event.store_id, user_id=event.user_id, properties=props or None,
                        campaign=event.campaign, **common)
    else:
        client.track(event.user_id, event.event, event.properties or None, campaign=event.campaign,
                     store_id=event.store_id, **common)


def send(journeys: Sequence[Journey], write_key: str, url: str, *, out: TextIO = sys.stderr) -> dict[str, int]:
    """Send every journey's calls in time order through the SDK; return the client's counters."""
    try:
        import reise
    except ImportError as exc:  # the SDK lives in sdk/ and is installed beside the collector by `make`
        raise ConfigError("the Python SDK is not installed: pip install -e ./sdk") from exc
    events = sorted((e for j in journeys for e in j.events), key=lambda e: e.timestamp)
    errors: list[str] = []
    client = reise.Client(write_key, url, flush_interval=0.2, max_retries=5,
                          on_error=lambda exc: errors.append(str(exc)))
    started = time.monotonic()
    try:
        for index, event in enumerate(events, start=1):
            _call(client, event)
            if out.isatty() and index % 500 == 0:
                out.write(f"\rreise: queued {index}/{len(events)} events")
                out.flush()
        delivered = client.flush(timeout=120)
    finally:
        client.shutdown(timeout=10)
    stats: dict[str, int] = dict(client.stats())
    if out.isatty():
        out.write("\r" + " " * 60 + "\r")
    if errors or not delivered or stats.get("rejected") or stats.get("dropped") or stats.get("failed"):
        raise ConfigError(f"the collector at {url} did not take every event: {stats}; "
                          f"{errors[0] if errors else 'see its log'}")
    stats["seconds"] = round(time.monotonic() - started)
    return stats


def _wait_until_stored(settings: ClientSettings, prefix: str, events: int, timeout: float = 30.0) -> int | None:
    """Poll until the demo's events are queryable (needs the admin key; None without one)."""
    if not (settings.admin_key or read_dev_admin_key(settings)):
        return None
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        try:
            stored = int(run_query(settings, STORED_SQL, {"prefix": prefix}).rows[0][0])
        except ReiseError:
            return None
        if stored >= events:
            break
        time.sleep(0.25)
    return stored


def run_demo(settings: ClientSettings, *, customers: int, seed: int, weeks: int, write_key: str | None) -> int:
    """Plan and send the demo journeys, then say what to look at next."""
    if customers < 1 or weeks < 1:
        raise ConfigError("--customers and --weeks must be at least 1")
    key = client_write_key(settings, write_key)
    journeys = plan(customers, seed=seed, weeks=weeks, prefix=PREFIX)
    events = sum(len(j.events) for j in journeys)
    print(f"reise: sending {events} events for {customers} customers over the past {weeks} weeks "
          f"to {settings.url} ...", flush=True)
    send(journeys, key, settings.url)
    buyers = sum(1 for j in journeys if j.buys)
    print(f"reise: sent {events} events ({buyers} of the {customers} customers bought)", flush=True)
    stored = _wait_until_stored(settings, f"{PREFIX}-s{seed}-", events)
    if stored is not None:
        print(f"reise: {stored} of them stored", flush=True)
    example = next((j.resolved_id for j in journeys if j.buys), journeys[0].resolved_id)
    print(f"reise: now try:\n"
          f"  reise report\n"
          f"  reise customer {example}\n"
          f"  {settings.url}/dashboard  (log in with the admin key)", flush=True)
    return 0

"""Ingestion benchmark: events/s end to end through a collector, against the store's own rate.

One command::

    .venv/bin/python bench/ingest.py [--events 500000] [--batch 100] [--connections 8]

By default it starts its own collector (``python -m collector serve``) over a fresh chDB
directory on a free loopback port, and stops it with SIGTERM at the end. Pass ``--url``,
``--write-key`` and ``--admin-key`` to measure an already-running collector instead.

Phases, one after the other so they never compete for the CPU:

1. generate realistic Segment-shaped events (every channel; track, page and identify calls;
   ids, timestamps, revenue, campaigns) and pre-serialise the ``/v1/batch`` bodies;
2. send them over a small pool of keep-alive connections and time until the last 2xx
   (the accept rate) and until ``SELECT count() FROM touchpoints`` shows every event
   (the end-to-end rate);
3. normalise the very same events into rows exactly as the collector does and insert them
   with ``Store.insert_touchpoints`` into another fresh chDB directory with the migrations
   applied, in batches of the collector's size, timing only the inserts (the store rate).

It prints a table and exits non-zero when any request failed or any event was rejected.
Benchmarks print figures; they are never timed assertions in the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the collector package importable
    sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") not in sys.path:  # loaded by runpy from a test: its helpers (procstat) too
    sys.path.insert(0, str(ROOT / "bench"))

from procstat import thread_cpu_seconds  # noqa: E402

from collector.ingest.protocol import IngestContext, normalise  # noqa: E402
from collector.ingest.stages import StageRules  # noqa: E402
from collector.settings import DEFAULT_RULES_PATH, Settings  # noqa: E402
from collector.store.clickhouse import Store  # noqa: E402
from collector.store.migrate import apply_migrations  # noqa: E402

__all__ = ["BenchResult", "SendResult", "generate_bodies", "main", "run", "send_all", "store_baseline"]

WRITE_KEY = "wk_bench"
ADMIN_KEY = "ak_bench"
FLOOR_EVENTS_PER_SECOND = 30_000
POLL_INTERVAL = 0.05

# ---------------------------------------------------------------------------------------------
# Event generation
# ---------------------------------------------------------------------------------------------

CAMPAIGNS = ["spring_sale", "summer_drop", "black_friday", "loyalty_q3", "newsletter_weekly", "brand_tv"]
PRODUCTS = [(f"SKU-{n:05d}", f"Product {n}", round(4.99 + n * 3.25, 2)) for n in range(1, 201)]
STORES = [f"store-{n:03d}" for n in range(1, 41)]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
MAIL_AGENTS = [  # e-mail opens and clicks: Apple MPP, iOS Mail, Outlook, a security scanner
    "Mozilla/5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Barracuda Sentinel (EE)",
]
IP_FIRST_OCTETS = [2, 5, 31, 46, 62, 77, 78, 80, 81, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 176, 178,
                   185, 188, 212, 213, 217, 17, 148]  # public European ranges, Apple's 17/8, Proofpoint's 148.163
# (channel, weight, [(type, event name, weight)]); "page" and "identify" take no event name.
CHANNEL_MIX: list[tuple[str, int, list[tuple[str, str, int]]]] = [
    ("web", 40, [("page", "", 30), ("track", "Product Viewed", 25), ("track", "Product Added", 8),
                 ("track", "Checkout Started", 4), ("track", "Order Completed", 3),
                 ("track", "Products Searched", 6), ("track", "Review Written", 1), ("identify", "", 4)]),
    ("app", 12, [("track", "Product Viewed", 10), ("track", "Order Completed", 2), ("track", "Cart Viewed", 3),
                 ("identify", "", 1)]),
    ("pos", 10, [("track", "Sale", 5), ("track", "Store Visit", 4), ("track", "Loyalty Points Earned", 3),
                 ("track", "Repeat Purchase", 1)]),
    ("email", 12, [("track", "Email Sent", 6), ("track", "Email Opened", 4), ("track", "Email Link Clicked", 2),
                   ("track", "Onboarding Email Opened", 1)]),
    ("social", 8, [("track", "Post Viewed", 5), ("track", "Social Engaged", 2), ("track", "Social Share", 1)]),
    ("ads", 10, [("track", "Ad Impression", 8), ("track", "Ad Clicked", 2)]),
    ("sms", 4, [("track", "SMS Sent", 3), ("track", "SMS Link Clicked", 1)]),
    ("support", 4, [("track", "Support Ticket Created", 2), ("track", "Support Contacted", 2),
                    ("identify", "", 1)]),
]
PURCHASES = frozenset({"Order Completed", "Sale", "Repeat Purchase"})
UTM_SOURCES = {"email": "newsletter", "social": "instagram", "ads": "google", "sms": "twilio",
               "web": "google", "app": "push", "pos": "", "support": ""}


@dataclass(frozen=True)
class _Person:
    anonymous_id: str
    customer_id: str  # "" while unknown


def _people(rng: random.Random, count: int) -> list[_Person]:
    """A population of people, about 60% of them with a known customer id."""
    return [
        _Person(f"anon-{rng.getrandbits(64):016x}", f"cust-{n:07d}" if rng.random() < 0.6 else "")
        for n in range(count)
    ]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(rng: random.Random, person: _Person, message_id: str, now: datetime) -> dict[str, Any]:
    """One realistic event for a person, with ids, a timestamp, properties and campaign context."""
    channel = rng.choices([c[0] for c in CHANNEL_MIX], [c[1] for c in CHANNEL_MIX])[0]
    calls = next(c[2] for c in CHANNEL_MIX if c[0] == channel)
    type_, name, _ = rng.choices(calls, [c[2] for c in calls])[0]
    moment = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
    event: dict[str, Any] = {"type": type_, "messageId": message_id, "channel": channel, "timestamp": _iso(moment)}
    known = person.customer_id and (channel in ("pos", "email", "support") or rng.random() < 0.5)
    if known or type_ == "identify":
        event["userId"] = person.customer_id or f"cust-{person.anonymous_id[5:13]}"
    if channel in ("web", "app", "ads", "social") or not known:
        event["anonymousId"] = person.anonymous_id
    campaign = rng.choice(CAMPAIGNS)
    context: dict[str, Any] = {
        "library": {"name": "analytics.js" if channel == "web" else f"reise-{channel}", "version": "2.4.1"},
        "ip": f"{rng.choice(IP_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
    }
    if channel in ("web", "app"):
        context["userAgent"] = rng.choice(USER_AGENTS)
    elif channel == "email":
        context["userAgent"] = rng.choice(MAIL_AGENTS)
    if UTM_SOURCES[channel] and rng.random() < 0.7:
        context["campaign"] = {"name": campaign, "source": UTM_SOURCES[channel], "medium": channel,
                               "content": f"variant-{rng.choice('ab')}"}
    sku, title, price = rng.choice(PRODUCTS)
    properties: dict[str, Any] = {}
    if type_ == "page":
        event["name"] = rng.choice(["Home", "Category", "Product", "Cart", "Blog"])
        context["page"] = {"url": f"https://shop.example/{sku.lower()}?utm_campaign={campaign}",
                           "referrer": "https://www.google.com/", "title": title}
    elif type_ == "identify":
        event["traits"] = {"email_sha256": f"{rng.getrandbits(128):032x}", "plan": rng.choice(["free", "gold"]),
                           "first_name": rng.choice(["Anna", "Jonas", "Lea", "Mats", "Sofie"]),
                           "city": rng.choice(["Oslo", "Bergen", "Hamburg", "Wien", "Zürich"])}
    else:
        properties = {"product_id": sku, "name": title, "price": price, "category": f"cat-{int(price) % 12}"}
        if name in PURCHASES:
            quantity = rng.randint(1, 3)
            properties.update(order_id=f"ord-{message_id}", revenue=round(price * quantity, 2), currency="EUR",
                              products=[{"product_id": sku, "quantity": quantity, "price": price}])
        if channel == "pos":
            properties["store_id"] = rng.choice(STORES)
        if channel in ("email", "ads", "social", "sms"):
            properties["campaign"] = campaign
        event["event"] = name
        event["properties"] = properties
    event["context"] = context
    return event


def generate_bodies(events: int, batch: int, *, run_id: str, seed: int = 7) -> list[bytes]:
    """Pre-serialised ``/v1/batch`` bodies holding ``events`` unique events, ``batch`` per body."""
    rng = random.Random(seed)
    people = _people(rng, max(1000, events // 8))
    now = datetime.now(UTC)
    sent_at = _iso(now)
    bodies = []
    for start in range(0, events, batch):
        chunk = [_event(rng, rng.choice(people), f"{run_id}-{n:08d}", now)
                 for n in range(start, min(start + batch, events))]
        bodies.append(orjson.dumps({"batch": chunk, "sentAt": sent_at}))
    return bodies


# ---------------------------------------------------------------------------------------------
# A collector of our own
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a process in MiB, None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a process has used so far (all threads), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def touchpoint_inserts(url: str) -> tuple[int, float] | None:
    """The collector's touchpoint inserts so far and their rows, from /metrics (None when it cannot be read)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except (OSError, urllib.error.URLError):
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("reise_insert_rows_count", "reise_insert_rows_sum"):
            if line.startswith(name + '{table="touchpoints"}'):
                found[name] = float(line.rsplit(" ", 1)[1])
    if len(found) < 2:
        return None
    return int(found["reise_insert_rows_count"]), found["reise_insert_rows_sum"]


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ManagedCollector:
    """A ``python -m collector serve`` process over a chDB directory, on a free loopback port."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT  # the checkout whose collector runs (its own .venv when it has one)
    entry: tuple[str, ...] = ("-m", "collector")  # what the interpreter runs, before "serve --port N"
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the collector."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the collector's output goes."""
        return self.data_dir.parent / "collector.log"

    def start(self, timeout: float = 120) -> None:
        """Start the process and wait until /readyz answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
        env.update(REISE_DSN=f"chdb://{self.data_dir}", REISE_WRITE_KEYS=f"bench={WRITE_KEY}",
                   REISE_ADMIN_KEY=ADMIN_KEY, REISE_LOG_FORMAT="json", **self.extra_env)
        python = self.root / ".venv" / "bin" / "python"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(python) if self.root != ROOT and python.exists() else sys.executable,
                 *self.entry, "serve", "--port", str(self.port)],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"collector did not become ready:\n{self.log_tail()}")

    def peak_rss_mib(self) -> float | None:
        """Peak RSS of the running process in MiB."""
        return peak_rss_mib(self.process.pid) if self.process else None

    def cpu_seconds(self) -> float | None:
        """CPU seconds the running process has used so far."""
        return cpu_seconds(self.process.pid) if self.process else None

    def thread_cpu_seconds(self) -> dict[str, float]:
        """CPU seconds the running process has used so far, per kind of thread."""
        return thread_cpu_seconds(self.process.pid) if self.process else {}

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (the collector drains), wait, and return the exit code."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the process wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# Sending and waiting
# ---------------------------------------------------------------------------------------------


@dataclass
class SendResult:
    """What the collector answered to the batches."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_requests: int = 0  # non-2xx other than 503 backpressure, or transport errors
    backpressure_503: int = 0  # 503 "queue full" answers, retried after Retry-After
    started: float = 0.0
    last_accept: float = 0.0
    errors: list[str] = field(default_factory=list)


async def _sender(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                  bodies: Sequence[bytes], cursor: Iterator[int], result: SendResult) -> None:
    """Post bodies taken from the shared cursor until none is left."""
    for index in cursor:
        body = bodies[index]
        while True:
            try:
                async with session.post(url, data=body, headers=headers) as reply:
                    payload = await reply.read()
                    status = reply.status
                    retry_after = reply.headers.get("Retry-After", "1")
            except aiohttp.ClientError as exc:
                result.failed_requests += 1
                result.errors.append(f"batch {index}: {exc!r}")
                break
            result.requests += 1
            if status == 503:  # the collector's queue is full: back off as an SDK would
                result.backpressure_503 += 1
                await asyncio.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 1.0))
                continue
            if not 200 <= status < 300:
                result.failed_requests += 1
                result.errors.append(f"batch {index}: HTTP {status} {payload[:200]!r}")
                break
            doc = orjson.loads(payload)
            result.accepted += int(doc.get("accepted", 0))
            result.duplicates += int(doc.get("duplicates", 0))
            result.rejected += len(doc.get("rejected", ()))
            if doc.get("rejected") and len(result.errors) < 20:
                result.errors.append(f"batch {index}: rejected {doc['rejected'][:2]}")
            result.last_accept = time.perf_counter()
            break


async def send_all(url: str, write_key: str, bodies: Sequence[bytes], connections: int) -> SendResult:
    """Send every body to ``/v1/batch`` with ``connections`` concurrent senders over keep-alive."""
    result = SendResult()
    headers = {"Authorization": _basic(write_key), "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=120)
    cursor = iter(range(len(bodies)))  # shared: each sender takes the next body
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        result.started = time.perf_counter()
        await asyncio.gather(*(_sender(session, url + "/v1/batch", headers, bodies, cursor, result)
                               for _ in range(connections)))
    return result


async def query_scalar(session: aiohttp.ClientSession, url: str, admin_key: str, sql: str) -> Any:
    """The single value of a one-row query through the collector's ``/v1/query``."""
    async with session.post(url + "/v1/query", json={"sql": sql},
                            headers={"Authorization": _basic(admin_key)}) as reply:
        payload = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"/v1/query answered {reply.status}: {payload[:300]!r}")
    return orjson.loads(payload)["rows"][0][0]


async def count_touchpoints(url: str, admin_key: str) -> int:
    """Rows in the raw table right now."""
    async with aiohttp.ClientSession() as session:
        return int(await query_scalar(session, url, admin_key, "SELECT count() FROM touchpoints"))


async def wait_visible(url: str, admin_key: str, expected: int, timeout: float) -> tuple[float, int]:
    """Poll the raw table until it holds ``expected`` rows; the moment it did and the last count."""
    deadline = time.perf_counter() + timeout
    count = -1
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            count = int(await query_scalar(session, url, admin_key, "SELECT count() FROM touchpoints"))
            if count >= expected:
                return time.perf_counter(), count
            await asyncio.sleep(POLL_INTERVAL)
    raise TimeoutError(f"only {count} of {expected} rows visible after {timeout:.0f} s")


# ---------------------------------------------------------------------------------------------
# Store baseline
# ---------------------------------------------------------------------------------------------


@dataclass
class StoreResult:
    """Direct inserts through Store.insert_touchpoints."""

    rows: int
    batch_rows: int
    inserts: int
    insert_seconds: float
    visible: int

    @property
    def rows_per_second(self) -> float:
        """Rows inserted per second of insert time."""
        return self.rows / self.insert_seconds if self.insert_seconds else 0.0


def _rows_for(bodies: Sequence[bytes], rules: StageRules) -> Iterator[tuple[Any, ...]]:
    """The touchpoint rows the collector makes of these bodies (one received time per body)."""
    for body in bodies:
        doc = orjson.loads(body)
        ctx = IngestContext(source="bench", received_ms=int(time.time() * 1000), rules=rules,
                            sent_at=doc.get("sentAt"))
        for event in doc["batch"]:
            yield normalise(event, None, ctx)


def enrichment_costs(bodies: Sequence[bytes]) -> dict[str, float]:
    """Microseconds per event of each enrichment over these events (caches warm, as in a running collector),
    of a first sight of a user agent (device, bot), and of ``normalise`` with and without all of them."""
    from collector.enrich.pipeline import Enricher

    events = [event for body in bodies for event in orjson.loads(body)["batch"]]
    contexts = [event.get("context") or {} for event in events]
    agents = [str(c.get("userAgent", "")) for c in contexts]
    ips = [str(c.get("ip", "")) for c in contexts]
    enricher = Enricher()
    assert enricher.bots is not None and enricher.mail is not None and enricher.places is not None
    bots, mail, places = enricher.bots, enricher.mail, enricher.places
    costs: dict[str, float] = {}

    def timed(name: str, work: Any, count: int = len(events), rounds: int = 3) -> None:
        best = float("inf")
        for _ in range(rounds):  # the best of three: other work on the machine only ever adds
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        costs[name] = best / count * 1e6

    def mail_all() -> None:
        for event, ua, ip in zip(events, agents, ips, strict=True):
            if event.get("channel") == "email":
                mail.reasons(ua=ua, ip=ip)
                mail.timing(journey_id=str(event.get("userId")), campaign="c", url="u", at_ms=0, sent=None)

    timed("device", lambda: [enricher.device(ua, c) for ua, c in zip(agents, contexts, strict=True)])
    timed("bot", lambda: [bots.ua_reason(ua) for ua in agents])
    timed("mail", mail_all)
    timed("place", lambda: [places.place(ip) for ip in ips])
    fresh = [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.{n}.1"
             f" Safari/537.36" for n in range(500)]
    timed("device, first sight of a user agent", lambda: [enricher.device(ua, {}) for ua in fresh], len(fresh), 1)
    timed("bot, first sight of a user agent", lambda: [bots.ua_reason(ua) for ua in fresh], len(fresh), 1)
    rules = StageRules.load(DEFAULT_RULES_PATH)
    for name, which in (("normalise without enrichment", None), ("normalise with every enrichment", enricher)):
        ctx = IngestContext(source="bench", received_ms=int(time.time() * 1000), rules=rules, enricher=which)
        timed(name, lambda ctx=ctx: [normalise(event, None, ctx) for event in events])
    return costs


def store_baseline(bodies: Sequence[bytes], *, batch_rows: int, data_dir: Path,
                   rules_path: Path = DEFAULT_RULES_PATH) -> StoreResult:
    """Insert the same events straight into a fresh chDB directory with the views; time the inserts only.

    chDB opens one data path per process; this process never opens another one.
    """
    rules = StageRules.load(rules_path)
    store = Store(dsn=f"chdb://{data_dir}")
    try:
        apply_migrations(store)
        spent, inserts, total = 0.0, 0, 0
        pending: list[tuple[Any, ...]] = []

        def flush() -> None:
            nonlocal spent, inserts, total
            token = f"bench-{uuid.uuid4().hex}"
            started = time.perf_counter()
            store.insert_touchpoints(pending, token)
            spent += time.perf_counter() - started
            inserts += 1
            total += len(pending)
            pending.clear()

        for row in _rows_for(bodies, rules):
            pending.append(row)
            if len(pending) >= batch_rows:
                flush()
        if pending:
            flush()
        visible = int(store.command("SELECT count() FROM touchpoints"))
    finally:
        store.close()
    return StoreResult(rows=total, batch_rows=batch_rows, inserts=inserts, insert_seconds=spent,
                       visible=visible)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    """Every figure the benchmark prints."""

    events: int
    batch: int
    connections: int
    requests: int
    accepted: int
    rejected: int
    duplicates: int
    failed_requests: int
    backpressure_503: int
    accept_seconds: float
    end_to_end_seconds: float
    store_rows_per_second: float | None
    store_insert_seconds: float | None
    store_batch_rows: int
    collector_peak_rss_mib: float | None
    collector_cpu_seconds: float | None  # first request until all visible, every thread
    client_cpu_seconds: float  # this process while sending
    generate_seconds: float
    errors: list[str]
    memory_spool_end_to_end_seconds: float | None = None
    no_enrich_end_to_end_seconds: float | None = None  # the same run with REISE_ENRICH=none
    enrich_costs_us: dict[str, float] = field(default_factory=dict)  # per-event cost of each enrichment (us)
    no_enrich_collector_cpu_seconds: float | None = None  # collector CPU of the run with enrichment off
    collector_thread_cpu_seconds: dict[str, float] = field(default_factory=dict)  # the same, per kind of thread
    touchpoint_inserts: tuple[int, float] | None = None  # the collector's touchpoint inserts and their rows

    @property
    def accept_rate(self) -> float:
        """Events per second from the first request to the last 2xx."""
        return self.events / self.accept_seconds

    @property
    def end_to_end_rate(self) -> float:
        """Events per second from the first request until all are visible in the raw table."""
        return self.events / self.end_to_end_seconds

    @property
    def memory_spool_rate(self) -> float | None:
        """End-to-end events per second with the spool in memory (durability off)."""
        t = self.memory_spool_end_to_end_seconds
        return self.events / t if t else None

    @property
    def spool_cost(self) -> float | None:
        """Share of the in-memory rate lost to the durable spool (fsync per group commit)."""
        memory = self.memory_spool_rate
        return 1 - self.end_to_end_rate / memory if memory else None

    @property
    def no_enrich_rate(self) -> float | None:
        """End-to-end events per second with enrichment off (REISE_ENRICH=none)."""
        t = self.no_enrich_end_to_end_seconds
        return self.events / t if t else None

    @property
    def enrich_cost(self) -> float | None:
        """Share of the rate without enrichment lost to it (the issue's bound: 15%)."""
        plain = self.no_enrich_rate
        return 1 - self.end_to_end_rate / plain if plain else None

    @property
    def ratio(self) -> float | None:
        """End-to-end rate over the store's direct rate."""
        return self.end_to_end_rate / self.store_rows_per_second if self.store_rows_per_second else None

    @property
    def ok(self) -> bool:
        """No failed request, no rejected event, every event accepted."""
        return self.failed_requests == 0 and self.rejected == 0 and self.accepted == self.events


def _parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("REISE_"):
            raise SystemExit(f"--collector-env: expected REISE_NAME=value, got {pair!r}")
        env[name] = value
    return env


@dataclass
class _Phase:
    """Figures of one end-to-end run against one collector."""

    sent: SendResult
    accept_seconds: float
    end_to_end_seconds: float
    rss: float | None
    collector_cpu: float | None
    client_cpu: float
    threads: dict[str, float] = field(default_factory=dict)
    inserts: tuple[int, float] | None = None  # touchpoint inserts and their rows, over the run


def _end_to_end(args: argparse.Namespace, bodies: Sequence[bytes], work: Path, env: dict[str, str],
                entry: tuple[str, ...] = ("-m", "collector")) -> _Phase:
    """Send every body to a collector (ours, or --url; ``entry``: what its interpreter runs) and wait until all
    rows are visible."""
    collector: ManagedCollector | None = None
    try:
        if args.url:
            url, write_key, admin_key = args.url.rstrip("/"), args.write_key, args.admin_key
        else:
            collector = ManagedCollector(data_dir=work / "collector" / "data", extra_env=env, entry=entry,
                                         root=Path(args.collector_root).resolve() if args.collector_root else ROOT)
            collector.data_dir.parent.mkdir(parents=True)
            collector.start()
            url, write_key, admin_key = collector.url, WRITE_KEY, ADMIN_KEY
            print(f"collector pid {collector.process.pid if collector.process else '?'} at {url} "
                  f"(spool {env.get('REISE_SPOOL', 'disk')}), log {collector.log_path}", file=sys.stderr)
        before = asyncio.run(count_touchpoints(url, admin_key))
        collector_cpu = collector.cpu_seconds() if collector else None
        threads_before = collector.thread_cpu_seconds() if collector else {}
        client_cpu = _own_cpu_seconds()
        sent = asyncio.run(send_all(url, write_key, bodies, args.connections))
        client_cpu = _own_cpu_seconds() - client_cpu
        accept_seconds = sent.last_accept - sent.started
        print(f"accepted {sent.accepted:,} in {accept_seconds:.2f} s; waiting until visible", file=sys.stderr)
        visible_at, _ = asyncio.run(wait_visible(url, admin_key, before + sent.accepted, args.timeout))
        rss = collector.peak_rss_mib() if collector else None
        cpu_now = collector.cpu_seconds() if collector else None
        threads = collector.thread_cpu_seconds() if collector else {}
        threads = {k: v - threads_before.get(k, 0.0) for k, v in threads.items()}
        inserts = touchpoint_inserts(url)
        collector_cpu = cpu_now - collector_cpu if cpu_now is not None and collector_cpu is not None else None
        if collector:
            code = collector.stop()
            if code != 0:
                print(f"warning: collector exited with {code}:\n{collector.log_tail()}", file=sys.stderr)
        collector = None
        return _Phase(sent, accept_seconds, visible_at - sent.started, rss, collector_cpu, client_cpu, threads,
                      inserts)
    finally:
        if collector is not None:
            collector.stop()


def run(args: argparse.Namespace) -> BenchResult:
    """Run the three phases and return the figures."""
    work = Path(tempfile.mkdtemp(prefix="reise-bench-"))
    try:
        started = time.perf_counter()
        bodies = generate_bodies(args.events, args.batch, run_id=f"bench-{uuid.uuid4().hex[:12]}", seed=args.seed)
        generate_seconds = time.perf_counter() - started
        size = sum(map(len, bodies))
        print(f"generated {args.events:,} events in {len(bodies):,} bodies "
              f"({size / len(bodies) / 1024:.1f} KiB each) in {generate_seconds:.1f} s", file=sys.stderr)

        collector_env = _parse_env(args.collector_env)
        phase = _end_to_end(args, bodies, work / "disk", {"REISE_SPOOL": "disk", **collector_env})
        memory: _Phase | None = None
        if not args.url and args.compare_spool:
            print("again with the spool in memory (not durable), for comparison", file=sys.stderr)
            memory = _end_to_end(args, bodies, work / "memory", {**collector_env, "REISE_SPOOL": "memory"})
        plain: _Phase | None = None
        if not args.url and args.compare_enrich:
            print("again with enrichment off (REISE_ENRICH=none), for comparison", file=sys.stderr)
            plain = _end_to_end(args, bodies, work / "plain", {"REISE_SPOOL": "disk", **collector_env,
                                                               "REISE_ENRICH": "none"})
        costs = enrichment_costs(bodies) if args.compare_enrich else {}
        sent, accept_seconds, end_to_end_seconds = phase.sent, phase.accept_seconds, phase.end_to_end_seconds
        rss, collector_cpu, client_cpu = phase.rss, phase.collector_cpu, phase.client_cpu

        batch_rows = int(collector_env.get("REISE_BATCH_SIZE", Settings().batch_size))
        store: StoreResult | None = None
        if not args.skip_store:
            print(f"store baseline: {args.events:,} rows in inserts of {batch_rows:,}", file=sys.stderr)
            store = store_baseline(bodies, batch_rows=batch_rows, data_dir=work / "store" / "data")
            if store.visible != store.rows:
                sent.errors.append(f"store baseline: {store.visible} rows visible of {store.rows}")
        return BenchResult(
            events=args.events, batch=args.batch, connections=args.connections, requests=sent.requests,
            accepted=sent.accepted, rejected=sent.rejected, duplicates=sent.duplicates,
            failed_requests=sent.failed_requests, backpressure_503=sent.backpressure_503,
            accept_seconds=accept_seconds, end_to_end_seconds=end_to_end_seconds,
            store_rows_per_second=store.rows_per_second if store else None,
            store_insert_seconds=store.insert_seconds if store else None,
            store_batch_rows=batch_rows, collector_peak_rss_mib=rss, collector_cpu_seconds=collector_cpu,
            client_cpu_seconds=client_cpu, generate_seconds=generate_seconds,
            errors=sent.errors + (memory.sent.errors if memory else []),
            memory_spool_end_to_end_seconds=memory.end_to_end_seconds if memory else None,
            no_enrich_end_to_end_seconds=plain.end_to_end_seconds if plain else None, enrich_costs_us=costs,
            no_enrich_collector_cpu_seconds=plain.collector_cpu if plain else None,
            collector_thread_cpu_seconds=phase.threads, touchpoint_inserts=phase.inserts,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def format_table(result: BenchResult) -> str:
    """The figures as an aligned two-column table."""
    def rate(value: float | None) -> str:
        return f"{value:,.0f}" if value is not None else "-"

    rows = [
        ("events", f"{result.events:,}"),
        ("batch size (events/request)", f"{result.batch}"),
        ("connections", f"{result.connections}"),
        ("requests (incl. 503 retries)", f"{result.requests:,}"),
        ("accepted / rejected / duplicates", f"{result.accepted:,} / {result.rejected} / {result.duplicates}"),
        ("failed requests (non-2xx)", f"{result.failed_requests}"),
        ("503 backpressure (retried)", f"{result.backpressure_503}"),
        ("accept time (s)", f"{result.accept_seconds:.2f}"),
        ("accept events/s", rate(result.accept_rate)),
        ("end-to-end time (s)", f"{result.end_to_end_seconds:.2f}"),
        ("end-to-end events/s", rate(result.end_to_end_rate)),
        (f"store direct rows/s ({result.store_batch_rows:,}-row inserts)", rate(result.store_rows_per_second)),
        ("ratio end-to-end / store", f"{result.ratio:.2f}" if result.ratio is not None else "-"),
        ("end-to-end events/s, spool in memory", rate(result.memory_spool_rate)),
        ("durable spool cost (share of memory rate)",
         f"{result.spool_cost:.1%}" if result.spool_cost is not None else "-"),
        ("end-to-end events/s, enrichment off", rate(result.no_enrich_rate)),
        ("enrichment cost (share of the rate without it)",
         f"{result.enrich_cost:.1%}" if result.enrich_cost is not None else "-"),
        ("collector CPU us/event, enrichment off", f"{result.no_enrich_collector_cpu_seconds / result.events * 1e6:.1f}"
         if result.no_enrich_collector_cpu_seconds is not None else "-"),
        *((f"  {name} us/event", f"{cost:.2f}") for name, cost in result.enrich_costs_us.items()),
        ("collector peak RSS (MiB)", f"{result.collector_peak_rss_mib:.0f}"
         if result.collector_peak_rss_mib is not None else "-"),
        ("collector CPU us/event (all threads)", f"{result.collector_cpu_seconds / result.events * 1e6:.1f}"
         if result.collector_cpu_seconds is not None else "-"),
        *((f"  threads {name} us/event", f"{cpu / result.events * 1e6:.1f}") for name, cpu in
          sorted(result.collector_thread_cpu_seconds.items(), key=lambda kv: -kv[1]) if cpu / result.events > 5e-7),
        ("collector touchpoint inserts (mean rows)", f"{result.touchpoint_inserts[0]} "
         f"({result.touchpoint_inserts[1] / max(result.touchpoint_inserts[0], 1):,.0f})"
         if result.touchpoint_inserts is not None else "-"),
        ("bench client CPU us/event", f"{result.client_cpu_seconds / result.events * 1e6:.1f}"),
        (f"floor {FLOOR_EVENTS_PER_SECOND:,} events/s end to end",
         "met" if result.end_to_end_rate >= FLOOR_EVENTS_PER_SECOND else "NOT met"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>14}" for name, value in rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/ingest.py", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=500_000, help="events to send (default 500000)")
    parser.add_argument("--batch", type=int, default=100, help="events per /v1/batch request (default 100)")
    parser.add_argument("--connections", type=int, default=8,
                        help="concurrent senders, one keep-alive connection each (default 8)")
    parser.add_argument("--url", help="use this running collector instead of starting one")
    parser.add_argument("--collector-root", metavar="DIR",
                        help="run the collector of this checkout (its .venv) instead of this one, e.g. an old "
                             "tree for back-to-back comparisons; the rest of the bench stays this one's")
    parser.add_argument("--write-key", default=WRITE_KEY, help="write key for --url")
    parser.add_argument("--admin-key", default=ADMIN_KEY, help="admin key for --url")
    parser.add_argument("--collector-env", action="append", default=[], metavar="REISE_NAME=value",
                        help="extra setting for the collector this script starts (repeatable)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated events")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait until all rows are visible")
    parser.add_argument("--skip-store", action="store_true", help="skip the direct store baseline")
    parser.add_argument("--no-compare-spool", dest="compare_spool", action="store_false",
                        help="skip the second run with the spool in memory")
    parser.add_argument("--no-compare-enrich", dest="compare_enrich", action="store_false",
                        help="skip the second run with enrichment off and the in-process enrichment costs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary chDB directories and log")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the benchmark, print the table; 1 when any request or event failed."""
    args = _parser().parse_args(argv)
    if args.events < 1 or args.batch < 1 or args.connections < 1:
        raise SystemExit("--events, --batch and --connections must be positive")
    result = run(args)
    print(format_table(result))
    if args.json:
        doc = {**asdict(result), "accept_rate": result.accept_rate, "end_to_end_rate": result.end_to_end_rate,
               "ratio": result.ratio}
        print(orjson.dumps(doc).decode())
    for error in result.errors[:20]:
        print(f"error: {error}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

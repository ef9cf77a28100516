"""The deliverer alone: how many webhooks a second it sends, and its CPU per delivery.

Fills an outbox with ``--items`` transitions (``--customers`` customers, so each customer's webhooks go in
order), starts a ``Deliverer`` in this process with a real chDB store (attempts are copied to
``trigger_attempts``) and a receiver in a process of its own on loopback, and prints the deliveries a second
and this process's CPU per delivery (HTTP client, signing, outbox results, attempt records). Figures, not
assertions; run it from a tree's venv to measure that tree's deliverer.

    .venv/bin/python bench/trigger_delivery.py                  # 20,000 items, concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import CollectorRegistry

from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations
from collector.triggers.config import Limits, parse_trigger_config
from collector.triggers.deliver import Deliverer, DeliveryPolicy
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Outbox

SECRET = "bench-secret-0123456789"
RECEIVER = """
import sys
from aiohttp import web
async def hook(request):
    await request.read()
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/hook", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _thread_cpu() -> dict[str, float]:
    """CPU seconds by thread name of this process (Python's threads are all "python"), from /proc."""
    found: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip().rstrip("0123456789_")
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def _wait_port(port: int) -> None:
    for _ in range(100):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; the exit status."""
    work = Path(tempfile.mkdtemp(prefix="reise-bench-delivery-"))
    port = _free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    store = Store(dsn=f"chdb://{work / 'data'}")
    apply_migrations(store)
    url = f"http://127.0.0.1:{port}/hook"
    config = parse_trigger_config([{"name": "bench", "when": {"enters_stage": "purchase"}, "url": url,
                                    "secret": SECRET}], [], hosts=("127.0.0.1",))
    destination = config.triggers[0].destination
    outbox = Outbox(work / "triggers.sqlite3")
    body = json.dumps({"trigger": "bench", "customer_id": "c", "ids": ["a", "c"], "stage": "purchase",
                       "touchpoint": {"message_id": "m" * 20, "channel": "web"}, "contacts": 3,
                       "revenue": 10.0, "detected_at": "2025-05-01T10:02:03.412Z"}).encode()
    for start in range(0, args.items, 1000):
        outbox.commit_detection([(f"k-{n}", "bench", destination, f"c-{n % args.customers}", body)
                                 for n in range(start, min(args.items, start + 1000))], {}, [], [])
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reise-triggers")
    deliverer = Deliverer(config=config, outbox=outbox, store=store, pool=pool,
                          metrics=TriggerMetrics(CollectorRegistry()),
                          policy=DeliveryPolicy(hosts=("127.0.0.1",), allow_private=True,
                                                limits=Limits(args.concurrency, 0.0)))
    try:
        await _wait_port(port)
        cpu, threads, started = _cpu(), _thread_cpu(), time.perf_counter()
        await deliverer.start()
        while deliverer.pending:
            await asyncio.sleep(0.02)
        delivered_in = time.perf_counter() - started
        await deliverer.close()  # commits the last results and copies the last records
        seconds, used = time.perf_counter() - started, _cpu() - cpu
        by_thread = {name: round((cpu_s - threads.get(name, 0.0)) * 1e6 / args.items, 1)
                     for name, cpu_s in _thread_cpu().items() if cpu_s - threads.get(name, 0.0) >= 0.05}
    finally:
        pool.shutdown()
        receiver.terminate()
        receiver.wait(10)
    counts = outbox.counts()
    attempts = store.query("SELECT count() FROM trigger_attempts").rows[0][0]
    figures = {"items": args.items, "delivered": counts.get("delivered", 0), "attempts_in_clickhouse": attempts,
               "deliveries_per_s": round(args.items / delivered_in, 1),
               "seconds_with_records": round(seconds, 2),
               "cpu_us_per_delivery": round(used * 1e6 / args.items, 1), "cpu_us_by_thread": by_thread}
    print(json.dumps(figures) if args.json else "\n".join(f"{k:>24}: {v}" for k, v in figures.items()))
    return 0 if counts.get("delivered", 0) == args.items else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="transitions in the outbox (default 20,000)")
    parser.add_argument("--customers", type=int, default=20_000, help="customers they belong to (default: one each)")
    parser.add_argument("--concurrency", type=int, default=32, help="the destination's concurrency (default 32)")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    sys.exit(asyncio.run(main(parser.parse_args())))

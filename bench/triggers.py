"""Trigger latency: transitions driven through a collector to a webhook receiver on loopback.

Starts a collector (``python -m collector serve``) over a fresh chDB directory with one trigger (a customer's
first purchase) sending to a receiver in this process, sends ``--rate`` purchases a second (each a new
customer, so each is one transition) for ``--seconds``, and prints the delivery throughput and the p50, p95
and p99 latency from each event's 2xx to its webhook arriving. Figures, not assertions.

    .venv/bin/python bench/triggers.py                      # 1,000 transitions/s for 20 s
    .venv/bin/python bench/triggers.py --rate 2000 --seconds 10 --collector-env REISE_FLUSH_INTERVAL=0.5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (and its reaped children) used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (chDB's own threads summed under their names) of a process, from /proc."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        name = name.rstrip("0123456789_") or name
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; the exit status."""
    arrived: dict[str, float] = {}
    detected: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        message = payload["touchpoint"]["message_id"]
        if message not in arrived:
            arrived[message] = time.time()
            detected[message] = datetime.fromisoformat(payload["detected_at"].replace("Z", "+00:00")).timestamp()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver_port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()

    work = Path(tempfile.mkdtemp(prefix="reise-bench-triggers-"))
    (work / "triggers.json").write_text(json.dumps({"triggers": [{
        "name": "first_purchase", "when": {"enters_stage": "purchase", "first_time": True},
        "url": f"http://127.0.0.1:{receiver_port}/hook", "secret": SECRET,
        "concurrency": args.concurrency, "rate_per_second": 0}]}))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
    env.update(REISE_DSN=f"chdb://{work / 'data'}", REISE_WRITE_KEYS="bench=wk_bench", REISE_ADMIN_KEY="ak_bench",
               REISE_TRIGGERS=str(work / "triggers.json"), REISE_TRIGGER_HOSTS="127.0.0.1",
               REISE_TRIGGER_ALLOW_PRIVATE="1", REISE_LOG_FORMAT="json")
    env.update(dict(item.split("=", 1) for item in args.collector_env))
    log = (work / "collector.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    profiler = None
    if args.profile:
        profiler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(process.pid),
                                     "--threads", "--format", "speedscope" if args.profile.endswith(".json") else
                                     "flamegraph", "-o", args.profile, "--rate", "100", "--nonblocking", "--gil"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Basic " + base64.b64encode(b"wk_bench:").decode(), "Content-Type": "application/json"}
    accepted: dict[str, float] = {}
    cpu_used = own_used = 0.0
    threads: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(url + "/readyz") as reply:
                        if reply.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            run = uuid.uuid4().hex[:8]
            cpu_before, own_before = _cpu_seconds(process.pid), time.process_time()
            threads_before = _thread_cpu(process.pid)
            per_tick = max(1, int(args.rate * 0.05))
            total = int(args.rate * args.seconds)
            started = time.monotonic()
            sends: list[asyncio.Task[None]] = []

            async def send(ids: list[str]) -> None:
                body = json.dumps({"batch": [{"type": "track", "event": "Order Completed", "stage": "purchase",
                                              "channel": "web", "userId": f"c-{i}", "messageId": i, "revenue": 10}
                                             for i in ids]})
                async with session.post(url + "/v1/batch", data=body, headers=auth) as reply:
                    await reply.read()
                    if reply.status == 200:
                        now = time.time()
                        accepted.update(dict.fromkeys(ids, now))

            for n in range(0, total, per_tick):
                ids = [f"{run}-{k}" for k in range(n, min(total, n + per_tick))]
                sends.append(asyncio.create_task(send(ids)))
                await asyncio.sleep(max(0.0, started + (n + per_tick) / args.rate - time.monotonic()))
            await asyncio.gather(*sends)
            sent_seconds = time.monotonic() - started
            deadline = time.monotonic() + args.timeout
            while len(arrived) < len(accepted) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            cpu_used = _cpu_seconds(process.pid) - cpu_before
            own_used = time.process_time() - own_before
            threads = {name: round(cpu - threads_before.get(name, 0.0), 2)
                       for name, cpu in _thread_cpu(process.pid).items()}
            threads = dict(sorted(((k, v) for k, v in threads.items() if v >= 0.05), key=lambda kv: -kv[1]))
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        await runner.cleanup()
    latencies = [arrived[i] - accepted[i] for i in accepted if i in arrived]
    to_detect = [detected[i] - accepted[i] for i in accepted if i in arrived]
    to_arrive = [arrived[i] - detected[i] for i in accepted if i in arrived]
    first = min(accepted.values()) if accepted else 0
    last = max(arrived.values()) if arrived else 0
    figures = {
        "transitions_sent": len(accepted), "webhooks_arrived": len(latencies),
        "send_rate_per_s": round(len(accepted) / sent_seconds, 1),
        "delivery_throughput_per_s": round(len(latencies) / (last - first), 1) if last > first else 0,
        "p50_s": round(_percentile(latencies, 0.50), 3), "p95_s": round(_percentile(latencies, 0.95), 3),
        "p99_s": round(_percentile(latencies, 0.99), 3),
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "detected_p50_p95_s": [round(_percentile(to_detect, q), 3) for q in (0.5, 0.95)],
        "delivered_p50_p95_s": [round(_percentile(to_arrive, q), 3) for q in (0.5, 0.95)],
        "collector_cpu_s": round(cpu_used, 2),
        "collector_cpu_ms_per_transition": round(cpu_used * 1000 / len(latencies), 3) if latencies else None,
        "collector_cpu_s_by_thread": threads,
        "bench_cpu_s": round(own_used, 2),
    }
    print(json.dumps(figures) if args.json else "\n".join(f"{k:>26}: {v}" for k, v in figures.items()))
    return 0 if len(latencies) == len(accepted) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="transitions a second (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="the trigger's concurrency (default 32)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the last webhooks")
    parser.add_argument("--collector-env", action="append", default=[], metavar="REISE_X=v")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument("--profile", metavar="OUT", help="record the collector with py-spy into OUT (.svg or .json)")
    sys.exit(asyncio.run(main(parser.parse_args())))

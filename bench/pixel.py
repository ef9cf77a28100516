"""Pixel benchmark: ``GET /p.gif`` of the real collector against a bare aiohttp handler answering the same GIF.

One command::

    .venv/bin/python bench/pixel.py [--duration 10] [--connections 32] [--threads 2] [--rounds 3]

It starts the collector (``python -m collector serve``) over a fresh chDB directory in a temporary
directory, with a public key for the email channel and the rate limits off, and a bare aiohttp server
(``web.Response(body=GIF, content_type="image/gif", headers=NO_CACHE)``, no middleware, ``access_log=None``
as the collector runs) on free loopback ports. wrk then loads each in turn, alternating bare and pixel for
``--rounds`` rounds after a short warm-up of each, so drift of the machine hits both alike. Every pixel
request carries a unique messageId (a wrk Lua script), so each is a new touchpoint recorded and written to
the spool, not a duplicate. It prints req/s of both per round, the medians and their ratio (pixel / bare),
each server's CPU time per request (all its threads, and its event loop's thread alone, from /proc:
steadier than req/s on a busy machine; the collector's also per thread name, where Python's own threads
show as ``python`` and chDB's by their pool names),
and the rows the collector took (``/readyz``: inserted plus spooled) as a check that the hits were recorded.
With ``--profile FILE`` a last pixel run (at least 15 s) is sampled with py-spy (a dev dependency: the event
loop's thread while it holds the GIL, raw collapsed stacks in FILE) and the top functions by own time are printed.

wrk must be installed: as root on Debian or Ubuntu the script installs it with ``apt-get install -y wrk``
(``--no-install`` turns that off); otherwise install it yourself (``apt-get install wrk``, ``brew install
wrk``). Only 127.0.0.1 is ever loaded. Benchmarks print figures; they never assert times.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "collector").is_dir():  # the script saved outside bench/: the repository is the working directory
    ROOT = Path.cwd()
sys.path.insert(0, str(ROOT / "bench"))  # its helpers (procstat) wherever the script was saved

from procstat import thread_cpu_seconds  # noqa: E402

__all__ = ["WrkResult", "main", "run_wrk"]

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PUBLIC_KEY = "pk_bench_mail"
ADMIN_KEY = "ak_bench_admin_key"
QUERY = f"k={PUBLIC_KEY}&uid=u123&e=email_opened&c=spring"
# The bare server: the same answer as collector.pixel.pixel, nothing else. Run as `python -c BARE PORT UVLOOP`.
BARE = """
import base64, sys
from aiohttp import web
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0", "Pragma": "no-cache",
            "Expires": "0"}
async def pixel(request):
    return web.Response(body=GIF, content_type="image/gif", headers=NO_CACHE)
app = web.Application()
app.router.add_get("/p.gif", pixel)
app.router.add_get("/healthz", pixel)
if sys.argv[2] == "1":
    import uvloop
    uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
# A unique messageId per request: the run's token (a script argument), wrk's thread number and a counter;
# wrk seeds every run's random numbers alike, so the run token is what keeps runs from repeating ids.
LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local prefix = ""
function init(args)
  prefix = "&mid=" .. args[1] .. "-" .. tid .. "-"
end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. prefix .. counter)
end
"""
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: requests per second, requests sent, and what went wrong."""

    rate: float
    requests: int
    non_2xx: int
    socket_errors: str


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk(install: bool) -> str:
    """The path of wrk, installing it with apt-get when allowed and possible; exits with advice otherwise."""
    found = shutil.which("wrk")
    if found:
        return found
    if install and shutil.which("apt-get") and os.geteuid() == 0:
        print("bench: wrk not found; installing it with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("bench: wrk is needed: `sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Wait until ``url`` answers 200, or exit showing the server's log when it died or took too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"bench: {url} not ready after {timeout:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def server(argv: Sequence[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[int]:
    """Run a server process until the block ends (SIGTERM, then SIGKILL after 30 s); yields its pid."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, proc, 90, log)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_wrk(wrk: str, url: str, *, threads: int, connections: int, duration: float, script: Path | None) -> WrkResult:
    """Load ``url`` with wrk for ``duration`` seconds and parse its summary."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s"]
    tail = [url]
    if script is not None:
        argv += ["-s", str(script)]
        tail += ["--", secrets.token_hex(6)]
    done = subprocess.run([*argv, *tail], capture_output=True, text=True, timeout=duration + 60, check=False)
    rate, total = _RATE.search(done.stdout), _TOTAL.search(done.stdout)
    if done.returncode != 0 or rate is None or total is None:
        sys.exit(f"bench: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    non_2xx, errors = _NON_2XX.search(done.stdout), _ERRORS.search(done.stdout)
    return WrkResult(rate=float(rate.group(1)), requests=int(total.group(1)),
                     non_2xx=int(non_2xx.group(1)) if non_2xx else 0, socket_errors=errors.group(0) if errors else "")


def cpu_seconds(pid: int, *, loop_only: bool = False) -> float:
    """CPU time (user and system) a process has used so far, all threads or only the main one (the event loop).

    0 where /proc is not there.
    """
    try:
        stat = Path(f"/proc/{pid}/task/{pid}/stat" if loop_only else f"/proc/{pid}/stat")
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def accepted_events(base: str) -> int:
    """Rows the collector has taken so far (``/readyz``: inserted plus still spooled), -1 when unreadable."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as answer:
            ready = json.loads(answer.read())
        return int(ready["inserted"]) + int(ready["spool"]["rows"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return -1


def settled_events(base: str, pause: float = 0.2, tries: int = 50) -> int:
    """``accepted_events`` once two reads a pause apart agree: the warm-up's last hits are recorded."""
    last = accepted_events(base)
    for _ in range(tries):
        time.sleep(pause)
        now = accepted_events(base)
        if now == last:
            return now
        last = now
    return last


def top_functions(raw: str, thread: str = "MainThread", count: int = 15) -> list[tuple[float, str]]:
    """The functions with the most own samples in py-spy's raw (collapsed) output, for one thread: (share, name)."""
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if not samples.isdigit() or thread not in frames[0] or len(frames) < 2:
            continue
        name, _, where = frames[-1].partition(" (")
        own_key = f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]}" + (")" if where else "")
        own[own_key] = own.get(own_key, 0) + int(samples)
        total += int(samples)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:count]
    return [(samples / max(total, 1), name) for name, samples in ranked]


def profile_run(pid: int, out: Path, load: Callable[[], WrkResult]) -> None:
    """Sample the collector with py-spy (GIL holder only, every thread) during one more pixel run; print the top."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("bench: --profile needs py-spy (a dev dependency: pip install py-spy)")
    with subprocess.Popen([spy, "record", "--pid", str(pid), "--gil", "--threads", "--nonblocking", "--rate", "250",
                           "--format", "raw", "--output", str(out)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as spying:
        time.sleep(1)
        result = load()
        spying.send_signal(signal.SIGINT)
        spying.wait(timeout=60)
    print(f"profile: {result.rate:,.0f} req/s while sampled; {out}; top functions of the event loop by own time:")
    for share, name in top_functions(out.read_text() if out.exists() else ""):
        print(f"  {share:6.1%}  {name}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/pixel rounds (default 3)")
    parser.add_argument("--same-id", action="store_true",
                        help="one URL for every request (no messageId: each hit gets a fresh one, as a cache buster "
                             "would); by default each request has its own messageId")
    parser.add_argument("--uvloop", action="store_true", help="run the bare server on uvloop (needs uvloop)")
    parser.add_argument("--collector-env", action="append", default=[], metavar="REISE_X=v",
                        help="an extra environment variable for the collector (repeatable)")
    parser.add_argument("--no-install", action="store_true", help="never install wrk with apt-get")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data, logs)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample a last pixel run with py-spy into FILE (collapsed stacks) and print its top "
                             "functions")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    args = _parser().parse_args(argv)
    wrk = ensure_wrk(not args.no_install)
    temp = Path(tempfile.mkdtemp(prefix="reise-bench-pixel-"))
    script = temp / "unique.lua"
    script.write_text(LUA)
    collector_port, bare_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REISE_")}
    collector_env = {
        **env,
        "REISE_DSN": f"chdb://{temp / 'db'}",
        "REISE_WRITE_KEYS": f"mail={PUBLIC_KEY}@email",
        "REISE_ADMIN_KEY": ADMIN_KEY,
        "REISE_RATE_LIMIT": "0",
        "REISE_PUBLIC_RATE_LIMIT": "0",
        "REISE_LOG_FORMAT": "json",
    }
    for item in args.collector_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("REISE_"):
            sys.exit(f"bench: --collector-env expects REISE_NAME=value, got {item!r}")
        collector_env[name] = value
    pixel_base, bare_base = f"http://127.0.0.1:{collector_port}", f"http://127.0.0.1:{bare_port}"
    pixel_url, bare_url = f"{pixel_base}/p.gif?{QUERY}", f"{bare_base}/p.gif?{QUERY}"
    lua = None if args.same_id else script
    collector_argv = [sys.executable, "-m", "collector", "serve", "--port", str(collector_port)]
    bare_argv = [sys.executable, "-c", BARE, str(bare_port), "1" if args.uvloop else "0"]
    rates: dict[str, list[float]] = {"bare": [], "pixel": []}
    cpu: dict[str, list[float]] = {"bare": [], "pixel": []}  # server CPU microseconds per request
    loop_cpu: dict[str, list[float]] = {"bare": [], "pixel": []}  # the same, the event loop's thread alone
    threads: dict[str, list[float]] = {}  # the collector's CPU microseconds per request, per thread name
    try:
        with server(collector_argv, collector_env, f"{pixel_base}/healthz", temp / "collector.log") as pixel_pid, \
                server(bare_argv, env, f"{bare_base}/healthz", temp / "bare.log") as bare_pid:
            pids = {"bare": bare_pid, "pixel": pixel_pid}
            for name, url in (("bare", bare_url), ("pixel", pixel_url)):
                run_wrk(wrk, url, threads=args.threads, connections=args.connections, duration=args.warmup,
                        script=lua if name == "pixel" else None)
            before = settled_events(pixel_base)
            sent = 0
            print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds "
                  f"({'one URL' if args.same_id else 'unique messageIds'})", flush=True)
            for round_ in range(1, args.rounds + 1):
                line = []
                for name, url in (("bare", bare_url), ("pixel", pixel_url)):
                    used, used_loop = cpu_seconds(pids[name]), cpu_seconds(pids[name], loop_only=True)
                    per_thread = thread_cpu_seconds(pids[name]) if name == "pixel" else {}
                    result = run_wrk(wrk, url, threads=args.threads, connections=args.connections,
                                     duration=args.duration, script=lua if name == "pixel" else None)
                    used = cpu_seconds(pids[name]) - used
                    used_loop = cpu_seconds(pids[name], loop_only=True) - used_loop
                    rates[name].append(result.rate)
                    cpu[name].append(used * 1e6 / max(result.requests, 1))
                    loop_cpu[name].append(used_loop * 1e6 / max(result.requests, 1))
                    sent += result.requests if name == "pixel" else 0
                    for thread, seconds in thread_cpu_seconds(pids[name]).items() if name == "pixel" else ():
                        threads.setdefault(thread, []).append(
                            (seconds - per_thread.get(thread, 0.0)) * 1e6 / max(result.requests, 1))
                    problems = ", ".join(filter(None, [f"{result.non_2xx} non-2xx" if result.non_2xx else "",
                                                       result.socket_errors]))
                    line.append(f"{name} {result.rate:7,.0f} req/s, CPU/req {cpu[name][-1]:3.0f} us "
                                f"(loop {loop_cpu[name][-1]:3.0f})"
                                + (f" ({problems})" if problems else ""))
                print(f"round {round_}: " + "   ".join(line)
                      + f"   ratio {rates['pixel'][-1] / rates['bare'][-1]:.3f}", flush=True)
            accepted = settled_events(pixel_base) - before
            if args.profile is not None:
                profile_run(pixel_pid, args.profile, lambda: run_wrk(
                    wrk, pixel_url, threads=args.threads, connections=args.connections,
                    duration=max(args.duration, 15.0), script=lua))
    finally:
        if args.keep:
            print(f"kept {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)
    bare, pixel = statistics.median(rates["bare"]), statistics.median(rates["pixel"])
    print(f"median: bare {bare:,.0f} req/s   pixel {pixel:,.0f} req/s   ratio {pixel / bare:.3f}")
    for what, figures in (("all threads", cpu), ("event loop", loop_cpu)):
        bare_cpu, pixel_cpu = statistics.median(figures["bare"]), statistics.median(figures["pixel"])
        if bare_cpu and pixel_cpu:
            print(f"server CPU per request ({what}): bare {bare_cpu:.0f} us   pixel {pixel_cpu:.0f} us   "
                  f"ratio {bare_cpu / pixel_cpu:.3f}")
    busy = sorted(((statistics.median(us), thread) for thread, us in threads.items() if len(us) == args.rounds),
                  reverse=True)
    if busy:
        print("pixel CPU per request by thread (medians): "
              + ", ".join(f"{thread} {us:.0f} us" for us, thread in busy if us >= 0.5))
    print(f"pixel hits sent {sent:,}, rows taken {accepted:,}" if before >= 0 else "rows taken: /readyz unreadable")
    return 0


if __name__ == "__main__":
    sys.exit(main())

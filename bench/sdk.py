"""Benchmark: the reise SDK against segment-analytics-python and posthog, one run, one table.

    python bench/sdk.py [--events 100000] [--outage 10] [--rate 1000]

For each SDK, in a process of its own, with the SDK's default options:

* ``track()`` cost on the caller's thread: median and p99 of ``perf_counter_ns`` around
  each of ``--events`` calls (a burst, the sender thread running meanwhile);
* delivery of that burst to a local sink: events that arrived (unique ids) and
  delivered events/s (arrived / time from the first call until ``flush()`` returned);
* events lost in the burst and through an outage: the sink stops listening for
  ``--outage`` seconds while the SDK tracks ``--rate`` events/s, then comes back;
* peak RSS of the process (``ru_maxrss``).

segment-analytics-python and posthog are installed only in a benchmark venv this script
creates (``bench/requirements-sdk.txt``; ``$REISE_BENCH_VENV``, default
``~/.cache/reise/bench-sdk-venv``); they are never dependencies of the SDK. All traffic
goes to 127.0.0.1. Speed is measured here only, never asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIREMENTS = HERE / "requirements-sdk.txt"
VENV = Path(os.environ.get("REISE_BENCH_VENV", Path.home() / ".cache" / "reise" / "bench-sdk-venv"))
SDKS = ("reise", "reise-stdlib-json", "segment", "posthog")
PROPS = {"sku": "A-1", "price": 9.99, "qty": 2}


# -- the sink: a local HTTP server that counts unique events ----------------------------------


class Sink:
    """Counts events posted to any path (Segment's /v1/batch, PostHog's /batch/, ours)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: set[str] = set()
        self.received = 0
        self.requests = 0
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None
        self.conns: set[socket.socket] = set()

    def up(self) -> None:
        """Listen on the data port (the same one after a ``down``)."""
        sink = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

            def process_request(self, request: Any, client_address: Any) -> None:
                with sink.lock:
                    sink.conns.add(request)
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", self.port), _sink_handler(self))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def down(self) -> None:
        """Stop listening and cut open connections."""
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self.lock:
            conns, self.conns = self.conns, set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def add(self, body: bytes) -> int:
        """Record the events of one request body; return how many it held."""
        doc = _loads(body)
        batch = doc.get("batch") if isinstance(doc, dict) else None
        events = batch if isinstance(batch, list) else [doc] if isinstance(doc, dict) else []
        with self.lock:
            self.requests += 1
            for ev in events:
                if isinstance(ev, dict):
                    mid = ev.get("messageId") or ev.get("uuid")
                    self.received += 1
                    if isinstance(mid, str):
                        self.ids.add(mid)
        return len(events)


def _loads(body: bytes) -> Any:
    try:
        import orjson

        return orjson.loads(body)
    except ImportError:
        return json.loads(body)


def _sink_handler(sink: Sink) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(b"{}")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            n = sink.add(raw)
            self._reply(b'{"success":true,"status":1,"accepted":%d,"rejected":[]}' % n)

    return Handler


def run_sink() -> None:
    """Sink process: data port plus a control port (POST /down, /up, /reset; GET /stats)."""
    sink = Sink()
    sink.up()

    class Control(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with sink.lock:
                self._reply({"unique": len(sink.ids), "received": sink.received,
                             "requests": sink.requests})

        def do_POST(self) -> None:
            if self.path == "/down":
                sink.down()
            elif self.path == "/up":
                sink.up()
            elif self.path == "/reset":
                with sink.lock:
                    sink.ids, sink.received, sink.requests = set(), 0, 0
            self._reply({"ok": True})

    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)
    print(f"ready {sink.port} {control.server_address[1]}", flush=True)
    control.serve_forever()


# -- workers: one process per SDK and scenario ----------------------------------------------


class Adapter:
    """The three SDKs behind one face: ``call()``, ``flush()``, ``close()``."""

    call: Callable[[], object]
    flush: Callable[[], object]
    close: Callable[[], object]

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        if name.startswith("reise"):
            sys.path.insert(0, str(ROOT / "sdk"))
            import reise

            self.client: Any = reise.Client("wk_bench", url)
            c = self.client
            self.call = lambda: c.track("user-123", "Product Viewed", PROPS)
            self.flush = lambda: c.flush(None)
            self.close = lambda: c.shutdown(5)
        elif name == "segment":
            from segment.analytics import Client

            self.client = Client("wk_bench", host=url)
            c = self.client
            self.call = lambda: c.track(user_id="user-123", event="Product Viewed", properties=PROPS)
            self.flush = c.flush
            self.close = c.shutdown
        elif name == "posthog":
            from posthog import Posthog

            self.client = Posthog("phc_bench", host=url)
            c = self.client
            self.call = lambda: c.capture("Product Viewed", distinct_id="user-123", properties=PROPS)
            self.flush = c.flush
            self.close = c.shutdown
        else:
            raise SystemExit(f"unknown sdk {name}")


def run_worker(sdk: str, scenario: str, url: str, events: int, rate: float, seconds: float) -> None:
    """Run one scenario and print one JSON line of figures."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ad = Adapter(sdk, url)
    call = ad.call
    pc = time.perf_counter_ns
    out: dict[str, Any] = {"sdk": sdk, "scenario": scenario}
    if scenario == "burst":
        lat = [0] * events
        t0 = time.perf_counter()
        for i in range(events):
            t = pc()
            call()
            lat[i] = pc() - t
        t_calls = time.perf_counter() - t0
        ad.flush()
        t_done = time.perf_counter() - t0
        lat.sort()
        out.update(sent=events, median_us=lat[events // 2] / 1000, p99_us=lat[int(events * 0.99)] / 1000,
                   calls_s=t_calls, flushed_s=t_done)
    else:  # steady rate through an outage the parent causes
        print("go", flush=True)
        sent = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                call()
                sent += 1
            time.sleep(0.001)
        ad.flush()
        out.update(sent=sent, flushed_s=time.perf_counter() - t0)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rss_before_mb"] = rss_before / 1024
    with contextlib.suppress(Exception):
        ad.close()
    print(json.dumps(out), flush=True)
    os._exit(0)  # do not wait for SDK threads stuck in retries: the figures are out


# -- the driver -------------------------------------------------------------------------------


def ensure_venv() -> Path:
    """Create the benchmark venv with the competitors installed; return its python."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import segment.analytics, posthog"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"creating benchmark venv {VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    return py


def control(port: int, path: str) -> dict[str, Any]:
    """Talk to the sink's control port."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=b"" if path != "/stats" else None,
                                 method="POST" if path != "/stats" else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def worker(py: Path, sdk: str, scenario: str, url: str, args: argparse.Namespace,
           seconds: float = 0.0) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("REISE_NO_ORJSON", None)
    if sdk == "reise-stdlib-json":
        env["REISE_NO_ORJSON"] = "1"
    cmd = [str(py), str(Path(__file__).resolve()), "worker", sdk, scenario, url,
           str(args.events), str(args.rate), str(seconds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def last_json(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--outage", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s in the outage scenario")
    ap.add_argument("--sdks", default=",".join(SDKS))
    args = ap.parse_args()
    py = ensure_venv()
    sink = subprocess.Popen([str(py), str(Path(__file__).resolve()), "sink"], stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout is not None
    _, data_port, ctl_port = sink.stdout.readline().split()
    url = f"http://127.0.0.1:{data_port}"
    rows: dict[str, dict[str, Any]] = {}
    try:
        for sdk in args.sdks.split(","):
            control(int(ctl_port), "/reset")
            r = last_json(worker(py, sdk, "burst", url, args), timeout=900)
            got = control(int(ctl_port), "/stats")
            r["burst_lost"] = r["sent"] - got["unique"]
            r["delivered_per_s"] = got["unique"] / r["flushed_s"]
            control(int(ctl_port), "/reset")
            lead = 2.0
            proc = worker(py, sdk, "outage", url, args, seconds=lead * 2 + args.outage)
            assert proc.stdout is not None
            proc.stdout.readline()  # "go"
            time.sleep(lead)
            control(int(ctl_port), "/down")
            time.sleep(args.outage)
            control(int(ctl_port), "/up")
            o = last_json(proc, timeout=900)
            got = control(int(ctl_port), "/stats")
            r["outage_sent"] = o["sent"]
            r["outage_lost"] = o["sent"] - got["unique"]
            r["rss_mb"] = max(r["rss_mb"], o["rss_mb"])
            rows[sdk] = r
            print(f"  {sdk}: done", file=sys.stderr)
    finally:
        sink.terminate()
    report(rows, args)


def report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    print(f"\nSDK benchmark: {args.events} track() calls in a burst, then {args.outage:.0f} s outage "
          f"at {args.rate:.0f} events/s; local sink on 127.0.0.1; {os.cpu_count()} cores\n")
    head = (f"{'sdk':<18} {'median us':>10} {'p99 us':>8} {'delivered/s':>12} {'burst lost':>11} "
            f"{'outage lost':>16} {'peak RSS MB':>12}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(f"{name:<18} {r['median_us']:>10.2f} {r['p99_us']:>8.1f} {r['delivered_per_s']:>12,.0f} "
              f"{r['burst_lost']:>11,} {r['outage_lost']:>7,} of {r['outage_sent']:<6,} {r['rss_mb']:>12.0f}")
    ours = rows.get("reise")
    if ours is not None:
        print("\nratios (theirs / ours; for delivered/s ours / theirs):")
        for name in ("segment", "posthog"):
            other = rows.get(name)
            if other is not None:
                r = other
                print(f"  {name:<8} track median x{r['median_us'] / ours['median_us']:.1f}, "
                      f"p99 x{r['p99_us'] / ours['p99_us']:.1f}, "
                      f"delivered/s x{ours['delivered_per_s'] / max(r['delivered_per_s'], 1):.1f}, "
                      f"peak RSS x{r['rss_mb'] / ours['rss_mb']:.2f}")
        print("\ntargets: median <= 8 us, >= 50k events/s delivered, 0 lost in burst and outage: "
              + ("met" if ours["median_us"] <= 8 and ours["delivered_per_s"] >= 50_000
                 and ours["burst_lost"] == 0 and ours["outage_lost"] == 0 else "NOT met"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sink":
        run_sink()
    elif len(sys.argv) > 1 and sys.argv[1] == "worker":
        _, _, sdk, scenario, url, n, rate, secs = sys.argv
        run_worker(sdk, scenario, url, int(n), float(rate), float(secs))
    else:
        main()

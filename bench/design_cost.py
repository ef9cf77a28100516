"""What issue 11's journey design costs at ingest on this tree: end-to-end events/s, design on and off, back to back.

One command::

    .venv/bin/python bench/design_cost.py [--events 200000] [--rounds 6] [--warmup 1]

Each round runs this tree's collector three times over fresh chDB directories, in rotating order (each arm first,
second and last equally often: the rounds are a multiple of three), with the same events as bench/ingest.py: once as
it is (the per-customer state, ``customer_state_mv``, and the identity resolver in the writer), once with the design
before it (bench/old_design_serve.py: per-id ``journey_state_mv`` and ``identity_links_mv``, no resolver), and once
with that design keeping analytics' per-contact details per id (``--details``: issue 14 stores them in the
per-customer state; on the per-id design it would have stored them per id). Everything else (request path,
enrichment, spool, writer) is the same code, so the ratios price the design alone, free of the other issues'
per-event work that comparing two trees mixes in. It prints each run and both ratios over all events, with the
per-thread CPU. An uncounted warm-up round goes first: the first collector of a run starts with the engine's library
and the interpreter's modules out of the page cache (on 2026-11-30 it was the slowest run of all, 14.6k events/s
against 17.4-20.9k for the same arm later, and with four rounds the design arm went first twice).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from ingest import _end_to_end, _Phase, generate_bodies

BEFORE = ("bench/old_design_serve.py",)
BEFORE_DETAILS = ("bench/old_design_serve.py", "--details")
DESIGN = ("-m", "collector")
ARMS = (("design", DESIGN), ("before", BEFORE), ("details", BEFORE_DETAILS))


def _cpu_line(phase: _Phase, events: int) -> str:
    """Collector CPU per event, all threads and the largest kinds."""
    threads = sorted(phase.threads.items(), key=lambda kv: -kv[1])[:4]
    parts = ", ".join(f"{name} {cpu / events * 1e6:.1f}" for name, cpu in threads)
    total = f"{phase.collector_cpu / events * 1e6:.1f}" if phase.collector_cpu is not None else "-"
    return f"CPU {total} us/event ({parts})"


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(prog="bench/design_cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run (default 200000)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="rounds of one run per arm, rotating the order (a multiple of 3: each arm as often first)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds before the counted ones (default 1)")
    parser.add_argument("--batch", type=int, default=100, help="events per /v1/batch request")
    parser.add_argument("--connections", type=int, default=8, help="concurrent senders")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait until all rows are visible")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated events")
    args = parser.parse_args()
    if args.rounds % len(ARMS):
        parser.error(f"--rounds must be a multiple of {len(ARMS)}, so that each arm goes first as often")
    args.url, args.collector_root = None, None  # what _end_to_end reads besides these
    bodies = generate_bodies(args.events, args.batch, run_id=f"design-{uuid.uuid4().hex[:12]}", seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="reise-design-"))
    seconds: dict[str, list[float]] = {name: [] for name, _ in ARMS}  # each counted run's end-to-end seconds
    failed = False
    try:
        for round_ in range(-args.warmup, args.rounds):
            shift = round_ % len(ARMS)  # each arm goes first, second and last in turn
            for name, entry in ARMS[shift:] + ARMS[:shift]:
                phase = _end_to_end(args, bodies, work / f"{name}-{round_}", {"REISE_SPOOL": "disk"}, entry)
                failed |= bool(phase.sent.errors) or phase.sent.accepted != args.events
                if round_ >= 0:  # a warm-up round is printed, not counted
                    seconds[name].append(phase.end_to_end_seconds)
                label = f"round {round_ + 1}" if round_ >= 0 else "warm-up"
                print(f"{label:<8} {name:<7} {args.events / phase.end_to_end_seconds:>9,.0f} events/s  "
                      f"{_cpu_line(phase, args.events)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = args.events * args.rounds
    rate = {name: total / sum(spent) for name, spent in seconds.items()}
    print(f"over all runs: design {rate['design']:,.0f} events/s, before {rate['before']:,.0f}, "
          f"before with analytics' details {rate['details']:,.0f}; ratio design / before "
          f"{rate['design'] / rate['before']:.3f}, design / before with details {rate['design'] / rate['details']:.3f} "
          "(issue 11 asks >= 0.9)")
    for baseline in ("before", "details"):
        print(f"per round, design / {baseline}: {_spread(seconds['design'], seconds[baseline])}")
    if failed:
        sys.exit("a run lost or refused events")


def _spread(design: list[float], baseline: list[float]) -> str:
    """The rate ratios of each round's two runs (seconds per run; the runs of a round follow each other, so a slower
    spell of the machine weighs on both): their median and range, which show how far one round can be trusted."""
    ratios = sorted(b / d for d, b in zip(design, baseline, strict=True))
    return f"median {statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f} over {len(ratios)} rounds"


if __name__ == "__main__":
    main()

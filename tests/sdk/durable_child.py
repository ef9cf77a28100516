"""A process that tracks events in durable mode and says which ones ``track()`` accepted.

Run as ``python durable_child.py URL WRITE_KEY SPOOL RUN_TAG COUNT``; prints the index of
each event after ``track()`` returned, then waits to be killed (or flushes with --finish).
Used by the SIGKILL test: once an index is printed, the event must reach the store.
"""

from __future__ import annotations

import sys
import time

import reise


def main() -> None:
    url, key, spool, tag, count = sys.argv[1:6]
    finish = "--finish" in sys.argv
    client = reise.Client(key, url, spool_path=spool, flush_interval=0.05, batch_size=50,
                          backoff_base=0.05, max_backoff=0.3, timeout=2.0)
    for i in range(int(count)):
        client.track(f"durable-{tag}", "Durable Event", {"run": tag, "i": i}, channel="pos")
        print(i, flush=True)
        if i % 10 == 0:
            time.sleep(0.002)  # let the sender deliver part of the stream meanwhile
    if finish:
        ok = client.flush(60)
        client.shutdown(5)
        sys.exit(0 if ok else 3)
    time.sleep(600)  # wait for SIGKILL


if __name__ == "__main__":
    main()

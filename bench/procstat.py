"""CPU time of a process's threads from /proc, for the benches that print a collector's CPU per kind of thread."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["thread_cpu_seconds"]


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user and system) so far per kind of thread; {} without /proc.

    The main thread counts as "event loop"; other threads under their name with a trailing number dropped, so a
    pool's threads add up. Python 3.11 does not name its threads for the OS: the writer, spool and reader threads
    (where chDB runs an insert's parsing and its views) count under the interpreter's name, chDB's pools under theirs.
    """
    seconds: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return seconds
    for task in tasks:
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = "event loop" if task.name == str(pid) else comm.rstrip("0123456789").rstrip("_-") or comm
        seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seconds

"""Isolating the rows the store refuses: a refused insert is split in halves, and the halves retried, until
only the bad rows are left (about two inserts per halving for each bad row: 28 for one among 10,000).

Exactly once: every part is inserted with a token of its own derived from the body's token and its row range
(``part_token``), and a part is recorded in a journal before it is split. A collector that crashes mid-way
replays the same walk: parts already split are not tried whole again, parts already inserted are
deduplicated by their token, so no row is stored twice.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_REFUSALS", "Journal", "Journals", "Parked", "isolate", "part_token"]

MAX_REFUSALS = 2_000  # refused inserts spent on one body; past it the parts still refused are parked whole

Attempt = Callable[[bytes, str], Awaitable[str | None]]  # insert a body with a token: None, or the refusal


def part_token(token: str, start: int, end: int) -> str:
    """The insert_deduplication_token of rows ``start:end`` of a body inserted under ``token``."""
    return f"{token}:rows-{start}-{end}"


@dataclass(frozen=True)
class Parked:
    """A row the store refused, with the store's reason."""

    index: int
    line: bytes
    reason: str


class Journal:
    """The row ranges of one body already split, in a file beside the spool (or in memory without one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._split: set[tuple[int, int]] = set()
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    self._split.add((int(parts[0]), int(parts[1])))

    @property
    def empty(self) -> bool:
        """True while no range of the body was split (the common case: its whole insert is tried first)."""
        return not self._split

    def is_split(self, start: int, end: int) -> bool:
        """True when rows ``start:end`` were split before (they must not be tried whole again)."""
        return (start, end) in self._split

    def split(self, start: int, end: int) -> None:
        """Record, durably, that rows ``start:end`` are split (before either half is tried)."""
        if (start, end) in self._split:
            return
        self._split.add((start, end))
        if self.path is not None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, f"{start} {end}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)


class Journals:
    """The journals of the bodies being isolated, one per insert token, in the spool's directory."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._open: dict[str, Journal] = {}

    def of(self, token: str) -> Journal:
        """The journal of the body inserted under ``token`` (read back after a crash)."""
        journal = self._open.get(token)
        if journal is None:
            path = self._directory / f"{token}.bisect" if self._directory is not None else None
            journal = self._open[token] = Journal(path)
        return journal

    def remove(self, prefix: str) -> None:
        """Forget the journals of tokens starting with ``prefix`` (a segment's, once it is stored)."""
        for token in [t for t in self._open if t.startswith(prefix)]:
            del self._open[token]
        if self._directory is not None:
            for path in self._directory.glob(f"{prefix}*.bisect"):
                path.unlink(missing_ok=True)


async def isolate(header: bytes, lines: Sequence[bytes], token: str, attempt: Attempt, journal: Journal,
                  refusal: str | None) -> list[Parked]:
    """Insert every row the store accepts and return those it refuses, each with the store's reason.

    ``header`` is the column-names line, ``lines`` the rows of a body whose whole insert under ``token`` was
    refused with ``refusal`` (None when a journal says it was split before a crash).
    """
    parked: list[Parked] = []
    refusals = 0

    async def walk(start: int, end: int, error: str | None) -> None:
        nonlocal refusals
        already_split = journal.is_split(start, end)
        if error is None and not already_split:
            error = await attempt(header + b"".join(line + b"\n" for line in lines[start:end]),
                                  part_token(token, start, end))
            if error is None:
                return
            refusals += 1
        reason = error or "refused before a restart"
        if end - start == 1:
            parked.append(Parked(start, lines[start], reason))
            return
        if refusals >= MAX_REFUSALS and not already_split:
            parked.extend(Parked(i, lines[i], f"{reason} (not isolated: over {MAX_REFUSALS} refused inserts)")
                          for i in range(start, end))
            return
        journal.split(start, end)
        middle = (start + end) // 2
        await walk(start, middle, None)
        await walk(middle, end, None)

    if lines:
        await walk(0, len(lines), refusal)
    return parked

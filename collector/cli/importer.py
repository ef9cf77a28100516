"""``reise import``: touchpoints from JSON Lines or CSV files, posted to the collector's /v1/import in batches.

Every row goes through the collector's own validation, deduplication and views. Rows without a messageId get
one derived from their content, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from collector.errors import ReiseError
from collector.limits import MAX_BATCH_BYTES

__all__ = ["ImportSummary", "content_message_id", "import_file", "read_rows"]

BATCH_EVENTS = 500
BATCH_BYTES = MAX_BATCH_BYTES - 100 * 1024  # under the collector's batch limit, with room for the envelope
MAX_RETRIES = 8
# CSV columns that are event fields; ``properties.x``, ``traits.x`` and ``context.x`` nest; others are properties.
_CSV_FIELDS = frozenset({
    "type", "event", "name", "messageId", "userId", "customer_id", "anonymousId", "previousId", "timestamp",
    "channel", "stage", "campaign", "revenue", "currency", "order_id", "store_id",
})  # fmt: skip
_NESTED = ("properties", "traits", "context")


@dataclass
class ImportSummary:
    """What an import did: rows loaded, duplicates skipped, rows rejected with their reasons."""

    rows: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def reasons(self) -> Counter[str]:
        """Rejections counted by reason."""
        return Counter(reason for _, reason in self.rejected)

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready object."""
        return {"rows": self.rows, "loaded": self.loaded, "duplicates": self.duplicates,
                "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected]}


def content_message_id(event: dict[str, Any]) -> str:
    """A deterministic messageId from an event's content (keys sorted), for rows that carry none."""
    digest = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"imp-{digest[:40]}"


def _csv_event(row: dict[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for column, value in row.items():
        if column is None or value is None or value == "":
            continue
        head, dot, rest = column.partition(".")
        if dot and head in _NESTED and rest:
            event.setdefault(head, {})[rest] = value
        elif column in _CSV_FIELDS:
            event[column] = value
        else:
            event.setdefault("properties", {})[column] = value
    return event


def read_rows(handle: IO[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, event or None, problem) for each row of a JSON Lines or CSV stream."""
    if fmt == "csv":
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, _csv_event(row), ""
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"invalid JSON: {exc}"
            continue
        if not isinstance(event, dict):
            yield number, None, "expected a JSON object"
            continue
        yield number, event, ""


def _prepare(event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("type", "track")
    if not event.get("messageId"):
        event["messageId"] = content_message_id(event)
    return event


class _Poster:
    """Posts batches to /v1/import with the write key; retries while the collector is busy."""

    def __init__(self, url: str, write_key: str) -> None:
        self.url = url.rstrip("/") + "/v1/import"
        self.auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()

    def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        body = orjson.dumps({"batch": events})
        delay = 0.5
        for _attempt in range(MAX_RETRIES):
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Authorization": self.auth})
            try:
                with urllib.request.urlopen(request, timeout=120) as reply:
                    answer: dict[str, Any] = orjson.loads(reply.read())
                    return answer
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code == 401:
                    raise ReiseError("the collector refused the write key (set REISE_WRITE_KEY or --write-key)") \
                        from None
                if exc.code not in (429, 502, 503, 504):
                    raise ReiseError(f"the collector answered {exc.code}: {detail}") from None
                delay = float(exc.headers.get("Retry-After") or delay)
            except OSError as exc:
                raise ReiseError(f"cannot reach the collector at {self.url}: {exc}") from None
            time.sleep(min(delay, 30))
            delay *= 2
        raise ReiseError("the collector stayed busy; import stopped (run it again: done rows are not repeated)")


def _progress(done: int, total: int, rows: int, out: IO[str]) -> None:
    width = 30
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {100 * done // max(total, 1):3d}%  {rows:,} rows")
    out.flush()


def import_file(path: Path, *, url: str, write_key: str, fmt: str | None = None,
                batch_events: int = BATCH_EVENTS, progress: IO[str] | None = None) -> ImportSummary:
    """Import one file into the collector at ``url``; returns the summary."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    total = path.stat().st_size
    poster, summary = _Poster(url, write_key), ImportSummary()
    batch: list[dict[str, Any]] = []
    lines: list[int] = []
    size = 0
    raw = path.open("rb")
    handle = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="" if fmt == "csv" else None)

    def send() -> None:
        nonlocal batch, lines, size
        if not batch:
            return
        answer = poster.post(batch)
        summary.duplicates += int(answer.get("duplicates", 0))
        summary.loaded += int(answer.get("accepted", 0))
        for rejected in answer.get("rejected", []):
            summary.rejected.append((lines[int(rejected["index"])], str(rejected["reason"])))
        batch, lines, size = [], [], 0
        if progress is not None:
            _progress(raw.tell(), total, summary.rows, progress)

    try:
        for number, event, problem in read_rows(handle, fmt):
            summary.rows += 1
            if event is None:
                summary.rejected.append((number, problem))
                continue
            encoded = len(orjson.dumps(event)) + 64
            if batch and (len(batch) >= batch_events or size + encoded > BATCH_BYTES):
                send()
            batch.append(_prepare(event))
            lines.append(number)
            size += encoded
        send()
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReiseError(f"{path}: cannot read as {fmt}: {exc}") from None
    finally:
        handle.close()
        if progress is not None:
            _progress(total, total, summary.rows, progress)
            progress.write("\n")
    summary.rejected.sort()
    return summary


def print_summary(path: Path, summary: ImportSummary, out: IO[str] = sys.stdout) -> None:
    """The summary as text: counts, then rejections grouped by reason with their first lines."""
    out.write(f"reise: imported {path}: {summary.rows} rows, {summary.loaded} loaded, "
              f"{summary.duplicates} duplicates skipped, {len(summary.rejected)} rejected\n")
    for reason, count in summary.reasons().most_common():
        first = [str(line) for line, r in summary.rejected if r == reason][:5]
        out.write(f"  {count} x {reason} (line {', '.join(first)}{', ...' if count > 5 else ''})\n")

"""For the state-rows tests: the views as earlier migrations define them, and customers written as several rows.

Each insert of touchpoints adds a state row per key (with merges stopped they stay apart), and the links then move
the linked ids' rows to their customers' keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from collector.identity.resolver import Link, resolve_links
from collector.store.clickhouse import Store
from collector.store.migrate import load_migrations

__all__ = ["previous_views", "write_state_rows"]

_INSERT = """
INSERT INTO touchpoints (message_id, type, event, journey_id, customer_id, anonymous_id, channel, stage, stage_rank,
                         timestamp, original_timestamp, received_at, revenue, campaign)
VALUES
"""
# a touchpoint: (message id, journey id, channel, stage rank, time, revenue, campaign)
Touchpoint = tuple[str, str, str, int, str, float, str]

_CREATE_VIEW = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)


def previous_views(before: int, names: tuple[str, ...]) -> list[str]:
    """CREATE statements of ``names`` as the migrations before version ``before`` leave them, each renamed prev_*
    (also where one reads another)."""
    references = re.compile(r"\b(" + "|".join(names) + r")\b")
    latest: dict[str, str] = {}
    for migration in load_migrations():
        if migration.version >= before:
            continue
        for statement in migration.statements:
            view = _CREATE_VIEW.match(statement)
            if view and view.group(1) in names:
                body = references.sub(lambda m: f"prev_{m.group(1)}", statement[view.end():])
                latest[view.group(1)] = f"CREATE OR REPLACE VIEW prev_{view.group(1)}{body}"
    assert set(latest) == set(names)
    return list(latest.values())


def write_state_rows(store: Store, batches: Sequence[Sequence[Touchpoint]], links: Sequence[tuple[str, str, str]],
                     token: str) -> None:
    """Insert each batch of touchpoints (one insert each: a state row per key), then resolve the links
    (anonymous id, customer id, time) in one segment under ``token``."""
    for batch in batches:
        store.command(_INSERT + ",".join(
            f"('{m}', 'track', 'e', '{j}', '', '{j}', '{ch}', '', {rank}, '{at}', '{at}', '{at}', {revenue},"
            f" '{campaign}')" for m, j, ch, rank, at, revenue, campaign in batch))
    resolve_links(store, [Link(linked_at=datetime.fromisoformat(at).timestamp(), message_id=f"{token}-link-{n}",
                               anonymous_id=anonymous, customer_id=customer, source="test")
                          for n, (anonymous, customer, at) in enumerate(links)], token, max_ids=100)

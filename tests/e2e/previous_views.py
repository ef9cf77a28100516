"""Views as the migrations before a version define them, renamed ``prev_*``, to run beside the current ones."""

from __future__ import annotations

import re

from collector.store.migrate import load_migrations

__all__ = ["previous_views"]

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

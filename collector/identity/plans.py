"""A segment's identity plan kept beside the spool, so a replay after a crash writes the plan it had begun.

A plan (``resolver.plan_links``) reads the keys and members of the links' ids; its writes change what a new plan
would read (the members are written before the map). A process that crashed between two of those writes must
not plan again: it would read the moved key's members as gone and leave ids of earlier hops on a hidden key. So
a plan with writes is saved (fsynced, renamed into place) before its first write and read back on the replay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from collector.identity.resolver import Link, Resolution, plan_links
from collector.store.clickhouse import Store

__all__ = ["Plans", "planned"]

_SUFFIX = ".plan"


def _link(fields: list[Any]) -> Link:
    return Link(float(fields[0]), str(fields[1]), str(fields[2]), str(fields[3]), str(fields[4]))


def encode_plan(plan: Resolution) -> bytes:
    """A plan as JSON (links as their five fields)."""
    def fields(link: Link) -> list[Any]:
        return [link.linked_at, link.message_id, link.anonymous_id, link.customer_id, link.source]
    return orjson.dumps({"moves": plan.moves, "mapped": plan.mapped, "previous": plan.previous,
                         "version": plan.version, "accepted": [fields(link) for link in plan.accepted],
                         "refused": [[fields(link), reason] for link, reason in plan.refused]})


def decode_plan(data: bytes) -> Resolution:
    """The plan ``encode_plan`` wrote."""
    raw = orjson.loads(data)
    return Resolution(moves=raw["moves"], mapped=raw["mapped"], previous=raw["previous"], version=raw["version"],
                      accepted=[_link(f) for f in raw["accepted"]],
                      refused=[(_link(f), str(reason)) for f, reason in raw["refused"]])


class Plans:
    """The saved plans of the segments being resolved, one file per token in the spool's directory."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory  # None: an in-memory spool, which no crash outlives

    def _path(self, token: str) -> Path | None:
        return self._directory / f"{token}{_SUFFIX}" if self._directory is not None else None

    def load(self, token: str) -> Resolution | None:
        """The plan saved under ``token`` by this or a previous process, or None."""
        path = self._path(token)
        if path is None or not path.exists():
            return None
        return decode_plan(path.read_bytes())

    def save(self, token: str, plan: Resolution) -> None:
        """Save a plan durably: written beside, fsynced, then renamed into place (never read half written)."""
        path = self._path(token)
        if path is None:
            return
        scratch = path.with_name(path.name + ".tmp")  # removed with the plan, should a crash leave it
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, encode_plan(plan))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(scratch, path)

    def remove(self, prefix: str) -> None:
        """Delete the plans of tokens starting with ``prefix`` (a segment's, before the segment is removed)."""
        if self._directory is not None:
            for path in self._directory.glob(f"{prefix}*{_SUFFIX}*"):
                path.unlink(missing_ok=True)


def planned(store: Store, plans: Plans, links: list[Link], token: str, *, max_ids: int) -> Resolution:
    """The plan of a segment's links: the one saved before a crash, else a new one, saved before any write.

    Blocking (the writer thread). A plan that maps no id writes the accepted links alone (under their token), and
    planning again reads the same: it is not saved.
    """
    plan = plans.load(token)
    if plan is None:
        plan = plan_links(store, links, max_ids=max_ids)
        if plan.mapped:
            plans.save(token, plan)
    return plan

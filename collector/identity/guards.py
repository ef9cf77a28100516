"""The identity guards: ids that never link, and the cap on ids per customer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.store.schema import TOUCHPOINT_COLUMNS

__all__ = ["DEFAULT_MAX_IDS", "DEFAULT_NEVER_LINK", "DEFAULT_POLICY", "LinkPolicy"]

# Placeholders that tills, tag managers and templates send for "no id": linking through them would merge
# strangers. Compared after stripping and lower-casing.
DEFAULT_NEVER_LINK = frozenset({
    "", "0", "-1", "-", "--", "null", "nil", "none", "undefined", "nan", "n/a", "na", "anonymous", "anon",
    "guest", "unknown", "unidentified", "user", "customer", "default", "test", "false", "true", "[object object]",
    "00000000-0000-0000-0000-000000000000",
})  # fmt: skip
DEFAULT_MAX_IDS = 100

_ANONYMOUS = TOUCHPOINT_COLUMNS.index("anonymous_id")
_CUSTOMER = TOUCHPOINT_COLUMNS.index("customer_id")
_TIMESTAMP = TOUCHPOINT_COLUMNS.index("timestamp")
_MESSAGE = TOUCHPOINT_COLUMNS.index("message_id")
_SOURCE = TOUCHPOINT_COLUMNS.index("source")


@dataclass(frozen=True)
class LinkPolicy:
    """Which ids may link, and how many ids one customer may gather (REISE_NEVER_LINK, REISE_MAX_IDS_PER_CUSTOMER)."""

    never_link: frozenset[str] = DEFAULT_NEVER_LINK
    max_ids: int = DEFAULT_MAX_IDS

    @classmethod
    def of(cls, never_link: Iterable[str], max_ids: int) -> LinkPolicy:
        """A policy from configured values (ids compared stripped and lower-cased)."""
        return cls(frozenset(i.strip().lower() for i in never_link) | {""}, max_ids)

    def usable(self, id_: str) -> bool:
        """True for an id that may key a journey and take part in links."""
        return id_.strip().lower() not in self.never_link

    def journey_id(self, customer_id: str, anonymous_id: str) -> str:
        """The id a touchpoint's journey is kept under: the first usable of customer id and anonymous id."""
        if self.usable(customer_id) or not self.usable(anonymous_id):
            return customer_id or anonymous_id
        return anonymous_id

    def links_in(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The links touchpoint rows carry (both ids usable and different), as LINK_COLUMNS rows."""
        return [(row[_ANONYMOUS], row[_CUSTOMER], row[_TIMESTAMP], row[_MESSAGE], row[_SOURCE])
                for row in rows
                if row[_ANONYMOUS] and row[_CUSTOMER] and row[_ANONYMOUS] != row[_CUSTOMER]
                and self.usable(row[_ANONYMOUS]) and self.usable(row[_CUSTOMER])]


DEFAULT_POLICY = LinkPolicy()

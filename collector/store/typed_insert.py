"""Inserts of encoded bodies that read LowCardinality columns as their plain type and convert whole blocks.

ClickHouse's text formats parse a LowCardinality value through a temporary column of its own, an allocation and a
dictionary insert for every value: with the touchpoints' 24 LowCardinality columns that was a third of an
insert's CPU. Read as ``String`` (``Map(String, String)``, ``Array(String)``) through ``file()`` (chDB) or
``input()`` (a server) and cast to the table's types once per block, the same rows cost about 5 us less each
(bench/README.md, ``ingest.py``). The rows stored are the same: the cast from a type to its LowCardinality
is exact, every other column is read with the table's own type (the same parser, the same errors), and the
statement lists only the columns the body names, so the table's defaults fill the rest as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["BODY_FORMAT", "TypedInsert", "plain_type", "sql_string", "typed_insert"]

BODY_FORMAT = "JSONCompactEachRowWithNames"
_WRAPPER = "LowCardinality("


def plain_type(type_: str) -> str:
    """A ClickHouse type with every LowCardinality wrapper taken off (``Map(LowCardinality(String), String)``
    becomes ``Map(String, String)``)."""
    while (start := type_.find(_WRAPPER)) >= 0:
        depth, end = 1, start + len(_WRAPPER)
        while depth:  # the wrapper's closing parenthesis (type names hold no quoted parentheses)
            depth += {"(": 1, ")": -1}.get(type_[end], 0)
            end += 1
        type_ = type_[:start] + type_[start + len(_WRAPPER) : end - 1] + type_[end:]
    return type_


def sql_string(text: str) -> str:
    """Text as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _setting(value: object) -> str:
    return str(value) if isinstance(value, int) else sql_string(str(value))


@dataclass(frozen=True)
class TypedInsert:
    """``INSERT INTO table (columns) SELECT columns FROM <the body, read with plain types>``."""

    table: str
    columns: tuple[str, ...]
    structure: str  # "name Type, ..." with plain types, as file() and input() take it

    def _head(self, settings: Mapping[str, object]) -> str:
        names = ", ".join(map(_identifier, self.columns))
        given = ", ".join(f"{name} = {_setting(value)}" for name, value in settings.items())
        return f"INSERT INTO {_identifier(self.table)} ({names}) SETTINGS {given} SELECT {names}"

    def from_file(self, path: str, settings: Mapping[str, object]) -> str:
        """The statement reading the body from a local file (chDB, which runs in this process)."""
        return (f"{self._head(settings)} FROM file({sql_string(path)}, {sql_string(BODY_FORMAT)}, "
                f"{sql_string(self.structure)})")

    def from_input(self, settings: Mapping[str, object]) -> str:
        """The statement reading the body sent with it (a server over HTTP)."""
        return f"{self._head(settings)} FROM input({sql_string(self.structure)}) FORMAT {BODY_FORMAT}"


def typed_insert(table: str, names: Sequence[str], types: Mapping[str, str]) -> TypedInsert | None:
    """The typed insert of a body naming these columns; None when one is not a column of the table (the body
    then goes in as it is, and the engine decides) or when no column is LowCardinality (nothing to gain)."""
    if not names or any(not isinstance(name, str) or name not in types for name in names):
        return None
    if len(set(names)) != len(names) or not any(_WRAPPER in types[name] for name in names):
        return None
    structure = ", ".join(f"{_identifier(name)} {plain_type(types[name])}" for name in names)
    return TypedInsert(table, tuple(names), structure)

"""A pre-check of analyst SQL: exactly one statement (ClickHouse's readonly setting does the rest)."""

from __future__ import annotations

import re

from collector.errors import QueryRefused

__all__ = ["single_statement"]

# String literals, quoted identifiers and comments: whatever they contain is not a statement separator.
_OPAQUE = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`|--[^\n]*|\#[^\n]*|/\*.*?\*/""",
    re.DOTALL,
)


def single_statement(sql: str) -> str:
    """Return the statement without a trailing semicolon; refuse several statements."""
    code = _OPAQUE.sub(" ", sql)
    stripped = code.rstrip().rstrip(";")
    if ";" in stripped:
        raise QueryRefused("one statement at a time (found ';' between statements)")
    if not stripped.strip():
        raise QueryRefused("empty statement")
    return sql.rstrip().rstrip(";").rstrip() if code.rstrip().endswith(";") else sql

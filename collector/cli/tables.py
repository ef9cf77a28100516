"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["format_record", "format_table", "format_value"]

MAX_WIDTH = 60


def format_value(value: Any) -> str:
    """A readable cell: NULL for None, trimmed decimals, maps as k=v lists."""
    if value is None:
        return "NULL"
    if isinstance(value, float | Decimal):
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    text = str(value)
    return text if len(text) <= MAX_WIDTH else text[: MAX_WIDTH - 1] + "…"


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns and rows as an aligned text table, numbers right-aligned, with a row count."""
    cells = [[format_value(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(isinstance(r[i], int | float | Decimal) for r in rows) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(o.rstrip() for o in out)


def format_record(columns: Sequence[str], row: Sequence[Any]) -> str:
    """One row as ``name: value`` lines."""
    width = max(len(c) for c in columns)
    return "\n".join(f"{c.ljust(width)}  {format_value(v)}" for c, v in zip(columns, row, strict=True))

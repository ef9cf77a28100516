"""Stored times Python cannot represent: read them as integers and convert them without failing.

ClickHouse's ``DateTime64`` holds any 64-bit tick count, far beyond Python's years 1 to 9999, and a value
written straight into the store (or before ingest bounded times) can lie there. clickhouse-connect then fails
while converting the whole result. ``query_rows`` runs a query as usual and, only when that conversion
fails, again with every date and time column read as integers, which it converts itself: a time Python
cannot hold becomes None, so no stored value can make a read fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

__all__ = ["AS_INTEGERS", "convert_times", "query_rows"]

# Date, Date32, DateTime, DateTime64 (and inside Nullable, Array, SimpleAggregateFunction ...)
AS_INTEGERS = {"Date*": "int"}
_EPOCH = datetime(1970, 1, 1)  # naive UTC, as clickhouse-connect gives UTC times
_WRAPPERS = ("Nullable(", "LowCardinality(")
_STORED_AS = "SimpleAggregateFunction("  # a column read as stored (customer_journey's): its function, then its type

Converter = Callable[[Any], Any]


def _unwrap(type_name: str) -> str:
    while type_name.endswith(")"):
        if type_name.startswith(_WRAPPERS):
            type_name = type_name[type_name.index("(") + 1 : -1]
        elif type_name.startswith(_STORED_AS) and "," in type_name:
            type_name = type_name[len(_STORED_AS) : -1].split(",", 1)[1].strip()
        else:
            break
    return type_name


def _scaled(divisor: float, unit: str) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, int):
            return value
        try:
            return _EPOCH + timedelta(**{unit: value / divisor})
        except OverflowError:
            return None

    return convert


def _date(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    try:
        return (_EPOCH + timedelta(days=value)).date()
    except OverflowError:
        return None


def _converter(type_name: str) -> Converter | None:
    """How to turn one column's integers back into dates and times; None when it holds none (at the top)."""
    inner = _unwrap(type_name)
    if inner.startswith("Array(") and inner.endswith(")"):
        element = _converter(inner[6:-1])
        if element is None:
            return None
        return lambda values: [element(v) for v in values] if isinstance(values, list | tuple) else values
    if inner.startswith("DateTime64("):
        precision = inner[len("DateTime64(") :].split(",", 1)[0].rstrip(")").strip()
        return _scaled(10 ** int(precision) if precision.isdigit() else 1000, "seconds")
    if inner.startswith("DateTime"):
        return _scaled(1, "seconds")
    if inner in ("Date", "Date32"):
        return _date
    return None


def convert_times(types: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows read with AS_INTEGERS, their date and time columns (also in arrays) converted, None where unrepresentable.

    Tuples and maps keep their integers.
    """
    converters = [_converter(t) for t in types]
    if not any(converters):
        return [tuple(row) for row in rows]
    return [tuple(value if convert is None else convert(value) for convert, value in zip(converters, row,
                                                                                          strict=True))
            for row in rows]


def query_rows(client: Client, sql: str, *, parameters: Mapping[str, Any],
               settings: Mapping[str, Any] | None) -> tuple[list[str], list[str], Sequence[Sequence[Any]]]:
    """Column names, type names and rows of a query; times Python cannot hold come back as None."""
    try:
        result = client.query(sql, parameters=dict(parameters), settings=dict(settings) if settings else None)
        rows = result.result_rows
    except (ValueError, OverflowError):  # a stored time beyond Python's datetime (years 1 to 9999)
        result = client.query(sql, parameters=dict(parameters), settings=dict(settings) if settings else None,
                              query_formats=AS_INTEGERS)
        types = [t.name for t in result.column_types]
        return list(result.column_names), types, convert_times(types, result.result_rows)
    return list(result.column_names), [t.name for t in result.column_types], rows

"""The one decision on a ClickHouse failure: retry it, or refuse what was sent (like Vector's ClickHouse sink).

Writes (inserts, connects, migrations, the identity resolver's statements) are retried by default: only the
codes in ``BAD_ROW_CODES`` say "these rows are bad", and only those rows are parked as dead letters. An
authentication failure after a password rotation, a revoked grant, a table missing after a failed migration,
a full disk, a cancelled query or a code a future ClickHouse adds keeps the rows in the spool and retries.

Read-only queries (an analyst's SQL) are the other way round: the statement is refused with ClickHouse's
message unless the code says the store itself is unwell (``STORE_SIDE_CODES``) or the network failed, which
is answered "try again later".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Literal

from clickhouse_connect.driver.exceptions import OperationalError

__all__ = [
    "BAD_ROW_CODES",
    "STORE_SIDE_CODES",
    "Operation",
    "Verdict",
    "decide",
    "error_code",
    "first_line",
]

Operation = Literal["insert", "connect", "command", "query"]

# "These rows are bad": retrying the same rows cannot succeed. Parse and type errors of the input format,
# values out of range, and refusals that depend on a row's values (constraints, throwIf in a view).
BAD_ROW_CODES: Mapping[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    130: "CANNOT_READ_ARRAY_FROM_TEXT",
    131: "TOO_LARGE_STRING_SIZE",
    190: "SIZES_OF_ARRAYS_DONT_MATCH",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
    407: "DECIMAL_OVERFLOW",
    469: "VIOLATED_CONSTRAINT",
    691: "UNKNOWN_ELEMENT_OF_ENUM",
}

# For read-only queries: "the store is unwell, not the statement" (answered 503 with Retry-After).
STORE_SIDE_CODES: Mapping[int, str] = {
    3: "UNEXPECTED_END_OF_FILE",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    203: "NO_FREE_CONNECTION",
    236: "ABORTED",
    242: "TABLE_IS_READ_ONLY",
    243: "NOT_ENOUGH_SPACE",
    252: "TOO_MANY_PARTS",
    285: "TOO_FEW_LIVE_REPLICAS",
    319: "UNKNOWN_STATUS_OF_INSERT",
    394: "QUERY_WAS_CANCELLED",
    425: "SYSTEM_ERROR",
    516: "AUTHENTICATION_FAILED",
    999: "KEEPER_EXCEPTION",
    1002: "UNKNOWN_EXCEPTION",
}


class Verdict(enum.Enum):
    """What to do about a failed operation."""

    RETRY = "retry"  # keep the data, try again with backoff (and say so in /readyz, metrics and logs)
    BAD_ROWS = "bad rows"  # the rows sent are bad: isolate them and park them as dead letters
    REFUSED = "refused"  # a read-only query's statement is at fault: answer with ClickHouse's message


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of a failure (from the exception or its ``Code: N.`` text), None if none."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc)
    marker = text.find("Code: ")
    if marker >= 0:
        digits = text[marker + 6 :].split(".", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None


def decide(exc: BaseException, operation: Operation) -> Verdict:
    """Retry or refuse: the one decision for inserts, connects, statements and read-only queries."""
    if isinstance(exc, OperationalError):  # no answer from the server at all
        return Verdict.RETRY
    code = error_code(exc)
    if operation == "query":
        return Verdict.RETRY if code in STORE_SIDE_CODES else Verdict.REFUSED
    return Verdict.BAD_ROWS if code in BAD_ROW_CODES else Verdict.RETRY


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of a failure's message, at most ``limit`` characters (for reasons, logs and /readyz)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

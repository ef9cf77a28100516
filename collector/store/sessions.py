"""Dashboard sessions ended on the server (``ended_sessions``): written at logout and by the admin, read per request."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from collector.store.clickhouse import Store

__all__ = ["ALL", "end", "ended"]

ALL = "*"  # the nonce that ends every session issued before it
COLUMNS = ("key", "ended_at", "expires_at")  # key: the session's nonce, or ALL

ENDED_SQL = """
SELECT countIf(key = {nonce:String}) AS ended, toUnixTimestamp64Milli(maxIf(ended_at, key = '*')) AS all_ended
FROM ended_sessions
WHERE key IN ({nonce:String}, '*')
"""


def ended(store: Store, nonce: str, issued_ms: int) -> bool:
    """True when the session was ended (logout), or every session was ended once it was issued (blocking)."""
    row = store.query(ENDED_SQL, {"nonce": nonce}).rows[0]
    return bool(row[0]) or int(row[1] or 0) >= issued_ms


def end(store: Store, nonce: str, expires: float) -> None:
    """End one session (``nonce``) or, with ``ALL``, every session issued until now; ``expires`` bounds the row."""
    now = time.time()
    ended_at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    row = (nonce, ended_at, int(max(expires, now + 60)))
    store.insert_rows("ended_sessions", COLUMNS, [row], f"session-end-{secrets.token_hex(8)}")

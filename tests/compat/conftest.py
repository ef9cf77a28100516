"""A collector for the compatibility tests: real Segment and RudderStack clients, proxies, enrichment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import Collector, http

TRUSTED_PROXY = "127.0.0.1"  # the tests' own connections come from here; 127.0.0.2 stands for anyone else


@pytest.fixture(scope="session")
def compat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector that trusts 127.0.0.1 as a proxy (REISE_TRUSTED_PROXIES) and runs every enrichment."""
    env = {"REISE_TRUSTED_PROXIES": f"{TRUSTED_PROXY}/32", "REISE_MAIL_MACHINE_SECONDS": "5"}
    with Collector(data_dir=tmp_path_factory.mktemp("compat") / "data", extra_env=env) as instance:
        yield instance


def rows(collector: Collector, where: str, params: dict[str, Any], expected: int,
         columns: str = "*") -> list[dict[str, Any]]:
    """Wait until ``expected`` touchpoints match, then return them in time order."""
    count = collector.wait_for(f"SELECT count() FROM touchpoints WHERE {where}", expected, params)
    assert count == expected, (count, collector.log_tail())
    return collector.query(f"SELECT {columns} FROM touchpoints WHERE {where} ORDER BY timestamp, message_id", params)


def dead_letters(collector: Collector, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The dead letters matching ``where``, after the spool drained."""
    collector.wait_settled()
    return collector.query(f"SELECT * FROM dead_letters WHERE {where} ORDER BY batch_index", params)


def post_from(source: str, url: str, body: Any, *, key: str, headers: dict[str, str] | None = None) -> Any:
    """POST JSON from a given loopback source address (to stand for a client that is not a trusted proxy)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    from tests.helpers import basic

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("POST", parts.path, json.dumps(body).encode(),
                           {"Content-Type": "application/json", "Authorization": basic(key), **(headers or {})})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        connection.close()


__all__ = ["TRUSTED_PROXY", "dead_letters", "http", "post_from", "rows"]

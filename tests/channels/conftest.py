"""A collector with link keys and a link-domain allow-list, shared by the channel tests."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.helpers import Collector

LINK_KEY = "link-key-new-0123456789"
OLD_LINK_KEY = "link-key-old-0123456789"
PUBLIC_KEY = "pk_site"  # public, @web+email (tests/helpers.py)
TILL_KEY = "wk_till"  # secret, @pos


@pytest.fixture(scope="session")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A running collector that signs and checks links (two keys: rotation) to shop.example only."""
    with Collector(data_dir=tmp_path_factory.mktemp("channels") / "data", extra_env={
            "REISE_LINK_KEYS": f"{LINK_KEY},{OLD_LINK_KEY}", "REISE_LINK_DOMAINS": "shop.example"}) as instance:
        yield instance


@dataclass
class Raw:
    """One HTTP exchange without following redirects."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def get_raw(url: str, headers: dict[str, str] | None = None) -> Raw:
    """GET a URL on loopback and return the answer as it is (redirects are not followed)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        reply = conn.getresponse()
        return Raw(reply.status, reply.headers, reply.read())
    finally:
        conn.close()

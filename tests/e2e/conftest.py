"""Fixtures of the end-to-end journey tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.store.clickhouse import Store


@pytest.fixture
def merges_stopped(store: Store) -> Iterator[Store]:
    """The shared store with customer_state's merges stopped, started again afterwards."""
    store.command("SYSTEM STOP MERGES customer_state")
    try:
        yield store
    finally:
        store.command("SYSTEM START MERGES customer_state")

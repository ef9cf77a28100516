"""Shared fixtures: a real collector process over embedded chDB, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.clickhouse import Store
from collector.store.migrate import apply_migrations
from tests.helpers import RUNNING, Collector


@pytest.fixture(scope="session", autouse=True)
def no_collector_outlives_the_run() -> Iterator[None]:
    """Kill collectors a failed test left running, so none outlives the test run."""
    yield
    for process in list(RUNNING):
        process.kill()
        process.wait(30)


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A running collector shared by the tests (each test uses its own ids)."""
    with Collector(data_dir=tmp_path_factory.mktemp("collector") / "data") as instance:
        yield instance


@pytest.fixture
def fresh_collector(tmp_path: Path) -> Iterator[Collector]:
    """A collector of its own, for tests that stop, kill or reconfigure it."""
    with Collector(data_dir=tmp_path / "data") as instance:
        yield instance


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """An embedded store in this test process, migrated (chDB allows one data path per process)."""
    instance = Store(dsn=f"chdb://{tmp_path_factory.mktemp('store') / 'data'}")
    apply_migrations(instance)
    yield instance
    instance.close()

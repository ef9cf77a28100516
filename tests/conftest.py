"""Shared fixtures: a real collector process over embedded chDB, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Collector


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A running collector shared by the tests (each test uses its own ids)."""
    instance = Collector(data_dir=tmp_path_factory.mktemp("collector") / "data")
    instance.start()
    yield instance
    if instance.process is not None:
        instance.stop()


@pytest.fixture
def fresh_collector(tmp_path: Path) -> Iterator[Collector]:
    """A collector of its own, for tests that stop, kill or reconfigure it."""
    instance = Collector(data_dir=tmp_path / "data")
    instance.start()
    yield instance
    if instance.process is not None:
        instance.stop()

"""Fixtures: a loopback webhook receiver and a collector whose triggers send to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Collector
from tests.triggers.receiver import Receiver

SECRET = "whsec_test_0123456789abcdef"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a loopback port."""
    instance = Receiver().start()
    yield instance
    instance.stop()


def trigger_file(path: Path, receiver: Receiver, triggers: list[dict[str, Any]],
                 segments: list[dict[str, Any]] | None = None) -> Path:
    """Write a triggers file whose triggers POST to the receiver (``url`` is a path there)."""
    doc = {"triggers": [{"secret": SECRET, **t, "url": receiver.url + t.get("url", "/" + t["name"])}
                        for t in triggers], "segments": segments or []}
    path.write_text(json.dumps(doc))
    return path


def trigger_env(path: Path, **extra: str) -> dict[str, str]:
    """The collector's environment for a triggers file sending to loopback, with quick retries."""
    return {"REISE_TRIGGERS": str(path), "REISE_TRIGGER_HOSTS": "127.0.0.1", "REISE_TRIGGER_ALLOW_PRIVATE": "1",
            "REISE_TRIGGER_BACKOFF": "0.2", "REISE_TRIGGER_MAX_BACKOFF": "1", "REISE_TRIGGER_RATE": "0", **extra}


def started(tmp_path: Path, env: dict[str, str]) -> Collector:
    """A collector of its own with these settings, started."""
    collector = Collector(data_dir=tmp_path / "data", extra_env=env)
    collector.start()
    return collector

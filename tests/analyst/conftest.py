"""Fixtures for the analyst tests: a collector loaded with demo journeys, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.cli.demo_journeys import Journey, plan
from tests.helpers import ROOT, Collector

DEMO_CUSTOMERS = 300
DEMO_SEED = 7
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"


def run_cli(collector: Collector, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m collector ARGS`` against the collector, capturing its output."""
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=env or collector.env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def demo_plan() -> list[Journey]:
    """The journeys `reise demo` sends for the test's customer count and seed (timestamps aside)."""
    return plan(DEMO_CUSTOMERS, seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_collector(tmp_path_factory: pytest.TempPathFactory, demo_plan: list[Journey]) -> Iterator[Collector]:
    """A collector loaded by `reise demo` (the real CLI, the real SDK), with every event stored."""
    instance = Collector(data_dir=tmp_path_factory.mktemp("demo") / "data")
    instance.start()
    try:
        env = {**instance.env(), "REISE_WRITE_KEY": instance.write_key}
        done = run_cli(instance, "demo", "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED), env=env)
        assert done.returncode == 0, done.stderr + done.stdout
        expected = sum(len(j.events) for j in demo_plan)
        stored = instance.wait_for("SELECT count() FROM touchpoints WHERE startsWith(message_id, 'demo-')", expected)
        assert stored == expected, f"{stored} of {expected} demo events stored"
        instance.wait_settled()  # every segment written: its identity links, then its touchpoints
        assert f"sent {expected} events" in done.stdout and f"{expected} of them stored" in done.stdout
        yield instance
    finally:
        if instance.process is not None:
            instance.stop()


def _install_chromium() -> None:
    """Install Debian's chromium and chromium-driver (the test setup does this itself, as root)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("headless Chromium is needed: apt-get install chromium chromium-driver (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=env,
                   timeout=900)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The chromedriver path, with Chromium installed if it was missing."""
    _install_chromium()
    assert CHROMIUM.exists() and CHROMEDRIVER.exists()
    return CHROMEDRIVER


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep artefacts (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

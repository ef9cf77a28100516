"""The installable package: a wheel built from the repository works outside it (non-editable), and the
embedded engine is an extra that a server install does without, with a clear message when it is missing.

The wheel test builds with pip into a temporary directory, installs it with the ``embedded`` extra into a
fresh venv (pip's cache keeps this to a minute or two), and runs ``reise`` from another folder: the
migrations and static files must come from the installed package, never from the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.settings import EMBEDDED_EXTRA, ClientSettings, Settings
from collector.store.clickhouse import Store
from collector.store.migrate import load_migrations
from tests.helpers import ROOT, free_port


def test_every_package_of_the_tree_is_declared() -> None:
    """pyproject.toml lists the packages: a new folder under collector/ must be added there, or a wheel lacks it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = {".".join(path.relative_to(ROOT).parts) for path in (ROOT / "collector").rglob("*")
             if path.is_dir() and path.name != "__pycache__" and any(path.iterdir())}
    assert found | {"collector", "collector.migrations"} == declared
    assert config["package-dir"] == {"collector.migrations": "migrations"}


def test_a_chdb_dsn_without_the_embedded_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)  # as if chdb were not installed
    with pytest.raises(ConfigError, match=re.escape(EMBEDDED_EXTRA)):
        Settings.from_env({"REISE_DSN": "chdb:///tmp/reise-no-engine"})
    with pytest.raises(ConfigError, match=re.escape(EMBEDDED_EXTRA)):
        Store(dsn="chdb:///tmp/reise-no-engine")
    # a server DSN needs no engine; the client commands that never open the store do not ask for it
    Settings.from_env({"REISE_DSN": "http://localhost:8123/reise"})
    ClientSettings.from_env({"REISE_DSN": "chdb:///tmp/reise-no-engine"})


def test_the_cli_refuses_a_chdb_dsn_without_the_engine_in_one_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['chdb'] = None; from collector.cli.main import main; "
            "main(sys.argv[1:])")
    for command in (["migrate"], ["serve", "--port", str(free_port())]):
        result = subprocess.run([sys.executable, "-c", code, *command, "--dsn", f"chdb://{tmp_path}/data"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert EMBEDDED_EXTRA in result.stderr
        assert "Traceback" not in result.stderr


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={k: v for k, v in os.environ.items() if not k.startswith(("REISE_", "PYTHON"))})
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.read()


def test_a_wheel_installed_in_a_fresh_venv_migrates_and_serves(tmp_path: Path) -> None:
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, ROOT], cwd=elsewhere)
    (wheel,) = wheels.glob("reise_collector-*.whl")
    _run([sys.executable, "-m", "venv", venv], cwd=elsewhere)
    python, reise = venv / "bin" / "python", venv / "bin" / "reise"
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{wheel}[embedded]"],
         cwd=elsewhere)

    # every module imports from the installed copy, not from the repository
    every_module = ("import importlib, pkgutil, collector\n"
                    "for m in pkgutil.walk_packages(collector.__path__, 'collector.'):\n"
                    "    importlib.import_module(m.name)\n"
                    "print(collector.__file__)")
    located = _run([python, "-c", every_module], cwd=elsewhere)
    assert located.strip().startswith(str(venv)), located

    names = [m.name for m in load_migrations()]
    dsn = f"chdb://{tmp_path}/data"
    assert _run([reise, "migrate", "--dsn", dsn], cwd=elsewhere).strip() == f"reise: applied {', '.join(names)}"
    assert _run([reise, "migrate", "--dsn", dsn], cwd=elsewhere).strip() == "reise: migrations up to date"

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REISE_", "PYTHON"))}
    server = subprocess.Popen([reise, "serve", "--port", str(port), "--dsn", f"chdb://{tmp_path}/served"],
                              cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "reise serve did not get ready"
            time.sleep(0.25)
        status, script = _get(f"{base}/t.js")
        assert status == 200 and script == (ROOT / "collector" / "static" / "t.js").read_bytes()
        status, page = _get(f"{base}/dashboard")  # the sign-in page, from the package's static files
        assert status == 200 and b"<html" in page.lower()
        assert _get(f"{base}/dashboard/static/vendor/chart.umd.min.js")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=60)

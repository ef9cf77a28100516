"""Browser libraries in headless Chromium: npm packages installed into a cache directory, a shop page that loads
them from its own origin, and the browser. Skips, saying why, when npm or Chromium are missing or npm fails."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.helpers import free_port

CACHE = Path(tempfile.gettempdir()) / "reise-test-npm-browser"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PACKAGES = ("@snowplow/browser-tracker@4.10.1", "@segment/analytics-next@1.84.3", "@rudderstack/analytics-js@3.34.1")


def npm_packages() -> Path:
    """node_modules with the browser libraries (installed once, reused between runs)."""
    modules = CACHE / "node_modules"
    if all((modules / p.rsplit("@", 1)[0]).is_dir() for p in PACKAGES):
        return modules
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (Debian: apt-get install npm); the browser libraries cannot be fetched")
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(CACHE),
                               *PACKAGES], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install took more than 5 minutes (no registry?)")
    if done.returncode != 0:
        pytest.skip(f"npm install failed: {done.stderr[-400:]}")
    return modules


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile (skips when chromium or chromedriver is missing)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def shop_site(page: Callable[[str], str], modules: Path | None = None) -> Iterator[str]:
    """A shop on its own loopback origin: ``/node_modules/...`` from the cache (when given), any other path is
    ``page(path)``."""
    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if modules is not None and self.path.startswith("/node_modules/"):
                file = (modules / self.path.split("?")[0][len("/node_modules/"):]).resolve()
                if not file.is_relative_to(modules.resolve()) or not file.is_file():
                    self.send_error(404)
                    return
                body, kind = file.read_bytes(), "application/javascript"
            else:
                body, kind = page(self.path).encode(), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()

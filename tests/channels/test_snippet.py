"""The browser snippet in headless Chromium: page views and identify land with one anonymous id.

The test installs Debian's chromium and chromium-driver when they are missing (as CI does on a fresh
machine); it fails, never skips, when they cannot be installed.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.channels.conftest import PUBLIC_KEY, get_raw
from tests.helpers import Collector
from tests.sources.browser import shop_site

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def ensure_chromium() -> None:
    """Install chromium and chromium-driver with apt when they are missing."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    assert shutil.which("apt-get"), "chromium is missing and apt-get is not available to install it"
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"],
                   check=True, capture_output=True, timeout=900)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile."""
    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shop(channels: Collector) -> Iterator[str]:
    """A shop on another loopback origin whose pages load the collector's snippet."""
    def page(path: str) -> str:
        consent = ' data-consent="required"' if path.startswith("/consent") else ""
        return (f'<!doctype html><html><head><title>{path}</title>'
                f'<script async src="{channels.url}/t.js" data-key="{PUBLIC_KEY}"{consent}></script>'
                f'</head><body><a id="next" href="/shoes">shoes</a></body></html>')

    with shop_site(page) as url:
        yield url


def wait_loaded(driver: webdriver.Chrome, path: str = "") -> None:
    """Until the snippet has run on the current page (a condition, not a time)."""
    deadline = time.monotonic() + 30
    script = "return !!(window.reise && window.reise.loaded) && location.pathname.startsWith(arguments[0])"
    while not driver.execute_script(script, path):
        assert time.monotonic() < deadline, "the snippet did not load"
        time.sleep(0.05)


def test_the_snippet_is_small_and_cors_is_open(channels: Collector) -> None:
    reply = get_raw(f"{channels.url}/t.js")
    assert reply.status == 200 and len(reply.body) <= 4096
    assert reply.headers["Content-Type"].startswith("application/javascript")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    conn = http.client.HTTPConnection("127.0.0.1", channels.port, timeout=10)
    conn.request("OPTIONS", "/v1/batch", headers={"Origin": "http://shop.example", "Access-Control-Request-Method":
                                                  "POST", "Access-Control-Request-Headers": "content-type"})
    preflight = conn.getresponse()
    assert preflight.status == 204 and preflight.getheader("Access-Control-Allow-Origin") == "*"
    assert "content-type" in (preflight.getheader("Access-Control-Allow-Headers") or "").lower()
    conn.close()


def test_page_views_and_identify_land_with_one_anonymous_id(browser: webdriver.Chrome, shop: str,
                                                            channels: Collector) -> None:
    customer = f"web-{uuid.uuid4().hex[:10]}"
    browser.get(f"{shop}/?utm_source=ig&utm_medium=social&utm_campaign=reel-{customer}")
    wait_loaded(browser)
    browser.execute_script("document.getElementById('next').click()")  # a link: the referrer is the shop
    wait_loaded(browser, "/shoes")
    assert browser.execute_script("return reise.identify(arguments[0], {plan: 'gold'})", customer) is True
    assert browser.execute_script("return reise.track('Product Viewed', {sku: 'shoe-42'})") is True
    anon = browser.execute_script("return localStorage.getItem('reise_aid')")
    assert anon and f"reise_aid={anon}" in browser.execute_script("return document.cookie")
    channels.wait_for("SELECT count() FROM touchpoints WHERE anonymous_id = {a:String}", 4, {"a": anon})
    rows = channels.query("SELECT type, channel, traffic_class, campaign, customer_id, source, library"
                          " FROM touchpoints WHERE anonymous_id = {a:String} ORDER BY timestamp", {"a": anon})
    assert [(r["type"], r["channel"], r["traffic_class"]) for r in rows] == [
        ("page", "social", "social"), ("page", "web", "internal"), ("identify", "web", ""), ("track", "web", "")]
    assert rows[0]["campaign"] == f"reel-{customer}"
    assert [r["customer_id"] for r in rows] == ["", "", customer, customer]
    assert {r["source"] for r in rows} == {"site"} and {r["library"] for r in rows} == {"reise-js/1"}
    link = channels.wait_for("SELECT customer_id FROM identity_map WHERE anonymous_id = {a:String}", customer,
                             {"a": anon})
    assert link == customer
    channels.wait_for("SELECT contacts FROM customer_journey WHERE customer_id = {c:String}", 3, {"c": customer})


def test_do_not_track_and_consent_are_honoured(browser: webdriver.Chrome, shop: str, channels: Collector) -> None:
    browser.get(f"{shop}/consent")
    wait_loaded(browser)
    browser.execute_script("localStorage.clear()")
    assert browser.execute_script("return reise.page()") is False  # no consent yet: nothing is sent
    assert browser.execute_script("return localStorage.getItem('reise_aid')") is None
    marker = f"consented-{uuid.uuid4().hex[:10]}"
    browser.execute_script("reise.consent(true)")
    assert browser.execute_script("return reise.track(arguments[0])", marker) is True
    channels.wait_for("SELECT count() FROM touchpoints WHERE event = {e:String}", 1, {"e": marker})
    browser.execute_script("reise.consent(false)")
    assert browser.execute_script("return reise.track('after withdrawal')") is False
    assert browser.execute_script("return localStorage.getItem('reise_aid')") is None
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"})
    browser.get(f"{shop}/dnt")
    wait_loaded(browser)
    browser.execute_script("localStorage.clear()")
    assert browser.execute_script("return navigator.doNotTrack") == "1"
    assert browser.execute_script("return reise.track('with dnt')") is False

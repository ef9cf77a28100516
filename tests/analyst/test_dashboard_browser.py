"""The dashboard in headless Chromium against a collector loaded with demo journeys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from collector.cli.demo_journeys import Journey
from tests.analyst.conftest import DEMO_CUSTOMERS
from tests.helpers import Collector

CHARTS = ("chart-funnel", "chart-contacts", "chart-mix", "chart-entries", "chart-campaigns")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1440,2350")
# True when the chart exists, has data, and its canvas has painted pixels.
CHART_DRAWN_JS = """
const chart = Chart.getChart(arguments[0]);
if (!chart) return false;
const hasData = chart.data.datasets.some(d => d.data.some(v => (typeof v === 'number' ? v > 0 : v !== null)));
const canvas = chart.canvas;
if (!canvas.width || !canvas.height) return false;  // not laid out yet
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
return hasData && painted > 500;
"""


@pytest.fixture
def browser(chromium: Path, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its console log kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(chromium)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: webdriver.Chrome, condition: Any, what: str, timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)


def _loaded(driver: webdriver.Chrome) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.loaded || 0)"))


def _journey_to_show(journeys: list[Journey]) -> Journey:
    """A buyer who browsed anonymously, was identified, and used at least three channels."""
    for journey in journeys:
        calls = {e.call for e in journey.events}
        channels = {e.channel for e in journey.events}
        if journey.buys and "identify" in calls and len(channels) >= 3 and len(journey.events) >= 10:
            return journey
    raise AssertionError("the demo plan has no identified multi-channel buyer")


def test_dashboard_logs_in_draws_filters_and_shows_a_timeline(
    demo_collector: Collector, demo_plan: list[Journey], browser: webdriver.Chrome, artifacts: Path
) -> None:
    """Log in, see every chart drawn, change a filter, look up a customer's timeline; no console errors."""
    browser.get(demo_collector.url + "/dashboard")
    _wait(browser, lambda d: d.current_url.endswith("/dashboard/login"), "redirect to the login form")
    browser.find_element(By.ID, "key").send_keys(demo_collector.admin_key)
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser, lambda d: d.current_url.endswith("/dashboard") and _loaded(d) >= 1, "the dashboard loads")
    assert demo_collector.admin_key not in browser.current_url

    for chart in CHARTS:
        _wait(browser, lambda d, c=chart: d.execute_script(CHART_DRAWN_JS, c), f"{chart} draws")
    assert browser.find_element(By.ID, "kpi-customers").text == str(DEMO_CUSTOMERS)
    funnel_rows = browser.find_elements(By.CSS_SELECTOR, "#funnel-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in funnel_rows] == [
        "awareness", "consideration", "purchase", "retention", "advocacy"]

    # a filter changes the numbers: only customers with a contact at a till
    at_tills = sum(1 for j in demo_plan if any(e.channel == "pos" and e.is_contact for e in j.events))
    assert 0 < at_tills < DEMO_CUSTOMERS
    before = _loaded(browser)
    Select(browser.find_element(By.ID, "f-channel")).select_by_value("pos")
    browser.find_element(By.ID, "f-apply").click()
    _wait(browser, lambda d: _loaded(d) > before, "the filtered overview loads")
    assert browser.find_element(By.ID, "kpi-customers").text == str(at_tills)
    assert browser.execute_script("return Chart.getChart('chart-funnel').data.datasets[0].data.length") == 5

    # one known customer's journey, touchpoint by touchpoint
    journey = _journey_to_show(demo_plan)
    box = browser.find_element(By.ID, "lookup-id")
    box.clear()
    box.send_keys(journey.customer_id)
    browser.find_element(By.ID, "lookup-go").click()
    items = "#timeline-list li"
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, items)) == len(journey.events), "the timeline")
    _wait(browser, lambda d: d.execute_script(CHART_DRAWN_JS, "chart-timeline"), "the timeline chart draws")
    shown = [(li.get_attribute("data-event"), li.get_attribute("data-channel"))
             for li in browser.find_elements(By.CSS_SELECTOR, items)]
    assert shown == [(e.label or e.call, e.channel) for e in journey.events]
    links = browser.find_element(By.ID, "links-list").text
    assert f"{journey.anonymous_id} → {journey.customer_id}" in links

    browser.execute_script("document.getElementById('lookup').scrollIntoView(false)")
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(artifacts / "dashboard.png"))
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    errors = [entry for entry in console if entry["level"] == "SEVERE"]
    assert errors == []

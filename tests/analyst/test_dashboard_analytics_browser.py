"""The dashboard's deeper panels in headless Chromium: attribution with its model picker, the path flow (Sankey),
time between stages and the cohort heat map, each checked for drawn pixels and against the views."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.analyst.test_dashboard_browser import CHART_DRAWN_JS, _wait, browser
from tests.helpers import Collector

__all__ = ["browser"]  # the fixture, shared with the overview's browser test

CHARTS = ("chart-attribution", "chart-attribution-compare", "chart-paths", "chart-durations")
# True when the heat map's canvas has painted pixels and at least one cell with a share.
HEATMAP_DRAWN_JS = """
const canvas = document.getElementById(arguments[0]);
if (!canvas.width || !canvas.height || Number(canvas.dataset.cells || 0) === 0) return false;
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
return painted > 500;
"""


def _analytics_loaded(driver: webdriver.Chrome) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.analytics || 0)"))


@pytest.mark.usefixtures("chromium")
def test_attribution_paths_durations_and_cohorts_are_drawn(
    demo_collector: Collector, browser: webdriver.Chrome, artifacts: Path
) -> None:
    """Every deeper panel draws; the model picker and the Sankey show the views' numbers; no console errors."""
    browser.get(demo_collector.url + "/dashboard/login")
    browser.find_element(By.ID, "key").send_keys(demo_collector.admin_key)
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser, lambda d: _analytics_loaded(d) >= 1, "the analytics load", timeout=60)
    for chart in CHARTS:
        _wait(browser, lambda d, c=chart: d.execute_script(CHART_DRAWN_JS, c), f"{chart} draws")
    _wait(browser, lambda d: d.execute_script(HEATMAP_DRAWN_JS, "chart-cohorts"), "the cohort heat map draws")
    assert browser.execute_script("return Chart.getChart('chart-paths').config.type") == "sankey"

    # the model picker: first-touch credits per channel, as the attribution view has them
    Select(browser.find_element(By.ID, "attr-model")).select_by_value("first_touch")
    want = {r["channel"]: round(r["n"], 2) for r in demo_collector.query(
        "SELECT channel, sum(credited_purchases) AS n FROM attribution WHERE model = 'first_touch' GROUP BY channel")}
    shown = browser.execute_script(
        "const c = Chart.getChart('chart-attribution');"
        " return Object.fromEntries(c.data.labels.map((l, i) => [l, c.data.datasets[0].data[i]]));")
    assert {k: v for k, v in shown.items() if v} == {k: v for k, v in want.items() if v}
    assert browser.execute_script("return Chart.getChart('chart-attribution').data.datasets[0].label") == "first touch"

    # the Sankey: what flows into "purchase" is the buyers of the paths shown (the 30 most common)
    buyers = demo_collector.scalar(
        "SELECT sum(buyers) FROM (SELECT buyers FROM journey_paths WHERE kind = 'channel'"
        " ORDER BY customers DESC, path LIMIT 30)")
    into_purchase = browser.execute_script(
        "return Chart.getChart('chart-paths').data.datasets[0].data"
        ".filter(f => f.to === 'purchase').reduce((a, f) => a + f.flow, 0)")
    assert into_purchase == buyers > 0

    medians = browser.execute_script("return Chart.getChart('chart-durations').data.datasets[0].data")
    rows = demo_collector.query("SELECT median_seconds FROM stage_durations")
    assert medians == [round(r["median_seconds"] / 3600, 1) for r in rows]

    Select(browser.find_element(By.ID, "cohort-stage")).select_by_value("consideration")
    _wait(browser, lambda d: d.execute_script(HEATMAP_DRAWN_JS, "chart-cohorts"), "the heat map redraws")

    browser.execute_script("document.getElementById('attribution').scrollIntoView()")
    assert browser.save_screenshot(str(artifacts / "dashboard-analytics.png"))
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    assert [entry for entry in console if entry["level"] == "SEVERE"] == []

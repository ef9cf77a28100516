"""@snowplow/browser-tracker in headless Chromium, posting cross-origin (with credentials) to the collector."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.helpers import Collector
from tests.sources.browser import chromium, npm_packages, shop_site
from tests.sources.conftest import rows


def test_browser_tracker_page_view_and_structured_event(sources: Collector, tmp_path: Path) -> None:
    modules = npm_packages()
    user = f"spb-{uuid.uuid4().hex[:8]}"
    collector = sources.url.removeprefix("http://")

    def page(path: str) -> str:
        return f"""<!doctype html><html><head><title>Shoes</title>
<script src="/node_modules/@snowplow/browser-tracker/dist/index.umd.min.js"></script>
<script>
  const sp = window.snowplowBrowserTracking;
  sp.newTracker("sp", "http://{collector}", {{appId: "shop-web", platform: "web", eventMethod: "post",
                                               bufferSize: 1, contexts: {{webPage: true}}}});
  sp.setUserId("{user}");
  sp.trackPageView();
  sp.trackStructEvent({{category: "shop", action: "Product Viewed", label: "shoe-42"}});
</script></head><body>shoes</body></html>"""

    with shop_site(page, modules) as shop, chromium(tmp_path / "profile") as browser:
        browser.get(f"{shop}/shoes?utm_source=instagram&utm_medium=social&utm_campaign=spring")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sources.scalar(
                "SELECT count() FROM touchpoints WHERE customer_id = {u:String}", {"u": user}) < 2:
            time.sleep(0.2)
    found = rows(sources, "customer_id = {u:String}", {"u": user},
                 columns="type, event, anonymous_id, channel, campaign, library, source, properties")
    assert sorted((r["type"], r["event"]) for r in found) == [("page", "Shoes"), ("track", "Product Viewed")]
    view = next(r for r in found if r["type"] == "page")
    assert (view["channel"], view["campaign"], view["source"]) == ("social", "spring", "web-sp")
    assert view["library"].startswith("snowplow-js/")
    assert found[0]["anonymous_id"] and found[0]["anonymous_id"] == found[1]["anonymous_id"]  # duid: one browser
    assert "web_page" in view["properties"]["contexts"]

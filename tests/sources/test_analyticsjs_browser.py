"""analytics.js unchanged: Segment's @segment/analytics-next and RudderStack's @rudderstack/analytics-js in
headless Chromium, pointed at the collector by their load options alone (settings from Reise, with CORS)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.helpers import Collector, http
from tests.sources.browser import chromium, npm_packages, shop_site
from tests.sources.conftest import rows

COLUMNS = "type, event, customer_id, anonymous_id, channel, campaign, traffic_class, traffic_source, library, source"


def wait_for(collector: Collector, user: str, expected: int) -> None:
    deadline = time.monotonic() + 25
    sql = "SELECT count() FROM touchpoints WHERE customer_id = {u:String} OR anonymous_id IN " \
          "(SELECT anonymous_id FROM touchpoints WHERE customer_id = {u:String})"
    while time.monotonic() < deadline and collector.scalar(sql, {"u": user}) < expected:
        time.sleep(0.25)


def journey(collector: Collector, user: str) -> list[dict[str, object]]:
    return rows(collector, "customer_id = {u:String} OR anonymous_id IN (SELECT anonymous_id FROM touchpoints "
                           "WHERE customer_id = {u:String})", {"u": user}, columns=COLUMNS)


def test_settings_answers_need_a_public_key(sources: Collector) -> None:
    seg = http("GET", f"{sources.url}/v1/projects/pk_seg/settings", headers={"Origin": "https://shop.example"})
    assert seg.status == 200 and seg.headers["Access-Control-Allow-Origin"] == "*"
    assert seg.body["integrations"]["Segment.io"]["apiHost"] == f"127.0.0.1:{sources.port}/v1"
    assert http("GET", f"{sources.url}/v1/projects/pk_nobody/settings").status == 404
    assert http("GET", f"{sources.url}/v1/projects/wk_test/settings").status == 403  # a secret key: not in pages
    rud = http("GET", f"{sources.url}/sourceConfig/?p=npm&v=3.34.1&writeKey=pk_rud")
    assert rud.status == 200 and rud.body["source"]["enabled"] and rud.body["source"]["destinations"] == []


def test_segment_analytics_next(sources: Collector, tmp_path: Path) -> None:
    modules = npm_packages()
    user = f"seg-{uuid.uuid4().hex[:8]}"

    def page(path: str) -> str:
        return f"""<!doctype html><html><head><title>Spring</title>
<script src="/node_modules/@segment/analytics-next/dist/umd/index.js"></script>
<script>
  const analytics = AnalyticsNext.AnalyticsBrowser.load({{writeKey: "pk_seg", cdnURL: "{sources.url}"}});
  analytics.page();
  analytics.track("Product Viewed", {{sku: "shoe-42"}});
  analytics.track("Not Allowed", {{}}, {{context: {{consent: {{categoryPreferences: {{Analytics: false}}}}}}}});
  analytics.identify("{user}");
</script></head><body>spring</body></html>"""

    with shop_site(page, modules) as shop, chromium(tmp_path / "profile") as browser:
        browser.get(f"{shop}/spring?utm_source=instagram&utm_medium=social&utm_campaign=spring-sale")
        wait_for(sources, user, 3)
    found = journey(sources, user)
    assert sorted((r["type"], r["event"]) for r in found) == [
        ("identify", ""), ("page", ""), ("track", "Product Viewed")]  # no consent: not stored
    view = next(r for r in found if r["type"] == "page")
    assert (view["channel"], view["campaign"], view["traffic_source"]) == ("social", "spring-sale", "instagram")
    assert str(view["library"]).startswith("analytics.js/") and view["source"] == "seg"
    assert len({r["anonymous_id"] for r in found}) == 1


def test_rudderstack_analytics_js(sources: Collector, tmp_path: Path) -> None:
    modules = npm_packages()
    user = f"rud-{uuid.uuid4().hex[:8]}"

    def page(path: str) -> str:
        if path.startswith("/denied"):
            consent = ('consentManagement: {enabled: true, provider: "custom", allowedConsentIds: [], '
                       'deniedConsentIds: ["analytics"]}, ')
        else:
            consent = ""
        return f"""<!doctype html><html><head><title>Spring</title>
<script src="/node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"></script>
<script>
  const analytics = new rudderanalytics.RudderAnalytics();
  analytics.load("pk_rud", "{sources.url}", {{configUrl: "{sources.url}", {consent}
                                             plugins: ["XhrQueue"], destSDKBaseURL: "{sources.url}/none"}});
  analytics.page();
  analytics.track("Product Viewed", {{sku: "shoe-42"}});
  analytics.identify("{user}");
</script></head><body>spring</body></html>"""

    with shop_site(page, modules) as shop, chromium(tmp_path / "profile") as browser:
        browser.get(f"{shop}/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale")
        wait_for(sources, user, 3)
        browser.get(f"{shop}/denied?user=1")  # the same calls, consent denied: sent, and not stored
        time.sleep(2)
    found = journey(sources, user)
    assert sorted((r["type"], r["event"]) for r in found) == [
        ("identify", ""), ("page", ""), ("track", "Product Viewed")]
    view = next(r for r in found if r["type"] == "page")
    assert view["campaign"] == "spring-sale" and view["source"] == "rud"
    assert str(view["library"]).startswith("RudderLabs JavaScript SDK/")
    assert len({r["anonymous_id"] for r in found}) == 1

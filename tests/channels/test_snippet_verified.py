"""The browser snippet with a key that verifies identities: ``reise.identify(id, traits, {userHash})`` in Chromium."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import reise
from selenium import webdriver

from tests.channels.test_snippet import browser, wait_loaded
from tests.helpers import Collector
from tests.sources.browser import shop_site

__all__ = ["browser"]  # the headless Chromium fixture, shared with the snippet's other tests

SECRET = "snippet-verify-secret-0123"


@pytest.fixture(scope="module")
def verifying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector whose site key verifies identities."""
    with Collector(data_dir=tmp_path_factory.mktemp("verifying") / "data", extra_env={
            "REISE_WRITE_KEYS": "test=wk_test,site=pk_verified@web", "REISE_VERIFY_SECRETS": f"site={SECRET}"}) as c:
        yield c


@pytest.fixture(scope="module")
def verified_shop(verifying: Collector) -> Iterator[str]:
    """A shop page loading the snippet with the verifying key."""
    body = (f'<!doctype html><html><head><title>shop</title><script async src="{verifying.url}/t.js" '
            'data-key="pk_verified"></script></head><body></body></html>')
    with shop_site(lambda path: body) as url:
        yield url


def test_identify_sends_the_user_hash_with_every_event(browser: webdriver.Chrome, verified_shop: str,
                                                       verifying: Collector) -> None:
    customer, stranger = f"web-{uuid.uuid4().hex[:10]}", f"someone-{uuid.uuid4().hex[:10]}"
    browser.get(verified_shop)
    wait_loaded(browser)
    anon = browser.execute_script("return localStorage.getItem('reise_aid')")
    script = "return reise.identify(arguments[0], {plan: 'gold'}, {userHash: arguments[1]})"
    assert browser.execute_script(script, customer, reise.user_hash(SECRET, customer)) is True
    assert browser.execute_script("return reise.track('Product Viewed', {sku: 'shoe-42'})") is True
    verifying.wait_for("SELECT count() FROM touchpoints WHERE anonymous_id = {a:String}", 3, {"a": anon})
    rows = verifying.query("SELECT type, customer_id FROM touchpoints WHERE anonymous_id = {a:String}"
                           " ORDER BY timestamp", {"a": anon})
    assert [(r["type"], r["customer_id"]) for r in rows] == [("page", ""), ("identify", customer), ("track", customer)]
    # claiming another id without its hash is refused, and so are the events that follow under it
    assert browser.execute_script("return reise.identify(arguments[0])", stranger) is True
    assert browser.execute_script("return reise.track('Product Viewed')") is True
    kept = verifying.wait_for("SELECT count() FROM dead_letters WHERE customer_id = {u:String}", 2, {"u": stranger})
    assert kept == 2
    reasons = verifying.query("SELECT DISTINCT reason FROM dead_letters WHERE customer_id = {u:String}",
                              {"u": stranger})
    assert [r["reason"].split(":")[0] for r in reasons] == ["userHash"]
    assert verifying.scalar("SELECT count() FROM touchpoints WHERE customer_id = {u:String}", {"u": stranger}) == 0

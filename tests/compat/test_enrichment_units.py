"""The enrichment modules on real user agents, addresses and click patterns (collector/enrich)."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from collector.edge.clientip import client_address, is_prefetch, parse_networks
from collector.enrich.bots import BotDetector
from collector.enrich.device import DeviceParser
from collector.enrich.mail import MailMachines
from collector.enrich.pipeline import Enricher
from collector.enrich.place import PlaceLookup

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
          "Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
        "Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
            "Safari/537.36")
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
APPLE_MPP = "Mozilla/5.0"  # Apple Mail Privacy Protection's image fetcher sends exactly this


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher(mail_window_seconds=5)


def test_devices_from_real_user_agents() -> None:
    parse = DeviceParser().device
    chrome, iphone, ipad, bot = parse(CHROME), parse(IPHONE), parse(IPAD), parse(GOOGLEBOT)
    assert (chrome.browser, chrome.browser_version, chrome.os, chrome.type) == ("Chrome", "126.0", "Windows", "desktop")
    assert (iphone.browser, iphone.os, iphone.os_version, iphone.type, iphone.brand) == \
        ("Mobile Safari", "iOS", "17.5", "mobile", "Apple")
    assert ipad.type == "tablet" and bot.type == "bot"
    assert parse("") == parse("") and parse("").type == ""


@pytest.mark.parametrize("ua", [GOOGLEBOT, BINGBOT, HEADLESS, "curl/8.5.0", "python-requests/2.31.0",
                                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"])
def test_crawlers_are_bots(ua: str) -> None:
    assert BotDetector().ua_reason(ua).startswith("ua:")


@pytest.mark.parametrize("ua", [CHROME, IPHONE, IPAD, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
                                "AppleWebKit/605.1.15 (KHTML, like Gecko)", ""])
def test_people_are_not_bots(ua: str) -> None:
    assert BotDetector().ua_reason(ua) == ""


def test_mail_image_proxies_open_for_people_on_email_only() -> None:
    bots = BotDetector()
    assert bots.ua_reason(GMAIL_PROXY, email=True) == ""
    assert bots.ua_reason(GMAIL_PROXY).startswith("ua:")


def test_mail_machines_by_user_agent_and_network() -> None:
    mail = MailMachines()
    assert mail.reasons(ua=APPLE_MPP, ip="17.58.101.12") == ["ua:mpp:apple", "net:mpp:apple"]
    assert mail.reasons(ua="Barracuda Sentinel (EE)", ip="") == ["ua:scanner:barracuda"]
    assert mail.reasons(ua=CHROME, ip="148.163.130.5") == ["net:scanner:proofpoint"]
    assert mail.reasons(ua=CHROME, ip="104.47.17.0") == ["net:scanner:microsoft"]  # a truncated address too
    assert mail.reasons(ua=IPHONE, ip="81.2.69.160") == []


def test_clicks_soon_after_the_send_or_across_links_are_machines() -> None:
    mail = MailMachines(window_seconds=5)
    at = 1_750_000_000_000
    assert mail.timing(journey_id="u1", campaign="c", url="https://a/1", at_ms=at, sent=at - 2000) == \
        "timing:after_send"
    assert mail.timing(journey_id="u2", campaign="c", url="https://a/1", at_ms=at, sent=at - 3_600_000) == ""
    assert mail.timing(journey_id="u2", campaign="c", url="https://a/2", at_ms=at + 800, sent=None) == "timing:burst"
    assert mail.timing(journey_id="u2", campaign="c", url="https://a/2", at_ms=at + 1500, sent=None) == ""  # same link
    assert mail.timing(journey_id="u3", campaign="c", url="https://a/1", at_ms=at, sent=None) == ""
    assert mail.timing(journey_id="u3", campaign="c", url="https://a/3", at_ms=at + 60_000, sent=None) == ""


def test_the_pipeline_flags_and_leaves_flagged_rows_out_of_the_journey(enricher: Enricher) -> None:
    def flags(**kw: object) -> tuple[object, ...]:
        base = {"type_": "track", "channel": "web", "event": "e", "ua": CHROME, "ip": "", "context": {}}
        return enricher.columns(**{**base, **kw})[10:]  # type: ignore[arg-type]

    assert flags() == (0, 0, [], 1)
    assert flags(ua=GOOGLEBOT) == (1, 0, ["ua:Googlebot\\/"], 0)
    assert flags(method="HEAD") == (1, 0, ["request:HEAD"], 0)
    assert flags(channel="email", event="email_opened", ua=APPLE_MPP, ip="17.1.2.3") == \
        (0, 1, ["ua:mpp:apple", "net:mpp:apple"], 0)
    assert flags(channel="email", event="email_opened", ua=GMAIL_PROXY) == (0, 0, [], 1)
    assert flags(channel="email", event="email_clicked", prefetch=True) == (0, 1, ["request:prefetch"], 0)
    keep_all = Enricher(enabled=("bot",), exclude=())
    assert keep_all.columns(type_="page", channel="web", event="", ua=GOOGLEBOT, ip="", context={})[10:] == \
        (1, 0, ["ua:Googlebot\\/"], 1)
    off = Enricher(enabled=())
    assert off.columns(type_="page", channel="web", event="", ua=GOOGLEBOT, ip="8.8.8.8", context={})[10:] == \
        (0, 0, [], 1)


def test_place_from_the_bundled_country_database() -> None:
    places = PlaceLookup()
    assert places.place("81.2.69.160")[0] == "GB"
    assert places.place("10.1.2.3") == places.place("") == places.place("not an ip") == ("", "", "")


def test_place_from_an_operators_city_database(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        "city": {"names": {"en": "London"}}})
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    places = PlaceLookup(path)
    assert places.place("81.2.69.160") == ("GB", "England", "London")
    assert places.place("194.25.0.1")[0] == "DE"  # not in the file: the bundled country database answers


def _headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def test_forwarded_addresses_are_read_from_trusted_proxies_only() -> None:
    proxies = parse_networks("10.0.0.0/8, 127.0.0.1")
    xff = _headers(X_Forwarded_For="198.51.100.7, 81.2.69.160, 10.1.1.1")
    assert client_address("10.0.0.2", xff, proxies) == "81.2.69.160"  # the right-most hop that is no proxy
    assert client_address("203.0.113.5", xff, proxies) == "203.0.113.5"  # an untrusted peer's header is ignored
    assert client_address("10.0.0.2", xff, ()) == "10.0.0.2"
    forwarded = _headers(Forwarded='for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"')
    assert client_address("127.0.0.1", forwarded, proxies) == "2001:db8:cafe::17"
    assert client_address("127.0.0.1", _headers(X_Forwarded_For="garbage"), proxies) == "127.0.0.1"
    assert client_address(None, xff, proxies) == ""
    assert is_prefetch(_headers(Sec_Purpose="prefetch;prerender")) and is_prefetch(_headers(X_Moz="prefetch"))
    assert not is_prefetch(_headers(Accept="*/*"))

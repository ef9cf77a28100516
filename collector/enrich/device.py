"""Device: browser, OS and device type from the user agent, by ua-parser's bundled rules (cached per string)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ua_parser

__all__ = ["NO_DEVICE", "Device", "DeviceParser", "from_context"]

CACHE_SIZE = 65_536
_DESKTOP_OS = frozenset({"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD", "Debian",
                         "OpenBSD", "NetBSD", "Red Hat", "SUSE", "Mint", "Arch Linux", "Solaris"})
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Tizen", "HarmonyOS",
                        "Symbian OS", "Firefox OS", "webOS"})


@dataclass(frozen=True, slots=True)
class Device:
    """What the user agent says about the device: browser, OS and type (desktop, mobile, tablet, bot, other)."""

    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    type: str = ""
    brand: str = ""
    model: str = ""


NO_DEVICE = Device()


def _parser() -> ua_parser.Parser:
    """ua-parser with its native accelerator (ua-parser-rs) when installed, else the best resolver available."""
    try:
        from ua_parser import regex

        return ua_parser.Parser(regex.Resolver(ua_parser.load_lazy_builtins()))
    except ImportError:  # pragma: no cover - the accelerator is a dependency; kept for odd installs
        return ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins()))


def _version(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


def _device_type(os_family: str, device_family: str, brand: str, ua: str) -> str:
    if device_family == "Spider":
        return "bot"
    if device_family == "iPad" or brand == "Generic_Android_Tablet" or "Tablet" in device_family:
        return "tablet"
    if os_family == "Android":
        return "mobile" if "Mobile" in ua else "tablet"
    if os_family in _MOBILE_OS or device_family in ("iPhone", "iPod", "Generic Smartphone"):
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"


class DeviceParser:
    """Parses user agents into Devices; one parse per distinct string (an LRU cache of CACHE_SIZE)."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        parser = _parser()

        @lru_cache(maxsize=cache_size)
        def parse(ua: str) -> Device:
            result = parser.parse(ua)
            agent, os_, device = result.user_agent, result.os, result.device
            browser = agent.family if agent else ""
            os_family = os_.family if os_ else ""
            device_family = device.family if device else ""
            brand = device.brand or "" if device else ""
            return Device(
                browser=browser,
                browser_version=_version(agent.major, agent.minor) if agent else "",
                os=os_family,
                os_version=_version(os_.major, os_.minor) if os_ else "",
                type=_device_type(os_family, device_family, brand, ua),
                brand="" if brand.startswith(("Generic", "Spider")) else brand,
                model=(device.model or "") if device and device_family != "Spider" else "",
            )

        self.parse = parse

    def device(self, ua: str) -> Device:
        """The device of a user agent (NO_DEVICE for none)."""
        return self.parse(ua) if ua else NO_DEVICE


def _text(value: Any) -> str:
    return value[:128] if isinstance(value, str) else ""


def from_context(context: Mapping[str, Any]) -> Device:
    """The device as mobile SDKs state it in ``context.device`` and ``context.os`` (events without a user agent)."""
    device, os_ = context.get("device"), context.get("os")
    device = device if isinstance(device, dict) else {}
    os_ = os_ if isinstance(os_, dict) else {}
    if not device and not os_:
        return NO_DEVICE
    kind = _text(device.get("type")).lower()
    kind = "mobile" if kind in ("ios", "android", "mobile", "phone") else kind
    return Device(os=_text(os_.get("name")), os_version=_text(os_.get("version")), type=kind,
                  brand=_text(device.get("manufacturer")), model=_text(device.get("model")))

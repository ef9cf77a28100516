"""Bots and crawlers: user agents matched against the crawler-user-agents list, plus request behaviour.

The list's ~1,500 patterns are compiled into one native regular-expression set (ua-parser's accelerator,
ua-parser-rs), about 25 us per new user agent against 400 us for Python's ``re``; answers are cached per
string. Classification only: no security decision rests on it.
"""

from __future__ import annotations

from functools import lru_cache

import crawleruseragents

__all__ = ["HUMAN_MAIL_PROXIES", "BotDetector"]

CACHE_SIZE = 65_536
# image proxies that fetch an e-mail's images when a person opens it: opens by people, not by crawlers
HUMAN_MAIL_PROXIES = ("GoogleImageProxy", "YahooMailProxy")


def _matcher() -> tuple[object, list[str]]:
    patterns = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    try:
        from ua_parser import Domain, regex
        from ua_parser.matchers import UserAgentMatcher

        resolver = regex.Resolver(([UserAgentMatcher(p, str(i)) for i, p in enumerate(patterns)], [], []))

        def native(ua: str) -> int:
            found = resolver(ua, Domain.USER_AGENT).user_agent
            return int(found.family) if found else -1

        return native, patterns
    except ImportError:  # pragma: no cover - the accelerator is a dependency

        def fallback(ua: str) -> int:
            found = crawleruseragents.matching_crawlers(ua)
            return found[0] if found else -1

        return fallback, patterns


class BotDetector:
    """Tells crawler user agents apart (the reason names the list's pattern), cached per string."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        match, patterns = _matcher()

        @lru_cache(maxsize=cache_size)
        def reason(ua: str) -> str:
            index = match(ua)  # type: ignore[operator]
            return "" if index < 0 else f"ua:{patterns[index][:64]}"

        self.reason = reason

    def ua_reason(self, ua: str, *, email: bool = False) -> str:
        """``ua:<pattern>`` for a crawler's user agent, else ""; mail image proxies are people on e-mail."""
        if not ua:
            return ""
        if email and any(proxy in ua for proxy in HUMAN_MAIL_PROXIES):
            return ""
        return self.reason(ua)

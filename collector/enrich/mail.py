"""Mail machines: e-mail opens and clicks made by Apple Mail Privacy Protection or security scanners.

A touchpoint of the email channel is a machine's when its user agent or network is a known proxy's or
scanner's (mail_machines.json), when it came as a HEAD or prefetch request, when a click came within
``window`` seconds of the send (``properties.sent_at``), or within ``window`` seconds of a click on another
link of the same message (same recipient and campaign). At ingest the second and later clicks of such a burst
are flagged (the first is already stored); ``reise enrich`` flags the whole burst.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections import OrderedDict
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_WINDOW_SECONDS", "MailMachines", "is_click", "sent_ms"]

DATA = Path(__file__).with_name("mail_machines.json")
DEFAULT_WINDOW_SECONDS = 10.0
MAX_MESSAGES = 100_000  # recent clicks remembered per (recipient, message), oldest forgotten first


def _number(ip: str) -> tuple[int, int] | None:
    """An address's IP version and number, None for anything that is no address (as ``ipaddress`` reads it).

    A dotted IPv4 address in its one canonical spelling is read natively (``inet_pton``, a tenth of the cost of
    ``ipaddress``, which runs for every e-mail event's new address); everything else goes through ``ipaddress``.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError):
        packed = b""
    if packed and socket.inet_ntop(socket.AF_INET, packed) == ip:
        return 4, int.from_bytes(packed, "big")
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return address.version, int(address)


def is_click(event: str) -> bool:
    """Whether an e-mail touchpoint's event is a click (``email_clicked``, ``link_clicked`` ...)."""
    return event.endswith("clicked") or event.endswith("click")


def sent_ms(value: Any) -> int | None:
    """``properties.sent_at`` (epoch seconds or an ISO 8601 time) in epoch milliseconds, None if unreadable."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value * 1000)
    if isinstance(value, str):
        try:
            return int(float(value) * 1000)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return None


class MailMachines:
    """Classifies e-mail touchpoints as machine opens and clicks; keeps recent clicks per message in memory."""

    def __init__(self, window_seconds: float = DEFAULT_WINDOW_SECONDS, data: Path = DATA) -> None:
        spec = json.loads(data.read_text(encoding="utf-8"))
        self.window_ms = int(window_seconds * 1000)
        self._markers: tuple[tuple[str, str], ...] = tuple(spec["user_agents"].items())
        self._exact: dict[str, str] = dict(spec["exact_user_agents"])
        networks = [(n.version, int(n.network_address), int(n.broadcast_address), reason)
                    for n, reason in ((ipaddress.ip_network(c), r) for c, r in spec["networks"].items())]
        self._recent: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()

        @lru_cache(maxsize=65_536)
        def network_reason(ip: str) -> str:
            found = _number(ip)
            if found is None:
                return ""
            version, number = found
            for net_version, first, last, reason in networks:  # integer ranges: no ipaddress objects per check
                if net_version == version and first <= number <= last:
                    return f"net:{reason}"
            return ""

        @lru_cache(maxsize=65_536)
        def ua_reason(ua: str) -> str:
            exact = self._exact.get(ua.strip())
            if exact:
                return f"ua:{exact}"
            for marker, reason in self._markers:
                if marker in ua:
                    return f"ua:{reason}"
            return ""

        self.network_reason = network_reason
        self.ua_reason = ua_reason

    def reasons(self, *, ua: str, ip: str) -> list[str]:
        """The user-agent and network reasons that make an e-mail touchpoint a machine's (empty: none)."""
        found = []
        if ua:
            reason = self.ua_reason(ua)
            if reason:
                found.append(reason)
        if ip:
            reason = self.network_reason(ip)
            if reason:
                found.append(reason)
        return found

    def timing(self, *, journey_id: str, campaign: str, url: str, at_ms: int, sent: int | None) -> str:
        """``timing:after_send`` or ``timing:burst`` for a click too soon after the send or another link's click."""
        if sent is not None and 0 <= at_ms - sent <= self.window_ms:
            return "timing:after_send"
        key = (journey_id, campaign)
        recent = self._recent
        previous = recent.pop(key, None)
        recent[key] = (at_ms, url)
        if len(recent) > MAX_MESSAGES:
            recent.popitem(last=False)
        if previous is not None and previous[1] != url and abs(at_ms - previous[0]) <= self.window_ms:
            return "timing:burst"
        return ""

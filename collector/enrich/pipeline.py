"""The enrichments of one touchpoint, in order: device, bot, mail machine, place; each can be switched off.

``Enricher.columns`` gives the touchpoint's enrichment columns (ENRICHED_COLUMNS order). Flags and their
reasons stay on the touchpoint; ``in_journey`` is 0 for a touchpoint whose flag kind is excluded from the
journey (REISE_JOURNEY_EXCLUDE, default bots and mail machines): customer_state_mv skips it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from collector.enrich import ENRICHMENTS, FLAG_KINDS
from collector.enrich.bots import BotDetector
from collector.enrich.device import NO_DEVICE, Device, DeviceParser, from_context
from collector.enrich.mail import DEFAULT_WINDOW_SECONDS, MailMachines, is_click, sent_ms
from collector.enrich.place import NO_PLACE, PlaceLookup

__all__ = ["ENRICHED_COLUMNS", "ENRICHMENTS", "FLAG_KINDS", "NOT_ENRICHED", "Enricher", "in_journey"]

ENRICHED_COLUMNS = (
    "browser", "browser_version", "os", "os_version", "device_type", "device_brand", "device_model",
    "country", "region", "city", "bot", "machine", "flag_reasons", "in_journey",
)  # fmt: skip
NOT_ENRICHED: tuple[Any, ...] = ("", "", "", "", "", "", "", "", "", "", 0, 0, [], 1)


AGENT_CACHE_SIZE = 65_536  # user agents whose device and bot answers are remembered together


def _device_columns(device: Device) -> tuple[str, ...]:
    """A device as its seven columns (ENRICHED_COLUMNS order)."""
    return (device.browser, device.browser_version, device.os, device.os_version, device.type, device.brand,
            device.model)


_NO_DEVICE_COLUMNS = _device_columns(NO_DEVICE)


def in_journey(bot: bool, machine: bool, exclude: Collection[str]) -> int:
    """1 when a touchpoint with these flags counts in the journey (contacts, stages, funnel), else 0."""
    return 0 if (bot and "bot" in exclude) or (machine and "machine" in exclude) else 1


class Enricher:
    """Runs the enabled enrichments on each touchpoint (see the module's docstring)."""

    def __init__(
        self,
        *,
        enabled: Collection[str] = ENRICHMENTS,
        exclude: Collection[str] = FLAG_KINDS,
        geoip_db: Path | None = None,
        mail_window_seconds: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self.enabled = frozenset(enabled)
        self.exclude = frozenset(exclude)
        self.devices = DeviceParser() if "device" in self.enabled else None
        self.bots = BotDetector() if "bot" in self.enabled else None
        self.mail = MailMachines(mail_window_seconds) if "mail" in self.enabled else None
        self.places = PlaceLookup(geoip_db) if "place" in self.enabled else None
        devices, bots = self.devices, self.bots

        @lru_cache(maxsize=AGENT_CACHE_SIZE)
        def agent(ua: str, email: bool) -> tuple[tuple[str, ...], str]:
            """A user agent's device columns and bot reason ("" if none), on e-mail or not: one lookup an event."""
            device = NO_DEVICE if devices is None else devices.parse(ua)
            reason = "" if bots is None else bots.ua_reason(ua, email=email) or (
                "device:spider" if device.type == "bot" else "")
            return _device_columns(device), reason

        self._agent = agent
        self._where = None if self.places is None else self.places.lookup  # place of a non-empty address

    def device(self, ua: str, context: Mapping[str, Any]) -> Device:
        """The device module alone: the user agent's device, else the one the context states."""
        if self.devices is None:
            return NO_DEVICE
        return self.devices.device(ua) if ua else from_context(context)

    def columns(
        self,
        *,
        type_: str,
        channel: str,
        event: str,
        ua: str,
        ip: str,
        context: Mapping[str, Any],
        journey_id: str = "",
        campaign: str = "",
        url: str = "",
        at_ms: int = 0,
        properties: Mapping[str, Any] | None = None,
        method: str = "POST",
        prefetch: bool = False,
        place: bool = True,
        timing: str | None = None,
    ) -> tuple[Any, ...]:
        """The enrichment columns of one touchpoint (ENRICHED_COLUMNS order).

        ``place`` False looks no place up; ``timing`` given (``reise enrich``) replaces the live click-timing check.
        """
        behaviour = "request:HEAD" if method == "HEAD" else "request:prefetch" if prefetch else ""
        return self.live(type_, channel, event, ua, ip, context, journey_id, campaign, url, at_ms, properties,
                         behaviour, place, timing)

    def live(self, type_: str, channel: str, event: str, ua: str, ip: str, context: Mapping[str, Any],
             journey_id: str, campaign: str, url: str, at_ms: int, properties: Mapping[str, Any] | None,
             behaviour: str, place: bool = True, timing: str | None = None) -> tuple[Any, ...]:
        """``columns`` with positional arguments (the ingest hot path); ``behaviour`` is the request's
        ``request:HEAD`` or ``request:prefetch`` reason, or ""."""
        if not self.enabled:
            return NOT_ENRICHED
        email = channel == "email"
        if ua:
            device, reason = self._agent(ua, email)
        elif self.devices is None:
            device, reason = _NO_DEVICE_COLUMNS, ""
        else:
            stated = from_context(context)
            if stated is NO_DEVICE:
                device, reason = _NO_DEVICE_COLUMNS, ""
            else:
                device = _device_columns(stated)
                reason = "device:spider" if self.bots is not None and stated.type == "bot" else ""
        where = self._where(ip) if ip and place and self._where is not None else NO_PLACE
        if not email and not behaviour:  # the common case: the user agent's reason alone decides
            if reason:
                return device + where + (1, 0, [reason], in_journey(True, False, self.exclude))
            return device + where + (0, 0, [], 1)
        reasons = [reason] if reason else []
        bot = bool(reason)
        machine = False
        if behaviour and not email and self.bots is not None:
            bot = True
            reasons.append(behaviour)
        if email and self.mail is not None:
            found = self.mail.reasons(ua=ua, ip=ip)
            if behaviour:
                found.append(behaviour)
            if properties and properties.get("machine_open") is True:  # the e-mail service said so (SendGrid)
                found.append("provider:machine_open")
            if timing is not None:
                if timing:
                    found.append(timing)
            elif type_ == "track" and is_click(event):
                timing = self.mail.timing(journey_id=journey_id, campaign=campaign, url=url, at_ms=at_ms,
                                          sent=sent_ms((properties or {}).get("sent_at")))
                if timing:
                    found.append(timing)
            if found:
                machine = True
                reasons.extend(found)
        journey = in_journey(bot, machine, self.exclude) if bot or machine else 1
        return device + where + (int(bot), int(machine), reasons, journey)

"""The enrichments of one touchpoint, in order: device, bot, mail machine, place; each can be switched off.

``Enricher.columns`` gives the touchpoint's enrichment columns (ENRICHED_COLUMNS order). Flags and their
reasons stay on the touchpoint; ``in_journey`` is 0 for a touchpoint whose flag kind is excluded from the
journey (REISE_JOURNEY_EXCLUDE, default bots and mail machines): customer_state_mv skips it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
        if not self.enabled:
            return NOT_ENRICHED
        device = self.device(ua, context)
        reasons: list[str] = []
        email = channel == "email"
        bot = machine = False
        behaviour = "request:HEAD" if method == "HEAD" else "request:prefetch" if prefetch else ""
        if self.bots is not None:
            reason = self.bots.ua_reason(ua, email=email)
            if not reason and device.type == "bot":
                reason = "device:spider"
            if reason:
                bot = True
                reasons.append(reason)
            if behaviour and not email:
                bot = True
                reasons.append(behaviour)
        if self.mail is not None and email:
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
        country, region, city = self.places.place(ip) if self.places is not None and place else NO_PLACE
        return (device.browser, device.browser_version, device.os, device.os_version, device.type, device.brand,
                device.model, country, region, city, int(bot), int(machine), reasons,
                in_journey(bot, machine, self.exclude))

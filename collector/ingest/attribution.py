"""Web attribution: a page view's channel, traffic class and campaign from its URL, referrer and UTM fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from collector.errors import ConfigError

__all__ = ["CLASSES", "DEFAULT_ATTRIBUTION_PATH", "Attribution", "AttributionRules", "Utm"]

DEFAULT_ATTRIBUTION_PATH = Path(__file__).resolve().parents[1] / "attribution.json"
CLASSES: frozenset[str] = frozenset({"email", "social", "ads", "sms", "search", "referral", "direct", "internal"})
# Traffic classes that are channels of their own; search, referral, direct and internal traffic is channel web.
_CLASS_CHANNEL = {"email": "email", "social": "social", "ads": "ads", "sms": "sms"}
_UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_QUERY_CHARS = 4096
MEMO_SIZE = 4096  # page views remembered per rules: a site's pages and referrers repeat
MEMO_CHARS = 1024  # page views whose URL and referrer are longer together are worked out every time

Utm = tuple[str, str, str, str, str]  # source, medium, campaign, term, content


@dataclass(frozen=True, slots=True)
class Attribution:
    """What attribution derived for one page view."""

    channel: str
    traffic_class: str
    traffic_source: str
    utm: Utm


def _host(url: str) -> str:
    """The lower-case host of a URL without ``www.``, or '' when there is none (remembered for short URLs)."""
    return _remembered_host(url) if len(url) <= MEMO_CHARS else _host_of(url)


def _host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


_remembered_host = lru_cache(maxsize=MEMO_SIZE)(_host_of)


def _query_pairs(url: str) -> list[tuple[str, str]]:
    """The parameters of a URL's query string (the first 4 KB of it); none for an unparseable URL."""
    try:
        return parse_qsl(urlsplit(url).query[:MAX_QUERY_CHARS])
    except ValueError:
        return []


def _utm_of(pairs: list[tuple[str, str]]) -> Utm:
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in _UTM_KEYS and name not in found:
            found[name] = value[:512]
    src, med, camp, term, content = (found.get(k, "") for k in _UTM_KEYS)
    return (src, med, camp, term, content)


def _click_id(pairs: list[tuple[str, str]], click_ids: Mapping[str, str]) -> str:
    """The ad network named by a click id among a URL's parameters (gclid, msclkid, ...), or ''."""
    for name, _value in pairs:
        if name in click_ids:
            return click_ids[name]
    return ""


@dataclass(frozen=True)
class AttributionRules:
    """The operator's mapping of referrer hosts, UTM mediums and click ids to traffic classes."""

    hosts: Mapping[str, tuple[str, str]]  # exact or parent domain -> (class, source name)
    wildcards: Mapping[str, tuple[str, str]]  # 'google' of 'google.*' -> (class, source name)
    mediums: Mapping[str, str]  # utm_medium (lower case) -> class
    sources: Mapping[str, str]  # source name (lower case) -> class
    click_ids: Mapping[str, str]  # query parameter -> ad network
    # attribute() remembered by its arguments (the rules never change): set in __post_init__
    _memo: Callable[[str, str, Utm], Attribution] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_memo", lru_cache(maxsize=MEMO_SIZE)(self._attribute))

    @classmethod
    def load(cls, path: Path | None = None) -> AttributionRules:
        """The built-in mapping, extended (and overridden) by the operator's file when one is given."""
        doc = cls._read(DEFAULT_ATTRIBUTION_PATH)
        if path is not None and path.resolve() != DEFAULT_ATTRIBUTION_PATH.resolve():
            extra = cls._read(path)
            for class_, entries in extra.get("referrers", {}).items():
                doc["referrers"].setdefault(class_, {}).update(entries)
            for class_, names in extra.get("mediums", {}).items():
                doc["mediums"].setdefault(class_, []).extend(names)
            doc["click_ids"].update(extra.get("click_ids", {}))
        return cls._build(doc, path or DEFAULT_ATTRIBUTION_PATH)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"attribution rules {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"attribution rules {path}: expected a JSON object")
        doc.setdefault("referrers", {})
        doc.setdefault("mediums", {})
        doc.setdefault("click_ids", {})
        return doc

    @classmethod
    def _build(cls, doc: dict[str, Any], path: Path) -> AttributionRules:
        hosts: dict[str, tuple[str, str]] = {}
        wildcards: dict[str, tuple[str, str]] = {}
        sources: dict[str, str] = {}
        mediums: dict[str, str] = {}
        try:
            for class_, entries in doc["referrers"].items():
                cls._check_class(class_, path)
                for host, name in dict(entries).items():
                    target = wildcards if host.endswith(".*") else hosts
                    target[host.lower().removesuffix(".*")] = (class_, str(name))
                    sources.setdefault(str(name).lower(), class_)
            for class_, names in doc["mediums"].items():
                cls._check_class(class_, path)
                mediums.update({str(n).lower(): class_ for n in names})
            click_ids = {str(k): str(v) for k, v in dict(doc["click_ids"]).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise ConfigError(f"attribution rules {path}: malformed ({exc})") from exc
        return cls(hosts=hosts, wildcards=wildcards, mediums=mediums, sources=sources, click_ids=click_ids)

    @staticmethod
    def _check_class(class_: str, path: Path) -> None:
        if class_ not in CLASSES:
            raise ConfigError(f"attribution rules {path}: unknown class {class_!r} (one of {sorted(CLASSES)})")

    def referrer_class(self, host: str) -> tuple[str, str] | None:
        """(class, source name) of a referrer host, or None when it is not a known one."""
        labels = host.split(".")
        for i in range(len(labels) - 1):  # the host itself, then each parent domain
            found = self.hosts.get(".".join(labels[i:]))
            if found:
                return found
        for i, label in enumerate(labels[:-1]):  # 'google.*': the label followed by at most two short labels
            rest = labels[i + 1 :]
            if label in self.wildcards and len(rest) <= 2 and all(0 < len(r) <= 3 for r in rest):
                return self.wildcards[label]
        return None

    def attribute(self, page_url: str, referrer: str, utm: Utm) -> Attribution:
        """Classify one page view; ``utm`` is what the event's context carried (URL parameters fill gaps).

        The answer depends on these three and the rules only, so it is remembered (MEMO_SIZE page views).
        """
        if len(page_url) + len(referrer) <= MEMO_CHARS:
            return self._memo(page_url, referrer, utm)
        return self._attribute(page_url, referrer, utm)

    def _attribute(self, page_url: str, referrer: str, utm: Utm) -> Attribution:
        pairs = _query_pairs(page_url)
        from_url = _utm_of(pairs)
        utm = tuple(given or found for given, found in zip(utm, from_url, strict=True))  # type: ignore[assignment]
        source, medium = utm[0].lower(), utm[1].lower()
        class_, name = "", source
        if medium:
            class_ = self.mediums.get(medium, "")
        if not class_ and source:
            class_ = self.sources.get(source, "referral")
        if not class_:
            network = _click_id(pairs, self.click_ids)
            if network:
                class_, name = "ads", network
        if not class_:
            ref_host = _host(referrer)
            if not ref_host:
                class_, name = "direct", ""
            elif ref_host == _host(page_url):
                class_, name = "internal", ""
            else:
                class_, name = self.referrer_class(ref_host) or ("referral", ref_host)
        if not name and class_ not in ("direct", "internal"):
            found = self.referrer_class(_host(referrer)) if referrer else None
            name = found[1] if found else _host(referrer)
        return Attribution(channel=_CLASS_CHANNEL.get(class_, "web"), traffic_class=class_,
                           traffic_source=name[:128], utm=utm)

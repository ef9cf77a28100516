"""Place: country, and region and city where the database has them, from the full IP before truncation.

The zero-setup default is the country database that the ``iptocc`` package ships (regional internet registry
delegations, looked up natively in well under a microsecond). An operator's MaxMind-format file
(``REISE_GEOIP_DB``, e.g. GeoLite2-City.mmdb, read with ``maxminddb``) gives region and city as well.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import iptocc

from collector.errors import ConfigError

__all__ = ["NO_PLACE", "Place", "PlaceLookup"]

Place = tuple[str, str, str]  # country (ISO 3166-1 alpha-2), region, city
NO_PLACE: Place = ("", "", "")
CACHE_SIZE = 65_536


def _name(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    names = record.get("names")
    if isinstance(names, dict) and isinstance(names.get("en"), str):
        return str(names["en"])[:128]
    return ""


def _from_record(record: Any) -> Place:
    if not isinstance(record, dict):
        return NO_PLACE
    country = record.get("country") or record.get("registered_country") or {}
    iso = country.get("iso_code", "") if isinstance(country, dict) else ""
    subdivisions = record.get("subdivisions")
    region = _name(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else ""
    return (iso if isinstance(iso, str) and len(iso) == 2 else "", region, _name(record.get("city")))


class PlaceLookup:
    """Looks places up by IP: the operator's .mmdb when given, else the bundled country database."""

    def __init__(self, database: Path | None = None) -> None:
        self.source = "iptocc"
        self.lookup: Callable[[str], Place]  # the place of a non-empty address (``place`` without the check)
        if database is None:
            self.lookup = self._country
            return
        import maxminddb

        try:
            reader = maxminddb.open_database(str(database))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"REISE_GEOIP_DB: cannot read {database}: {exc}") from exc
        self.source = str(database)

        @lru_cache(maxsize=CACHE_SIZE)
        def city(ip: str) -> Place:
            try:
                found = _from_record(reader.get(ip))
            except ValueError:
                return NO_PLACE
            return found if found[0] else self._country(ip)

        self.lookup = city

    @staticmethod
    def _country(ip: str) -> Place:
        try:
            code = iptocc.country_code(ip)
        except ValueError:
            return NO_PLACE
        return (code, "", "") if code else NO_PLACE

    def place(self, ip: str) -> Place:
        """Country, region and city of an address ("" where unknown, and for private or invalid ones)."""
        return self.lookup(ip) if ip else NO_PLACE

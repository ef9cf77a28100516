"""Enrichment at ingest: device, bots, mail machines and place, one module each (see docs/enrichment.md)."""

from __future__ import annotations

__all__ = ["ENRICHMENTS", "FLAG_KINDS", "parse_names"]

ENRICHMENTS = ("device", "bot", "mail", "place")  # REISE_ENRICH
FLAG_KINDS = ("bot", "machine")  # REISE_JOURNEY_EXCLUDE


def parse_names(text: str, allowed: tuple[str, ...]) -> frozenset[str]:
    """``a,b`` as a set of allowed names; ``none`` (or blanks) is the empty set, ``all`` every name."""
    names = {item.strip().lower() for item in text.split(",") if item.strip()}
    if names == {"none"}:
        return frozenset()
    if names == {"all"}:
        return frozenset(allowed)
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(f"unknown {', '.join(unknown)} (choose from {', '.join(allowed)}, all or none)")
    return frozenset(names)

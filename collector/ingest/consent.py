"""Consent as events carry it: anything that reads as "no" (or that cannot be read as "yes") is no consent.

Read from ``context.consent`` and from a top-level ``consent``. A value is ``true``/``false``, ``1``/``0``, a
word (``"yes"``, ``"no"``, ``"granted"``, ``"denied"`` ...; any case), or a category object: ``analytics``,
``analytics_storage`` (Google Consent Mode) or ``statistics`` (Cookiebot), also inside Segment's
``categoryPreferences``; RudderStack's ``context.consentManagement.deniedConsentIds`` naming one of them
refuses. An object naming none of these categories refuses nothing; a missing or ``null`` value is consent
given (the shop asks before it sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CATEGORY_KEYS", "NO_WORDS", "YES_WORDS", "refused", "refused_in"]

YES_WORDS = frozenset({"true", "1", "yes", "y", "on", "granted", "given", "accepted", "allow", "allowed",
                       "opt-in", "opted-in"})
NO_WORDS = frozenset({"false", "0", "no", "n", "off", "denied", "deny", "declined", "refused", "rejected",
                      "revoked", "withdrawn", "opt-out", "opted-out"})
CATEGORY_KEYS = frozenset({"analytics", "analytics_storage", "statistics"})


def _category_refused(categories: Mapping[Any, Any]) -> bool:
    for name, value in categories.items():
        if isinstance(name, str) and name.strip().lower() in CATEGORY_KEYS and refused(value):
            return True
    preferences = categories.get("categoryPreferences")
    return isinstance(preferences, Mapping) and _category_refused(preferences)


def refused(value: Any) -> bool:
    """True when a consent value says no, or says nothing readable as yes; False for None (not given)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value != 1
    if isinstance(value, str):
        return value.strip().lower() not in YES_WORDS
    if isinstance(value, Mapping):
        return _category_refused(value)
    return True  # a list or anything else: not a yes


def _denied_ids(management: Any) -> bool:
    """RudderStack's ``context.consentManagement``: a denied consent id naming an analytics category refuses."""
    denied = management.get("deniedConsentIds") if isinstance(management, Mapping) else None
    return isinstance(denied, list) and any(
        isinstance(name, str) and name.strip().lower() in CATEGORY_KEYS for name in denied)


def refused_in(event: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """True when the event's ``context.consent``, top-level ``consent`` or (RudderStack)
    ``context.consentManagement.deniedConsentIds`` refuses."""
    return refused(context.get("consent")) or refused(event.get("consent")) or _denied_ids(
        context.get("consentManagement"))

"""What a dead letter may keep of a refused payload: secrets redacted, IP addresses treated as on touchpoints.

A dead letter keeps the payload for an operator to see what went wrong; it must not keep what the store
should never hold. ``Redactor.payload`` turns a refused event or request into the text stored:

- every configured secret (secret write keys, the admin key, link keys, and their HTTP Basic form) is
  replaced wherever it appears, in any payload, parsed or not;
- fields named like a key (``writeKey``, ``k``, ``key``, ``apiKey``, ``Authorization``, ``password``,
  ``secret``, ``token`` ...) lose their value, whatever it is;
- fields named ``ip`` get the ``REISE_IP`` treatment of ``touchpoints.ip`` (truncated, kept or dropped).

Payloads are JSON (events, request bodies), query strings (pixel hits, ``/r/`` links) or text that is
neither, such as a truncated JSON body; the last is scanned for ``"name": value`` pairs, so a body that
does not parse still loses its keys and addresses.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import orjson

from collector.ingest.protocol import anonymise_ip

__all__ = ["QUERY_ENDPOINTS", "REDACTED", "Redactor", "secret_field"]

REDACTED = "[redacted]"
QUERY_ENDPOINTS = frozenset({"pixel", "link"})  # their string payloads are query strings (a link's: path?query)
MAX_DEPTH = 64  # deeper JSON is replaced whole rather than walked
CUT_MARGIN = 1024  # characters kept past a caller's limit before cleaning, so no secret is cut at the limit
_SECRET_NAMES = frozenset({"k", "authorization", "password", "passwd", "secret", "token", "accesstoken",
                           "apitoken", "authtoken", "bearer", "credentials"})
_SPACE = " \t\r\n"
# Every name secret_field or _ip_field accepts contains one of these, once lower-cased without _ and -.
_MARKERS = ("key", "secret", '"k"', "k=", "authorization", "passw", "token", "bearer", "credentials", '"ip"', "ip=")


@lru_cache(maxsize=4096)  # field names repeat from event to event
def secret_field(name: str) -> bool:
    """True for a field whose value is a credential: ``k``, any ``...key`` (writeKey, apiKey), Authorization ..."""
    folded = name.lower().replace("_", "").replace("-", "")
    return folded in _SECRET_NAMES or folded.endswith("key") or folded.endswith("secret")


def _ip_field(name: str) -> bool:
    return name.lower() == "ip"


@dataclass(frozen=True)
class Redactor:
    """Redacts one deployment's secrets and treats IP addresses (``ip_mode``) in dead-letter payloads."""

    secrets: tuple[str, ...] = ()  # every form of every configured secret, longest first
    ip_mode: str = "truncate"

    @classmethod
    def of(cls, secrets: Iterable[str], ip_mode: str) -> Redactor:
        """A redactor for these secret values (empty ones ignored) and the deployment's IP policy."""
        forms: set[str] = set()
        for secret in filter(None, secrets):
            basic = base64.b64encode(f"{secret}:".encode()).decode()  # an HTTP Basic credential
            forms.update((secret, quote(secret, safe=""), quote_plus(secret), basic, basic.rstrip("=")))
        return cls(tuple(sorted(forms, key=len, reverse=True)), ip_mode)

    def payload(self, event: Any, endpoint: str, limit: int | None = None) -> str:
        """The text a dead letter keeps of a refused event (an object) or request (its text).

        With ``limit`` (the characters the caller keeps), a longer text is cut before it is cleaned, with a
        margin so that no secret is cut in two at the limit; the caller cuts the result at ``limit``.
        """
        if isinstance(event, str) and limit is not None and len(event) > limit + CUT_MARGIN:
            event = event[:limit + CUT_MARGIN]  # no longer JSON: cleaned as text, at a bounded cost
        if not isinstance(event, str):
            text = self._dumps(event)
        elif not _may_name_a_field(event):
            text = event
        else:
            parsed = _parsed(event)
            if isinstance(parsed, dict | list):
                text = self._dumps(parsed)
            elif endpoint in QUERY_ENDPOINTS:
                text = self._query(event, with_path=endpoint == "link")
            else:
                text = self._pairs(event)
        return self._secrets(text)

    def clean(self, value: Any, depth: int = 0) -> Any:
        """A copy of a JSON value with key-like fields redacted and ``ip`` fields treated."""
        if depth > MAX_DEPTH:
            return "[nested too deep]"
        if isinstance(value, dict):
            cleaned: dict[Any, Any] = {}
            for name, item in value.items():
                key = str(name)
                if secret_field(key):
                    cleaned[name] = REDACTED
                elif _ip_field(key) and isinstance(item, str):
                    cleaned[name] = anonymise_ip(item, self.ip_mode)
                else:
                    cleaned[name] = self.clean(item, depth + 1)
            return cleaned
        if isinstance(value, list):
            return [self.clean(item, depth + 1) for item in value]
        return value

    def _dumps(self, value: Any) -> str:
        """A JSON value as compact JSON text, cleaned (walked only when its text may name such a field)."""
        try:
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            text = None
        if text is not None and not _may_name_a_field(text):
            return text
        cleaned = self.clean(value)
        try:
            return orjson.dumps(cleaned, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return repr(cleaned)

    def _secrets(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _query(self, text: str, *, with_path: bool) -> str:
        """A query string (or ``path?query``) with key-like parameters redacted and ``ip`` treated."""
        head, sep, query = text.partition("?") if with_path else ("", "", text)
        fields = []
        for field in query.split("&"):
            raw_name, eq, raw_value = field.partition("=")
            name = unquote_plus(raw_name)
            if eq and secret_field(name):
                field = f"{raw_name}={REDACTED}"
            elif eq and _ip_field(name):
                field = f"{raw_name}={quote_plus(anonymise_ip(unquote_plus(raw_value), self.ip_mode))}"
            fields.append(field)
        return head + sep + "&".join(fields)

    def _pairs(self, text: str) -> str:
        """Text that is not JSON (truncated, malformed): the values of ``"name": value`` pairs it holds."""
        parts: list[str] = []
        done = 0
        for name, start, end in _pairs(text):
            if secret_field(name):
                parts += (text[done:start], f'"{REDACTED}"')
            elif _ip_field(name) and text.startswith('"', start):
                parts += (text[done:start], orjson.dumps(anonymise_ip(text[start + 1:end - 1], self.ip_mode)).decode())
            else:
                continue
            done = end
        parts.append(text[done:])
        return "".join(parts)


def _may_name_a_field(text: str) -> bool:
    """False when no field name in the text can be a credential or ``ip`` (cheap: spares the walk)."""
    folded = text.lower().replace("_", "").replace("-", "")
    return any(marker in folded for marker in _MARKERS)


def _parsed(text: str) -> Any:
    """The JSON value of a text that is an object or an array, else None."""
    if not text.lstrip(_SPACE).startswith(("{", "[")):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _string_end(text: str, start: int) -> int:
    """The index after the JSON string opening at ``start`` (its closing quote), or the text's end if open."""
    index = start + 1
    while True:
        quote_at = text.find('"', index)
        if quote_at < 0:
            return len(text)
        backslashes = 0
        while text[quote_at - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return quote_at + 1
        index = quote_at + 1


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _pairs(text: str) -> Iterator[tuple[str, int, int]]:
    """``(name, value start, value end)`` of each ``"name": value`` in a text, JSON or a broken part of it.

    A value is a string (to its closing quote, or the text's end) or a scalar up to the next ``,``, ``}``,
    ``]`` or line end; the pairs inside an object or array value come after it.
    """
    index = text.find('"')
    while 0 <= index < len(text):
        name_end = _string_end(text, index)
        colon = _skip_space(text, name_end)
        if colon >= len(text) or text[colon] != ":":
            index = text.find('"', name_end)
            continue
        name = text[index + 1:name_end - 1]
        start = _skip_space(text, colon + 1)
        if text.startswith(("{", "["), start):  # an object or array: its own pairs come next
            index = text.find('"', start)
            continue
        if text.startswith('"', start):
            end = _string_end(text, start)
        else:
            end = start
            while end < len(text) and text[end] not in ",}]\r\n":
                end += 1
        if end > start:
            yield name, start, end
        index = text.find('"', end)

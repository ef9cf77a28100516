"""Safe destinations: allow-listed hosts only, and no private, loopback or link-local address unless allowed.

The host is checked against REISE_TRIGGER_HOSTS at start (collector.triggers.config) and by the deliverer
before requests (the verdict of a host, which depends on the settings alone, is kept). Names are resolved
by ``SafeResolver`` when the HTTP client (collector.triggers.http) opens a connection, which drops every
address that is not public (unless REISE_TRIGGER_ALLOW_PRIVATE); the connection goes to an address it
kept, so a name cannot be re-pointed at an internal address between a check and the connection. Redirects
are never followed (the deliverer parks a 3xx answer).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from collector.errors import ReiseError
from collector.triggers.config import host_allowed

__all__ = ["DestinationRefused", "PrivateAddress", "SafeResolver", "check_destination", "public_address"]


class DestinationRefused(ReiseError):
    """A webhook destination is not allowed: host not on the allow-list, or a private address."""


def public_address(address: str) -> bool:
    """True for an address on the public internet (not private, loopback, link-local, reserved, multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_destination(host: str, allowed_hosts: Sequence[str], *, allow_private: bool) -> None:
    """Raise DestinationRefused unless the host may be sent to (an IP literal must also be public)."""
    if not host_allowed(host, allowed_hosts):
        raise DestinationRefused(f"destination refused: {host!r} is not in REISE_TRIGGER_HOSTS")
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: SafeResolver checks what it resolves to
    if not allow_private and not public_address(str(literal)):
        raise DestinationRefused(f"destination refused: {host} is a private or loopback address "
                                 "(REISE_TRIGGER_ALLOW_PRIVATE is off)")


class PrivateAddress(OSError):
    """A name resolves only to addresses that may not be connected to (an OSError, as resolvers raise)."""


class SafeResolver(AbstractResolver):
    """Resolves names like the default resolver, then drops addresses that are not public unless allowed."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        """The host's addresses that may be connected to; DestinationRefused (an OSError for aiohttp) if none."""
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if self._allow_private or public_address(r["host"])]
        if not kept:
            raise PrivateAddress(f"destination refused: {host} resolves only to private or loopback addresses "
                          "(REISE_TRIGGER_ALLOW_PRIVATE is off)")
        return kept

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()

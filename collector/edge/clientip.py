"""The client's address: the connection's peer, or what trusted proxies say it was (REISE_TRUSTED_PROXIES).

``X-Forwarded-For`` and ``Forwarded`` are read only when the peer itself is a trusted proxy; the chain is
walked from the right (the hop nearest to us) past trusted proxies, and the first untrusted address is the
client. Addresses are parsed with ``ipaddress``; anything unparsable ends the walk.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from multidict import CIMultiDictProxy

__all__ = ["Network", "client_address", "forwarded_hops", "is_prefetch", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 192.168.1.5, ::1`` as networks (a bare address is its own /32 or /128); ValueError if bad."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def _address(text: str) -> _Address | None:
    """An address from a header hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443``, ``"..."``; None if bad."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_hops(headers: CIMultiDictProxy[str]) -> list[str]:
    """The client chain the proxies reported, leftmost first: ``Forwarded`` ``for=`` values, else X-Forwarded-For."""
    forwarded = headers.getall("Forwarded", [])
    if forwarded:
        hops = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    hops.append(value)
        return hops
    return [hop for hop in ",".join(headers.getall("X-Forwarded-For", [])).split(",") if hop.strip()]


def _trusted(address: _Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def client_address(peer: str | None, headers: CIMultiDictProxy[str], proxies: Sequence[Network]) -> str:
    """The client's address (see the module's docstring); "" when the connection has none (a Unix socket)."""
    if not peer:
        return ""
    if not proxies:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, proxies):
        return peer
    for hop in reversed(forwarded_hops(headers)):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


_PREFETCH_HEADERS = ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")


def is_prefetch(headers: CIMultiDictProxy[str]) -> bool:
    """Whether the request says it is a prefetch or preview (a browser's or a mail client's, not a person's)."""
    for name in _PREFETCH_HEADERS:
        value = headers.get(name)
        if value is not None and ("prefetch" in value.lower() or "preview" in value.lower()):
            return True
    return False

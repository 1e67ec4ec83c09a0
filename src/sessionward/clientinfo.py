"""Who the client is: its IP and User-Agent, believing proxies only when configured.

The IP comes from the socket. Only when the socket peer belongs to a configured trusted
proxy network are ``Forwarded`` / ``X-Forwarded-For`` read, and then the rightmost hop
that is not itself a trusted proxy is the client: everything left of it could have been
written by the client. Anyone else's forwarding headers are ignored, so they cannot be
used to spoof an address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sessionward.engine import ClientInfo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED_FOR = re.compile(r'for="?\[?([0-9A-Fa-f:.]+)\]?(?::\d+)?"?', re.IGNORECASE)


def client_info(scope: Mapping[str, Any], trusted_proxies: Iterable[Network]) -> ClientInfo:
    """Return the client's IP and User-Agent for an ASGI ``scope``."""
    user_agent = None
    forwarded: list[str] = []
    x_forwarded: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-for":
            x_forwarded.append(value.decode("latin-1"))
    peer = scope.get("client")
    ip = peer[0] if peer else None
    proxies = tuple(trusted_proxies)
    if ip is not None and proxies and _is_trusted(ip, proxies):
        hops = _hops(forwarded, x_forwarded)
        for hop in reversed(hops):
            if _parse(hop) is None:
                break  # a garbled hop: believe nothing to its left, keep the proxy's address
            if not _is_trusted(hop, proxies):
                ip = hop
                break
        else:
            if hops:
                ip = hops[0]
    return ClientInfo(ip=ip, user_agent=user_agent)


def _hops(forwarded: list[str], x_forwarded: list[str]) -> list[str]:
    hops: list[str] = []
    if forwarded:
        for header in forwarded:
            for element in header.split(","):
                match = _FORWARDED_FOR.search(element)
                hops.append(match.group(1) if match else "unknown")
    else:
        for header in x_forwarded:
            hops.extend(part.strip() for part in header.split(",") if part.strip())
    return hops


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(ip: str, proxies: tuple[Network, ...]) -> bool:
    address = _parse(ip)
    return address is not None and any(address in network for network in proxies)

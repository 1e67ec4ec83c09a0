"""Who the client is: its IP, User-Agent, scheme and host, believing proxies only when configured.

Rules, in order:

* The IP, scheme and host come from the socket and the request itself (``scope["client"]``,
  ``scope["scheme"]``, the ``Host`` header).
* Only when the socket peer belongs to a configured trusted proxy network are
  ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` read. Anyone
  else's forwarding headers are ignored, so they cannot be used to spoof an address.
* The hops are walked from the right: the rightmost hop that is not itself a trusted
  proxy is the client, because everything left of it could have been written by the
  client. A garbled hop (``unknown``, an obfuscated name, not an IP) stops the walk and
  nothing from the headers is believed. The scheme and host are taken from the same
  hop's ``proto=`` / ``host=`` (or the aligned ``X-Forwarded-Proto`` entry), i.e. from
  what the first trusted proxy saw of the client.
* When both ``Forwarded`` and ``X-Forwarded-For`` are present and name different
  clients, neither is believed: a proxy that writes only one of them passes the other
  through from the client unchecked, and no setting tells which one the proxy writes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sessionward.core.engine import ClientInfo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = frozenset({"http", "https"})
_WEB_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"(?:[A-Za-z0-9\-.]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_MAX_HOPS = 64


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where the client believes it sent the request.

    Attributes:
        client: The client's IP and User-Agent.
        scheme: ``http`` or ``https`` as the client used it (``ws``/``wss`` map to these).
        host: The ``Host`` the client addressed (lower-cased, with its port), if known.
    """

    client: ClientInfo
    scheme: str
    host: str | None

    @property
    def origin(self) -> str | None:
        """The serialized origin (``https://example.com``), default port left out."""
        if self.host is None:
            return None
        return normalize_origin(f"{self.scheme}://{self.host}")


@dataclass(frozen=True, slots=True)
class _Hop:
    address: str
    proto: str | None = None
    host: str | None = None


def client_info(scope: Mapping[str, Any], trusted_proxies: Iterable[Network]) -> ClientInfo:
    """Return the client's IP and User-Agent for an ASGI ``scope``."""
    proxies = tuple(trusted_proxies)
    peer = scope.get("client")
    ip: str | None = peer[0] if peer else None
    if ip is None or not proxies or not _is_trusted(ip, proxies):
        # No forwarding header is believed (the rules above): skip parsing them, this
        # runs on every request.
        user_agent = None
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":  # ASGI header names are lower-case
                user_agent = value.decode("latin-1")
        return ClientInfo(ip=ip, user_agent=user_agent)
    return request_origin(scope, proxies).client


def request_origin(scope: Mapping[str, Any], trusted_proxies: Iterable[Network]) -> RequestOrigin:
    """Return the client, scheme and host of an ASGI ``scope``, through trusted proxies only."""
    headers = _Headers(scope.get("headers", ()))
    peer = scope.get("client")
    ip: str | None = peer[0] if peer else None
    scheme = _WEB_SCHEMES.get(str(scope.get("scheme", "http")).lower(), "http")
    host = _clean_host(headers.host[0]) if len(headers.host) == 1 else None
    proxies = tuple(trusted_proxies)
    if ip is not None and proxies and _is_trusted(ip, proxies):
        hop = _client_hop(headers, proxies)
        if hop is not None:
            ip = _canonical(hop.address) if hop.address else ip
            if hop.proto is not None and hop.proto.lower() in _SCHEMES:
                scheme = hop.proto.lower()
            if hop.host is not None and _clean_host(hop.host) is not None:
                host = _clean_host(hop.host)
    user_agent = headers.user_agent[-1] if headers.user_agent else None
    return RequestOrigin(ClientInfo(ip=ip, user_agent=user_agent), scheme, host)


def normalize_origin(text: str) -> str | None:
    """Return ``scheme://host[:port]`` lower-cased with the default port left out.

    Returns ``None`` for anything that is not an http(s) origin, including ``null``.
    """
    scheme, sep, rest = text.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        return None
    host = _clean_host(rest)
    if host is None:
        return None
    name, port = _split_port(host)
    if port is not None and port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{name}"
    return f"{scheme}://{host}"


class _Headers:
    """The few request headers this module reads, each list in arrival order."""

    __slots__ = ("forwarded", "host", "user_agent", "x_forwarded_for", "x_forwarded_host", "x_forwarded_proto")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.forwarded: list[str] = []
        self.host: list[str] = []
        self.user_agent: list[str] = []
        self.x_forwarded_for: list[str] = []
        self.x_forwarded_host: list[str] = []
        self.x_forwarded_proto: list[str] = []
        for name, value in raw:
            target = _WANTED.get(name.lower())
            if target is not None:
                getattr(self, target).append(value.decode("latin-1"))


_WANTED = {
    b"forwarded": "forwarded",
    b"host": "host",
    b"user-agent": "user_agent",
    b"x-forwarded-for": "x_forwarded_for",
    b"x-forwarded-host": "x_forwarded_host",
    b"x-forwarded-proto": "x_forwarded_proto",
}


def _client_hop(headers: _Headers, proxies: tuple[Network, ...]) -> _Hop | None:
    if not headers.forwarded and not headers.x_forwarded_for:
        if not headers.x_forwarded_proto and not headers.x_forwarded_host:
            return None
        # A proxy that forwards the scheme but not the address: the peer is the client
        # as far as we can tell, and the nearest (trusted) proxy's entries count.
        protos, hosts = _list(headers.x_forwarded_proto), _list(headers.x_forwarded_host)
        return _Hop("", protos[-1] if protos else None, hosts[-1] if hosts else None)
    forwarded = _walk(_forwarded_hops(headers.forwarded), proxies) if headers.forwarded else None
    x_forwarded = _walk(_x_forwarded_hops(headers), proxies) if headers.x_forwarded_for else None
    if headers.forwarded and headers.x_forwarded_for:
        # One of the two may have come from the client untouched: believe them only
        # when they agree about who the client is.
        if forwarded is None or x_forwarded is None:
            return None
        if _canonical(forwarded.address) != _canonical(x_forwarded.address):
            return None
    return forwarded or x_forwarded


def _walk(hops: list[_Hop], proxies: tuple[Network, ...]) -> _Hop | None:
    if not hops or len(hops) > _MAX_HOPS:
        return None
    for hop in reversed(hops):
        if _parse_address(hop.address) is None:
            return None  # a garbled hop: believe nothing to its left, keep the proxy's facts
        if not _is_trusted(hop.address, proxies):
            return hop
    return hops[0]  # every hop is a proxy of ours: the leftmost one originated the request


def _forwarded_hops(values: list[str]) -> list[_Hop]:
    hops: list[_Hop] = []
    for header in values:
        for element in _split_outside_quotes(header, ","):
            params: dict[str, str] = {}
            for pair in _split_outside_quotes(element, ";"):
                name, sep, value = pair.partition("=")
                if sep:
                    params[name.strip().lower()] = _unquote(value.strip())
            hops.append(_Hop(params.get("for", "unknown"), params.get("proto"), params.get("host")))
    return hops


def _x_forwarded_hops(headers: _Headers) -> list[_Hop]:
    addresses = _list(headers.x_forwarded_for)
    protos = _list(headers.x_forwarded_proto)
    hosts = _list(headers.x_forwarded_host)
    hops: list[_Hop] = []
    for index, address in enumerate(addresses):
        hops.append(_Hop(address, _aligned(protos, index, len(addresses)), _aligned(hosts, index, len(addresses))))
    return hops


def _aligned(values: list[str], index: int, count: int) -> str | None:
    # Proxies that append keep one entry per hop; those that overwrite keep one entry,
    # written by the nearest proxy, which is trusted.
    if not values:
        return None
    if len(values) == count:
        return values[index]
    return values[-1]


def _list(values: list[str]) -> list[str]:
    return [part.strip() for header in values for part in header.split(",") if part.strip()]


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _strip_port(text: str) -> str:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    if text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        return text.split(":", 1)[0]
    return text


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(_strip_port(text))
    except ValueError:
        return None


def _canonical(text: str) -> str:
    address = _parse_address(text)
    return str(address) if address is not None else text


def _is_trusted(ip: str, proxies: tuple[Network, ...]) -> bool:
    address = _parse_address(ip)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in proxies)


def _clean_host(text: str) -> str | None:
    host = text.strip().lower().rstrip("/")
    if not host or len(host) > 255 or _HOST.fullmatch(host) is None:
        return None
    return host


def _split_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        return host[: end + 1], int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.partition(":")
    return name, int(port) if sep else None

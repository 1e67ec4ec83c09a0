"""Binding a session to its client: what is stored, and how a request is judged.

A binding is a fingerprint of the client attributes the policy names — the User-Agent,
the exact IP, or the IP's network (``/24`` for IPv4, ``/64`` for IPv6 by default) — taken
when the session is created or a user logs in, and compared on every later request. A
cookie stolen and replayed from another browser or network then no longer fits.

Rules:

* Each attribute is hashed on its own with SHA-256 over a canonical, domain-separated
  string, and stored as ``label:hexdigest`` parts joined by ``;``. One digest per
  attribute lets the audit log say *which* attribute changed without storing it twice.
  The label carries the settings that shaped the value (``ip_prefix/24/64``), so a
  changed policy is recognised as such rather than as an attack.
* Digests are compared with :func:`hmac.compare_digest`, every one of them, so timing
  says nothing about which part differed.
* A session with no binding, or one made under other binding settings, is *unbound*:
  the attributes both settings name must still match, and it is then bound afresh to the
  current client (trust on first use) instead of being ended, so turning binding on or
  changing its mode logs nobody out.

This module is pure: no I/O, no clock, no framework.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from sessionward.core.config import BindingPolicy

_DOMAIN = b"sessionward-binding-v1"
_MAX_PARTS = 8


class BindingCheck(StrEnum):
    """How a request's client compares with its session's binding."""

    OFF = "off"
    """Binding is not configured; nothing is compared."""
    MATCH = "match"
    """Every bound attribute is the same."""
    MISMATCH = "mismatch"
    """At least one bound attribute differs: a replayed cookie, or a moved client."""
    UNBOUND = "unbound"
    """The session has no binding under the current settings: bind it now."""


@dataclass(frozen=True, slots=True)
class BindingResult:
    """The verdict of :func:`check_binding`.

    Attributes:
        check: Match, mismatch, unbound or off.
        mismatched: The attributes that differ (``user_agent``, ``ip``, ``ip_prefix``).
        binding: For ``UNBOUND``: the binding to store for the current client.
    """

    check: BindingCheck
    mismatched: tuple[str, ...] = ()
    binding: str | None = None

    @property
    def reason(self) -> str:
        """The differing attributes as one reason code, e.g. ``user_agent+ip_prefix``."""
        return "+".join(self.mismatched) or self.check.value


def compute_binding(policy: BindingPolicy, *, ip: str | None, user_agent: str | None) -> str | None:
    """Return the binding to store for a client, or ``None`` when binding is off.

    Args:
        policy: Which attributes to bind.
        ip: The client IP as :mod:`sessionward.core.clientinfo` resolved it.
        user_agent: The client's User-Agent header, untruncated.
    """
    parts = _parts(policy, ip=ip, user_agent=user_agent)
    if not parts:
        return None
    return ";".join(f"{label}:{_digest(label, value)}" for label, _attribute, value in parts)


def check_binding(
    policy: BindingPolicy, stored: str | None, *, ip: str | None, user_agent: str | None
) -> BindingResult:
    """Compare a request's client with the binding stored in its session.

    Args:
        policy: The binding settings in force.
        stored: The session's stored binding (``SessionMeta.binding``).
        ip: The request's client IP.
        user_agent: The request's User-Agent header.
    """
    parts = _parts(policy, ip=ip, user_agent=user_agent)
    if not parts:
        return BindingResult(BindingCheck.OFF)
    recorded = _parse(stored) or {}
    mismatched = [
        attribute
        for label, attribute, value in parts
        # Every recorded part is compared (no short-circuit) and in constant time.
        if label in recorded
        and not hmac.compare_digest(recorded[label].encode("ascii"), _digest(label, value).encode("ascii"))
    ]
    if mismatched:
        return BindingResult(BindingCheck.MISMATCH, mismatched=tuple(mismatched))
    if set(recorded) != {label for label, _attribute, _value in parts}:
        # Bound under other settings (or not at all): what could be compared matched,
        # so bind afresh to everything the policy now names.
        fresh = ";".join(f"{label}:{_digest(label, value)}" for label, _attribute, value in parts)
        return BindingResult(BindingCheck.UNBOUND, binding=fresh)
    return BindingResult(BindingCheck.MATCH)


@functools.lru_cache(maxsize=4096)  # the same clients come back; parsing an IP is the cost here
def network_of(ip: str | None, ipv4_prefix: int, ipv6_prefix: int) -> str:
    """Return the network an IP belongs to (``203.0.113.0/24``), or the text as given.

    An IPv4-mapped IPv6 address counts as the IPv4 address it maps, so a dual-stack
    server sees one client the same way on either socket family. Text that is not an IP
    (a test client's name, a UNIX socket) is kept whole; no IP is the empty string.
    """
    if ip is None:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = ipv4_prefix if isinstance(address, ipaddress.IPv4Address) else ipv6_prefix
    bits = address.max_prefixlen
    network = int(address) >> (bits - prefix) << (bits - prefix)
    return f"{type(address)(network)}/{prefix}"


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str | None) -> str:
    if ip is None:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _parts(policy: BindingPolicy, *, ip: str | None, user_agent: str | None) -> list[tuple[str, str, str]]:
    """Return ``(label, attribute, canonical value)`` for each bound attribute."""
    parts: list[tuple[str, str, str]] = []
    if policy.user_agent:
        parts.append(("ua", "user_agent", user_agent or ""))
    if policy.ip:
        parts.append(("ip", "ip", _canonical_ip(ip)))
    if policy.ip_prefix:
        label = f"ip_prefix/{policy.ipv4_prefix}/{policy.ipv6_prefix}"
        parts.append((label, "ip_prefix", network_of(ip, policy.ipv4_prefix, policy.ipv6_prefix)))
    return parts


def _digest(label: str, value: str) -> str:
    # Domain separation and NUL delimiters keep one attribute's value from ever hashing
    # like another's (header values cannot hold NUL).
    material = b"\x00".join((_DOMAIN, label.encode("ascii"), value.encode("utf-8", "surrogateescape")))
    return hashlib.sha256(material).hexdigest()


def _parse(stored: str | None) -> dict[str, str] | None:
    if not stored:
        return None
    recorded: dict[str, str] = {}
    pieces = stored.split(";")
    if len(pieces) > _MAX_PARTS:
        return None
    for piece in pieces:
        label, sep, digest = piece.rpartition(":")
        if not sep or not label or len(digest) != 64 or not digest.isascii():
            return None
        recorded[label] = digest
    return recorded

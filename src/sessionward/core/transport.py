"""Tell when the session cookie is set where the client will never send it back.

A ``Secure`` cookie (the default, and every ``__Host-`` cookie) is sent back only over
HTTPS. Browsers make one exception, for ``http://localhost`` and loopback addresses,
which they count as secure contexts; other clients make none: ``httpx``, ``requests``
and Starlette's ``TestClient`` keep the cookie and never return it over ``http://``.
Such a client signs in, and its next request is anonymous, without an error anywhere.

So when a response sets a Secure cookie on a request that came over plain HTTP, from a
client that is not on loopback and did not address a loopback host, a warning says so
once per middleware, with the ways out: serve HTTPS; behind a proxy that
terminates TLS, trust its ``X-Forwarded-Proto`` (``SESSIONWARD_TRUSTED_PROXIES``); for
local development or tests, a cookie that is not Secure (``SESSIONWARD_COOKIE_SECURE=false``
or :func:`sessionward.testing.plain_http_policy`). The scheme, client and host are those
:func:`~sessionward.core.clientinfo.request_origin` reads, through trusted proxies only.

The decision is :func:`secure_cookie_lost`; the ASGI and WSGI middlewares each hold a
:class:`PlainHttpNotice` and hand it the requests whose responses set the cookie.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from sessionward.core.clientinfo import RequestOrigin, request_origin
from sessionward.core.config import CookiePolicy, SessionPolicy

logger = logging.getLogger("sessionward")


def secure_cookie_lost(cookie: CookiePolicy, origin: RequestOrigin) -> bool:
    """Tell whether the session cookie, set in answer to ``origin``, will never come back.

    Args:
        cookie: The session cookie's attributes.
        origin: Where the client sent the request (scheme, client address, host).

    Returns:
        ``True`` for a Secure cookie set over plain HTTP to a client that is not on
        loopback and did not address a loopback host.
    """
    if not cookie.secure or origin.scheme != "http":
        return False
    return not (_is_loopback_address(origin.client.ip) or _is_loopback_host(origin.host))


class PlainHttpNotice:
    """Warns, once, that the session cookie goes out over plain HTTP and will not come back.

    One per middleware instance; checking costs nothing once the warning was given or
    when the cookie is not Secure.
    """

    __slots__ = ("given",)

    def __init__(self) -> None:
        self.given = False
        """Whether the warning was logged already."""

    def check(self, policy: SessionPolicy, scope: Mapping[str, Any]) -> None:
        """Check a request whose response sets the session cookie (an ASGI-style ``scope``).

        Args:
            policy: The session policy (its cookie and trusted proxies).
            scope: The request: ``scheme``, ``client`` and ``headers`` are read.
        """
        if self.given or not policy.cookie.secure:
            return
        origin = request_origin(scope, policy.trusted_proxies)
        if not secure_cookie_lost(policy.cookie, origin):
            return
        self.given = True
        logger.warning(
            "the session cookie %s is Secure but was set over plain HTTP (a request to %s): clients send "
            "Secure cookies back only over HTTPS (browsers also to localhost), so every request after "
            "this one will look anonymous. Serve HTTPS; behind a proxy that terminates TLS, list it in "
            "SESSIONWARD_TRUSTED_PROXIES so that its X-Forwarded-Proto is believed; for local development "
            "or tests, set SESSIONWARD_COOKIE_SECURE=false or use sessionward.testing.plain_http_policy() "
            "(or a test client with an https:// base URL). This warning is given once.",
            policy.cookie.cookie_name,
            origin.host or "an unknown host",
        )


def _is_loopback_address(ip: str | None) -> bool:
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False  # e.g. Starlette's TestClient names its client "testclient"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    # "[::1]:8000", "localhost:8000", "127.0.0.1" (request_origin lower-cased it).
    name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    name = name.removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback only
    return _is_loopback_address(name)

"""Parse the ``Cookie`` header and build ``Set-Cookie`` (F3, F4).

Parsing is linear in the header's length and bounded: it looks only for the session
cookie's exact name and never percent-decodes, trims Unicode space or case-folds names,
so ``__%48ost-sid`` or ``__host-sid`` are never taken for ``__Host-sid``. Several
``Cookie`` headers are read as one. The caller decides what two different values mean
(they fail closed: no session).

:func:`build_set_cookie` is the one place a ``Set-Cookie`` value is made; it refuses any
character that could end the header or add an attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sessionward.config import CookiePolicy

MAX_COOKIE_HEADER_BYTES = 16 * 1024
"""Cookie headers longer than this (together) are not parsed at all."""

MAX_SET_COOKIE_BYTES = 4096

_VALUE_PATTERN = re.compile(r"[!#-+\--:<-\[\]-~]*")  # RFC 6265 cookie-octet


def session_cookie_values(headers: Iterable[bytes], name: str | bytes) -> list[bytes]:
    """Return every value sent for the cookie ``name``, in order, as raw bytes.

    Args:
        headers: The raw values of every ``Cookie`` header of the request.
        name: The session cookie's name (ASCII), matched byte for byte.

    Returns:
        The values found; an empty list if none, or if the headers are oversized.
    """
    wanted = name if isinstance(name, bytes) else name.encode("ascii")
    values: list[bytes] = []
    total = 0
    for header in headers:
        total += len(header)
        if total > MAX_COOKIE_HEADER_BYTES:
            return []
        for pair in header.split(b";"):
            cookie_name, sep, value = pair.partition(b"=")
            if sep and cookie_name.strip(b" \t") == wanted:
                values.append(value.strip(b" \t"))
    return values


def build_set_cookie(policy: CookiePolicy, value: str, *, expire: bool = False) -> str:
    """Build the value of a ``Set-Cookie`` header for the session cookie.

    Args:
        policy: The cookie attributes.
        value: The session ID to send; ignored when ``expire`` is true.
        expire: Clear the cookie in the browser instead of setting it.

    Raises:
        ValueError: if ``value`` holds a character that is not a cookie-octet, or the
            header would exceed 4096 bytes.
    """
    if expire:
        value = ""
    elif _VALUE_PATTERN.fullmatch(value) is None:
        raise ValueError("a session cookie value must hold only RFC 6265 cookie-octets")
    parts = [f"{policy.cookie_name}={value}", f"Path={policy.path}"]
    if policy.domain is not None:
        parts.append(f"Domain={policy.domain}")
    if expire:
        parts.append("Max-Age=0")
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    elif policy.max_age_s is not None:
        parts.append(f"Max-Age={int(policy.max_age_s)}")
    if policy.secure:
        parts.append("Secure")
    if policy.http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={policy.same_site.capitalize()}")
    header = "; ".join(parts)
    if len(header) > MAX_SET_COOKIE_BYTES:
        raise ValueError("the Set-Cookie header would exceed 4096 bytes")
    return header

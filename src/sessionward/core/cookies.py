"""Parse the ``Cookie`` header and build ``Set-Cookie``.

Parsing is linear in the header's length and bounded: it looks only for the session
cookie's exact name and never percent-decodes, trims Unicode space or case-folds names,
so ``__%48ost-sid`` or ``__host-sid`` are never taken for ``__Host-sid``. Several
``Cookie`` headers are read as one, also when a WSGI server joined them with commas into
one ``HTTP_COOKIE`` (:func:`split_joined_cookie_header`). The caller decides what two
different values mean (they fail closed: no session).

:func:`build_set_cookie` is the one place a ``Set-Cookie`` value is made; it refuses any
character that could end the header or add an attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sessionward.core.config import CookiePolicy

MAX_COOKIE_HEADER_BYTES = 16 * 1024
"""Cookie headers longer than this (together) are not parsed at all: the request has no session.

Not a 431: an oversized cookie is bad input like a malformed one (no session, no store
access), and the library cannot know the limits of the server in front of it, which may
allow bigger heads for reasons of its own. Refusing oversize heads is the server's job
(the demo's server does it: :mod:`sessionward.demo.server`)."""

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


def split_joined_cookie_header(header: bytes) -> list[bytes]:
    """Split the one ``Cookie`` value of WSGI back into the headers a server joined.

    WSGI gives one ``HTTP_COOKIE``; gunicorn and Werkzeug's server join repeated headers
    with ``","`` (Werkzeug's test client with ``", "``), so the two headers ``a=1`` and
    ``sid=X`` arrive as ``a=1,sid=X``, which read as one header is a cookie ``a`` worth
    ``1,sid=X`` and no session cookie. Every comma is taken for a header boundary here;
    :func:`session_cookie_values` trims the space after it and still matches names exactly.

    A comma may also sit inside another cookie's value (``prefs=dark,compact``: not an
    RFC 6265 cookie-octet, but browsers store it), and the two readings cannot be told
    apart by their bytes. Why the text after such a comma can never be read as the session
    cookie to an attacker's gain:

    * Splitting only ever *adds* readings of a name. Whatever a single-header reading
      finds is still found (cut at a comma, which no session ID holds), so a planted
      ``lang=en,sid=A`` can never hide or replace the real cookie: it is read beside it.
    * Beside a real session cookie, a planted value that differs is a conflict, which
      fails closed (no session, no store access: :meth:`~sessionward.core.engine.SessionEngine.read_cookie`).
      Losing the session for that request is all it achieves, and whoever can plant
      cookies can do that anyway, by pushing the headers past :data:`MAX_COOKIE_HEADER_BYTES`.
    * With no session cookie, the planted ID must be a live session that the attacker
      holds (an unknown ID is refused, never adopted). To plant it they need to set a
      cookie in the victim's browser for this site, and with that they can set ``sid``
      itself: nothing gained. Only a ``__Host-``/``__Secure-`` name, which a sibling
      domain or a plain-HTTP attacker cannot set directly, is newly reachable, and only
      for an anonymous session: login issues a new ID, and from then on the planted
      value conflicts with the real cookie and fails closed, so the attacker never holds
      a session the victim is signed in to. (Unless ``login.fixation`` is ``none``, a
      setting already open to fixation and warned about at start-up.)

    A header over :data:`MAX_COOKIE_HEADER_BYTES` is returned whole, so that it is still
    refused as a whole.

    Args:
        header: The raw ``HTTP_COOKIE`` value (latin-1 encoded).

    Returns:
        The header values, in order.
    """
    if b"," not in header or len(header) > MAX_COOKIE_HEADER_BYTES:
        return [header]
    return header.split(b",")


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

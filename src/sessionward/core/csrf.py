"""Cross-site request forgery rules: every decision, as pure functions over plain values.

The ASGI and WSGI middlewares (:mod:`sessionward.asgi.csrf`, :mod:`sessionward.wsgi`)
only translate a request into the values these functions read (method, path, a header
mapping, the body's bytes, the session's token) and a refusal into a response. The
rules, two layers:

1. **Where the request comes from**, on every unsafe request (anything but GET, HEAD,
   OPTIONS, TRACE) and on WebSocket handshakes (cross-site WebSocket hijacking):
   :func:`origin_refusal`. Browsers say where a request comes from in headers a page
   cannot forge. ``Sec-Fetch-Site: same-origin`` or ``none`` (the user's own action)
   passes; ``cross-site`` and ``same-site`` are refused unless the ``Origin`` is a
   trusted origin. Without Fetch Metadata (older browsers) the ``Origin`` must equal the
   request's own origin (scheme and host as the client used them, through trusted
   proxies only); ``Origin: null`` never does. A request with neither header does not
   come from a browser, so it carries no ambient cookie an attacker could borrow, and
   passes. This follows the algorithm of Go's ``http.CrossOriginProtection``.
2. **A synchronizer token** for what an HTML form can send cross-site without a
   preflight (``application/x-www-form-urlencoded``, ``multipart/form-data``,
   ``text/plain``): the ``csrf_token`` field, or the ``X-CSRF-Token`` header, must equal
   the token kept in the session, compared with :func:`hmac.compare_digest`
   (:func:`token_refusal`). It still holds where the first layer cannot: a browser that
   sends neither header, a proxy that strips them. JSON requests are covered by the
   first layer alone (a page cannot send JSON cross-origin without a CORS preflight).
   :func:`token_source` tells whether the token is wanted and where it is; the form
   body is read only when it is, bounded by :attr:`CsrfPolicy.max_body_bytes`.

A header sent more than once is never believed (:func:`single`): two ``Origin`` headers
are refused, two ``Sec-Fetch-Site`` headers read as none.

The token lives in the session's metadata, is made with :func:`secrets.token_urlsafe`,
and is replaced at every login, so a token learned before login is worthless after.
Templates get it from :func:`csrf_token`. A visitor without a session (the login form)
holds its token in a pre-session cookie instead (double submit: the form's token must
equal the cookie's), so that anonymous pages create no store record.

Every refusal is answered :func:`refusal_status` with :func:`refusal_body`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from msgspec.structs import replace

from sessionward.core.config import CSRF_MAX_BODY_BYTES, Creation, CsrfPolicy, SessionPolicy
from sessionward.core.errors import SessionNotAvailableError
from sessionward.core.records import SessionMeta

__all__ = [
    "CSRF_MAX_BODY_BYTES",
    "FORM_FIELD",
    "FORM_TYPES",
    "HEADER",
    "MAX_TOKEN_BYTES",
    "SAFE_METHODS",
    "TOKEN_BYTES",
    "CsrfExchange",
    "CsrfSession",
    "HeaderMap",
    "TokenSource",
    "csrf_token",
    "declared_too_large",
    "expected_token",
    "form_token",
    "header_map",
    "must_check",
    "origin_refusal",
    "refusal_body",
    "refusal_status",
    "single",
    "token_refusal",
    "token_source",
]

FORM_FIELD = "csrf_token"
"""The form field that carries the token."""

HEADER = b"x-csrf-token"
"""The request header that may carry the token instead (scripts, large forms)."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that must not change anything, and are never checked."""

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
"""What an HTML form can send cross-site without a CORS preflight: these need the token."""

MAX_TOKEN_BYTES = 256
"""A longer token sent is refused before it is compared."""

TOKEN_BYTES = 32
"""Random bytes in a token (256 bits)."""

HeaderMap = Mapping[bytes, Sequence[bytes]]
"""A request's headers: lower-case name to every value sent under it, in order."""

_FORM_FIELD = FORM_FIELD.encode()
_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PART_NAME = re.compile(rb';\s*name="([^"]*)"', re.IGNORECASE)
_SITES = {"cross-site": "cross_site", "same-site": "same_site"}


# -- reading a request --------------------------------------------------------------------


def header_map(pairs: Iterable[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    """Return ``(name, value)`` pairs as a :data:`HeaderMap`, names lower-cased."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        found.setdefault(name.lower(), []).append(value)
    return found


def single(headers: HeaderMap, name: bytes) -> bytes | None:
    """Return the one value of header ``name``, or ``None`` when absent or repeated.

    A repeated header is never believed: which of its values a browser meant cannot be
    told, and a proxy may have added one.
    """
    values = headers.get(name)
    if not values or len(values) > 1:
        return None
    return values[0]


def must_check(policy: CsrfPolicy, method: str, path: str, *, websocket: bool = False) -> bool:
    """Tell whether a request is checked at all: an unsafe method or a WebSocket handshake, off the exempt paths."""
    if policy.exempts(path):
        return False
    return websocket or method.upper() not in SAFE_METHODS


# -- layer 1: where the request comes from ------------------------------------------------


def origin_refusal(headers: HeaderMap, *, own_origin: str | None, trusted_origins: frozenset[str]) -> str | None:
    """Return why an unsafe request's origin is refused, or ``None`` if it may pass.

    Args:
        headers: The request's headers.
        own_origin: The request's own origin, ``scheme://host[:port]`` as the client
            addressed it (through trusted proxies only); ``None`` when unknown, in which
            case only a trusted ``Origin`` passes the fallback.
        trusted_origins: Normalized origins allowed besides the request's own
            (:attr:`CsrfPolicy.trusted_origins`).

    Returns:
        ``cross_site``, ``same_site``, ``fetch_metadata_invalid``, ``origin_mismatch``,
        or ``None``.
    """
    # Imported here: the client-info module builds on the engine, which reads the config.
    from sessionward.core.clientinfo import normalize_origin

    fetch_site = single(headers, b"sec-fetch-site")
    site = fetch_site.decode("latin-1").strip().lower() if fetch_site is not None else None
    if site in ("same-origin", "none"):
        return None
    origin_header = single(headers, b"origin")
    origin = normalize_origin(origin_header.decode("latin-1")) if origin_header is not None else None
    if origin is not None and origin in trusted_origins:
        return None
    if site is not None:
        return _SITES.get(site, "fetch_metadata_invalid")
    if origin_header is None:
        if len(headers.get(b"origin", ())) > 1:
            return "origin_mismatch"
        return None  # neither header: not a browser, so no ambient cookie to abuse
    if origin is not None and own_origin is not None and hmac.compare_digest(origin, own_origin):
        return None
    return "origin_mismatch"  # includes Origin: null (sandboxed frames, data: URLs)


# -- layer 2: the synchronizer token ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where a request that needs the synchronizer token carries it.

    Attributes:
        header: The ``X-CSRF-Token`` header's value, if sent: then the body is not read.
        content_type: The request's ``Content-Type``, by which its body is parsed.
    """

    header: bytes | None
    content_type: str

    @property
    def needs_body(self) -> bool:
        """Tell whether the token is to be found in the body (no header carried it)."""
        return self.header is None

    def from_body(self, body: bytes) -> bytes | None:
        """Return the token of the form ``body``, or ``None`` if it holds none."""
        return form_token(body, self.content_type)


def token_source(headers: HeaderMap) -> TokenSource | None:
    """Return where the request carries its token, or ``None`` when it needs none.

    A request needs the token when it sends the ``X-CSRF-Token`` header (then the header
    is checked) or a body of a type an HTML form can send; other bodies (JSON…) are left
    to the origin check.
    """
    header = single(headers, HEADER)
    content_type = (single(headers, b"content-type") or b"").decode("latin-1")
    if header is None and _media_type(content_type) not in FORM_TYPES:
        return None
    return TokenSource(header, content_type)


def declared_too_large(headers: HeaderMap, limit: int) -> bool:
    """Tell whether the declared ``Content-Length`` is over ``limit`` or not a number (read nothing then)."""
    declared = single(headers, b"content-length")
    if declared is None:
        return False  # unknown: the body is read up to the limit and no further
    declared = declared.strip()
    return not declared.isdigit() or int(declared) > limit


def token_refusal(sent: bytes | None, expected: str | None) -> str | None:
    """Return why the token ``sent`` is refused against the session's ``expected`` one, or ``None``.

    Returns:
        ``token_missing``, ``token_mismatch`` or ``None``.
    """
    if sent is None:
        return "token_missing"
    if not expected or len(sent) > MAX_TOKEN_BYTES:
        return "token_mismatch"  # no token to match (never an empty one), or one not worth comparing
    # A comparison whose time does not depend on how much of the token is right.
    if not hmac.compare_digest(sent, expected.encode("ascii")):
        return "token_mismatch"
    return None


def form_token(body: bytes, content_type: str) -> bytes | None:
    """Return the ``csrf_token`` field of a form body of ``content_type``, or ``None``.

    Urlencoded, ``multipart/form-data`` and ``text/plain`` bodies are read; a field that
    is sent more than once yields its first value.
    """
    if _FORM_FIELD not in body:
        return None
    media_type = _media_type(content_type)
    if media_type == "multipart/form-data":
        return _multipart_field(body, content_type)
    if media_type == "text/plain":
        for line in body.splitlines():
            name, sep, value = line.partition(b"=")
            if sep and name == _FORM_FIELD:
                return value.strip()
        return None
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=10_000)
    except ValueError:
        return None
    for name, value in pairs:
        if name == _FORM_FIELD:
            return value
    return None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _multipart_field(body: bytes, content_type: str) -> bytes | None:
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                name = _PART_NAME.search(line)
                if name is not None and name.group(1) == _FORM_FIELD:
                    return content.removesuffix(b"\r\n")
    return None


# -- refusing ---------------------------------------------------------------------------------


def refusal_status(reason: str) -> int:
    """Return the HTTP status of a refusal: 413 for a form too large to read, else 403."""
    return 413 if reason == "form_too_large" else 403


def refusal_body(reason: str) -> dict[str, str]:
    """Return the JSON object a refusal is answered with."""
    return {"error": "csrf_refused", "reason": reason}


# -- the token of a session -------------------------------------------------------------------


class CsrfExchange(Protocol):
    """What the token needs of a request's exchange (the async and the sync one alike)."""

    csrf_pending: str | None
    """A token handed to a visitor without a session, to be sent in the pre-session cookie."""

    @property
    def policy(self) -> SessionPolicy:
        """The session policy."""
        ...

    @property
    def meta(self) -> SessionMeta | None:
        """The session's metadata as the request leaves it, or ``None`` without a session."""
        ...

    @property
    def csrf_cookie(self) -> str | None:
        """The visitor's token sent back in the pre-session cookie, if any."""
        ...

    def update_meta(self, meta: SessionMeta) -> None:
        """Replace the session's metadata (written when the response starts)."""
        ...


class CsrfSession(Protocol):
    """A request's session as :func:`csrf_token` reads it (``RequestSession``, async or sync)."""

    @property
    def exchange(self) -> CsrfExchange:
        """The request's exchange."""
        ...


def expected_token(exchange: CsrfExchange) -> str | None:
    """Return the token a request must send: the session's, or a visitor's pre-session cookie's."""
    meta = exchange.meta
    if meta is None:
        return exchange.csrf_cookie  # a visitor: double submit against the cookie
    return meta.csrf_token


def csrf_token(session: CsrfSession) -> str:
    """Return the session's CSRF token for a form, making one if it has none.

    A visitor without a session (the login form) gets a token in the pre-session CSRF
    cookie instead, checked by double submit, so rendering a form costs the store
    nothing; a session made later takes that token over, and login replaces it.

    Raises:
        SessionNotAvailableError: the creation policy ``stateless`` sets no cookie the
            token could live in.
    """
    exchange = session.exchange
    meta = exchange.meta
    if meta is not None:
        if meta.csrf_token:
            return meta.csrf_token
        token = secrets.token_urlsafe(TOKEN_BYTES)
        exchange.update_meta(replace(meta, csrf_token=token))
        return token
    if exchange.csrf_pending is not None:
        return exchange.csrf_pending
    if exchange.policy.creation is Creation.STATELESS:
        raise SessionNotAvailableError("creation policy 'stateless' sets no cookie, so no visitor's CSRF token")
    sent = exchange.csrf_cookie
    if sent is not None:
        return sent
    exchange.csrf_pending = secrets.token_urlsafe(TOKEN_BYTES)
    return exchange.csrf_pending

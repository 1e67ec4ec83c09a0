"""Cross-site request forgery protection (F15): an origin check, and a token for HTML forms.

Two layers, both in :class:`CsrfMiddleware`, a pure ASGI middleware placed *inside*
:class:`~sessionward.asgi.middleware.SessionMiddleware` (it reads the request's session)::

    app = SessionMiddleware(CsrfMiddleware(app, manager), manager)

1. **Origin check** on every unsafe request (anything but GET, HEAD, OPTIONS) and on
   WebSocket handshakes (cross-site WebSocket hijacking). Browsers say where a request
   comes from in headers a page cannot forge. ``Sec-Fetch-Site: same-origin`` or
   ``none`` (the user's own action) passes; ``cross-site`` and ``same-site`` are refused
   unless the ``Origin`` is a configured trusted origin. Without Fetch Metadata (older
   browsers) the ``Origin`` must equal the request's own origin — scheme and host as the
   client used them, through trusted proxies only. A request with neither header does
   not come from a browser, so it carries no ambient cookie an attacker could borrow,
   and passes. This follows the algorithm of Go's ``http.CrossOriginProtection``.
2. **Synchronizer token** for what an HTML form can send cross-site without a preflight
   (``application/x-www-form-urlencoded``, ``multipart/form-data``, ``text/plain``): the
   ``csrf_token`` field, or the ``X-CSRF-Token`` header, must equal the token kept in
   the session, compared with :func:`hmac.compare_digest`. It still holds where the
   first layer cannot: a browser that sends neither header, a proxy that strips them.
   JSON requests are covered by the origin check alone (a page cannot send JSON
   cross-origin without a CORS preflight), so scripts calling a JSON API need no token.
   The form body is read (bounded) to find the field and then replayed to the app.

The token lives in the session's metadata, is made with :func:`secrets.token_urlsafe`,
and is replaced at every login (the engine does it), so a token learned before login is
worthless after. Templates get it from :func:`csrf_token`. A visitor without a session
(the login form) holds its token in a pre-session cookie instead (double submit: the
form's token must equal the cookie's), so that anonymous pages create no store record.
That cookie takes the session cookie's ``__Host-`` prefix, which no sibling subdomain can
set, and ``SameSite=Strict``; the origin check above stays the first line.

Every refusal is a 403 JSON ``{"error": "csrf_refused", "reason": ...}`` and a
``csrf_refused`` event.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qsl

import orjson
from msgspec.structs import replace

from sessionward._sync.exchange import RequestSession as SyncRequestSession
from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.clientinfo import Network, normalize_origin, request_origin
from sessionward.core.config import Creation, path_matches
from sessionward.core.errors import ConfigError, SessionNotAvailableError
from sessionward.core.events import EventName
from sessionward.io.exchange import Exchange, RequestSession
from sessionward.io.manager import SessionManager

FORM_FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_TOKEN_BYTES = 256
TOKEN_BYTES = 32

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PART_NAME = re.compile(rb';\s*name="([^"]*)"', re.IGNORECASE)


def csrf_token(session: RequestSession | SyncRequestSession) -> str:
    """Return the session's CSRF token for a form, making one if it has none.

    A visitor without a session (the login form) gets a token in the pre-session CSRF
    cookie instead, checked by double submit, so rendering a form costs the store
    nothing; a session made later takes that token over, and login replaces it.

    Raises:
        SessionNotAvailableError: the creation policy (``never``, ``stateless``) forbids
            making the session the token would live in.
    """
    exchange = session.exchange
    record = exchange.record
    if record is not None:
        meta = exchange.meta_dirty or record.meta
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


class CsrfMiddleware:
    """Refuses cross-site unsafe requests and form posts without the session's token.

    Args:
        app: The wrapped application.
        manager: The session manager (for trusted proxies and events).
        trusted_origins: Other origins allowed to send unsafe requests, as
            ``scheme://host[:port]`` (e.g. a separate front-end's origin).
        exempt_paths: Paths never checked (exact, or prefixes when ending in ``/``),
            e.g. a webhook that authenticates by signature.
        max_body_bytes: The largest form body read to find the token; larger forms
            must send the ``X-CSRF-Token`` header (413 otherwise).

    Raises:
        ConfigError: for a malformed trusted origin or exempt path.
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: SessionManager,
        *,
        trusted_origins: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.manager = manager
        self.trusted_origins = frozenset(_trusted_origin(origin) for origin in trusted_origins)
        self.exempt_paths = tuple(exempt_paths)
        for path in self.exempt_paths:
            if not path.startswith("/"):
                raise ConfigError("csrf.exempt_paths", f"{path!r} must start with '/'")
        if max_body_bytes < 1024:
            raise ConfigError("csrf.max_body_bytes", "must be at least 1024 bytes")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._exempt(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if kind == "http" and scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        reason = self._origin_refusal(scope, headers)
        if reason is None and kind == "http":
            try:
                reason, receive = await self._token_refusal(scope, headers, receive)
            except _ClientGone:
                return  # never hand the app a truncated form it might act on
        if reason is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, reason)

    # -- layer 1: where the request comes from ----------------------------------------------

    def _origin_refusal(self, scope: Scope, headers: dict[bytes, list[bytes]]) -> str | None:
        return origin_refusal(scope, headers, self.trusted_origins, self.manager.policy.trusted_proxies)

    # -- layer 2: the synchronizer token ----------------------------------------------------

    async def _token_refusal(
        self, scope: Scope, headers: dict[bytes, list[bytes]], receive: Receive
    ) -> tuple[str | None, Receive]:
        header_token = _single(headers, HEADER)
        content_type = (_single(headers, b"content-type") or b"").decode("latin-1")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if header_token is None and media_type not in FORM_TYPES:
            return None, receive  # JSON and other non-form bodies: the origin check suffices
        sent = header_token
        if sent is None:
            declared = _single(headers, b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
                return "form_too_large", receive
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                return "form_too_large", receive
            receive = _replay(body, receive)
            sent = _form_token(body, media_type, content_type)
        return token_refusal(sent, _session_token(scope)), receive

    # -- refusing ---------------------------------------------------------------------------

    async def _refuse(self, scope: Scope, send: Send, reason: str) -> None:
        exchange = scope.get("sessionward")
        record = exchange.record if isinstance(exchange, Exchange) else None
        client = (
            exchange.client
            if isinstance(exchange, Exchange)
            else request_origin(scope, self.manager.policy.trusted_proxies).client
        )
        await self.manager.emit(
            EventName.CSRF_REFUSED,
            reason=reason,
            handle=record.handle if record else None,
            user=record.meta.user if record else None,
            client=client,
            path=scope.get("path"),
            method=scope.get("method", "GET"),
        )
        if scope["type"] == "websocket":
            # Closing before accepting answers the handshake with 403.
            await send({"type": "websocket.close", "code": 4403, "reason": "csrf_refused"})
            return
        status = 413 if reason == "form_too_large" else 403
        payload = orjson.dumps({"error": "csrf_refused", "reason": reason})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _exempt(self, path: str) -> bool:
        return path_matches(path, self.exempt_paths)


def origin_refusal(
    scope: Scope, headers: dict[bytes, list[bytes]], trusted_origins: frozenset[str], trusted_proxies: Iterable[Network]
) -> str | None:
    """Return why an unsafe request's origin is refused (layer 1), or ``None`` if it may pass.

    Shared by the ASGI middleware and :mod:`sessionward.wsgi`; ``scope`` needs only
    ``headers``, ``client`` and ``scheme`` (an ASGI scope, or one made from a WSGI environ).
    """
    fetch_site = _single(headers, b"sec-fetch-site")
    origin_header = _single(headers, b"origin")
    if fetch_site is not None:
        site = fetch_site.decode("latin-1").strip().lower()
        if site in ("same-origin", "none"):
            return None
    origin = normalize_origin(origin_header.decode("latin-1")) if origin_header is not None else None
    if fetch_site is not None:
        if origin is not None and origin in trusted_origins:
            return None
        return {"cross-site": "cross_site", "same-site": "same_site"}.get(site, "fetch_metadata_invalid")
    if origin_header is None:
        if _count(headers, b"origin") > 1:
            return "origin_mismatch"
        return None  # neither header: not a browser, so no ambient cookie to abuse
    if origin is not None and origin in trusted_origins:
        return None
    own = request_origin(scope, trusted_proxies).origin
    if origin is not None and own is not None and hmac.compare_digest(origin, own):
        return None
    return "origin_mismatch"


def token_refusal(sent: bytes | None, expected: str | None) -> str | None:
    """Return why a form's synchronizer token is refused (layer 2), or ``None`` if it matches."""
    if sent is None:
        return "token_missing"
    if expected is None or len(sent) > MAX_TOKEN_BYTES:
        return "token_mismatch"
    if not hmac.compare_digest(sent, expected.encode("ascii")):
        return "token_mismatch"
    return None


def _trusted_origin(text: str) -> str:
    origin = normalize_origin(text)
    if origin is None:
        raise ConfigError("csrf.trusted_origins", f"{text!r} is not an origin such as https://app.example.com")
    return origin


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.lower(), []).append(value)
    return found


def _single(headers: dict[bytes, list[bytes]], name: bytes) -> bytes | None:
    values = headers.get(name)
    if not values or len(values) > 1:
        return None  # absent, or repeated: a repeated one is never believed
    return values[0]


def _count(headers: dict[bytes, list[bytes]], name: bytes) -> int:
    return len(headers.get(name, ()))


def _session_token(scope: Scope) -> str | None:
    exchange = scope.get("sessionward")
    if not isinstance(exchange, Exchange):
        raise RuntimeError("CsrfMiddleware must be placed inside sessionward's SessionMiddleware")
    record = exchange.record
    if record is None:
        return exchange.csrf_cookie  # a visitor: the double-submit cookie
    return (exchange.meta_dirty or record.meta).csrf_token


class _ClientGone(Exception):
    """The client disconnected before its body was read in full."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Read the whole request body, or return ``None`` once it exceeds ``limit`` bytes.

    Raises:
        _ClientGone: the client disconnected first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands the app the body already read, then the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _form_token(body: bytes, media_type: str, content_type: str) -> bytes | None:
    if FORM_FIELD.encode() not in body:
        return None
    if media_type == "multipart/form-data":
        return _multipart_field(body, content_type)
    if media_type == "text/plain":
        for line in body.splitlines():
            name, sep, value = line.partition(b"=")
            if sep and name == FORM_FIELD.encode():
                return value.strip()
        return None
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=10_000)
    except ValueError:
        return None
    for name, value in pairs:
        if name == FORM_FIELD.encode():
            return value
    return None


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
                if name is not None and name.group(1) == FORM_FIELD.encode():
                    return content.removesuffix(b"\r\n")
    return None

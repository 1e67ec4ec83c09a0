"""The WSGI middleware: sessionward for any WSGI application, with synchronous store I/O.

It does for WSGI what :mod:`sessionward.asgi.middleware`, :mod:`sessionward.asgi.csrf` and
:mod:`sessionward.asgi.headers` do for ASGI, with the same engine and the same decisions,
through the generated sync exchange (:mod:`sessionward._sync.exchange`). Per request:

1. The firewall (F5) answers 400/405 before anything else, with no store access.
2. The session is opened: an invalid one becomes a 401 JSON or a redirect (F10), an
   unreachable store a 503 (F19).
3. Unsafe requests pass the CSRF check (F15): where they come from, and for HTML forms
   the synchronizer token (the form body is read, bounded, and put back for the app).
4. The application runs with the session in ``environ["sessionward.session"]`` (the
   exchange in ``environ["sessionward"]``); when it calls ``start_response`` the session
   is committed and ``Set-Cookie``/``Vary`` added, then the security headers (F14).

Every answer the middleware gives itself is JSON with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from sessionward._sync.exchange import Exchange
from sessionward._sync.manager import SessionManager
from sessionward.asgi.csrf import (
    DEFAULT_MAX_BODY_BYTES,
    FORM_TYPES,
    HEADER,
    SAFE_METHODS,
    _form_token,
    _headers,
    _single,
    _trusted_origin,
    origin_refusal,
    token_refusal,
)
from sessionward.asgi.headers import SecurityHeadersPolicy, add_security_headers
from sessionward.core.clientinfo import request_origin
from sessionward.core.config import path_matches
from sessionward.core.cookies import split_joined_cookie_header
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    ConfigError,
    SessionBudgetExceededError,
    SessionEndedError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from sessionward.core.events import EventName
from sessionward.core.firewall import check_request
from sessionward.core.session import TOO_LARGE_MESSAGE
from sessionward.core.transport import PlainHttpNotice
from sessionward.io.exchange import Interruption

logger = logging.getLogger("sessionward")

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Headers = list[tuple[str, str]]

_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrfSettings:
    """The CSRF check of :mod:`sessionward.asgi.csrf`, for WSGI.

    Attributes:
        trusted_origins: Other origins allowed to send unsafe requests
            (``scheme://host[:port]``).
        exempt_paths: Paths never checked (exact, or prefixes when ending in ``/``).
        max_body_bytes: The largest form body read to find the token (413 beyond).
    """

    trusted_origins: frozenset[str] = frozenset()
    exempt_paths: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "trusted_origins", frozenset(_trusted_origin(o) for o in self.trusted_origins))
        for path in self.exempt_paths:
            if not path.startswith("/"):
                raise ConfigError("csrf.exempt_paths", f"{path!r} must start with '/'")
        if self.max_body_bytes < 1024:
            raise ConfigError("csrf.max_body_bytes", "must be at least 1024 bytes")

    def exempts(self, path: str) -> bool:
        """Tell whether ``path`` is never checked."""
        return path_matches(path, self.exempt_paths)


def request_scope(environ: WSGIEnvironment) -> dict[str, Any]:
    """Return the ASGI-style view of a WSGI request that the shared pure code reads.

    ``raw_path`` is the path as sent (``RAW_URI``/``REQUEST_URI``, which gunicorn and
    Werkzeug provide), so the firewall sees ``%2f`` and ``;`` as the client wrote them.
    """
    script = environ.get("SCRIPT_NAME", "")
    decoded = (script + environ.get("PATH_INFO", "")).encode("latin-1")
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw_uri:
        raw_path = raw_uri.encode("latin-1").split(b"?", 1)[0]
        if raw_path.startswith((b"http://", b"https://")):
            # An absolute-form request target: keep only its path.
            raw_path = b"/" + raw_path.split(b"/", 3)[-1] if raw_path.count(b"/") >= 3 else b"/"
    else:
        raw_path = quote(decoded, safe="/;=,:@!$&'()*+~").encode("ascii")
    headers = [
        (key[5:].replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key, name in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key]).encode("latin-1")))
    address = environ.get("REMOTE_ADDR")
    port = environ.get("REMOTE_PORT")
    return {
        "type": "http",
        "method": environ.get("REQUEST_METHOD", "GET").upper(),
        "path": decoded.decode("utf-8", "replace"),
        "raw_path": raw_path,
        "headers": headers,
        "client": (address, int(port) if port and str(port).isdigit() else 0) if address else None,
        "scheme": environ.get("wsgi.url_scheme", "http"),
    }


class SessionMiddleware:
    """Adds sessionward sessions, CSRF protection and security headers to a WSGI app.

    Args:
        app: The wrapped WSGI application.
        manager: The sync :class:`~sessionward._sync.manager.SessionManager` (policy,
            store, clock, events).
        csrf: The CSRF check's settings; ``None`` turns it off.
        security_headers: The security headers added to every response; ``None`` adds none.
    """

    def __init__(
        self,
        app: WSGIApplication,
        manager: SessionManager,
        *,
        csrf: CsrfSettings | None = None,
        security_headers: SecurityHeadersPolicy | None = None,
    ) -> None:
        self.app = app
        self.manager = manager
        self.csrf = csrf
        self.security_headers = security_headers
        self._security_list = security_headers.header_list() if security_headers else []
        self.plain_http = PlainHttpNotice()
        """Warns once when the session cookie is set where it will not come back (plain HTTP)."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        manager = self.manager
        scope = request_scope(environ)
        client = request_origin(scope, manager.policy.trusted_proxies).client
        path: str = scope["path"]
        rejection = check_request(manager.policy.firewall, scope["method"], scope["raw_path"])
        if rejection is not None:
            manager.emit(
                EventName.FIREWALL_REFUSED, reason=rejection.reason, client=client, path=path, method=scope["method"]
            )
            body = {"error": "request_rejected", "reason": rejection.reason}
            return self._answer(start_response, rejection.status, body, None)
        exchange = Exchange(manager, path=path, client=client, method=scope["method"])
        cookie = environ.get("HTTP_COOKIE")
        try:
            # One value of every Cookie header, comma-joined by the server: split it back
            # for the session cookie (never for the CSRF cookie: see Exchange.open).
            whole = [cookie.encode("latin-1")] if cookie else []
            interruption = exchange.open(
                split_joined_cookie_header(whole[0]) if whole else [], csrf_cookie_headers=whole
            )
        except StoreUnavailableError as error:
            return self._unavailable(start_response, exchange, error)
        if interruption is not None:
            return self._interrupt(start_response, exchange, interruption)
        environ["sessionward"] = exchange
        environ["sessionward.session"] = exchange.session
        if self.csrf is not None and scope["method"] not in SAFE_METHODS and not self.csrf.exempts(path):
            reason = self._csrf_refusal(environ, scope, exchange, self.csrf)
            if reason is not None:
                return self._refuse_csrf(start_response, exchange, reason)
        return self._run(environ, start_response, exchange, scope)

    # -- the application's response -----------------------------------------------------------

    def _run(
        self, environ: WSGIEnvironment, start_response: StartResponse, exchange: Exchange, scope: dict[str, Any]
    ) -> Iterable[bytes]:
        state = _Replacement()

        def start(status: str, headers: Headers, exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
            try:
                extra = exchange.commit(int(status[:3]))
            except StoreUnavailableError as error:
                logger.warning("session store unavailable: %s", error)
                self._emit_unavailable(exchange)
                payload = _json({"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE})
                state.body = payload
                replaced = [*_json_headers(payload), ("Retry-After", "1")]
                return start_response(_status(503), self._secured(replaced, exchange, []), exc_info)
            except SessionBudgetExceededError as error:
                # The client spent its budget of new sessions (creation_budget.action = refuse).
                payload = _json({"error": "session_budget_exceeded", "retry_after_s": error.retry_after_s})
                state.body = payload
                replaced = [*_json_headers(payload), ("Retry-After", str(error.retry_after_s))]
                replaced.append(("Cache-Control", "no-store"))
                return start_response(_status(429), self._secured(replaced, exchange, []), exc_info)
            except SessionTooLargeError as error:
                state.body = payload = self._too_large(exchange, error)
                added = _decoded(exchange.commit(500))
                replaced = [*_json_headers(payload), ("Cache-Control", "no-store"), *added]
                return start_response(_status(500), self._secured(replaced, exchange, added), exc_info)
            if exchange.sets_cookie:
                self.plain_http.check(self.manager.policy, scope)
            added = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in extra]
            if any(name == "set-cookie" for name, _ in added) and not any(
                name.lower() == "cache-control" for name, _ in headers
            ):
                # A response carrying a session ID must never sit in a shared cache.
                added.append(("Cache-Control", "no-store"))
            return start_response(status, self._secured(list(headers) + added, exchange, added), exc_info)

        try:
            result = self.app(environ, start)
        except StoreUnavailableError as error:
            # A verb met an outage and the application did not catch it: 503, not a 500.
            return self._unavailable(start_response, exchange, error)
        except SessionEndedError:
            # A verb found the session ended by a racing request: as for any ended session.
            return self._interrupt(start_response, exchange, exchange.lost())
        return _Body(result, state)

    def _secured(self, headers: Headers, exchange: Exchange | None, added: Headers) -> Headers:
        policy = self.security_headers
        if policy is None:
            return headers
        carries = exchange is not None and (
            bool(added) or exchange.cookie.sent or exchange.session.accessed or exchange.raw_id is not None
        )
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        secured = add_security_headers(policy, self._security_list, encoded, carries_session=carries)
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in secured]

    # -- answers of the middleware's own -------------------------------------------------------

    def _answer(
        self,
        start_response: StartResponse,
        status: int,
        body: dict[str, Any] | None,
        exchange: Exchange | None,
        extra: Headers | None = None,
    ) -> list[bytes]:
        payload = _json(body) if body is not None else b""
        headers = (_json_headers(payload) if body is not None else [("Content-Length", "0")]) + (extra or [])
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers.append(("Cache-Control", "no-store"))
        start_response(_status(status), self._secured(headers, exchange, extra or []))
        return [payload]

    def _interrupt(self, start_response: StartResponse, exchange: Exchange, interruption: Interruption) -> list[bytes]:
        extra = _decoded(exchange.commit(200))
        if interruption.location is not None:
            extra.append(("Location", interruption.location))
            return self._answer(start_response, interruption.status, None, exchange, extra)
        body = {"error": "session_invalid", "reason": interruption.reason}
        return self._answer(start_response, interruption.status, body, exchange, extra)

    def _unavailable(self, start_response: StartResponse, exchange: Exchange, error: Exception) -> list[bytes]:
        logger.warning("session store unavailable: %s", error)
        self._emit_unavailable(exchange)
        body = {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE}
        return self._answer(start_response, 503, body, None, [("Retry-After", "1")])

    def _too_large(self, exchange: Exchange, error: SessionTooLargeError) -> bytes:
        # The data grew in place past max_data_bytes and the handler did not check it
        # (Session.check_size): nothing is saved, and the client must not be told its
        # request succeeded. A 5xx: the request is not at fault, the application is.
        handle = exchange.record.handle if exchange.record is not None else "(new)"
        logger.error("session %s: nothing this request changed was saved (see Session.check_size): %s", handle, error)
        return _json({"error": "session_too_large", "message": TOO_LARGE_MESSAGE})

    def _emit_unavailable(self, exchange: Exchange) -> None:
        self.manager.emit(
            EventName.STORE_UNAVAILABLE,
            reason="store_unavailable",
            client=exchange.client,
            path=exchange.path,
            method=exchange.method,
        )

    # -- CSRF ------------------------------------------------------------------------------------

    def _csrf_refusal(
        self, environ: WSGIEnvironment, scope: dict[str, Any], exchange: Exchange, settings: CsrfSettings
    ) -> str | None:
        headers = _headers(scope)
        reason = origin_refusal(scope, headers, settings.trusted_origins, self.manager.policy.trusted_proxies)
        if reason is not None:
            return reason
        sent = _single(headers, HEADER)
        content_type = (_single(headers, b"content-type") or b"").decode("latin-1")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if sent is None and media_type not in FORM_TYPES:
            return None  # JSON and other non-form bodies: the origin check suffices
        if sent is None:
            body = _read_body(environ, settings.max_body_bytes)
            if body is None:
                return "form_too_large"
            sent = _form_token(body, media_type, content_type)
        record = exchange.record
        # A visitor's token is checked against its pre-session cookie (double submit).
        expected = (exchange.meta_dirty or record.meta).csrf_token if record is not None else exchange.csrf_cookie
        return token_refusal(sent, expected)

    def _refuse_csrf(self, start_response: StartResponse, exchange: Exchange, reason: str) -> list[bytes]:
        record = exchange.record
        self.manager.emit(
            EventName.CSRF_REFUSED,
            reason=reason,
            handle=record.handle if record else None,
            user=record.meta.user if record else None,
            client=exchange.client,
            path=exchange.path,
            method=exchange.method,
        )
        extra = _decoded(exchange.commit(403))
        status = 413 if reason == "form_too_large" else 403
        return self._answer(start_response, status, {"error": "csrf_refused", "reason": reason}, exchange, extra)


class _Replacement:
    """Set when the commit failed after the app began answering: its body is dropped."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body: bytes | None = None


class _Body:
    """The app's body, unless a failed commit replaced the response with a 503."""

    __slots__ = ("_result", "_state")

    def __init__(self, result: Iterable[bytes], state: _Replacement) -> None:
        self._result = result
        self._state = state

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            if self._state.body is not None:
                break
            yield chunk
        if self._state.body is not None:
            yield self._state.body

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """Read the request body (at most ``limit`` bytes) and put it back for the app."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared and (not declared.isdigit() or int(declared) > limit):
        return None
    stream = environ["wsgi.input"]
    if declared:
        body: bytes = stream.read(int(declared))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read(limit + 1)
        if len(body) > limit:
            return None
    else:
        body = b""  # no length and no terminated stream: PEP 3333 allows no read
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def _json_headers(payload: bytes) -> Headers:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]


def _decoded(headers: list[tuple[bytes, bytes]]) -> Headers:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, '')}".rstrip()

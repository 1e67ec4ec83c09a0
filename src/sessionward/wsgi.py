"""The WSGI middleware: sessionward for any WSGI application, with synchronous store I/O.

It does for WSGI what :mod:`sessionward.asgi.middleware`, :mod:`sessionward.asgi.csrf` and
:mod:`sessionward.asgi.headers` do for ASGI, with the same engine and the same rules
(:mod:`sessionward.core.csrf`, :mod:`sessionward.core.headers`), through the generated
sync exchange (:mod:`sessionward._sync.exchange`). Per request:

1. The request firewall answers 400/405 before anything else, with no store access.
2. The session is opened: an invalid one becomes a 401 JSON or a redirect, an
   unreachable store a 503.
3. Unsafe requests pass the CSRF check: where they come from, and for HTML forms the
   synchronizer token (the form body is read, bounded, and put back for the app).
4. The application runs with the session in ``environ["sessionward.session"]`` (the
   exchange in ``environ["sessionward"]``); when it calls ``start_response`` the session
   is committed and ``Set-Cookie``/``Vary`` added, then the security headers.

Every answer the middleware gives itself is JSON (or an empty redirect) with
``Cache-Control: no-store``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from sessionward._sync.exchange import Exchange
from sessionward._sync.manager import SessionManager
from sessionward.core.clientinfo import client_info, request_origin
from sessionward.core.config import CsrfPolicy
from sessionward.core.cookies import split_joined_cookie_header
from sessionward.core.csrf import (
    declared_too_large,
    expected_token,
    header_map,
    must_check,
    origin_refusal,
    refusal_body,
    refusal_status,
    token_refusal,
    token_source,
)
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    SessionBudgetExceededError,
    SessionEndedError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from sessionward.core.events import EventName
from sessionward.core.firewall import check_request
from sessionward.core.headers import (
    HeaderPairs,
    SecurityHeadersPolicy,
    carries_session,
    secure_headers,
    with_session_headers,
)
from sessionward.core.outcomes import Interruption
from sessionward.core.session import TOO_LARGE_MESSAGE
from sessionward.core.transport import PlainHttpNotice

logger = logging.getLogger("sessionward")

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["CsrfPolicy", "SecurityHeadersPolicy", "SessionMiddleware", "request_scope"]

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

_UNAVAILABLE = {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE}


_CACHE_LIMIT = 512
"""Entries kept by each translation cache below: what clients send cannot grow them past it."""
_HEADER_NAMES: dict[str, bytes] = {}
"""``HTTP_USER_AGENT`` → ``b"user-agent"``, as met (the same few names arrive on every request)."""


def _header_name(key: str) -> bytes:
    name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_HEADER_NAMES) < _CACHE_LIMIT:
        _HEADER_NAMES[key] = name
    return name


def _latin1(value: object) -> bytes:
    return (value if type(value) is str else str(value)).encode("latin-1")


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
    names = _HEADER_NAMES
    headers = [
        (names.get(key) or _header_name(key), _latin1(value))
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
        csrf: CsrfPolicy | None = None,
        security_headers: SecurityHeadersPolicy | None = None,
    ) -> None:
        self.app = app
        self.manager = manager
        self.csrf = csrf
        self.security_headers = security_headers
        self.plain_http = PlainHttpNotice()
        """Warns once when the session cookie is set where it will not come back (plain HTTP)."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        manager = self.manager
        scope = request_scope(environ)
        path: str = scope["path"]
        csrf = self.csrf
        checked = csrf is not None and must_check(csrf, scope["method"], path)
        # Only the CSRF check needs where the request was sent to; the rest, who sent it.
        origin = request_origin(scope, manager.policy.trusted_proxies) if checked else None
        client = origin.client if origin is not None else client_info(scope, manager.policy.trusted_proxies)
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
        if checked:
            assert csrf is not None
            assert origin is not None
            reason = self._csrf_refusal(environ, scope, exchange, csrf, origin.origin)
            if reason is not None:
                return self._refuse_csrf(start_response, exchange, reason)
        return self._run(environ, start_response, exchange, scope)

    # -- the application's response -----------------------------------------------------------

    def _run(
        self, environ: WSGIEnvironment, start_response: StartResponse, exchange: Exchange, scope: dict[str, Any]
    ) -> Iterable[bytes]:
        state = _Replacement()

        def start(status: str, headers: Headers, exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
            def instead(code: int, body: Mapping[str, object], extra: HeaderPairs) -> Callable[[bytes], object]:
                # The app's response has not gone out: the client gets this one instead.
                replaced, state.body = _own_answer(body, extra)
                return start_response(_status(code), self._secured(replaced, exchange), exc_info)

            try:
                added = exchange.commit(int(status[:3]))
            except StoreUnavailableError as error:
                logger.warning("session store unavailable: %s", error)
                self._emit_unavailable(exchange)
                return instead(503, _UNAVAILABLE, [(b"Retry-After", b"1")])
            except SessionBudgetExceededError as error:
                # The client spent its budget of new sessions (creation_budget.action = refuse).
                body = {"error": "session_budget_exceeded", "retry_after_s": error.retry_after_s}
                return instead(429, body, [(b"Retry-After", str(error.retry_after_s).encode())])
            except SessionTooLargeError as error:
                return instead(500, self._too_large(exchange, error), exchange.commit(500))
            sets_cookie = exchange.sets_cookie
            if sets_cookie:
                self.plain_http.check(self.manager.policy, scope)
            combined = with_session_headers(_encoded(headers), added, sets_cookie=sets_cookie)
            return start_response(status, self._secured(combined, exchange), exc_info)

        try:
            result = self.app(environ, start)
        except StoreUnavailableError as error:
            # A verb met an outage and the application did not catch it: 503, not a 500.
            return self._unavailable(start_response, exchange, error)
        except SessionEndedError:
            # A verb found the session ended by a racing request: as for any ended session.
            return self._interrupt(start_response, exchange, exchange.lost())
        return _Body(result, state)

    def _secured(self, headers: HeaderPairs, exchange: Exchange | None) -> Headers:
        """Return ``headers`` with the security headers added, as WSGI wants them."""
        policy = self.security_headers
        if policy is not None:
            carries = policy.no_store_session_responses and carries_session(headers, exchange)
            headers = secure_headers(policy, headers, carries_session=carries)
        known = _DECODED
        return [known.get(pair) or _decoded(pair) for pair in headers]

    # -- answers of the middleware's own -------------------------------------------------------

    def _answer(
        self,
        start_response: StartResponse,
        status: int,
        body: Mapping[str, object] | None,
        exchange: Exchange | None,
        extra: HeaderPairs | None = None,
    ) -> list[bytes]:
        headers, payload = _own_answer(body, extra or [])
        start_response(_status(status), self._secured(headers, exchange))
        return [payload]

    def _interrupt(self, start_response: StartResponse, exchange: Exchange, interruption: Interruption) -> list[bytes]:
        extra = exchange.commit(200)
        if interruption.location is not None:
            extra.append((b"Location", interruption.location.encode("latin-1")))
            return self._answer(start_response, interruption.status, None, exchange, extra)
        body = {"error": "session_invalid", "reason": interruption.reason}
        return self._answer(start_response, interruption.status, body, exchange, extra)

    def _unavailable(self, start_response: StartResponse, exchange: Exchange, error: Exception) -> list[bytes]:
        logger.warning("session store unavailable: %s", error)
        self._emit_unavailable(exchange)
        return self._answer(start_response, 503, _UNAVAILABLE, None, [(b"Retry-After", b"1")])

    def _too_large(self, exchange: Exchange, error: SessionTooLargeError) -> dict[str, str]:
        # The data grew in place past max_data_bytes and the handler did not check it
        # (Session.check_size): nothing is saved, and the client must not be told its
        # request succeeded. A 5xx: the request is not at fault, the application is.
        handle = exchange.record.handle if exchange.record is not None else "(new)"
        logger.error("session %s: nothing this request changed was saved (see Session.check_size): %s", handle, error)
        return {"error": "session_too_large", "message": TOO_LARGE_MESSAGE}

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
        self,
        environ: WSGIEnvironment,
        scope: dict[str, Any],
        exchange: Exchange,
        policy: CsrfPolicy,
        own_origin: str | None,
    ) -> str | None:
        headers = header_map(scope["headers"])
        reason = origin_refusal(headers, own_origin=own_origin, trusted_origins=policy.trusted_origins)
        if reason is not None:
            return reason
        source = token_source(headers)
        if source is None:
            return None  # JSON and other non-form bodies: the origin check suffices
        sent = source.header
        if source.needs_body:
            if declared_too_large(headers, policy.max_body_bytes):
                return "form_too_large"
            body = _read_body(environ, policy.max_body_bytes)
            if body is None:
                return "form_too_large"
            sent = source.from_body(body)
        return token_refusal(sent, expected_token(exchange))

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
        extra = exchange.commit(403)
        return self._answer(start_response, refusal_status(reason), refusal_body(reason), exchange, extra)


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
    """Read the request body (at most ``limit`` bytes, else ``None``) and put it back for the app."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if declared.isdigit():
        body: bytes = stream.read(min(int(declared), limit + 1))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read(limit + 1)
    else:
        body = b""  # no length and no terminated stream: PEP 3333 allows no read
    if len(body) > limit:
        return None
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _own_answer(body: Mapping[str, object] | None, extra: HeaderPairs) -> tuple[HeaderPairs, bytes]:
    """Return the headers and body of an answer of the middleware's own: JSON (or empty), never cached."""
    if body is None:
        return [(b"Content-Length", b"0"), (b"Cache-Control", b"no-store"), *extra], b""
    payload = orjson.dumps(body)
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(payload)).encode()),
        (b"Cache-Control", b"no-store"),
        *extra,
    ]
    return headers, payload


_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {}
"""The application's response headers as bytes, as met (most repeat from response to response)."""
_DECODED: dict[tuple[bytes, bytes], tuple[str, str]] = {}
"""The other way, for the headers handed to the server (the security headers are always the same)."""
_CACHED_VALUE_LIMIT = 128
"""Longer values (cookies, long policies) are translated each time rather than kept."""


def _encoded(headers: Headers) -> HeaderPairs:
    known = _ENCODED
    return [known.get(pair) or _encoded_pair(pair) for pair in headers]


def _encoded_pair(pair: tuple[str, str]) -> tuple[bytes, bytes]:
    name, value = pair
    encoded = (name.encode("latin-1"), value.encode("latin-1"))
    if len(value) <= _CACHED_VALUE_LIMIT and len(_ENCODED) < _CACHE_LIMIT:
        _ENCODED[pair] = encoded
        _DECODED[encoded] = pair
    return encoded


def _decoded(pair: tuple[bytes, bytes]) -> tuple[str, str]:
    name, value = pair
    decoded = (name.decode("latin-1"), value.decode("latin-1"))
    if len(value) <= _CACHED_VALUE_LIMIT and len(_DECODED) < _CACHE_LIMIT:
        _DECODED[pair] = decoded
    return decoded


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, '')}".rstrip()

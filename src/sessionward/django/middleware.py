"""The middleware: opens each request's session and commits it when the response goes out.

It takes the place of Django's ``SessionMiddleware`` and goes first in ``MIDDLEWARE``,
before ``SecurityMiddleware``: the firewall answers a hostile request target before
anything else runs, URL routing included. Per request:

1. The firewall answers 400/405 itself (``/x/%2e%2e/admin``, ``;jsessionid=``…), with no
   store access.
2. The session is opened from the cookie: an invalid one (unknown, timed out, ended,
   malformed) is answered 401 JSON on API paths or redirected per the policy's
   invalid-session handling; an unreachable store is answered 503 with ``Retry-After``.
   A session past its own expiry (``set_expiry``) ends here, as any timed-out one.
3. The view runs with ``request.session`` (a :class:`~sessionward.django.backend.SessionStore`)
   and ``request.sessionward`` (the exchange).
4. When the response comes back the session is committed (its changes written, not on
   a 5xx, as Django does) and ``Set-Cookie``, ``Vary: Cookie`` (when the session was
   read or its cookie sent) and ``Cache-Control: no-store`` (with a session cookie, if
   the view set no Cache-Control) are added.

Exceptions a view lets through are answered here too: a store outage 503, a session
ended by a concurrent request 401 (or the redirect), a refused login 409
``{"error": "max_sessions"}``, throttled sign-ins and new sessions over the client's
budget 429 with ``Retry-After``.

Django's own ``CsrfViewMiddleware`` and ``SecurityMiddleware`` keep their jobs (CSRF
tokens and security headers): this middleware adds neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from http.cookies import Morsel, SimpleCookie
from importlib import import_module
from typing import Any
from urllib.parse import quote

import orjson

from sessionward.core.extras import needs_extra

with needs_extra("django", "sessionward.django"):
    from django.conf import settings  # type: ignore[import-untyped]
    from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
    from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
    from django.utils.cache import patch_vary_headers  # type: ignore[import-untyped]

from sessionward._sync.exchange import Exchange
from sessionward._sync.manager import SessionManager
from sessionward.core.clientinfo import request_origin
from sessionward.core.cookies import build_set_cookie, split_joined_cookie_header
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    LoginRefusedError,
    LoginThrottledError,
    SessionBudgetExceededError,
    SessionEndedError,
    SessionNotAvailableError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from sessionward.core.events import EventName
from sessionward.core.firewall import check_request
from sessionward.core.outcomes import Interruption
from sessionward.core.session import TOO_LARGE_MESSAGE
from sessionward.core.transport import PlainHttpNotice
from sessionward.django._expiry import EXPIRY_KEY, end_reason, is_idle_limit, own_deadline
from sessionward.django.apps import DJANGO_MIDDLEWARE, ENGINE, get_manager
from sessionward.django.backend import UNBOUND_MESSAGE, SessionStore

__all__ = ["SessionwardMiddleware", "exchange_of", "request_scope", "session_of"]

logger = logging.getLogger("sessionward")

Scope = dict[str, Any]


class SessionwardMiddleware:
    """sessionward's sessions for Django: first in ``MIDDLEWARE``, in place of Django's ``SessionMiddleware``.

    Args:
        get_response: The rest of the middleware chain (Django passes it).

    Raises:
        ImproperlyConfigured: ``SESSION_ENGINE`` is not sessionward's, or Django's
            ``SessionMiddleware`` is installed as well.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.session_class = _session_class()
        self.plain_http = PlainHttpNotice()
        """Warns once when the session cookie is set where it will not come back (plain HTTP)."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        manager = get_manager()
        policy = manager.policy
        scope = request_scope(request)
        method: str = scope["method"]
        path: str = scope["path"]
        client = request_origin(scope, policy.trusted_proxies).client
        rejection = check_request(policy.firewall, method, scope["raw_path"])
        if rejection is not None:
            manager.emit(EventName.FIREWALL_REFUSED, reason=rejection.reason, client=client, path=path, method=method)
            return _json(rejection.status, {"error": "request_rejected", "reason": rejection.reason})
        header = request.META.get("HTTP_COOKIE")
        whole = [header.encode("latin-1", "replace")] if header else []
        # One Cookie value, comma-joined by some servers: split it back for the session
        # cookie only (never for the pre-session CSRF cookie: see Exchange.open).
        cookies = split_joined_cookie_header(whole[0]) if whole else []
        exchange = Exchange(manager, path=path, client=client, method=method)
        try:
            interruption = exchange.open(cookies, csrf_cookie_headers=whole)
            if interruption is None and _past_own_expiry(exchange):
                # Ended in the store: opened again, it is answered as any timed-out session.
                exchange = Exchange(manager, path=path, client=client, method=method)
                interruption = exchange.open(cookies, csrf_cookie_headers=whole)
        except StoreUnavailableError as error:
            return self._unavailable(exchange, error)
        if interruption is not None:
            return self._interrupt(exchange, interruption)
        session = self.session_class.for_exchange(exchange)
        request.session = session
        request.sessionward = exchange
        response = self.get_response(request)
        return self._commit(exchange, session, response, scope)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer what sessionward raised in a view and the view did not catch (Django calls it)."""
        exchange = getattr(request, "sessionward", None)
        if not isinstance(exchange, Exchange):
            return None
        if isinstance(exception, StoreUnavailableError):
            return self._unavailable(exchange, exception)
        if isinstance(exception, SessionEndedError):
            # A racing request ended the session; the commit clears the cookie.
            return _interruption_response(exchange.lost())
        if isinstance(exception, LoginRefusedError):
            return _json(409, {"error": "max_sessions", "limit": exception.limit})
        if isinstance(exception, LoginThrottledError):
            response = _json(429, {"error": "throttled", "retry_after_s": exception.retry_after_s})
            response["Retry-After"] = str(exception.retry_after_s)
            return response
        if isinstance(exception, SessionBudgetExceededError):
            return _budget_exceeded(exception)  # from save() in the view
        return None

    # -- the response ---------------------------------------------------------------------------

    def _commit(self, exchange: Exchange, session: SessionStore, response: HttpResponse, scope: Scope) -> HttpResponse:
        try:
            headers = exchange.commit(response.status_code)
        except StoreUnavailableError as error:
            return self._unavailable(exchange, error)
        except SessionBudgetExceededError as error:
            return _budget_exceeded(error)
        except SessionTooLargeError as error:
            # A dict or list grew in place past max_data_bytes and the view did not check
            # (check_size): nothing is saved, and the client must not be told it worked.
            handle = exchange.record.handle if exchange.record is not None else "(new)"
            logger.error("session %s: nothing this request changed was saved (see check_size): %s", handle, error)
            response = _json(500, {"error": "session_too_large", "message": TOO_LARGE_MESSAGE})
            headers = exchange.commit(500)
        if exchange.sets_cookie:
            self.plain_http.check(exchange.policy, scope)
        _add_headers(response, headers, exchange, session)
        return response

    def _interrupt(self, exchange: Exchange, interruption: Interruption) -> HttpResponse:
        response = _interruption_response(interruption)
        try:
            headers = exchange.commit(200)
        except StoreUnavailableError as error:
            return self._unavailable(exchange, error)
        _add_headers(response, headers, exchange, None)
        return response

    def _unavailable(self, exchange: Exchange, error: Exception) -> HttpResponse:
        logger.warning("session store unavailable: %s", error)
        _emit_unavailable(exchange.manager, exchange)
        response = _json(503, {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE})
        response["Retry-After"] = "1"
        return response


def session_of(request: HttpRequest) -> SessionStore:
    """Return ``request.session``, typed as what sessionward makes it.

    ::

        from sessionward.django import session_of

        def devices(request: HttpRequest) -> JsonResponse:
            sessions = session_of(request).list_sessions()
            return JsonResponse({"sessions": [s.as_dict() for s in sessions]})

    Raises:
        SessionNotAvailableError: the request did not go through the middleware.
    """
    session = getattr(request, "session", None)
    if not isinstance(session, SessionStore):
        raise SessionNotAvailableError(UNBOUND_MESSAGE)
    session.exchange  # noqa: B018 - raises if it belongs to no request
    return session


def exchange_of(request: HttpRequest) -> Exchange:
    """Return the request's exchange (``request.sessionward``): the session's I/O side.

    Raises:
        SessionNotAvailableError: the request did not go through the middleware.
    """
    return session_of(request).exchange


def request_scope(request: HttpRequest) -> Scope:
    """Return the ASGI-style view of a Django request that sessionward's pure code reads.

    ``raw_path`` is the path as the client sent it where the server tells
    (``RAW_URI``/``REQUEST_URI`` under gunicorn and uWSGI, ``raw_path`` under ASGI), so
    that the firewall sees ``%2f`` and ``;`` as written; else the decoded path, quoted.
    """
    meta: dict[str, Any] = request.META
    asgi = getattr(request, "scope", None)
    path: str = request.path
    raw_path: bytes | None = None
    if isinstance(asgi, dict):
        found = asgi.get("raw_path")
        if isinstance(found, bytes) and found:
            raw_path = str(asgi.get("root_path", "")).encode("latin-1", "replace") + found.split(b"?", 1)[0]
    if raw_path is None:
        raw_uri = meta.get("RAW_URI") or meta.get("REQUEST_URI")
        if isinstance(raw_uri, str) and raw_uri:
            raw_path = raw_uri.encode("latin-1", "replace").split(b"?", 1)[0]
            if raw_path.startswith((b"http://", b"https://")):
                # An absolute-form request target: keep only its path.
                raw_path = b"/" + raw_path.split(b"/", 3)[-1] if raw_path.count(b"/") >= 3 else b"/"
        else:
            raw_path = quote(path.encode("utf-8", "surrogateescape"), safe="/;=,:@!$&'()*+~").encode("ascii")
    if isinstance(asgi, dict) and isinstance(asgi.get("headers"), list | tuple):
        headers = list(asgi["headers"])
        peer = asgi.get("client")
        client = (str(peer[0]), int(peer[1])) if peer else None
        scheme = str(asgi.get("scheme", "http"))
    else:
        headers = [
            (key[5:].replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1", "replace"))
            for key, value in meta.items()
            if key.startswith("HTTP_")
        ]
        address = meta.get("REMOTE_ADDR")
        port = str(meta.get("REMOTE_PORT") or "")
        client = (str(address), int(port) if port.isdigit() else 0) if address else None
        scheme = str(meta.get("wsgi.url_scheme", "http"))
    return {
        "type": "http",
        "method": str(request.method or "GET").upper(),
        "path": path,
        "raw_path": raw_path,
        "headers": headers,
        "client": client,
        "scheme": scheme,
    }


def _session_class() -> type[SessionStore]:
    """The ``SessionStore`` of ``SESSION_ENGINE``: sessionward's, or a subclass of it."""
    if DJANGO_MIDDLEWARE in list(getattr(settings, "MIDDLEWARE", None) or []):
        raise ImproperlyConfigured(
            f"remove {DJANGO_MIDDLEWARE!r} from MIDDLEWARE: sessionward's middleware takes its place"
        )
    engine = getattr(settings, "SESSION_ENGINE", None)
    found = getattr(import_module(engine), "SessionStore", None) if isinstance(engine, str) else None
    if not (isinstance(found, type) and issubclass(found, SessionStore)):
        raise ImproperlyConfigured(f"SESSION_ENGINE must be {ENGINE!r} for sessionward's middleware, not {engine!r}")
    return found


def _past_own_expiry(exchange: Exchange) -> bool:
    """End the session in the store if ``set_expiry`` gave it an end that has come; tell whether it did.

    While the session's own idle limit is shorter than the policy's, its idle clock is
    written more often (a tenth of the limit), so that an active user is never timed out.
    """
    record = exchange.record
    if record is None or EXPIRY_KEY not in record.data:
        return False
    value = record.data[EXPIRY_KEY]
    meta = record.meta
    deadline = own_deadline(value, meta.last_access_at)
    now = exchange.now
    if deadline is None:
        return False
    if now < deadline:
        if is_idle_limit(value) and not exchange.policy.is_passive(exchange.path):
            assert isinstance(value, int | float)
            exchange.touch_due = exchange.touch_due or now - meta.last_access_at >= value / 10
        return False
    manager = exchange.manager
    reason = end_reason(value)
    tomb = manager.engine.plan_end(record.key, meta.user, reason, now)
    with manager.store_call:
        manager.store.end_following(tomb, now)
    manager.emit(
        EventName.EXPIRED,
        reason=reason.value,
        handle=record.handle,
        user=meta.user,
        client=exchange.client,
        path=exchange.path,
        method=exchange.method,
    )
    return True


def _add_headers(
    response: HttpResponse, headers: list[tuple[bytes, bytes]], exchange: Exchange, session: SessionStore | None
) -> None:
    """Add what the commit returned: ``Set-Cookie`` as Django's cookies, ``Vary: Cookie`` merged."""
    policy = exchange.policy
    name = policy.cookie.cookie_name
    browser_session = session is not None and session.wants_browser_close and exchange.raw_id is not None
    sets_session_cookie = carries_id = False
    for header, value in headers:
        if header == b"vary":
            patch_vary_headers(response, ("Cookie",))
            continue
        if header != b"set-cookie":
            continue
        text = value.decode("latin-1")
        carries_id = True
        if text.startswith(f"{name}="):
            sets_session_cookie = True
            if browser_session and "Max-Age=0" not in text:
                assert exchange.raw_id is not None
                # set_expiry(0): this session's cookie goes when the browser closes.
                text = build_set_cookie(replace(policy.cookie, max_age_s=None), exchange.raw_id)
        _set_cookie(response, text)
    if browser_session and not sets_session_cookie and session is not None and session.browser_close_asked:
        assert exchange.raw_id is not None
        _set_cookie(response, build_set_cookie(replace(policy.cookie, max_age_s=None), exchange.raw_id))
        carries_id = True
    if carries_id and not response.has_header("Cache-Control"):
        # A response carrying a session ID must never sit in a shared cache.
        response["Cache-Control"] = "no-store"


def _set_cookie(response: HttpResponse, header: str) -> None:
    """Put a ``Set-Cookie`` value built by :func:`build_set_cookie` among the response's cookies.

    Django sends one ``Set-Cookie`` per entry of ``response.cookies`` (and its test client
    keeps cookies from there), so the header is parsed back into a morsel: every attribute
    survives, in Django's order.
    """
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    for key, morsel in jar.items():
        cookie: Morsel[str] = morsel
        response.cookies[key] = cookie


def _interruption_response(interruption: Interruption) -> HttpResponse:
    if interruption.location is not None:
        response = HttpResponse(status=interruption.status)
        response["Location"] = interruption.location
        response["Cache-Control"] = "no-store"
        return response
    return _json(interruption.status, {"error": "session_invalid", "reason": interruption.reason})


def _budget_exceeded(error: SessionBudgetExceededError) -> HttpResponse:
    """The client spent its budget of new sessions (``creation_budget.action = refuse``): 429."""
    response = _json(429, {"error": "session_budget_exceeded", "retry_after_s": error.retry_after_s})
    response["Retry-After"] = str(error.retry_after_s)
    return response


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _emit_unavailable(manager: SessionManager, exchange: Exchange) -> None:
    manager.emit(
        EventName.STORE_UNAVAILABLE,
        reason="store_unavailable",
        client=exchange.client,
        path=exchange.path,
        method=exchange.method,
    )

"""The Quart extension: ``quart.session`` becomes a sessionward session, no secret key needed.

::

    from quart import Quart, session
    from sessionward.quart import SessionWard, current_session

    app = Quart(__name__)
    app.config["SESSIONWARD_STORE"] = "redis://127.0.0.1:6379/0"
    SessionWard(app)

    @app.post("/login")
    async def login():
        ...  # check the password
        await current_session().login(user.name)  # a new session ID: the pre-login one is dead
        session["theme"] = "dark"  # quart.session is the same session

It wraps ``app.asgi_app`` in sessionward's ASGI defences (security headers, the session
middleware with its firewall, CSRF; :func:`sessionward.protect`) and installs a session
interface that hands Quart the request's session: ``quart.session`` is then a
:class:`QuartSession`, a mapping of JSON values with the async verbs ``login``,
``logout``, ``rotate_id``, ``elevate`` and the registry (``list_sessions``, ``revoke``,
``revoke_others``), plus ``status()``. The browser holds only the session ID, so no
``SECRET_KEY`` is needed. Templates get ``csrf_token()`` for forms. The store is closed
when the application shuts down (its ASGI lifespan).

``session.clear()``, the usual Quart logout, ends the session as ``logout`` does: the
data goes at once, and the session is ended in the store (its cookie cleared) when
Quart saves the session, before the response is sent. Values written after it start a
new anonymous session under a new ID.

Configuration: the constructor's arguments, else Quart config keys: ``SESSIONWARD_STORE``
(a URL or an async store object; default ``memory://``), every ``SESSIONWARD_*`` policy
variable (read as :meth:`~sessionward.SessionPolicy.from_env` reads the environment),
``SESSIONWARD_CSRF`` (default on), ``SESSIONWARD_CSRF_TRUSTED_ORIGINS``,
``SESSIONWARD_CSRF_EXEMPT_PATHS`` and ``SESSIONWARD_SECURITY_HEADERS`` (default on).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import orjson

from sessionward.core.extras import needs_extra

with needs_extra("quart", "sessionward.quart"):
    from quart import Quart, current_app, g, has_request_context, has_websocket_context, request, session, websocket
    from quart.sessions import SessionInterface, SessionMixin
    from quart.wrappers import BaseRequestWebsocket, Response
    from werkzeug.wrappers import Response as WerkzeugResponse

from sessionward.asgi.protect import protect
from sessionward.asgi.types import ASGIApp
from sessionward.core.clock import Clock
from sessionward.core.config import SessionPolicy
from sessionward.core.csrf import csrf_token as _csrf_token
from sessionward.core.env import config_flag, config_items, settings_from_config
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    LoginThrottledError,
    SessionEndedError,
    SessionNotAvailableError,
    StoreUnavailableError,
)
from sessionward.core.events import EventBus, EventName
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.core.outcomes import Interruption, SessionInfo
from sessionward.core.records import EndReason, SessionRecord
from sessionward.core.session_view import SessionView
from sessionward.io.exchange import Exchange, RequestSession
from sessionward.io.login_throttle import ClientThrottle
from sessionward.io.manager import SessionManager
from sessionward.stores import SessionStore, open_store

__all__ = ["AppState", "QuartSession", "SessionWard", "csrf_token", "current_exchange", "current_session"]

EXTENSION_KEY = "sessionward"

logger = logging.getLogger("sessionward")


class QuartSession(SessionView, SessionMixin):
    """What ``quart.session`` is: the request's session, a mapping of JSON values with verbs.

    Values must be JSON-typed; the verbs reach the store at once (await them). The
    data's size is checked as values are assigned; a container grown in place is
    measured by :meth:`check_size`, and at the latest when the response starts.
    """

    new = False
    modified = False

    def __init__(self, session: RequestSession) -> None:
        super().__init__(session)
        self._session = session
        self._clear_pending = False
        self._cleared: SessionRecord | None = None

    def clear(self) -> None:
        """End the session, as :meth:`logout` does: its data, its login and its ID all go.

        ``session.clear()`` is how most Quart applications log a user out; dropping only
        the data would leave the user signed in under the same ID. The data goes now;
        the session is ended in the store when Quart saves it, before the response is
        sent (this method cannot wait for the store: ``await session.logout()`` can).
        Values written afterwards start a new anonymous session under a new ID. A verb
        called afterwards (``await session.login(user)``) takes over: the session
        continues as that verb leaves it, without the cleared data.
        """
        session = self._session
        for name in list(session):
            del session[name]
        self._clear_pending = True
        self._cleared = session.record

    @property
    def exchange(self) -> Exchange:
        """The request's exchange (the session's I/O side)."""
        return self._session.exchange

    # -- verbs ------------------------------------------------------------------------------------

    @property
    def throttle(self) -> ClientThrottle:
        """Login throttling for this request's client::

            await current_session().throttle.check(name)  # LoginThrottledError: a 429 with Retry-After
            if not verify(name, password):
                await current_session().throttle.failed(name)
                ...  # 401
            await current_session().throttle.succeeded(name)
            await current_session().login(name)

        A :class:`~sessionward.core.errors.LoginThrottledError` the view does not catch is
        answered 429 ``{"error": "throttled", "retry_after_s": n}`` with ``Retry-After``.
        """
        return self._session.throttle

    async def login(self, user: str) -> None:
        """Log ``user`` in; the session ID changes per the fixation strategy.

        Raises:
            LoginRefusedError: multiple-login control refused it ("first wins").
        """
        await self._session.login(user)

    async def logout(self) -> None:
        """End the session server-side and clear its cookie."""
        await self._session.logout()

    async def rotate_id(self) -> None:
        """Give the session a new ID now (call on any privilege change)."""
        await self._session.rotate_id()

    async def elevate(self) -> None:
        """Elevate (sudo mode) for the configured time; the ID changes."""
        await self._session.elevate()

    def reauthenticated(self) -> None:
        """Record that the user just re-entered their password (a recent authentication)."""
        self._session.reauthenticated()

    async def list_sessions(self) -> list[SessionInfo]:
        """The current user's live sessions."""
        return await self._session.list_sessions()

    async def revoke(self, handle: str) -> bool:
        """End one of the user's sessions by handle; ``False`` if unknown or not theirs."""
        return await self._session.revoke(handle)

    async def revoke_others(self, reason: EndReason = EndReason.REVOKED) -> int:
        """End all the user's other sessions (e.g. on password change); return how many."""
        return await self._session.revoke_others(reason)

    def csrf_token(self) -> str:
        """The session's CSRF token for a form (made on first use)."""
        return _csrf_token(self._session)

    async def _end_cleared(self) -> None:
        """End the session :meth:`clear` ended, unless a verb has taken it over since."""
        if not self._clear_pending:
            return
        self._clear_pending = False
        session = self._session
        if session.record is not self._cleared:
            return
        carried = dict(session)  # written after clear(): they start a new session
        await session.logout()
        for name, item in carried.items():
            session[name] = item


class _Interface(SessionInterface):
    """Hands Quart the session the middleware opened; the middleware commits it."""

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> QuartSession | None:
        exchange = request.scope.get("sessionward")
        if not isinstance(exchange, Exchange):
            return None  # not through the middleware (e.g. test_request_context): a null session
        return QuartSession(exchange.session)

    async def save_session(
        self, app: Quart, session: SessionMixin, response: Response | WerkzeugResponse | None
    ) -> None:
        """End a session ``clear()`` ended; the middleware commits the rest when the response starts."""
        if not isinstance(session, QuartSession):
            return
        try:
            await session._end_cleared()
        except StoreUnavailableError as error:
            if response is None:  # a WebSocket: nothing to answer with
                raise
            # Raised from here, the error would become Quart's 500: the response, not yet
            # sent, becomes the 503 every outage gets, and nobody was logged out by it.
            await _unavailable(error, session.exchange)
            _become_unavailable(response)


@dataclass(frozen=True)
class AppState:
    """What :meth:`SessionWard.init_app` set up for one application (``app.extensions["sessionward"]``).

    Attributes:
        store: The app's store.
        policy: The app's policy.
        manager: The app's session manager (policy, engine, store, clock, events).
    """

    store: SessionStore
    policy: SessionPolicy
    manager: SessionManager


class SessionWard:
    """The Quart extension.

    One instance may serve several applications (the application factory pattern): each
    :meth:`init_app` builds that app's own store, policy and manager from the arguments
    given here or, where none was given, from that app's config, and keeps them in
    ``app.extensions["sessionward"]``. Events reach ``events``, shared by every app.

    Args:
        app: The application, or ``None`` to call :meth:`init_app` later.
        store: An async store (``sessionward.stores``); else ``SESSIONWARD_STORE``.
        policy: The session policy; else built from the app's ``SESSIONWARD_*`` config.
        clock: The clock (tests pass a manual one).
        events: The event bus (subscribers may be sync or async).
        store_timeout_s: How long a store call may take before the request gets a 503.
        security_headers: The header policy; ``None`` means its defaults.
        setup_store: Call ``store.setup()`` (create a SQL schema) when the app starts
            serving; by default the schema is created once, by ``sessionward store init``.
    """

    def __init__(
        self,
        app: Quart | None = None,
        *,
        store: SessionStore | None = None,
        policy: SessionPolicy | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
        store_timeout_s: float = 2.0,
        security_headers: SecurityHeadersPolicy | None = None,
        setup_store: bool = False,
    ) -> None:
        self._store = store
        self._policy = policy
        self.clock = clock
        self.events = events or EventBus()
        self.store_timeout_s = store_timeout_s
        self.security_headers = security_headers
        self.setup_store = setup_store
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Install sessionward on ``app``: ASGI defences, session interface, Jinja global, error handlers.

        Raises:
            ConfigError: a malformed ``SESSIONWARD_*`` value, naming it.
            RuntimeError: sessionward is installed on ``app`` already.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("SessionWard is installed on this app already: call init_app once per app")
        config = app.config
        policy = self._policy or SessionPolicy.from_env(settings_from_config(config), base=SessionPolicy())
        store = self._store
        if store is None:
            configured = config.get("SESSIONWARD_STORE", "memory://")
            store = configured if isinstance(configured, SessionStore) else open_store(str(configured))
        manager = SessionManager(
            store, policy, clock=self.clock, events=self.events, store_timeout_s=self.store_timeout_s
        )
        wrapped = protect(
            cast(ASGIApp, app.asgi_app),
            manager,
            csrf=config_flag(config.get("SESSIONWARD_CSRF", True)),
            trusted_origins=config_items(config.get("SESSIONWARD_CSRF_TRUSTED_ORIGINS")),
            csrf_exempt_paths=config_items(config.get("SESSIONWARD_CSRF_EXEMPT_PATHS")),
            security_headers=self.security_headers,
            add_security_headers=config_flag(config.get("SESSIONWARD_SECURITY_HEADERS", True)),
            setup_store=self.setup_store,
        )
        app.asgi_app = cast(Any, wrapped)  # type: ignore[method-assign]
        # Quart types the attribute as its cookie interface, though any SessionInterface serves.
        app.session_interface = _Interface()  # type: ignore[assignment]
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.register_error_handler(StoreUnavailableError, _store_unavailable)
        app.register_error_handler(SessionEndedError, _session_ended)
        app.register_error_handler(LoginThrottledError, _login_throttled)
        app.extensions[EXTENSION_KEY] = AppState(store=store, policy=policy, manager=manager)

    @staticmethod
    def state(app: Quart | None = None) -> AppState:
        """Return what :meth:`init_app` set up for ``app`` (``None``: the current app).

        Raises:
            RuntimeError: ``app`` was not set up by :meth:`init_app`.
        """
        found = (app if app is not None else current_app).extensions.get(EXTENSION_KEY)
        if not isinstance(found, AppState):
            raise RuntimeError("this app was not set up by SessionWard: call init_app(app) first")
        return found


def current_session() -> QuartSession:
    """Return the request's session, typed (``quart.session`` is typed as Quart's own).

    ::

        from sessionward.quart import current_session

        await current_session().login(user.name)  # no cast, no ``type: ignore``

    Raises:
        SessionNotAvailableError: outside a request that went through the middleware.
    """
    found = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(found, QuartSession):
        raise SessionNotAvailableError("no sessionward session here: is SessionWard(app) installed?")
    return found


def current_exchange() -> Exchange:
    """Return the current request's (or WebSocket's) exchange, the session's I/O side.

    Raises:
        SessionNotAvailableError: outside a request that went through the middleware.
    """
    exchange = _current_exchange()
    if exchange is None:
        raise SessionNotAvailableError("no sessionward session here: is SessionWard(app) installed?")
    return exchange


def _current_exchange() -> Exchange | None:
    exchange = None
    if has_request_context():
        exchange = request.scope.get("sessionward")
    elif has_websocket_context():
        exchange = websocket.scope.get("sessionward")
    return exchange if isinstance(exchange, Exchange) else None


def csrf_token() -> str:
    """Return the CSRF token for a form in this request (the ``csrf_token()`` Jinja global)."""
    token: str | None = g.get("_sessionward_csrf")
    if token is None:
        token = _csrf_token(current_exchange().session)
        g._sessionward_csrf = token
    return token


async def _unavailable(error: StoreUnavailableError, exchange: Exchange | None) -> None:
    logger.warning("session store unavailable: %s", error)
    if exchange is None:
        return
    await exchange.manager.emit(
        EventName.STORE_UNAVAILABLE,
        reason="store_unavailable",
        client=exchange.client,
        path=exchange.path,
        method=exchange.method,
    )


_UNAVAILABLE_BODY = orjson.dumps({"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE})
_UNAVAILABLE_HEADERS = {"Retry-After": "1", "Cache-Control": "no-store", "Content-Type": "application/json"}


def _become_unavailable(response: Response | WerkzeugResponse) -> None:
    response.status_code = 503
    response.headers.clear()
    response.headers.update(_UNAVAILABLE_HEADERS)
    response.set_data(_UNAVAILABLE_BODY)


async def _store_unavailable(error: StoreUnavailableError) -> tuple[bytes, int, dict[str, str]]:
    # A verb met the outage in the view: the user gets a retryable answer (and nobody
    # was logged in or out by it: the commit skips a 5xx).
    await _unavailable(error, _current_exchange())
    return _UNAVAILABLE_BODY, 503, _UNAVAILABLE_HEADERS


def _login_throttled(error: LoginThrottledError) -> tuple[bytes, int, dict[str, str]]:
    wait = str(error.retry_after_s)
    body = orjson.dumps({"error": "throttled", "retry_after_s": error.retry_after_s})
    return body, 429, {"Retry-After": wait, "Cache-Control": "no-store", "Content-Type": "application/json"}


def _session_ended(error: SessionEndedError) -> tuple[bytes, int, dict[str, str]]:
    del error  # a racing request ended the session; the middleware clears the cookie
    exchange = _current_exchange()
    interruption = exchange.lost() if exchange is not None else Interruption(401, "session_ended")
    if interruption.location is not None:
        return b"", interruption.status, {"Location": interruption.location, "Cache-Control": "no-store"}
    body = orjson.dumps({"error": "session_invalid", "reason": interruption.reason})
    return body, interruption.status, {"Cache-Control": "no-store", "Content-Type": "application/json"}

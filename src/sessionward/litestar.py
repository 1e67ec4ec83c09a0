"""The Litestar plugin: ``request.session`` becomes a sessionward session.

::

    from litestar import Litestar, post
    from sessionward.litestar import SessionDep, SessionwardConfig, SessionwardPlugin, requires_login

    @post("/login")
    async def login(session: SessionDep, data: Credentials) -> dict[str, str]:
        ...  # check the password
        await session.login(data.name)  # a new session ID: the pre-login one is dead
        return {"user": data.name}

    @get("/me", guards=[requires_login])  # 401 for anyone not signed in
    async def me(session: SessionDep) -> dict[str, str | None]:
        return {"user": session.user}

    app = Litestar([login, me], plugins=[SessionwardPlugin(SessionwardConfig(store="redis://127.0.0.1:6379/0"))])

What the plugin installs:

* **Before routing**: the security headers, the session middleware (firewall, session
  loading, commit) and CSRF, around Litestar's own ASGI handler. Litestar's
  ``middleware`` runs only once a route has been found, so a refused path such as
  ``/x/%2e%2e/me`` would meet Litestar's 404 instead of the firewall's 400; the plugin
  wraps ``Litestar.asgi_handler`` when the application starts (its ASGI lifespan), and
  a request that reaches a route without that having happened (a server run with the
  lifespan off, a ``TestClient`` used outside ``with``) fails with a 500 naming the
  cause: never silently unprotected.
* A dependency, ``session`` by default (declare it as ``session: SessionDep``), giving
  the request's :class:`~sessionward.io.exchange.RequestSession`: the mapping of JSON values with
  ``login``, ``logout``, ``rotate_id``, ``elevate``, ``status`` and the registry
  (``list_sessions``, ``revoke``, ``revoke_others``).
* Exception handlers: a store outage met by a verb is a 503 (with a
  ``store_unavailable`` event), a session ended by a racing request a 401 (or the
  configured redirect), throttled sign-ins a 429 with ``Retry-After``.
* Guards :func:`requires_login` (401) and :func:`requires_recent_authentication` (403
  ``reauth_required``), in Litestar's ``NotAuthorizedException`` and
  ``PermissionDeniedException`` conventions.
* The store's lifetime: set up at start-up if asked, closed at shutdown.

Litestar's own session API keeps its documented meaning:

* ``request.session`` is the sessionward session (:func:`get_session` returns it typed).
* ``request.set_session(data)`` replaces the session's data at once: keys not in
  ``data`` go, values are checked as they are assigned (a value that is not JSON-typed
  raises :class:`~sessionward.core.errors.SessionDataError` in the handler). A data
  class or model is first encoded as Litestar encodes it, and must make a JSON object.
  Who is signed in is not data: it changes only through ``await session.login(user)``,
  which also changes the session ID.
* ``request.clear_session()`` ends the session, as a logout does: its data goes at
  once, and when the response starts the session is ended in the store and its cookie
  cleared. ``request.session`` is then ``Empty``, as Litestar documents; data given to
  ``set_session`` afterwards starts a new anonymous session under a new ID. A verb
  called after it (``await session.login(user)``) takes over: the session continues as
  that verb leaves it, without the cleared data.
* Over a WebSocket the session is read-only: ``set_session`` and ``clear_session``
  raise :class:`~sessionward.core.errors.SessionNotAvailableError`.

One plugin serves one application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import orjson

from sessionward.core.extras import needs_extra

with needs_extra("litestar", "sessionward.litestar"):
    from litestar import Litestar, Request, Response
    from litestar.background_tasks import BackgroundTask
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.di import Provide
    from litestar.exceptions import ImproperlyConfiguredException, NotAuthorizedException, PermissionDeniedException
    from litestar.handlers.base import BaseRouteHandler
    from litestar.middleware import DefineMiddleware
    from litestar.middleware.session import SessionMiddleware as LitestarSessionMiddleware
    from litestar.plugins import InitPlugin
    from litestar.serialization import encode_json
    from litestar.types import ASGIApp as LitestarASGIApp
    from litestar.types import Empty, Middleware
    from litestar.types import Receive as LitestarReceive
    from litestar.types import Scope as LitestarScope
    from litestar.types import Send as LitestarSend
    from litestar.utils.scope import get_serializer_from_scope

from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.headers import SecurityHeadersMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.clock import Clock
from sessionward.core.config import SessionPolicy
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    ConfigError,
    LoginThrottledError,
    SessionEndedError,
    SessionNotAvailableError,
    StoreUnavailableError,
)
from sessionward.core.events import EventBus, EventName
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.core.records import JSONValue, SessionRecord, dumps
from sessionward.io.exchange import Exchange, RequestSession
from sessionward.io.manager import SessionManager
from sessionward.stores import SessionStore, open_store

if TYPE_CHECKING:
    SessionDep: TypeAlias = RequestSession
else:
    try:
        from litestar.di import NamedDependency
    except ImportError:  # Litestar before 2.23 finds a dependency by the parameter's name alone
        SessionDep = RequestSession
    else:
        SessionDep = NamedDependency[RequestSession]
"""A handler's session parameter: ``async def handler(session: SessionDep)`` (named as the
dependency, ``session`` by default); a :class:`RequestSession` to a type checker."""

__all__ = [
    "RequestSession",
    "SessionDep",
    "SessionwardConfig",
    "SessionwardPlugin",
    "get_exchange",
    "get_session",
    "provide_session",
    "requires_login",
    "requires_recent_authentication",
]

logger = logging.getLogger("sessionward")

NOT_INSTALLED = (
    "sessionward's SessionwardPlugin did not wrap this application: it does so when the application starts "
    "(its ASGI lifespan). Run the server with the lifespan on, and use Litestar's TestClient as a context "
    "manager (`with TestClient(app) as client:`)"
)


@dataclass(frozen=True)
class SessionwardConfig:
    """How :class:`SessionwardPlugin` sets sessions up for one application.

    Raises:
        ConfigError: a malformed field, naming it.
    """

    store: str | SessionStore | None = None
    """The store: a URL (``redis://…``, ``postgresql://…``, ``sqlite:///…``) or a store
    object. ``None`` reads ``SESSIONWARD_STORE``, and without it keeps sessions in this
    process's memory (lost on restart, not shared between workers)."""

    policy: SessionPolicy | None = None
    """The session policy; ``None`` builds it from the ``SESSIONWARD_*`` environment variables."""

    clock: Clock | None = None
    """The clock (tests pass a :class:`~sessionward.ManualClock`); ``None`` is the system clock."""

    events: EventBus | None = None
    """Where lifecycle events go (subscribers may be sync or async); ``None`` makes a bus."""

    store_timeout_s: float = 2.0
    """How long a store call may take before the request gets a 503."""

    setup_store: bool = False
    """Call ``store.setup()`` (create a SQL schema) at start-up; by default the schema is
    created once, by ``sessionward store init``."""

    csrf: bool = True
    """Refuse cross-site unsafe requests, and form posts without the session's token."""

    trusted_origins: tuple[str, ...] = ()
    """Other origins allowed to send unsafe requests (``scheme://host[:port]``)."""

    csrf_exempt_paths: tuple[str, ...] = ()
    """Paths CSRF never checks (exact, or prefixes ending in ``/``), e.g. signed webhooks."""

    security_headers: SecurityHeadersPolicy | None = None
    """The security header policy; ``None`` means its defaults."""

    add_security_headers: bool = True
    """Add the security headers at all (off when a proxy adds them)."""

    dependency_key: str = "session"
    """The name under which handlers receive the :class:`RequestSession`."""

    def __post_init__(self) -> None:
        timeout = self.store_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
            raise ConfigError("store_timeout_s", f"{timeout!r} is not a positive, finite number of seconds")
        if not self.dependency_key.isidentifier():
            raise ConfigError("dependency_key", f"{self.dependency_key!r} is not a Python identifier")
        for name in ("trusted_origins", "csrf_exempt_paths"):
            if isinstance(getattr(self, name), str):
                raise ConfigError(name, "must be a tuple of strings, not one string")


class SessionwardPlugin(InitPlugin):
    """Sessionward sessions for a Litestar application (see the module docstring).

    Args:
        config: The settings; ``None`` takes every default (and the environment's
            ``SESSIONWARD_*`` variables).

    Attributes:
        config: The settings.
        manager: The application's session manager (policy, store, clock, events): reach
            it to subscribe to events or to use the store outside a request.

    Raises:
        ConfigError: a malformed setting or ``SESSIONWARD_*`` variable, naming it.
    """

    __slots__ = ("_edge", "_initialised", "_stack", "_warned", "config", "manager")

    def __init__(self, config: SessionwardConfig | None = None) -> None:
        self.config = config = config or SessionwardConfig()
        store = config.store
        if store is None:
            store = os.environ.get("SESSIONWARD_STORE", "memory://")
        if isinstance(store, str):
            store = open_store(store)
        policy = config.policy or SessionPolicy.from_env()
        self.manager = SessionManager(
            store, policy, clock=config.clock, events=config.events, store_timeout_s=config.store_timeout_s
        )
        # Built now, so that a bad trusted origin or exempt path stops start-up here.
        self._edge = _LitestarEdge()
        stack: ASGIApp = self._edge
        if config.csrf:
            stack = CsrfMiddleware(
                stack, self.manager, trusted_origins=config.trusted_origins, exempt_paths=config.csrf_exempt_paths
            )
        stack = SessionMiddleware(stack, self.manager)
        if config.add_security_headers:
            stack = SecurityHeadersMiddleware(stack, config.security_headers)
        self._stack = cast(LitestarASGIApp, stack)
        self._initialised = False
        self._warned = False

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the dependency, the exception handlers, and the start-up and shutdown hooks.

        Raises:
            ImproperlyConfiguredException: the plugin is already in use by another
                application, Litestar's own session middleware is installed too, or
                another dependency has the plugin's ``dependency_key``.
        """
        if self._initialised:
            raise ImproperlyConfiguredException("a SessionwardPlugin serves one application: make one per app")
        self._initialised = True
        if any(_is_litestar_session(middleware) for middleware in app_config.middleware):
            raise ImproperlyConfiguredException(
                "Litestar's session middleware and sessionward both want request.session: remove the former"
            )
        key = self.config.dependency_key
        if key in app_config.dependencies:
            raise ImproperlyConfiguredException(
                f"a dependency named {key!r} exists already: choose another SessionwardConfig.dependency_key"
            )
        app_config.dependencies[key] = Provide(provide_session, sync_to_thread=False)
        app_config.signature_namespace.setdefault("RequestSession", RequestSession)
        app_config.middleware.insert(0, self._require_wrapped)
        handlers = app_config.exception_handlers
        handlers.setdefault(StoreUnavailableError, _store_unavailable)
        handlers.setdefault(SessionEndedError, _session_ended)
        handlers.setdefault(LoginThrottledError, _login_throttled)
        app_config.on_startup.append(self._start)
        app_config.on_shutdown.append(self._stop)
        return app_config

    async def _start(self, app: Litestar) -> None:
        if self.config.setup_store:
            await self.manager.store.setup()
        if app.asgi_handler is not self._stack:  # wrapped once: a second start-up finds it done
            # Around Litestar's own handler, which routes: the firewall sees every request first.
            self._edge.app = app.asgi_handler
            app.asgi_handler = self._stack

    async def _stop(self) -> None:
        await self.manager.store.close()

    def _require_wrapped(self, app: LitestarASGIApp) -> LitestarASGIApp:
        """Route middleware: refuse loudly to serve a route the plugin's outer layers did not see."""

        async def checked(scope: LitestarScope, receive: LitestarReceive, send: LitestarSend) -> None:
            if "sessionward" not in scope:
                if not self._warned:
                    self._warned = True
                    logger.error(NOT_INSTALLED)
                raise ImproperlyConfiguredException(NOT_INSTALLED)
            await app(scope, receive, send)

        return checked


def get_exchange(connection: ASGIConnection[Any, Any, Any, Any]) -> Exchange:
    """Return the connection's exchange (the session's I/O side).

    Raises:
        SessionNotAvailableError: the request did not go through the plugin.
    """
    return _required(cast(Mapping[str, Any], connection.scope))


def get_session(connection: ASGIConnection[Any, Any, Any, Any]) -> RequestSession:
    """Return the connection's session, typed (Litestar types ``request.session`` as a plain dict).

    Raises:
        SessionNotAvailableError: the request did not go through the plugin.
    """
    return get_exchange(connection).session


def provide_session(scope: LitestarScope) -> RequestSession:
    """The dependency the plugin registers: the request's (or WebSocket's) session.

    Raises:
        SessionNotAvailableError: the request did not go through the plugin.
    """
    return _required(cast(Mapping[str, Any], scope)).session


def _exchange_in(scope: Mapping[str, Any]) -> Exchange | None:
    exchange = scope.get("sessionward")
    return exchange if isinstance(exchange, Exchange) else None


def _required(scope: Mapping[str, Any]) -> Exchange:
    exchange = _exchange_in(scope)
    if exchange is None:
        raise SessionNotAvailableError(f"no sessionward session here: {NOT_INSTALLED}")
    return exchange


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: only a signed-in user passes; anyone else gets 401.

    Raises:
        NotAuthorizedException: nobody is signed in on this session.
    """
    if not get_session(connection).is_authenticated:
        raise NotAuthorizedException("sign in first")


def requires_recent_authentication(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a signed-in user who proved who they are within the re-authentication window.

    For what ends sessions or changes credentials (a user's own device list, say).

    Raises:
        NotAuthorizedException: nobody is signed in (401).
        PermissionDeniedException: the sign-in is older than the window (403 ``reauth_required``).
    """
    session = get_session(connection)
    if not session.is_authenticated:
        raise NotAuthorizedException("sign in first")
    if not session.recently_authenticated:
        raise PermissionDeniedException("reauth_required")


# -- Litestar's session API ------------------------------------------------------------------


class _LitestarEdge:
    """Between the session middleware and Litestar: gives Litestar a scope that sees its session API.

    ``request.set_session()`` and ``request.clear_session()`` write ``scope["session"]``;
    :class:`_SessionScope` acts on those writes. A logout asked for by ``clear_session``
    is done when the response starts (the handler's code cannot wait for the store); if
    the store fails then, Litestar's answer is dropped and the error raised to the
    session middleware once Litestar returns, which answers it as any verb's (503).
    """

    __slots__ = ("app",)

    def __init__(self) -> None:
        self.app: LitestarASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        assert app is not None, "the plugin's start-up hook sets the app before any request"
        exchange = _exchange_in(scope)
        if exchange is None:
            await app(cast(LitestarScope, scope), cast(LitestarReceive, receive), cast(LitestarSend, send))
            return
        connection = _SessionScope(scope)
        connection.exchange = exchange
        connection.downstream = send
        await app(cast(LitestarScope, connection), cast(LitestarReceive, receive), cast(LitestarSend, connection.send))
        if connection.failure is not None:
            raise connection.failure


class _SessionScope(dict[str, Any]):
    """The scope Litestar works on: a copy of the request's, watching ``scope["session"]``.

    State per request: the session ``clear_session`` ended (``cleared``), and whether
    ``set_session`` gave data since (``carry``).
    """

    __slots__ = ("carry", "cleared", "downstream", "exchange", "failure", "pending")

    exchange: Exchange
    downstream: Send

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.pending = False
        """``clear_session`` was called: end the session when the response starts."""
        self.cleared: SessionRecord | None = None
        self.carry = False
        self.failure: Exception | None = None
        """The deferred logout failed: nothing more is sent, and this is raised instead."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "session":
            self._set_session(value)
            return
        super().__setitem__(key, value)

    def _set_session(self, value: object) -> None:
        session = self.exchange.session
        if value is session:
            super().__setitem__("session", value)
            return
        if self["type"] != "http":
            raise SessionNotAvailableError(
                "the session is read-only over a WebSocket: change it in an HTTP request (set_session, clear_session)"
            )
        if value is Empty:
            # clear_session(): the data goes now; the session itself when the response starts.
            for name in list(session):
                del session[name]
            self.pending, self.cleared, self.carry = True, self.exchange.record, False
            super().__setitem__("session", Empty)
            return
        _replace_data(session, _as_data(value, self))
        self.carry = self.pending
        super().__setitem__("session", session)

    async def send(self, message: Message) -> None:
        """Pass ``message`` on; first, at the response's start, end a session ``clear_session`` ended."""
        if self.failure is not None:
            return  # the session middleware answers instead
        if self.pending and message["type"] == "http.response.start":
            self.pending = False
            try:
                await self._end_cleared()
            except Exception as error:  # raised to the session middleware, which answers it
                self.failure = error
                return
        await self.downstream(message)

    async def _end_cleared(self) -> None:
        exchange = self.exchange
        if exchange.record is not self.cleared:
            return  # a verb (a login) since took the session over: it leaves it as it should be
        session = exchange.session
        carried = dict(session) if self.carry else {}
        await exchange.logout()
        for name, item in carried.items():
            session[name] = item  # a new anonymous session, under a new ID


def _as_data(value: object, scope: _SessionScope) -> Mapping[str, Any]:
    """Return what ``set_session`` was given as a mapping: itself, or a data class encoded as Litestar does."""
    if isinstance(value, Mapping):
        return value
    serializer = get_serializer_from_scope(cast(LitestarScope, scope)) if "route_handler" in scope else None
    try:
        decoded = orjson.loads(encode_json(value, serializer))
    except (TypeError, ValueError) as error:
        raise TypeError(f"set_session() takes a dict or a data class that encodes to a JSON object: {error}") from None
    if not isinstance(decoded, dict):
        raise TypeError(
            f"set_session() takes a dict or a data class that encodes to a JSON object, not {type(value).__name__}; "
            "to end the session, call clear_session()"
        )
    return decoded


def _replace_data(session: RequestSession, data: Mapping[str, Any]) -> None:
    """Make ``data`` the session's data, all or nothing; unchanged keys are not written again."""
    before = dict(session)
    try:
        for name in before:
            if name not in data:
                del session[name]
        for name, item in data.items():
            if name not in before or not _same(before[name], item):
                session[name] = item
    except Exception:
        for name in list(session):
            if name not in before:
                del session[name]
        for name, item in before.items():
            session[name] = item
        raise


def _same(old: JSONValue, new: object) -> bool:
    """Tell whether writing ``new`` over ``old`` would change nothing (type for type: ``1`` is not ``True``)."""
    if type(old) is not type(new):
        return False
    try:
        return dumps(old) == dumps(new)
    except TypeError:
        return False


# -- what the plugin registers ---------------------------------------------------------------


def _is_litestar_session(middleware: Middleware) -> bool:
    target = middleware.middleware if isinstance(middleware, DefineMiddleware) else middleware
    return isinstance(target, type) and issubclass(target, LitestarSessionMiddleware)


def _store_unavailable(request: Request[Any, Any, Any], error: StoreUnavailableError) -> Response[bytes]:
    # A verb met the outage in the handler; the client gets a retryable answer and
    # nobody was logged in or out by it (the commit skips a 5xx).
    logger.warning("session store unavailable: %s", error)
    exchange = _exchange_in(cast(Mapping[str, Any], request.scope))
    event = None
    if exchange is not None:
        event = BackgroundTask(
            exchange.manager.emit,
            EventName.STORE_UNAVAILABLE,
            reason="store_unavailable",
            client=exchange.client,
            path=exchange.path,
            method=exchange.method,
        )
    body = {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE}
    return _json(503, body, {"Retry-After": "1"}, background=event)


def _session_ended(request: Request[Any, Any, Any], error: SessionEndedError) -> Response[bytes]:
    del error  # a racing request ended the session; the session middleware clears the cookie
    exchange = _exchange_in(cast(Mapping[str, Any], request.scope))
    interruption = exchange.lost() if exchange is not None else None
    if interruption is None:
        return _json(401, {"error": "session_invalid", "reason": "session_ended"}, {})
    if interruption.location is not None:
        headers = {"Location": interruption.location, "Cache-Control": "no-store"}
        return Response(b"", status_code=interruption.status, headers=headers)
    return _json(interruption.status, {"error": "session_invalid", "reason": interruption.reason}, {})


def _login_throttled(request: Request[Any, Any, Any], error: LoginThrottledError) -> Response[bytes]:
    del request
    body = {"error": "throttled", "retry_after_s": error.retry_after_s}
    return _json(429, body, {"Retry-After": str(error.retry_after_s)})


def _json(
    status: int, body: Mapping[str, object], headers: dict[str, str], background: BackgroundTask | None = None
) -> Response[bytes]:
    headers = {**headers, "Cache-Control": "no-store"}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers, background=background
    )

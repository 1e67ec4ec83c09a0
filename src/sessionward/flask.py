"""The Flask extension: ``flask.session`` becomes a sessionward session.

::

    from flask import Flask, session
    from sessionward.flask import SessionWard, current_session

    app = Flask(__name__)
    app.config["SESSIONWARD_STORE"] = "redis://127.0.0.1:6379/0"
    ward = SessionWard(app)

    @app.post("/login")
    def login():
        ...  # check the password
        current_session().login(user.name)  # a new session ID: the pre-login one is dead
        session["theme"] = "dark"  # flask.session is the same session

It wraps ``app.wsgi_app`` in :class:`sessionward.wsgi.SessionMiddleware` (firewall, session
loading, CSRF, security headers, commit: the same code any WSGI app gets) and installs a
session interface that hands Flask the request's session. ``flask.session`` is then a
:class:`FlaskSession`: a mapping of JSON values, plus ``login``, ``logout``,
``rotate_id``, ``elevate``, ``status`` and the registry API (``list_sessions``,
``revoke``, ``revoke_others``). Templates get ``csrf_token()`` for forms.

Configuration: the ``store`` and ``policy`` arguments, else Flask config keys:
``SESSIONWARD_STORE`` (a URL or a sync store object; default ``memory://``), every
``SESSIONWARD_*`` policy variable (read as :meth:`SessionPolicy.from_env`
reads the environment), ``SESSIONWARD_CSRF`` (default on), ``SESSIONWARD_CSRF_TRUSTED_ORIGINS``,
``SESSIONWARD_CSRF_EXEMPT_PATHS``, ``SESSIONWARD_SECURITY_HEADERS`` (default on) and
``SESSIONWARD_AUDIT_LOG`` (a file for the JSON audit trail).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sessionward.core.extras import needs_extra

with needs_extra("flask", "sessionward.flask"):
    from flask import Flask, Request, Response, current_app, g, has_app_context, jsonify, request, session
    from flask.sessions import SessionInterface, SessionMixin

from sessionward._sync.exchange import Exchange, RequestSession
from sessionward._sync.login_throttle import ClientThrottle
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import open_store
from sessionward._sync.stores.base import SessionStore
from sessionward.core.clock import Clock
from sessionward.core.config import CsrfPolicy, SessionPolicy
from sessionward.core.csrf import csrf_token as _csrf_token
from sessionward.core.env import config_flag, config_items, settings_from_config
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    LoginThrottledError,
    SessionEndedError,
    SessionNotAvailableError,
    StoreUnavailableError,
)
from sessionward.core.events import EventBus, EventName, JsonAuditLogger
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.core.outcomes import SessionInfo
from sessionward.core.records import EndReason
from sessionward.core.session_view import SessionView
from sessionward.wsgi import SessionMiddleware

__all__ = ["AppState", "FlaskSession", "SessionWard", "csrf_token", "current_exchange", "current_session"]

EXTENSION_KEY = "sessionward"


class FlaskSession(SessionView, SessionMixin):
    """What ``flask.session`` is: the request's session, a mapping of JSON values with verbs.

    Values must be JSON-typed; the verbs reach the store at once. The data's size
    is checked as values are assigned; a container grown in place is measured by
    :meth:`check_size`, and at the latest when the response starts (see
    :class:`sessionward.core.session.Session`).
    """

    new = False
    modified = False

    def __init__(self, session: RequestSession) -> None:
        super().__init__(session)
        self._session = session

    def clear(self) -> None:
        """End the session, as :meth:`logout` does: its data, its login and its ID all go.

        ``session.clear()`` is how most Flask applications log a user out. Dropping only
        the data would leave the user signed in under the same ID (and keep alive an ID an
        attacker planted). Values written afterwards start a new anonymous session under a
        new ID; to sign someone in, call :meth:`login`.
        """
        self._session.logout()

    # -- verbs ------------------------------------------------------------------------------------

    @property
    def throttle(self) -> ClientThrottle:
        """Login throttling for this request's client::

            current_session().throttle.check(name)  # LoginThrottledError: a 429 with Retry-After
            if not verify(name, password):
                current_session().throttle.failed(name)
                ...  # 401
            current_session().throttle.succeeded(name)
            current_session().login(name)

        A :class:`~sessionward.core.errors.LoginThrottledError` the view does not catch is
        answered 429 ``{"error": "throttled", "retry_after_s": n}`` with ``Retry-After``.
        """
        return self._session.throttle

    def login(self, user: str) -> None:
        """Log ``user`` in; the session ID changes per the fixation strategy.

        Raises:
            LoginRefusedError: multiple-login control refused it ("first wins").
        """
        self._session.login(user)

    def logout(self) -> None:
        """End the session server-side and clear its cookie."""
        self._session.logout()

    def rotate_id(self) -> None:
        """Give the session a new ID now (call on any privilege change)."""
        self._session.rotate_id()

    def elevate(self) -> None:
        """Elevate (sudo mode) for the configured time; the ID changes."""
        self._session.elevate()

    def reauthenticated(self) -> None:
        """Record that the user just re-entered their password (a recent authentication)."""
        self._session.reauthenticated()

    def list_sessions(self) -> list[SessionInfo]:
        """The current user's live sessions."""
        return self._session.list_sessions()

    def revoke(self, handle: str) -> bool:
        """End one of the user's sessions by handle; ``False`` if unknown or not theirs."""
        return self._session.revoke(handle)

    def revoke_others(self, reason: EndReason = EndReason.REVOKED) -> int:
        """End all the user's other sessions (e.g. on password change); return how many."""
        return self._session.revoke_others(reason)

    def csrf_token(self) -> str:
        """The session's CSRF token for a form (made on first use)."""
        return _csrf_token(self._session)


class _Interface(SessionInterface):
    """Hands Flask the session the middleware opened; the middleware commits it."""

    def open_session(self, app: Flask, request: Request) -> FlaskSession | None:
        session = request.environ.get("sessionward.session")
        if not isinstance(session, RequestSession):
            return None  # not through the middleware (e.g. test_request_context): a null session
        return FlaskSession(session)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Do nothing: the middleware commits when the response starts (after Flask is done)."""


@dataclass(frozen=True)
class AppState:
    """What :meth:`SessionWard.init_app` set up for one application.

    Attributes:
        store: The app's store.
        policy: The app's policy.
        manager: The app's session manager (policy, engine, store, clock, events).
        audit_logger: The audit trail of the app's ``SESSIONWARD_AUDIT_LOG``, if configured
            (close it at shutdown).
    """

    store: SessionStore
    policy: SessionPolicy
    manager: SessionManager
    audit_logger: JsonAuditLogger | None


class SessionWard:
    """The Flask extension.

    One instance may serve several applications (the application factory pattern): each
    :meth:`init_app` builds that app's own store, policy and manager from the arguments
    given here or, where none was given, from that app's config; nothing of one app leaks
    into another. Events reach ``events`` (shared by every app), and each app's audit
    log gets only its own.

    Args:
        app: The application, or ``None`` to call :meth:`init_app` later.
        store: A sync store (``sessionward._sync.stores``); else ``SESSIONWARD_STORE``.
        policy: The session policy; else built from the app's ``SESSIONWARD_*`` config.
        clock: The clock (tests pass a manual one).
        events: The event bus; subscribe plain callables (WSGI calls no coroutines).
        store_timeout_s: How long a store call may take before it counts as an outage.
        csrf: CSRF settings; else from config (on by default).
        security_headers: Header policy; else from config (on by default).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        store: SessionStore | None = None,
        policy: SessionPolicy | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
        store_timeout_s: float = 2.0,
        csrf: CsrfPolicy | None = None,
        security_headers: SecurityHeadersPolicy | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        self.clock = clock
        self.events = events or EventBus()
        self.store_timeout_s = store_timeout_s
        self.csrf = csrf
        self.security_headers = security_headers
        self._apps: WeakKeyDictionary[Flask, AppState] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install sessionward on ``app``: middleware, session interface, Jinja global, 503s.

        Raises:
            ConfigError: a malformed ``SESSIONWARD_*`` value, naming it.
        """
        config = settings_from_config(app.config)
        policy = self._policy or SessionPolicy.from_env(config, base=SessionPolicy())
        store = self._store or open_store(str(app.config.get("SESSIONWARD_STORE", "memory://")))
        events = self.events
        audit_logger = None
        audit = app.config.get("SESSIONWARD_AUDIT_LOG")
        if audit:
            # The app's own bus: its audit log hears only this app; everything still reaches
            # the shared bus (plain subscribers: WSGI emits synchronously).
            audit_logger = JsonAuditLogger(str(audit), app_id=self.events.app_id)
            events = EventBus(app_id=self.events.app_id, log=False)  # the shared bus logs
            events.subscribe(audit_logger)
            events.subscribe(self.events.emit_sync)
        manager = SessionManager(store, policy, clock=self.clock, events=events, store_timeout_s=self.store_timeout_s)
        csrf = self.csrf
        if csrf is None and config_flag(app.config.get("SESSIONWARD_CSRF", True)):
            csrf = CsrfPolicy(
                trusted_origins=frozenset(config_items(app.config.get("SESSIONWARD_CSRF_TRUSTED_ORIGINS"))),
                exempt_paths=tuple(config_items(app.config.get("SESSIONWARD_CSRF_EXEMPT_PATHS"))),
            )
        headers = self.security_headers
        if headers is None and config_flag(app.config.get("SESSIONWARD_SECURITY_HEADERS", True)):
            headers = SecurityHeadersPolicy()
        app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, manager, csrf=csrf, security_headers=headers
        )
        app.session_interface = _Interface()
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.register_error_handler(StoreUnavailableError, _store_unavailable)
        app.register_error_handler(SessionEndedError, _session_ended)
        app.register_error_handler(LoginThrottledError, _login_throttled)
        self._apps[app] = AppState(store=store, policy=policy, manager=manager, audit_logger=audit_logger)
        app.extensions[EXTENSION_KEY] = self

    def state(self, app: Flask | None = None) -> AppState:
        """Return what :meth:`init_app` set up for ``app``.

        Args:
            app: The application; ``None`` means the current one (in an app context), or
                the only one this extension serves.

        Raises:
            RuntimeError: ``app`` was not set up by this extension, or ``None`` was given
                outside an app context while the extension serves several apps.
        """
        if app is None:
            if has_app_context():
                app = current_app._get_current_object()  # type: ignore[attr-defined]
            elif len(self._apps) == 1:
                return next(iter(self._apps.values()))
            else:
                raise RuntimeError("SessionWard serves several apps: pass the app, or call this in an app context")
        state = self._apps.get(app)
        if state is None:
            raise RuntimeError("this app was not set up by this SessionWard: call init_app(app) first")
        return state

    @property
    def store(self) -> SessionStore:
        """The current (or only) app's store: see :meth:`state`."""
        return self.state().store

    @property
    def policy(self) -> SessionPolicy:
        """The current (or only) app's policy: see :meth:`state`."""
        return self.state().policy

    @property
    def manager(self) -> SessionManager:
        """The current (or only) app's session manager: see :meth:`state`."""
        return self.state().manager

    @property
    def audit_logger(self) -> JsonAuditLogger | None:
        """The current (or only) app's audit trail, if configured: see :meth:`state`."""
        return self.state().audit_logger


def current_session() -> FlaskSession:
    """Return the request's session, typed (``flask.session`` is typed as Flask's own).

    ::

        from sessionward.flask import current_session

        current_session().login(user.name)  # no cast, no ``type: ignore``

    Raises:
        SessionNotAvailableError: outside a request that went through the middleware.
    """
    found = session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(found, FlaskSession):
        raise SessionNotAvailableError("no sessionward session here: is SessionWard(app) installed?")
    return found


def current_exchange() -> Exchange:
    """Return the current request's exchange (the session's I/O side).

    Raises:
        SessionNotAvailableError: outside a request that went through the middleware.
    """
    exchange = request.environ.get("sessionward")
    if not isinstance(exchange, Exchange):
        raise SessionNotAvailableError("no sessionward session here: is SessionWard(app) installed?")
    return exchange


def csrf_token() -> str:
    """Return the CSRF token for a form in this request (the ``csrf_token()`` Jinja global)."""
    token: str | None = g.get("_sessionward_csrf")
    if token is None:
        token = _csrf_token(current_exchange().session)
        g._sessionward_csrf = token
    return token


def _store_unavailable(error: StoreUnavailableError) -> tuple[Response, int, dict[str, str]]:
    # A verb met the outage in the view: Flask hands it here, and the middleware, which
    # logs and reports the others, never sees it. The user gets a retryable answer.
    logging.getLogger("sessionward").warning("session store unavailable: %s", error)
    opened = request.environ.get("sessionward.session")
    if isinstance(opened, RequestSession):
        exchange = opened.exchange
        exchange.manager.emit(
            EventName.STORE_UNAVAILABLE,
            reason="store_unavailable",
            client=exchange.client,
            path=exchange.path,
            method=exchange.method,
        )
    body = jsonify(error="session_store_unavailable", message=STORE_UNAVAILABLE_MESSAGE)
    return body, 503, {"Retry-After": "1", "Cache-Control": "no-store"}


def _login_throttled(error: LoginThrottledError) -> tuple[Response, int, dict[str, str]]:
    wait = str(error.retry_after_s)
    body = jsonify(error="throttled", retry_after_s=error.retry_after_s)
    return body, 429, {"Retry-After": wait, "Cache-Control": "no-store"}


def _session_ended(error: SessionEndedError) -> tuple[Response, int, dict[str, str]]:
    del error  # a racing request ended the session; the middleware clears the cookie
    return jsonify(error="session_invalid", reason="session_ended"), 401, {"Cache-Control": "no-store"}

"""The Flask extension: ``flask.session`` becomes a sessionward session.

::

    from flask import Flask, session
    from sessionward.flask import SessionWard

    app = Flask(__name__)
    app.config["SESSIONWARD_STORE"] = "redis://127.0.0.1:6379/0"
    ward = SessionWard(app)

    @app.post("/login")
    def login():
        ...  # check the password
        session.login(user.name)  # a new session ID: the pre-login one is dead (F6)

It wraps ``app.wsgi_app`` in :class:`sessionward.wsgi.SessionMiddleware` (firewall, session
loading, CSRF, security headers, commit: the same code any WSGI app gets) and installs a
session interface that hands Flask the request's session. ``flask.session`` is then a
:class:`FlaskSession`: a mapping of JSON values, plus ``login``, ``logout``,
``rotate_id``, ``elevate``, ``status`` and the registry API (``list_sessions``,
``revoke``, ``revoke_others``). Templates get ``csrf_token()`` for forms.

Configuration: the ``store`` and ``policy`` arguments, else Flask config keys:
``SESSIONWARD_STORE`` (a URL or a sync store object; default ``memory://``), every
``SESSIONWARD_*`` policy variable of SPEC §6 (read as :meth:`SessionPolicy.from_env`
reads the environment), ``SESSIONWARD_CSRF`` (default on), ``SESSIONWARD_CSRF_TRUSTED_ORIGINS``,
``SESSIONWARD_CSRF_EXEMPT_PATHS``, ``SESSIONWARD_SECURITY_HEADERS`` (default on) and
``SESSIONWARD_AUDIT_LOG`` (a file for the JSON audit trail).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Request, Response, g, jsonify, request
from flask.sessions import SessionInterface, SessionMixin

from sessionward._sync.exchange import Exchange, RequestSession
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import open_store
from sessionward._sync.stores.base import SessionStore
from sessionward.clock import Clock
from sessionward.config import SessionPolicy
from sessionward.csrf import csrf_token as _csrf_token
from sessionward.engine import SessionStatus
from sessionward.errors import SessionEndedError, SessionNotAvailableError, StoreUnavailableError
from sessionward.events import EventBus, JsonAuditLogger
from sessionward.exchange import SessionInfo
from sessionward.headers import SecurityHeadersPolicy
from sessionward.records import EndReason, JSONValue
from sessionward.wsgi import STORE_UNAVAILABLE_MESSAGE, CsrfSettings, SessionMiddleware

__all__ = ["FlaskSession", "SessionWard", "csrf_token", "current_exchange"]

EXTENSION_KEY = "sessionward"


class FlaskSession(SessionMixin):
    """What ``flask.session`` is: the request's session, a mapping of JSON values with verbs.

    Values must be JSON-typed (F17); the verbs reach the store at once.
    """

    new = False
    modified = False

    def __init__(self, session: RequestSession) -> None:
        self._session = session

    # -- the mapping -----------------------------------------------------------------------

    def __getitem__(self, key: str) -> JSONValue:
        return self._session[key]

    def __setitem__(self, key: str, value: JSONValue) -> None:
        self._session[key] = value

    def __delitem__(self, key: str) -> None:
        del self._session[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._session)

    def __len__(self) -> int:
        return len(self._session)

    def __contains__(self, key: object) -> bool:
        return key in self._session

    def clear(self) -> None:
        """End the session, as :meth:`logout` does: its data, its login and its ID all go.

        ``session.clear()`` is how most Flask applications log a user out. Dropping only
        the data would leave the user signed in under the same ID (and keep alive an ID an
        attacker planted). Values written afterwards start a new anonymous session under a
        new ID; to sign someone in, call :meth:`login`.
        """
        self._session.logout()

    @property
    def permanent(self) -> bool:
        """Always ``False``: expiry is the policy's (idle/absolute timeouts), not a cookie age."""
        return False

    @permanent.setter
    def permanent(self, value: bool) -> None:
        del value  # Flask's default interface would store a flag in the data; the policy decides here.

    # -- who and how -------------------------------------------------------------------------

    @property
    def user(self) -> str | None:
        """The authenticated user, if any."""
        return self._session.user

    @property
    def is_authenticated(self) -> bool:
        """Whether a user is logged in."""
        return self._session.is_authenticated

    @property
    def handle(self) -> str | None:
        """The session's public handle (never the ID)."""
        return self._session.handle

    @property
    def is_elevated(self) -> bool:
        """Whether an elevation (sudo mode) is in force."""
        return self._session.is_elevated

    @property
    def recently_authenticated(self) -> bool:
        """Whether the user proved who they are within the re-auth window (F12)."""
        return self._session.recently_authenticated

    def status(self) -> SessionStatus:
        """The figures of F20."""
        return self._session.status()

    # -- verbs ------------------------------------------------------------------------------------

    def login(self, user: str) -> None:
        """Log ``user`` in; the session ID changes per the fixation strategy (F6).

        Raises:
            LoginRefusedError: multiple-login control refused it ("first wins", F11).
        """
        self._session.login(user)

    def logout(self) -> None:
        """End the session server-side and clear its cookie."""
        self._session.logout()

    def rotate_id(self) -> None:
        """Give the session a new ID now (call on any privilege change, F7)."""
        self._session.rotate_id()

    def elevate(self) -> None:
        """Elevate (sudo mode) for the configured time; the ID changes."""
        self._session.elevate()

    def reauthenticated(self) -> None:
        """Record that the user just re-entered their password (a recent authentication)."""
        self._session.reauthenticated()

    def list_sessions(self) -> list[SessionInfo]:
        """The current user's live sessions (F12)."""
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


class SessionWard:
    """The Flask extension.

    Args:
        app: The application, or ``None`` to call :meth:`init_app` later.
        store: A sync store (``sessionward._sync.stores``); else ``SESSIONWARD_STORE``.
        policy: The session policy; else built from the app's ``SESSIONWARD_*`` config.
        clock: The clock (tests pass a manual one).
        events: The event bus; subscribe plain callables (WSGI calls no coroutines).
        store_timeout_s: The store timeout (F19).
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
        csrf: CsrfSettings | None = None,
        security_headers: SecurityHeadersPolicy | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.events = events or EventBus()
        self.store_timeout_s = store_timeout_s
        self.csrf = csrf
        self.security_headers = security_headers
        self.manager: SessionManager | None = None
        self.audit_logger: JsonAuditLogger | None = None
        """The audit trail of ``SESSIONWARD_AUDIT_LOG``, if configured (close it at shutdown)."""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install sessionward on ``app``: middleware, session interface, Jinja global, 503s.

        Raises:
            ConfigError: a malformed ``SESSIONWARD_*`` value, naming it.
        """
        config = _settings(app.config)
        policy = self.policy or SessionPolicy.from_env(config, base=SessionPolicy())
        store = self.store or open_store(str(app.config.get("SESSIONWARD_STORE", "memory://")))
        self.store = store
        self.policy = policy
        audit = app.config.get("SESSIONWARD_AUDIT_LOG")
        if audit:
            self.audit_logger = JsonAuditLogger(str(audit))
            self.events.subscribe(self.audit_logger)
        manager = SessionManager(
            store, policy, clock=self.clock, events=self.events, store_timeout_s=self.store_timeout_s
        )
        self.manager = manager
        csrf = self.csrf
        if csrf is None and _flag(app.config.get("SESSIONWARD_CSRF", True)):
            csrf = CsrfSettings(
                trusted_origins=frozenset(_items(app.config.get("SESSIONWARD_CSRF_TRUSTED_ORIGINS"))),
                exempt_paths=tuple(_items(app.config.get("SESSIONWARD_CSRF_EXEMPT_PATHS"))),
            )
        headers = self.security_headers
        if headers is None and _flag(app.config.get("SESSIONWARD_SECURITY_HEADERS", True)):
            headers = SecurityHeadersPolicy()
        app.wsgi_app = SessionMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, manager, csrf=csrf, security_headers=headers
        )
        app.session_interface = _Interface()
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.register_error_handler(StoreUnavailableError, _store_unavailable)
        app.register_error_handler(SessionEndedError, _session_ended)
        app.extensions[EXTENSION_KEY] = self


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
    del error  # logged where it happened; the user gets a retryable answer (F19)
    body = jsonify(error="session_store_unavailable", message=STORE_UNAVAILABLE_MESSAGE)
    return body, 503, {"Retry-After": "1", "Cache-Control": "no-store"}


def _session_ended(error: SessionEndedError) -> tuple[Response, int, dict[str, str]]:
    del error  # a racing request ended the session; the middleware clears the cookie
    return jsonify(error="session_invalid", reason="session_ended"), 401, {"Cache-Control": "no-store"}


def _settings(config: Mapping[str, Any]) -> dict[str, str]:
    """The app's ``SESSIONWARD_*`` config as the text ``SessionPolicy.from_env`` reads."""
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key, value in config.items()
        if key.startswith("SESSIONWARD_") and value is not None
    }


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _items(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(item) for item in value]
    return [str(value)]

"""Every ASGI defence in one call, in the right order, with the store's lifetime tied to the app's.

::

    from sessionward import SessionManager, SessionPolicy, open_store, protect

    manager = SessionManager(open_store("redis://127.0.0.1:6379/0"), SessionPolicy.from_env())
    app = protect(Starlette(routes=...), manager)

gives, outermost first: the security headers (so that they are on the session layer's own
answers too: 401, 403, 429, 503), the session middleware (firewall, session loading,
commit), and CSRF (which needs the session's token). The store is closed when the
application shuts down (its ASGI lifespan), and set up at start-up if asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.headers import SecurityHeadersMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.config import CsrfPolicy
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.io.manager import SessionManager


def protect(
    app: ASGIApp,
    manager: SessionManager,
    *,
    csrf: bool | CsrfPolicy = True,
    trusted_origins: Iterable[str] = (),
    csrf_exempt_paths: Iterable[str] = (),
    security_headers: SecurityHeadersPolicy | None = None,
    add_security_headers: bool = True,
    setup_store: bool = False,
) -> ASGIApp:
    """Wrap ``app`` in sessionward's ASGI defences, outermost first: headers, sessions, CSRF.

    Args:
        app: The application.
        manager: Its session manager (policy, store, clock, events).
        csrf: Refuse cross-site unsafe requests and form posts without the token: ``True``
            (the settings below), a :class:`~sessionward.core.config.CsrfPolicy`, or ``False``.
        trusted_origins: Other origins allowed to send unsafe requests (``scheme://host[:port]``).
        csrf_exempt_paths: Paths CSRF never checks (exact, or prefixes ending in ``/``).
        security_headers: The header policy; ``None`` means the defaults.
        add_security_headers: Add the security headers at all (off when a proxy adds them).
        setup_store: Call ``store.setup()`` (creating a SQL schema) at start-up; by
            default the schema is created once, by ``sessionward store init``.

    Returns:
        The wrapped application; it closes the store at shutdown.
    """
    wrapped: ASGIApp = app
    if csrf:
        wrapped = CsrfMiddleware(
            wrapped,
            manager,
            policy=csrf if isinstance(csrf, CsrfPolicy) else None,
            trusted_origins=trusted_origins,
            exempt_paths=csrf_exempt_paths,
        )
    wrapped = SessionMiddleware(wrapped, manager)
    if add_security_headers:
        wrapped = SecurityHeadersMiddleware(wrapped, security_headers)
    return StoreLifespan(wrapped, manager, setup_store=setup_store)


class StoreLifespan:
    """Ties the store's lifetime to the application's ASGI lifespan.

    At ``lifespan.startup`` it sets the store up (if asked) before the application starts;
    after the application has shut down (``lifespan.shutdown.complete``) it closes the store.
    Everything else passes through untouched.

    Args:
        app: The wrapped application.
        manager: Whose store to set up and close.
        setup_store: Call ``store.setup()`` at start-up.
    """

    def __init__(self, app: ASGIApp, manager: SessionManager, *, setup_store: bool = False) -> None:
        self.app = app
        self.manager = manager
        self.setup_store = setup_store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        store = self.manager.store

        async def starting(message: Message) -> Message:
            if message["type"] == "lifespan.startup" and self.setup_store:
                await store.setup()
            return message

        async def receive_started() -> Message:
            return await starting(await receive())

        async def send_closed(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await store.close()
            await send(message)

        await self.app(scope, receive_started, send_closed)

    def __getattr__(self, name: str) -> Any:
        # Reach the wrapped app's attributes (e.g. ``app.state``) through the wrapper.
        return getattr(self.app, name)

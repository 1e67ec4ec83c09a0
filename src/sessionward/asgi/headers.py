"""Security headers for ASGI: a small pure middleware around the rules of :mod:`sessionward.core.headers`.

It adds the :class:`SecurityHeadersPolicy`'s headers to every HTTP response and
``Cache-Control: no-store`` to those that carry or read a session; which ones, and why,
is decided in :mod:`sessionward.core.headers`, shared with the WSGI middleware.
"""

from __future__ import annotations

from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.headers import (
    SecurityHeadersPolicy,
    carries_session,
    secure_headers,
)
from sessionward.io.exchange import Exchange

__all__ = ["SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """Adds the policy's security headers to every HTTP response.

    Place it outermost, so that it also sees the session middleware's own answers
    (401, 503, redirects)::

        app = SecurityHeadersMiddleware(SessionMiddleware(CsrfMiddleware(app, manager), manager))

    Args:
        app: The wrapped application.
        policy: Which headers to add; the defaults when ``None``.
    """

    def __init__(self, app: ASGIApp, policy: SecurityHeadersPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or SecurityHeadersPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # Seen from outside the session middleware, its exchange is in the scope.
                exchange = scope.get("sessionward")
                carries = self.policy.no_store_session_responses and carries_session(
                    headers, exchange if isinstance(exchange, Exchange) else None
                )
                message["headers"] = secure_headers(self.policy, headers, carries_session=carries)
            await send(message)

        await self.app(scope, receive, send_wrapper)

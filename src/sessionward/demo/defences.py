"""The defences as the demo wires them: sessions, CSRF protection and security headers.

The order matters: security headers outermost (so that even the session middleware's
own answers — 401, redirects, 503 — carry them), then sessions, then the CSRF checks,
which read the request's session.
"""

from __future__ import annotations

from starlette.middleware import Middleware

from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.headers import SecurityHeadersMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.core.csrf import csrf_token
from sessionward.io.exchange import RequestSession
from sessionward.io.manager import SessionManager


def middleware(manager: SessionManager) -> list[Middleware]:
    """The demo's middleware, outermost first."""
    return [
        Middleware(SecurityHeadersMiddleware),
        Middleware(SessionMiddleware, manager),
        Middleware(CsrfMiddleware, manager),
    ]


def form_token(session: RequestSession) -> str:
    """The synchronizer token for the page's forms (a visitor's session is made for it)."""
    return csrf_token(session)

"""The ASGI edge: the session, CSRF and security-header middlewares, and ``protect``.

``protect(app, manager)`` installs all three in the right order; each is also usable alone.
:mod:`sessionward.asgi.types` holds the ASGI interface's type aliases.
"""

from sessionward.asgi.csrf import CsrfMiddleware
from sessionward.asgi.headers import SecurityHeadersMiddleware
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.asgi.protect import StoreLifespan, protect

__all__ = [
    "CsrfMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "StoreLifespan",
    "protect",
]

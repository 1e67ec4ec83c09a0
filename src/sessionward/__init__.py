"""sessionward: secure server-side sessions for Python web applications.

What an ASGI application needs comes from here::

    from sessionward import SessionManager, SessionPolicy, open_store, protect

    manager = SessionManager(open_store("redis://127.0.0.1:6379/0"), SessionPolicy.from_env())
    app = protect(app, manager)  # security headers, sessions, CSRF; the store closed at shutdown

WSGI and Flask applications use :mod:`sessionward.sync` and :mod:`sessionward.flask`.

The core (policy, IDs, cookies, the session object, the engine, events) does no I/O and
is imported at once; the async I/O layer (``SessionManager``, ``open_store``, the
middleware, ``RequestSession``) is imported on first use, so ``import sessionward``
alone loads no event loop, store client or framework.
"""

from typing import TYPE_CHECKING, Any

from sessionward.core.clock import Clock, ManualClock, system_clock
from sessionward.core.config import (
    BindingMismatch,
    BindingPolicy,
    BudgetAction,
    CookiePolicy,
    Creation,
    CreationBudget,
    CsrfPolicy,
    FirewallPolicy,
    Fixation,
    InvalidSessionPolicy,
    LoginPolicy,
    SessionPolicy,
    TimeoutPolicy,
)
from sessionward.core.engine import ClientInfo, SessionEngine, SessionStatus
from sessionward.core.errors import (
    ConfigError,
    LoginRefusedError,
    LoginThrottledError,
    SessionBudgetExceededError,
    SessionDataError,
    SessionNotAvailableError,
    SessionTooLargeError,
    SessionwardError,
    StoreError,
    StoreUnavailableError,
)
from sessionward.core.events import EventBus, EventName, JsonAuditLogger, SessionEvent
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone
from sessionward.core.session import Session

if TYPE_CHECKING:
    from sessionward.asgi.middleware import SessionMiddleware
    from sessionward.asgi.protect import protect
    from sessionward.io.exchange import RequestSession
    from sessionward.io.manager import SessionManager
    from sessionward.stores import MemoryStore, SessionStore, open_store

# Name -> module of the I/O layer, imported when the name is first used (PEP 562).
_LAZY = {
    "MemoryStore": "sessionward.stores",
    "RequestSession": "sessionward.io.exchange",
    "SessionManager": "sessionward.io.manager",
    "SessionMiddleware": "sessionward.asgi.middleware",
    "SessionStore": "sessionward.stores",
    "open_store": "sessionward.stores",
    "protect": "sessionward.asgi.protect",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionward' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BindingMismatch",
    "BindingPolicy",
    "BudgetAction",
    "ClientInfo",
    "Clock",
    "ConfigError",
    "CookiePolicy",
    "Creation",
    "CreationBudget",
    "CsrfPolicy",
    "EndReason",
    "EventBus",
    "EventName",
    "FirewallPolicy",
    "Fixation",
    "InvalidSessionPolicy",
    "JsonAuditLogger",
    "LoginPolicy",
    "LoginRefusedError",
    "LoginThrottledError",
    "ManualClock",
    "MemoryStore",
    "RequestSession",
    "SecurityHeadersPolicy",
    "Session",
    "SessionBudgetExceededError",
    "SessionDataError",
    "SessionEngine",
    "SessionEvent",
    "SessionManager",
    "SessionMeta",
    "SessionMiddleware",
    "SessionNotAvailableError",
    "SessionPolicy",
    "SessionRecord",
    "SessionStatus",
    "SessionStore",
    "SessionTooLargeError",
    "SessionwardError",
    "StoreError",
    "StoreUnavailableError",
    "TimeoutPolicy",
    "Tombstone",
    "open_store",
    "protect",
    "system_clock",
]

__version__ = "0.1.0"

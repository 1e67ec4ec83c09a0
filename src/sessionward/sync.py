"""sessionward for WSGI applications: the synchronous I/O layer under public names.

::

    from sessionward import SessionPolicy
    from sessionward.sync import SessionManager, SessionMiddleware, open_store

    manager = SessionManager(open_store("postgresql://db/app"), SessionPolicy.from_env())
    application = SessionMiddleware(application, manager)

Everything here is the synchronous twin of the async layer (same behaviour, same store
layout: an ASGI and a WSGI app can share one store). Flask users want
:mod:`sessionward.flask`, which builds on this.
"""

from sessionward._sync.exchange import Exchange, RequestSession
from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import MemoryStore, SessionStore, open_store
from sessionward.core.config import CsrfPolicy
from sessionward.core.headers import SecurityHeadersPolicy
from sessionward.wsgi import SessionMiddleware

__all__ = [
    "CsrfPolicy",
    "Exchange",
    "MemoryStore",
    "RequestSession",
    "SecurityHeadersPolicy",
    "SessionManager",
    "SessionMiddleware",
    "SessionStore",
    "open_store",
]

"""Starlette and FastAPI helpers: install the middleware, reach the session.

``install(app, ...)`` adds :class:`~sessionward.asgi.middleware.SessionMiddleware`;
``get_session`` is a FastAPI dependency (and a plain helper for Starlette handlers)
returning the request's :class:`~sessionward.io.exchange.RequestSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from sessionward.core.extras import MissingExtraError, needs_extra
from sessionward.io.exchange import Exchange, RequestSession

with needs_extra("starlette", "sessionward.starlette"):
    from starlette.requests import HTTPConnection


def get_session(connection: HTTPConnection) -> RequestSession:
    """Return the request's session (FastAPI: ``Depends(get_session)``)."""
    exchange = connection.scope.get("sessionward")
    if not isinstance(exchange, Exchange):
        raise RuntimeError("sessionward's SessionMiddleware is not installed on this application")
    return exchange.session


try:
    from fastapi import Depends

    SessionDep = Annotated[RequestSession, Depends(get_session)]
    """FastAPI parameter annotation: ``def handler(session: SessionDep): ...``."""
except ImportError as missing_fastapi:  # FastAPI is optional: SessionDep says which extra brings it
    _missing_fastapi = MissingExtraError("sessionward.starlette.SessionDep", "fastapi", missing_fastapi)

    if not TYPE_CHECKING:

        def __getattr__(name: str) -> object:
            if name == "SessionDep":
                raise _missing_fastapi.with_traceback(None)
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Starlette and FastAPI helpers: install the middleware, reach the session.

``install(app, ...)`` adds :class:`~sessionward.asgi.SessionMiddleware`;
``get_session`` is a FastAPI dependency (and a plain helper for Starlette handlers)
returning the request's :class:`~sessionward.exchange.RequestSession`.
"""

from __future__ import annotations

from typing import Annotated

from starlette.requests import HTTPConnection

from sessionward.exchange import Exchange, RequestSession


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
except ImportError:  # FastAPI is optional
    pass

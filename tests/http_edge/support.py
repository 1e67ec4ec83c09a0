"""Small apps for the HTTP edge cases: a Starlette one and a Flask one, with a cart.

The cart is grown in place (``session["cart"].append(...)``), the way that escapes the
size check made at assignment.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionward import ManualClock, SessionPolicy, SessionTooLargeError
from sessionward._sync.stores import MemoryStore as SyncMemoryStore
from sessionward.asgi.middleware import SessionMiddleware
from sessionward.flask import FlaskSession, SessionWard
from sessionward.io.manager import SessionManager
from sessionward.starlette import get_session
from sessionward.stores.memory import MemoryStore

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ITEM = "x" * 600
"""One cart item: one fits under the 1 KiB limit the cart tests set, two do not."""

SMALL_LIMIT = 1024


def starlette_client(app: Any, **options: Any) -> TestClient:
    """Starlette's ``TestClient`` for ``app`` (its module warns, once, that httpx2 is missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.testclient import TestClient

    return TestClient(app, **options)


async def _login(request: Request) -> Response:
    session = get_session(request)
    await session.login("alice")
    return JSONResponse({"user": session.user})


async def _whoami(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user, "cart": session.get("cart")})


async def _add(request: Request) -> Response:
    session = get_session(request)
    if "cart" not in session:
        session["cart"] = []
    cart = session["cart"]
    assert isinstance(cart, list)
    cart.append(ITEM)
    return JSONResponse({"items": len(cart)})


async def _add_checked(request: Request) -> Response:
    session = get_session(request)
    cart = session["cart"]
    assert isinstance(cart, list)
    cart.append(ITEM)
    try:
        session.check_size()
    except SessionTooLargeError as error:
        cart.pop()
        return JSONResponse({"error": "cart_full", "keys": list(error.keys)}, status_code=409)
    return JSONResponse({"items": len(cart)})


def starlette_app(policy: SessionPolicy, clock: ManualClock) -> SessionMiddleware:
    """A Starlette app on the session middleware, with a memory store."""
    routes = [
        Route("/login", _login, methods=["POST"]),
        Route("/whoami", _whoami),
        Route("/cart/add", _add, methods=["POST"]),
        Route("/cart/add-checked", _add_checked, methods=["POST"]),
    ]
    return SessionMiddleware(Starlette(routes=routes), SessionManager(MemoryStore(), policy, clock=clock))


def flask_app(policy: SessionPolicy, clock: ManualClock) -> Flask:
    """The same app on Flask (CSRF off: these clients send neither Origin nor forms)."""
    app = Flask(__name__)
    app.config["SESSIONWARD_CSRF"] = False
    SessionWard(app, store=SyncMemoryStore(), policy=policy, clock=clock)

    def session() -> FlaskSession:
        from flask import session as current

        assert isinstance(current, FlaskSession)
        return current

    @app.post("/login")
    def login() -> Any:
        session().login("alice")
        return jsonify(user=session().user)

    @app.get("/whoami")
    def whoami() -> Any:
        return jsonify(user=session().user, cart=session().get("cart"))

    @app.post("/cart/add")
    def add() -> Any:
        if "cart" not in session():
            session()["cart"] = []
        cart = session()["cart"]
        assert isinstance(cart, list)
        cart.append(ITEM)
        return jsonify(items=len(cart))

    @app.post("/cart/add-checked")
    def add_checked() -> Any:
        cart = session()["cart"]
        assert isinstance(cart, list)
        cart.append(ITEM)
        try:
            session().check_size()
        except SessionTooLargeError as error:
            cart.pop()
            return jsonify(error="cart_full", keys=list(error.keys)), 409
        return jsonify(items=len(cart))

    return app

"""The pure ASGI middleware (no ``BaseHTTPMiddleware``: no task group, no extra latency).

It applies the firewall (F5) before anything else, opens the request's
:class:`~sessionward.exchange.Exchange`, exposes the session as ``scope["session"]``
(which Starlette's ``request.session`` reads), and wraps ``send`` so that the session is
committed and its headers added on ``http.response.start``. Store failures become 503
(F19); websocket connections get a read-only view of the session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from sessionward.clientinfo import client_info
from sessionward.errors import StoreUnavailableError
from sessionward.events import EventName
from sessionward.exchange import Exchange, Interruption
from sessionward.firewall import check_request
from sessionward.manager import SessionManager

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("sessionward")

STORE_UNAVAILABLE_MESSAGE = "The session service is temporarily unavailable; please retry shortly."


class SessionMiddleware:
    """Adds sessionward sessions to any ASGI application.

    Args:
        app: The wrapped application.
        manager: The shared policy, store, clock and event bus.
    """

    def __init__(self, app: ASGIApp, manager: SessionManager) -> None:
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        manager = self.manager
        path: str = scope.get("path", "")
        client = client_info(scope, manager.policy.trusted_proxies)
        if kind == "http":
            raw_path: bytes = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
            if b"?" in raw_path:
                raw_path = raw_path.partition(b"?")[0]
            rejection = check_request(manager.policy.firewall, scope["method"], raw_path)
            if rejection is not None:
                await manager.emit(EventName.FIREWALL_REFUSED, reason=rejection.reason, client=client, path=path)
                await _send_json(send, rejection.status, {"error": "request_rejected", "reason": rejection.reason})
                return
        exchange = Exchange(manager, path=path, client=client)
        cookie_headers = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
        try:
            interruption = await exchange.open(cookie_headers)
        except StoreUnavailableError as error:
            await self._unavailable(send, scope, exchange, error)
            return
        if interruption is not None:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 4401, "reason": "session_invalid"})
                return
            await _send_interruption(send, exchange, interruption)
            return
        scope["session"] = exchange.session
        scope["sessionward"] = exchange
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _CommittingSend(self, scope, exchange, send))

    async def _unavailable(self, send: Send, scope: Scope, exchange: Exchange, error: Exception) -> None:
        logger.warning("session store unavailable: %s", error)
        await self.manager.emit(
            EventName.STORE_UNAVAILABLE, reason="store_unavailable", client=exchange.client, path=exchange.path
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "session_store_unavailable"})
            return
        await _send_json(
            send,
            503,
            {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE},
            extra=[(b"retry-after", b"1")],
        )


class _CommittingSend:
    """The ``send`` the application gets: commits the session as the response starts.

    A small object rather than a closure: it is made for every request, and a closure
    would cost a function and a cell per captured name.
    """

    __slots__ = ("exchange", "middleware", "replaced", "scope", "send")

    def __init__(self, middleware: SessionMiddleware, scope: Scope, exchange: Exchange, send: Send) -> None:
        self.middleware = middleware
        self.scope = scope
        self.exchange = exchange
        self.send = send
        self.replaced = False
        """A 503 went out instead of the application's response; the rest of it is dropped."""

    async def __call__(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            try:
                extra = await self.exchange.commit(message["status"])
            except StoreUnavailableError as error:
                self.replaced = True
                await self.middleware._unavailable(self.send, self.scope, self.exchange, error)
                return
            if extra:
                headers = [*message.get("headers", ()), *extra]
                if any(name == b"set-cookie" for name, _ in extra) and not any(
                    name.lower() == b"cache-control" for name, _ in headers
                ):
                    # A response carrying a session ID must never sit in a shared cache.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
        await self.send(message)


async def _send_interruption(send: Send, exchange: Exchange, interruption: Interruption) -> None:
    extra = await exchange.commit(200)
    if interruption.location is not None:
        headers = [
            (b"location", interruption.location.encode("latin-1")),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": interruption.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await _send_json(
        send, interruption.status, {"error": "session_invalid", "reason": interruption.reason}, extra=extra
    )


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})

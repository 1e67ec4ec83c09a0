"""The pure ASGI middleware (no ``BaseHTTPMiddleware``: no task group, no extra latency).

It applies the request firewall before anything else, opens the request's
:class:`~sessionward.io.exchange.Exchange`, exposes the session as ``scope["session"]``
(which Starlette's ``request.session`` reads), and wraps ``send`` so that the session is
committed and its headers added before the response starts. Store failures become 503;
websocket connections get a read-only view of the session.

Where the commit happens. A commit that writes waits on the store, and it must finish
before the response starts (a failed write becomes a 503, a new ID a ``Set-Cookie``).
Waiting inside the application's ``send`` would suspend the application's whole call
stack (some 25 frames in Starlette), and resuming that stack costs more CPU than the
store call itself. So :class:`_HeldResponse` takes a complete response (the start, then a
body with ``more_body`` false) without sending it, lets the application return, and
commits and sends from this middleware's own frame. Should the application go on working
after handing over its response (Starlette's background tasks), the response is
committed and sent from a task of its own at the next loop tick instead, so the client
never waits for that work. A streamed response is committed when its first chunk comes,
and a response that needs no store write is passed straight through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sessionward.asgi.answers import send_json, send_redirect
from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.clientinfo import client_info
from sessionward.core.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    LoginThrottledError,
    SessionBudgetExceededError,
    SessionEndedError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from sessionward.core.events import EventName
from sessionward.core.firewall import check_request
from sessionward.core.headers import with_session_headers
from sessionward.core.outcomes import Interruption
from sessionward.core.session import TOO_LARGE_MESSAGE
from sessionward.core.transport import PlainHttpNotice
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager

logger = logging.getLogger("sessionward")


class SessionMiddleware:
    """Adds sessionward sessions to any ASGI application.

    Args:
        app: The wrapped application.
        manager: The shared policy, store, clock and event bus.
    """

    def __init__(self, app: ASGIApp, manager: SessionManager) -> None:
        self.app = app
        self.manager = manager
        self.plain_http = PlainHttpNotice()
        """Warns once when the session cookie is set where it will not come back (plain HTTP)."""

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
                await manager.emit(
                    EventName.FIREWALL_REFUSED,
                    reason=rejection.reason,
                    client=client,
                    path=path,
                    method=scope["method"],
                )
                await send_json(send, rejection.status, {"error": "request_rejected", "reason": rejection.reason})
                return
        exchange = Exchange(manager, path=path, client=client, method=scope.get("method", "GET"))
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
        response = _HeldResponse(self, scope, exchange, send)
        try:
            await self.app(scope, receive, response)
        except SessionEndedError:
            # A verb found the session ended by a racing request (a logout, a revocation):
            # the application did not catch it, so the client is told as for any ended session.
            if response.sent:
                raise
            response.abandon()
            await _send_interruption(send, exchange, exchange.lost())
            return
        except StoreUnavailableError as error:
            # A verb (login, logout, a revocation…) met a store outage and the application
            # did not catch it: 503, as for an outage while loading or saving.
            if response.sent:
                raise
            response.abandon()
            await self._unavailable(send, scope, exchange, error)
            return
        except LoginThrottledError as error:
            # Login throttling held a sign-in back and the application let it through: the
            # documented answer (the Flask extension's too), not a 500.
            if response.sent:
                raise
            response.abandon()
            body = {"error": "throttled", "retry_after_s": error.retry_after_s}
            await send_json(send, 429, body, [(b"retry-after", str(error.retry_after_s).encode())])
            return
        except Exception:
            await response.finish(app_failed=True)
            raise
        except BaseException:
            response.abandon()
            raise
        if response.holds:
            await response.finish(app_failed=False)

    async def _unavailable(self, send: Send, scope: Scope, exchange: Exchange, error: Exception) -> None:
        logger.warning("session store unavailable: %s", error)
        await self.manager.emit(
            EventName.STORE_UNAVAILABLE,
            reason="store_unavailable",
            client=exchange.client,
            path=exchange.path,
            method=exchange.method,
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "session_store_unavailable"})
            return
        body = {"error": "session_store_unavailable", "message": STORE_UNAVAILABLE_MESSAGE}
        await send_json(send, 503, body, [(b"retry-after", b"1")])

    async def _too_large(self, send: Send, exchange: Exchange, error: SessionTooLargeError) -> None:
        # The data grew in place past max_data_bytes and the handler did not check it
        # (Session.check_size): nothing is saved, and the client must not be told its
        # request succeeded. A 5xx: the request is not at fault, the application is.
        handle = exchange.record.handle if exchange.record is not None else "(new)"
        logger.error("session %s: nothing this request changed was saved (see Session.check_size): %s", handle, error)
        body = {"error": "session_too_large", "message": TOO_LARGE_MESSAGE}
        await send_json(send, 500, body, await exchange.commit(500))


class _HeldResponse:
    """The ``send`` the application gets: commits the session before the response starts.

    See the module docstring for why a complete response is held. A small object rather
    than a closure: it is made for every request, and a closure costs a function and a
    cell per captured name.
    """

    __slots__ = (
        "body",
        "exchange",
        "later",
        "middleware",
        "replaced",
        "scope",
        "send",
        "sending",
        "sent",
        "start",
    )

    def __init__(self, middleware: SessionMiddleware, scope: Scope, exchange: Exchange, send: Send) -> None:
        self.middleware = middleware
        self.scope = scope
        self.exchange = exchange
        self.send = send
        self.start: Message | None = None
        """The held ``http.response.start``."""
        self.body: Message | None = None
        """The held final ``http.response.body``."""
        self.later: asyncio.Handle | None = None
        """The call that finishes a held response in its own task, should the app go on."""
        self.sending: asyncio.Task[None] | None = None
        self.replaced = False
        """A 503 went out instead of the application's response; the rest of it is dropped."""
        self.sent = False
        """Some of the response has gone to the client (nothing can replace it then)."""

    async def __call__(self, message: Message) -> None:
        if self.replaced:
            return
        kind = message["type"]
        start = self.start
        if kind == "http.response.start":
            # A server error is held too: a framework answers 500 and then re-raises, and
            # an outage or an ended session met by a verb gets its own answer instead.
            if message["status"] >= 500 or self.exchange.may_write(message["status"]):
                self.start = message
                return
            # Nothing to write: the headers are all there is to the commit.
            self._add_headers(message, self.exchange.response_headers())
            self.sent = True
            await self.send(message)
            return
        if start is None:
            self.sent = True
            await self.send(message)
            return
        if kind == "http.response.body" and not message.get("more_body", False) and self.body is None:
            self.body = message
            self.later = asyncio.get_running_loop().call_soon(self._finish_in_task)
            return
        # A streamed response (or an extension's message): commit at its first part.
        self.start = None
        await self._deliver(start, message)

    async def finish(self, *, app_failed: bool) -> None:
        """Send what the application handed over, once it has returned (or failed)."""
        if self.later is not None:
            self.later.cancel()
            self.later = None
            await self._deliver_held()
        elif self.sending is not None:
            await self.sending
        elif self.start is not None:
            start, self.start = self.start, None
            # A start without a body: an application that failed gets the server's 500.
            if not app_failed:
                await self._deliver(start, None)

    @property
    def holds(self) -> bool:
        """Tell whether some of the response is still to be sent (or is being sent)."""
        return self.start is not None or self.sending is not None

    def abandon(self) -> None:
        """Drop what is held: the request was cancelled."""
        if self.later is not None:
            self.later.cancel()
        if self.sending is not None:
            self.sending.cancel()
        self.start = self.body = self.later = None

    def _finish_in_task(self) -> None:
        # The application went on after handing over its response (a background task):
        # the client gets it now, not when that work is done.
        self.later = None
        self.sending = asyncio.get_running_loop().create_task(self._deliver_held())

    def _deliver_held(self) -> Coroutine[Any, Any, None]:
        start, body = self.start, self.body
        self.start = self.body = None
        assert start is not None
        return self._deliver(start, body)

    async def _deliver(self, start: Message, then: Message | None) -> None:
        """Commit the session, then send ``start`` with its headers and ``then``; or a 503 instead."""
        try:
            extra = await self.exchange.commit(start["status"])
        except StoreUnavailableError as error:
            self.replaced = True
            await self.middleware._unavailable(self.send, self.scope, self.exchange, error)
            return
        except SessionBudgetExceededError as error:
            # The client spent its budget of new sessions (creation_budget.action = refuse).
            self.replaced = True
            wait = str(error.retry_after_s).encode()
            body = {"error": "session_budget_exceeded", "retry_after_s": error.retry_after_s}
            await send_json(self.send, 429, body, [(b"retry-after", wait)])
            return
        except SessionTooLargeError as error:
            self.replaced = True
            await self.middleware._too_large(self.send, self.exchange, error)
            return
        self._add_headers(start, extra)
        self.sent = True
        await self.send(start)
        if then is not None:
            await self.send(then)

    def _add_headers(self, start: Message, extra: list[tuple[bytes, bytes]]) -> None:
        if not extra:
            return
        sets_cookie = self.exchange.sets_cookie
        if sets_cookie:
            self.middleware.plain_http.check(self.middleware.manager.policy, self.scope)
        start["headers"] = with_session_headers(start.get("headers", ()), extra, sets_cookie=sets_cookie)


async def _send_interruption(send: Send, exchange: Exchange, interruption: Interruption) -> None:
    extra = await exchange.commit(200)
    if interruption.location is not None:
        await send_redirect(send, interruption.status, interruption.location, extra)
        return
    await send_json(send, interruption.status, {"error": "session_invalid", "reason": interruption.reason}, extra)

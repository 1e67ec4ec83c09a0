"""Cross-site request forgery protection for ASGI: the rules of :mod:`sessionward.core.csrf`, applied.

:class:`CsrfMiddleware` is a pure ASGI middleware placed *inside*
:class:`~sessionward.asgi.middleware.SessionMiddleware` (it reads the request's session)::

    app = SessionMiddleware(CsrfMiddleware(app, manager), manager)

It refuses unsafe requests and WebSocket handshakes that come from another site, and
form posts without the session's token; what is refused, and why, is decided in
:mod:`sessionward.core.csrf` (shared with the WSGI middleware). What is done here: the
form body is read, bounded, to find the token and then replayed to the application; a
refusal is a ``csrf_refused`` event and a 403 JSON ``{"error": "csrf_refused",
"reason": ...}`` (413 for a form too large to read), or a WebSocket close with 4403.
Templates get the token from :func:`sessionward.core.csrf.csrf_token`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionward.asgi.answers import send_json
from sessionward.asgi.types import ASGIApp, Message, Receive, Scope, Send
from sessionward.core.clientinfo import request_origin
from sessionward.core.config import CSRF_MAX_BODY_BYTES, CsrfPolicy
from sessionward.core.csrf import (
    HeaderMap,
    declared_too_large,
    expected_token,
    header_map,
    must_check,
    origin_refusal,
    refusal_body,
    refusal_status,
    token_refusal,
    token_source,
)
from sessionward.core.errors import ConfigError
from sessionward.core.events import EventName
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager

__all__ = ["CsrfMiddleware"]


class CsrfMiddleware:
    """Refuses cross-site unsafe requests and form posts without the session's token.

    Args:
        app: The wrapped application.
        manager: The session manager (for trusted proxies and events).
        policy: The CSRF settings; or give them one by one:
        trusted_origins: Other origins allowed to send unsafe requests, as
            ``scheme://host[:port]`` (e.g. a separate front-end's origin).
        exempt_paths: Paths never checked (exact, or prefixes when ending in ``/``),
            e.g. a webhook that authenticates by signature.
        max_body_bytes: The largest form body read to find the token; larger forms
            must send the ``X-CSRF-Token`` header (413 otherwise).

    Raises:
        ConfigError: for a malformed trusted origin or exempt path, or settings given
            both as ``policy`` and one by one.
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: SessionManager,
        *,
        policy: CsrfPolicy | None = None,
        trusted_origins: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
        max_body_bytes: int = CSRF_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.manager = manager
        if policy is None:
            policy = CsrfPolicy(
                trusted_origins=frozenset(trusted_origins),
                exempt_paths=tuple(exempt_paths),
                max_body_bytes=max_body_bytes,
            )
        elif tuple(trusted_origins) or tuple(exempt_paths) or max_body_bytes != CSRF_MAX_BODY_BYTES:
            raise ConfigError("csrf", "give either policy or trusted_origins/exempt_paths/max_body_bytes, not both")
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or not must_check(
            self.policy, scope.get("method", "GET"), scope.get("path", ""), websocket=kind == "websocket"
        ):
            await self.app(scope, receive, send)
            return
        headers = header_map(scope.get("headers", ()))
        reason = self._origin_refusal(scope, headers)
        if reason is None and kind == "http":
            try:
                reason, receive = await self._token_refusal(scope, headers, receive)
            except _ClientGone:
                return  # never hand the app a truncated form it might act on
        if reason is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, reason)

    def _origin_refusal(self, scope: Scope, headers: HeaderMap) -> str | None:
        own = request_origin(scope, self.manager.policy.trusted_proxies).origin
        return origin_refusal(headers, own_origin=own, trusted_origins=self.policy.trusted_origins)

    async def _token_refusal(self, scope: Scope, headers: HeaderMap, receive: Receive) -> tuple[str | None, Receive]:
        source = token_source(headers)
        if source is None:
            return None, receive  # JSON and other non-form bodies: the origin check suffices
        sent = source.header
        if source.needs_body:
            limit = self.policy.max_body_bytes
            if declared_too_large(headers, limit):
                return "form_too_large", receive
            body = await _read_body(receive, limit)
            if body is None:
                return "form_too_large", receive
            receive = _replay(body, receive)
            sent = source.from_body(body)
        return token_refusal(sent, expected_token(_exchange(scope))), receive

    async def _refuse(self, scope: Scope, send: Send, reason: str) -> None:
        exchange = scope.get("sessionward")
        record = exchange.record if isinstance(exchange, Exchange) else None
        client = (
            exchange.client
            if isinstance(exchange, Exchange)
            else request_origin(scope, self.manager.policy.trusted_proxies).client
        )
        await self.manager.emit(
            EventName.CSRF_REFUSED,
            reason=reason,
            handle=record.handle if record else None,
            user=record.meta.user if record else None,
            client=client,
            path=scope.get("path"),
            method=scope.get("method", "GET"),
        )
        if scope["type"] == "websocket":
            # Closing before accepting answers the handshake with 403.
            await send({"type": "websocket.close", "code": 4403, "reason": "csrf_refused"})
            return
        await send_json(send, refusal_status(reason), refusal_body(reason))


def _exchange(scope: Scope) -> Exchange:
    exchange = scope.get("sessionward")
    if not isinstance(exchange, Exchange):
        raise RuntimeError("CsrfMiddleware must be placed inside sessionward's SessionMiddleware")
    return exchange


class _ClientGone(Exception):
    """The client disconnected before its body was read in full."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Read the whole request body, or return ``None`` once it exceeds ``limit`` bytes.

    Raises:
        _ClientGone: the client disconnected first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands the app the body already read, then the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

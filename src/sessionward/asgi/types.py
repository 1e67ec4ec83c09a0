"""The ASGI interface's types, for sessionward's middlewares and yours.

Plain aliases over the standard library (no framework needed): a middleware typed with
them accepts any ASGI application, Starlette's, Litestar's or a bare function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
"""The connection scope (``type``, ``path``, ``headers``…)."""

Message = MutableMapping[str, Any]
"""One event received from or sent to the server."""

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

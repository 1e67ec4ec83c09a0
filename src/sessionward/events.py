"""Lifecycle events, their dispatch, and the JSON-lines audit logger (F16).

An event names a session only by its handle: the raw ID is never a field, so no
subscriber, log line or metric can leak it. Subscribers may be plain or async callables;
one that raises is logged and skipped, never breaking the request that emitted the event.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, TextIO

import orjson

logger = logging.getLogger("sessionward")

# The characters str.splitlines() breaks on are \n \r \v \f \x1c \x1d \x1e \x85 \u2028
# \u2029. JSON escapes the first seven (C0 controls), but NEL and U+2028/U+2029 are legal
# raw in a JSON string and orjson writes them raw: a User-Agent holding one would split an
# audit line for any reader that uses splitlines(). Their UTF-8 forms start with a lead byte
# (C2, E2), never a continuation byte, so these byte patterns match nothing else; and
# orjson writes non-ASCII only inside strings, where a \uXXXX escape decodes to the same
# character.
_LINE_BREAKS = re.compile(rb"\xc2\x85|\xe2\x80[\xa8\xa9]")
_ESCAPED = {b"\xc2\x85": b"\\u0085", b"\xe2\x80\xa8": b"\\u2028", b"\xe2\x80\xa9": b"\\u2029"}


def _escape_line_breaks(match: re.Match[bytes]) -> bytes:
    return _ESCAPED[match.group()]


class EventName(StrEnum):
    """The lifecycle events of SPEC F16."""

    CREATED = "created"
    LOGIN = "login"
    ROTATED = "rotated"
    ELEVATED = "elevated"
    EXPIRED = "expired"
    LOGOUT = "logout"
    REVOKED = "revoked"
    DISPLACED = "displaced"
    LOGIN_REFUSED = "login_refused"
    BINDING_MISMATCH = "binding_mismatch"
    INVALID_SESSION = "invalid_session"
    CSRF_REFUSED = "csrf_refused"
    FIREWALL_REFUSED = "firewall_refused"
    STORE_UNAVAILABLE = "store_unavailable"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """Something that happened to a session.

    Attributes:
        name: What happened.
        at: When, in seconds since the epoch.
        reason: A short reason code (``idle_timeout``, ``password_changed``…), if any.
        handle: The session's public handle; never the ID.
        user: The user concerned, if known.
        ip: The client IP, if known.
        user_agent: The client User-Agent, if known.
        path: The request path, when a request caused it.
    """

    name: EventName
    at: float
    reason: str | None = None
    handle: str | None = None
    user: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    path: str | None = None

    def to_json(self) -> bytes:
        """Encode as one JSON object on one line, the audit log's line format.

        No character that :meth:`str.splitlines` breaks on is left raw, whatever the
        fields hold (see ``_LINE_BREAKS``).
        """
        encoded = orjson.dumps(
            {
                "time": self.at,
                "event": self.name.value,
                "reason": self.reason,
                "user": self.user,
                "session": self.handle,
                "ip": self.ip,
                "user_agent": self.user_agent,
                "path": self.path,
            }
        )
        if _LINE_BREAKS.search(encoded) is None:
            return encoded
        return _LINE_BREAKS.sub(_escape_line_breaks, encoded)


Subscriber = Callable[[SessionEvent], None] | Callable[[SessionEvent], Awaitable[None]]


class EventBus:
    """Delivers events to subscribers, sync or async, shielding the caller from their errors."""

    def __init__(self) -> None:
        self._sync: list[Callable[[SessionEvent], Any]] = []
        self._async: list[Callable[[SessionEvent], Awaitable[None]]] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber; a coroutine function is awaited, anything else is called."""
        if inspect.iscoroutinefunction(subscriber) or inspect.iscoroutinefunction(
            getattr(subscriber, "__call__", None)  # noqa: B004 - async __call__ objects count too
        ):
            self._async.append(subscriber)  # type: ignore[arg-type]
        else:
            self._sync.append(subscriber)

    @property
    def has_subscribers(self) -> bool:
        """Tell whether emitting would reach anyone."""
        return bool(self._sync or self._async)

    def emit_sync(self, event: SessionEvent) -> None:
        """Deliver to the plain subscribers only (for WSGI and other sync callers)."""
        for subscriber in self._sync:
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must never break a request
                logger.exception("sessionward event subscriber %r failed", subscriber)

    async def emit(self, event: SessionEvent) -> None:
        """Deliver to every subscriber."""
        self.emit_sync(event)
        for subscriber in self._async:
            try:
                await subscriber(event)
            except Exception:  # a broken subscriber must never break a request
                logger.exception("sessionward event subscriber %r failed", subscriber)


class JsonAuditLogger:
    """Writes each event as one JSON line to a text stream or a file.

    Thread-safe; a file is opened in append mode and flushed after every line so that a
    crash loses at most the line being written.
    """

    def __init__(self, target: str | TextIO | IO[str]) -> None:
        if isinstance(target, str):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the logger
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self._lock = threading.Lock()

    def __call__(self, event: SessionEvent) -> None:
        line = event.to_json().decode() + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def close(self) -> None:
        """Close the file if this logger opened it."""
        if self._owned:
            self._stream.close()

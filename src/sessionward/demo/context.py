"""What every demo handler shares, and the small helpers they have in common."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from sessionward.core.events import SessionEvent
from sessionward.demo.settings import DemoSettings
from sessionward.demo.users import UserDirectory
from sessionward.io.manager import SessionManager

MAX_JSON_BODY_BYTES = 16 * 1024


@dataclass(slots=True)
class RecentEvents:
    """The last lifecycle events, newest first, for the admin page's audit view."""

    limit: int = 40
    events: deque[SessionEvent] = field(default_factory=deque)

    def __call__(self, event: SessionEvent) -> None:
        self.events.appendleft(event)
        while len(self.events) > self.limit:
            self.events.pop()


@dataclass(slots=True)
class DemoContext:
    """The demo's shared state: settings, session manager, users, templates, events."""

    settings: DemoSettings
    manager: SessionManager
    users: UserDirectory
    templates: Jinja2Templates
    recent: RecentEvents

    def now(self) -> float:
        """The session clock's time (a ManualClock in tests)."""
        return self.manager.clock()


def json_error(status: int, error: str, **extra: Any) -> JSONResponse:
    """Answer ``{"error": error, ...}`` with ``status``."""
    return JSONResponse({"error": error, **extra}, status_code=status)


def not_authenticated() -> JSONResponse:
    """The answer to an anonymous request on a protected API path."""
    return json_error(401, "not_authenticated")


async def json_body(request: Request) -> dict[str, Any] | None:
    """Return the request's JSON object, or ``None`` when it is not one (or too large)."""
    body = await request.body()
    if len(body) > MAX_JSON_BODY_BYTES:
        return None
    try:
        decoded = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def string_fields(body: dict[str, Any], *names: str) -> list[str] | None:
    """Return the named fields when every one is a string, else ``None``."""
    values = [body.get(name) for name in names]
    if not all(isinstance(value, str) for value in values):
        return None
    return [str(value) for value in values]


def bad_request(message: str) -> Response:
    """Answer 400 with a JSON error saying what was expected."""
    return json_error(400, "bad_request", message=message)


def ago(seconds: float) -> str:
    """Say how long ago something was, for people (``12 s ago``, ``3 min ago``)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def utc(timestamp: float, *, seconds: bool = False) -> str:
    """Format a timestamp as ``YYYY-MM-DD HH:MM[:SS] UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))

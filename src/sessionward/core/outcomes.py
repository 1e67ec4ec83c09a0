"""What a request's session work hands back to the web edge: plain values, no I/O.

The I/O layer (async and sync alike) decides; the middlewares of every framework turn
these values into responses. They live here, below both, so that an edge can read them
without importing the I/O layer of the other runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CookieAction(Enum):
    """What the response does with the session cookie."""

    KEEP = "keep"
    SET = "set"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Interruption:
    """An answer given instead of running the application.

    Attributes:
        status: HTTP status.
        reason: Reason code (``idle_timeout``, ``unknown``…).
        location: Redirect target, for HTML requests.
        clear_cookie: Whether to clear the session cookie.
    """

    status: int
    reason: str
    location: str | None = None
    clear_cookie: bool = True


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as the user's device list shows it."""

    handle: str
    created_at: float
    last_seen_at: float
    ip: str | None
    user_agent: str | None
    current: bool

    def as_dict(self) -> dict[str, object]:
        """Return the JSON object a device list answers with (``GET /api/sessions``)."""
        return {
            "handle": self.handle,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "current": self.current,
        }

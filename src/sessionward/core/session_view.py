"""What a framework's own session object shows of a sessionward session.

Flask's ``flask.session`` and Quart's ``quart.session`` are objects of the framework's
session type that hand every read and write to the request's sessionward session. The
mapping and the read-only facts (user, handle, elevation, status) are the same for both;
only the verbs differ (blocking on Flask, awaited on Quart), so each integration adds
those to :class:`SessionView`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from sessionward.core.engine import SessionStatus
from sessionward.core.records import JSONValue


class ViewedSession(Protocol):
    """The request session a view hands work to (the async or the blocking one)."""

    def __getitem__(self, key: str, /) -> JSONValue: ...

    def __setitem__(self, key: str, value: JSONValue, /) -> None: ...

    def __delitem__(self, key: str, /) -> None: ...

    def __iter__(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object, /) -> bool: ...

    @property
    def user(self) -> str | None: ...

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def handle(self) -> str | None: ...

    @property
    def is_elevated(self) -> bool: ...

    @property
    def recently_authenticated(self) -> bool: ...

    def status(self) -> SessionStatus: ...

    def check_size(self) -> None: ...


class SessionView:
    """The mapping and the read-only facts of a request session, for a framework's session type.

    Args:
        session: The request's session, which holds the data and does the work.
    """

    def __init__(self, session: ViewedSession) -> None:
        self._viewed = session

    # -- the mapping -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> JSONValue:
        return self._viewed[key]

    def __setitem__(self, key: str, value: JSONValue) -> None:
        self._viewed[key] = value

    def __delitem__(self, key: str) -> None:
        del self._viewed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._viewed)

    def __len__(self) -> int:
        return len(self._viewed)

    def __contains__(self, key: object) -> bool:
        return key in self._viewed

    def check_size(self) -> None:
        """Check that a ``dict`` or ``list`` changed in place kept the data within ``max_data_bytes``.

        Call it after ``session["cart"].append(item)`` and the like, before returning:
        an oversized session left unchecked is found when the response starts, too late
        for the view, and the client gets a 500 ``session_too_large`` with nothing saved.

        Raises:
            SessionTooLargeError: naming the keys that grew in place.
        """
        self._viewed.check_size()

    @property
    def permanent(self) -> bool:
        """Always ``False``: expiry is the policy's (idle/absolute timeouts), not a cookie age."""
        return False

    @permanent.setter
    def permanent(self, value: bool) -> None:
        del value  # the framework's default interface would keep a flag in the data; the policy decides here

    # -- who and how -------------------------------------------------------------------------

    @property
    def user(self) -> str | None:
        """The authenticated user, if any."""
        return self._viewed.user

    @property
    def is_authenticated(self) -> bool:
        """Whether a user is logged in."""
        return self._viewed.is_authenticated

    @property
    def handle(self) -> str | None:
        """The session's public handle (never the ID)."""
        return self._viewed.handle

    @property
    def is_elevated(self) -> bool:
        """Whether an elevation (sudo mode) is in force."""
        return self._viewed.is_elevated

    @property
    def recently_authenticated(self) -> bool:
        """Whether the user proved who they are within the re-authentication window."""
        return self._viewed.recently_authenticated

    def status(self) -> SessionStatus:
        """Report the session's age, idle time, remaining timeouts and next rotation."""
        return self._viewed.status()

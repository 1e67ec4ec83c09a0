"""The exceptions sessionward raises.

Every error derives from :class:`SessionwardError`, so callers can catch the library's
failures without catching their own. Messages say what was wrong and what is accepted.
"""

from __future__ import annotations


class SessionwardError(Exception):
    """Base class of every error sessionward raises."""


class ConfigError(SessionwardError, ValueError):
    """A setting is malformed or insecure; raised at start-up, never per request.

    Attributes:
        setting: The name of the setting (or ``SESSIONWARD_*`` variable) at fault.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class SessionDataError(SessionwardError, TypeError):
    """A value stored in a session is not JSON-typed, or its key is not a string."""

    def __init__(self, key: object, message: str) -> None:
        super().__init__(f"session key {key!r}: {message}")
        self.key = key


class SessionTooLargeError(SessionwardError, ValueError):
    """Writing a value would take the session's data past the configured size limit."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(
            f"session key {key!r}: the session's data would take {size} bytes, "
            f"over the limit of {limit} bytes (max_data_bytes)"
        )
        self.key = key
        self.size = size
        self.limit = limit


class SessionNotAvailableError(SessionwardError, RuntimeError):
    """The creation policy forbids a session here (``never`` or ``stateless``)."""


class SessionEndedError(SessionNotAvailableError):
    """The request's session ended, or changed its ID, in a concurrent request.

    Raised by a verb (``rotate_id``, ``elevate``) that found the session it was decided on
    gone: a logout, a revocation or another rotation got there first. Nothing was written;
    the adapters answer 401 ``session_invalid`` when the application does not catch it.
    """


class LoginRefusedError(SessionwardError):
    """Multiple-login control refused a new login ("first wins", ``prevent_login``).

    Attributes:
        user: The user whose login was refused.
        limit: The configured maximum number of sessions per user.
    """

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"user {user!r} already has {limit} active session(s), the maximum allowed")
        self.user = user
        self.limit = limit


class StoreError(SessionwardError):
    """A session store failed in a way that is not an outage (e.g. a corrupt record)."""


class StoreUnavailableError(StoreError):
    """The session store is unreachable or answered too slowly (fail closed, F19)."""


class IdCollisionError(StoreError):
    """A freshly generated ID's key already exists; astronomically unlikely, never ignored."""

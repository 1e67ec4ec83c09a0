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
    """Writing a value would take the session's data past the configured size limit.

    Attributes:
        key: The key written (the first of ``keys``).
        keys: Every key at fault: the one assigned, or those changed in place that grew.
        size: The data's serialized size, in bytes.
        limit: The configured ``max_data_bytes``.
    """

    def __init__(self, key: str, size: int, limit: int, *, keys: tuple[str, ...] = ()) -> None:
        self.keys = keys or (key,)
        named = ", ".join(repr(name) for name in self.keys)
        super().__init__(
            f"session {'key' if len(self.keys) == 1 else 'keys'} {named}: the session's data would take "
            f"{size} bytes, over the limit of {limit} bytes (max_data_bytes)"
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


class SessionBudgetExceededError(SessionwardError):
    """A client spent its budget of new anonymous sessions and the policy refuses more (429).

    Raised when committing a request that wrote to a session it did not have yet, under
    ``creation_budget.action = refuse``. The adapters answer 429 with ``Retry-After``.

    Attributes:
        retry_after_s: Whole seconds until the client's budget is refilled.
    """

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"this client created too many sessions in the last minute; retry in {retry_after_s} s "
            "(creation_budget.per_minute)"
        )
        self.retry_after_s = retry_after_s


class LoginThrottledError(SessionwardError):
    """Too many failed sign-ins: this attempt is held back without its password being checked (429).

    Raised by login throttling's ``check``. Answer 429 with ``Retry-After:
    retry_after_s``; the wait is never longer than ``login_throttle.max_delay_s``.

    Attributes:
        retry_after_s: Whole seconds until an attempt will be checked again.
        subject: What is throttled: ``account`` (too many failures for this user name) or
            ``network`` (too many attempts from this client's network).
    """

    def __init__(self, retry_after_s: int, subject: str = "account") -> None:
        super().__init__(f"too many failed sign-ins ({subject}); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.subject = subject


class StoreError(SessionwardError):
    """A session store failed in a way that is not an outage (e.g. a corrupt record)."""


class StoreUnavailableError(StoreError):
    """The session store is unreachable or answered too slowly (fail closed)."""


class StoreSchemaMissingError(StoreUnavailableError):
    """The session store was never set up: its tables (or its directory) do not exist.

    An outage as far as requests go (they get 503), but one that waiting will not end:
    the message says how to create the schema, ``sessionward store init --store URL`` or
    ``await store.setup()`` (``SESSIONWARD_STORE_CREATE_SCHEMA=true`` does it on first use,
    for development).

    Attributes:
        detail: What was found missing, without the advice.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail}; create it with `sessionward store init --store URL` or `await store.setup()`")
        self.detail = detail


STORE_UNAVAILABLE_MESSAGE = "The session service is temporarily unavailable; please retry shortly."
"""What a client is told with a 503 when the store is down or slow, on every integration."""

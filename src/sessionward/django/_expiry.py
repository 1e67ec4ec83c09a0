"""What Django's ``set_expiry`` asks for, in sessionward's terms: pure arithmetic.

Django keeps a session's own expiry in its data under ``_session_expiry``: a number of
seconds of inactivity, an ISO 8601 date, or ``0`` for "when the browser closes". The
value is kept there, as Django writes it, and read here. It can only shorten a session:
the policy's idle and absolute timeouts stay in force whatever it says, so the session
ends at the earliest of the three.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sessionward.core.records import EndReason

EXPIRY_KEY = "_session_expiry"
"""Where Django (and so this backend) keeps a session's own expiry, in its data."""


def is_idle_limit(value: object) -> bool:
    """Tell whether ``value`` is a number of seconds of inactivity (not 0, not a date)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def own_deadline(value: object, last_activity: float) -> float | None:
    """Return when the session ends by its own expiry ``value``, or ``None`` if it sets none.

    Args:
        value: The ``_session_expiry`` in the session's data.
        last_activity: When the session was last used (its idle clock), in seconds.
    """
    if is_idle_limit(value):
        assert isinstance(value, int | float)
        return last_activity + value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        # A naive date is local time, as Django writes it with USE_TZ = False.
        return moment.timestamp()
    return None


def end_reason(value: object) -> EndReason:
    """Return why a session that reached its own expiry ``value`` ended."""
    return EndReason.IDLE_TIMEOUT if is_idle_limit(value) else EndReason.ABSOLUTE_TIMEOUT


def as_datetime(moment: float, *, aware: bool) -> datetime:
    """Return ``moment`` (seconds) as Django's clock would: aware UTC with ``USE_TZ``, else naive local."""
    if aware:
        return datetime.fromtimestamp(moment, UTC)
    return datetime.fromtimestamp(moment)  # Django's naive local time when USE_TZ is off

"""The pure parts of the store contract: what a store returns, and the checks of its arguments.

They live apart from :mod:`sessionward.stores.base` so that the async contract and its
blocking twin (``sessionward._sync.stores.base``) return the very same types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sessionward.core.ids import is_key
from sessionward.core.records import Entry, SessionRecord


@dataclass(frozen=True, slots=True)
class Established:
    """The result of :meth:`~sessionward.stores.base.SessionStore.establish`.

    Attributes:
        displaced: Sessions of the same user ended to make room ("last wins").
        applied: ``False`` when the precondition (``expect``) no longer held: nothing
            was written.
        found: When not applied, what the expected key holds now (a record at another
            version, a tombstone, or nothing), for the core to decide again.
    """

    displaced: list[SessionRecord] = field(default_factory=list)
    applied: bool = True
    found: Entry | None = None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts a store reports (``sessionward sessions stats``)."""

    live_sessions: int
    authenticated_sessions: int
    users: int
    tombstones: int
    counters: int = 0
    """Counters (:meth:`~sessionward.stores.base.SessionStore.count_hit`) whose window has not ended."""


def check_counter(name: str, window_s: float = 1.0) -> None:
    """Refuse a counter name that is not a SHA-256 hex digest, or a window that is not positive.

    Names become file names and keys: anything else could escape a directory or collide
    with a session's key space, and would mean a caller forgot to hash what it counts.

    Raises:
        ValueError: naming what was wrong; the caller writes nothing.
    """
    if not isinstance(name, str) or not is_key(name):
        raise ValueError("a counter name must be a SHA-256 hex digest (use sessionward.core.engine.counter_name)")
    if not (isinstance(window_s, int | float) and math.isfinite(window_s) and 0 < window_s <= 366 * 86400):
        raise ValueError(f"a counter window must be a positive number of seconds, at most a year; got {window_s!r}")

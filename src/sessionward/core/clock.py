"""Time as an injectable dependency.

Every decision takes ``now`` as a float of seconds since the epoch, obtained from a
:data:`Clock`. Tests drive time with :class:`ManualClock`; nothing sleeps to let a timeout
pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""A callable returning the current time in seconds since the epoch."""

system_clock: Clock = time.time


class ManualClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.now += seconds

"""Login throttling's decisions, free of I/O: what to count, and who may try a password.

Theory of operation. :class:`sessionward.io.login_throttle.LoginThrottle` does the I/O with a
store's atomic fixed-window counter (``count_hit``); every decision is made here:

1. Every sign-in attempt is counted *before* its password is checked, on two counters
   (:func:`subjects`): the account's (its name, case-folded) and the client network's
   (its IP through the trusted-proxy rules, an IPv6 client by its /64). Counting first
   is what makes the limit hold under racing requests from any number of processes: the
   store's count is atomic, so the n-th attempt sees n whoever sent it. A successful
   sign-in resets its account's counter, so the account's count is its failures (plus
   the attempts still in flight); a success never gives a network an attempt back (an
   attacker with one valid account must not buy more guesses with it).
2. Below its threshold a counter lets the attempt through (:meth:`Subject.is_free`).
   From the threshold on, the attempt must also win the subject's *gate*: a second
   counter whose window is the delay (:func:`delay_s`). The first hit on a gate whose
   window has ended opens a new window and is let through (:func:`wait_s` is 0); every
   other hit inside the window is refused with the time left, without its password
   being checked. So at most one password per gate window is checked, even when many
   servers race, and the delay doubles with every attempt counted past the threshold.
3. Never a permanent lockout: a gate's window is never longer than ``max_delay_s``, and
   a refused attempt does not lengthen the window it was refused in, so the attempt
   after the window ends is checked whatever an attacker did before. The counters
   themselves end with their window (``window_s``), and everything starts again.
4. A sign-in after failures is reported as such without asking the store again: the
   account's count that :func:`earlier_attempts` reads was returned by the hit that
   counted the attempt, before the success resets it.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sessionward.core.binding import network_of
from sessionward.core.config import LoginThrottlePolicy
from sessionward.core.engine import ClientInfo, Hits, counter_name

ACCOUNT_COUNTER = "login-attempts-account"
"""The purpose of an account's counter (see ``engine.counter_name``)."""
ACCOUNT_GATE = "login-gate-account"
"""The purpose of an account's gate."""
NETWORK_COUNTER = "login-attempts-network"
"""The purpose of a client network's counter."""
NETWORK_GATE = "login-gate-network"
"""The purpose of a client network's gate."""

IPV4_PREFIX = 32
"""IPv4 clients are counted by their address."""
IPV6_PREFIX = 64
"""IPv6 clients are counted by their /64: a subscriber usually gets a whole one."""

_MAX_DOUBLINGS = 64
"""Past this many doublings every delay is the maximum anyway (and 2**n stays small)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What one sign-in attempt is counted against: an account or a client network.

    Attributes:
        kind: ``account`` or ``network`` (the reason of a throttled event).
        counter: The name of its attempt counter (a digest: no account name or IP in clear).
        gate: The name of its gate, which spaces attempts past the threshold.
        threshold: Attempts per window that need not pass the gate.
    """

    kind: Literal["account", "network"]
    counter: str
    gate: str
    threshold: int

    def is_free(self, hits: Hits) -> bool:
        """Tell whether the attempt counted as ``hits`` is below the threshold (no gate to pass)."""
        return hits.count < self.threshold


def account_key(username: str) -> str:
    """Return what an account is counted by: its name case-folded.

    Applications that tell ``Alice`` from ``alice`` apart share a counter for the two (a
    little stricter); applications that do not must not let an attacker multiply the
    guesses by changing case.
    """
    return username.casefold()


def subjects(policy: LoginThrottlePolicy, username: str, client: ClientInfo) -> list[Subject]:
    """Return what an attempt to sign in as ``username`` from ``client`` is counted against.

    The account always (an unknown user name too: counting it the same way keeps an
    unknown name indistinguishable from a known one), unless ``max_failures`` is 0; the
    client's network when its IP is known, is not a loopback address, and
    ``max_attempts_per_ip`` is not 0. A loopback client is this host itself, or a proxy
    in front whose forwarded addresses are not trusted (``SESSIONWARD_TRUSTED_PROXIES``):
    counting it would throttle every user behind that proxy together, so only the
    accounts are counted for it.

    The network comes first: an attempt is checked against it before the account is
    counted, so that attempts refused for their network leave no account counter behind.
    """
    found: list[Subject] = []
    if policy.max_attempts_per_ip and client.ip and not _is_loopback(client.ip):
        network = network_of(client.ip, IPV4_PREFIX, IPV6_PREFIX)
        found.append(
            Subject(
                "network",
                counter_name(NETWORK_COUNTER, network),
                counter_name(NETWORK_GATE, network),
                policy.max_attempts_per_ip,
            )
        )
    if policy.max_failures:
        key = account_key(username)
        found.append(
            Subject("account", counter_name(ACCOUNT_COUNTER, key), counter_name(ACCOUNT_GATE, key), policy.max_failures)
        )
    return found


def earlier_attempts(counted: Sequence[tuple[Subject, Hits]]) -> int | None:
    """Return how many attempts on the account came before the one just counted.

    They are the attempts since the account's last successful sign-in within the window:
    failed, held back, or (rarely) still in flight beside this one. ``None`` when the
    account is not counted (``max_failures`` is 0): then nobody knows.

    Args:
        counted: Each subject of the attempt with its counter just after the hit.
    """
    for subject, hits in counted:
        if subject.kind == "account":
            return hits.count - 1
    return None


def delay_s(policy: LoginThrottlePolicy, threshold: int, count: int) -> float:
    """Return the delay after the ``count``-th attempt of a window: doubling past ``threshold``, capped.

    The threshold-th attempt is followed by ``base_delay_s``, the next by twice that, and
    so on up to ``max_delay_s``.
    """
    doublings = min(max(count - threshold, 0), _MAX_DOUBLINGS)
    return min(policy.base_delay_s * 2.0**doublings, policy.max_delay_s)


def wait_s(gate: Hits, now: float) -> int:
    """Return 0 when the hit ``gate`` opened a new window (the attempt may proceed), else the wait.

    The wait is in whole seconds, rounded up (at least 1), for ``Retry-After``.
    """
    if gate.count == 1:
        return 0
    return max(1, math.ceil(gate.resets_at - now))


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False

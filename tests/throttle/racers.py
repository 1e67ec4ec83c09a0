"""A sign-in racer, run in a process of its own by ``test_racing.py``.

Each racer opens its own synchronous store on the shared backend (its own connection),
waits at the start line with the others, then tries wrong passwords for one account as
fast as it can, through ``LoginThrottle`` exactly as an application would. It reports
how many passwords it actually checked (attempts the throttle let through).
"""

from __future__ import annotations

from typing import Any

from sessionward._sync.manager import SessionManager
from sessionward._sync.stores import open_store
from sessionward._sync.stores.sql import SqlStore
from sessionward.core.config import LoginThrottlePolicy, SessionPolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.errors import LoginThrottledError


def race(url: str, table_prefix: str, now: float, attempts: int, start: Any, results: Any, index: int) -> None:
    """Try ``attempts`` wrong passwords for ``alice`` at the frozen time ``now``; report how many were checked."""
    store = SqlStore.from_url(url, table_prefix=table_prefix) if table_prefix else open_store(url)
    manager = SessionManager(store, SessionPolicy(login_throttle=LoginThrottlePolicy()), clock=lambda: now)
    throttle = manager.login_throttle.for_client(ClientInfo(ip=f"198.51.100.{index + 1}"))
    throttle.succeeded("warm-up")  # connect before the start line
    checked = 0
    start.wait()
    try:
        for _ in range(attempts):
            try:
                throttle.check("alice")
            except LoginThrottledError:
                continue
            checked += 1  # the password would be checked here, and be wrong
            throttle.failed("alice")
    finally:
        store.close()
    results.put(checked)

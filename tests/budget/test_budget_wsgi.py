"""The creation budget under WSGI (Flask): the generated sync exchange and stores, the same rules.

The sync twins are generated from the async code, so the counting is the same; what
these tests add is the WSGI middleware's own answer, 429 with ``Retry-After``, and the
sync stores' counters (a thread-safe memory store, SQLite through its blocking driver).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_wsgi.support import client, make_app, plain_policy, set_cookie
from sessionward import ManualClock
from sessionward._sync.stores import MemoryStore
from sessionward._sync.stores.base import SessionStore
from sessionward._sync.stores.sql import SqlStore
from sessionward.core.config import BudgetAction, CreationBudget

BUDGET = 2


@pytest.fixture(params=["memory", "sqlite"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    store: SessionStore = (
        MemoryStore() if request.param == "memory" else SqlStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    )
    store.setup()
    yield store
    store.close()


def test_session_flooding_over_wsgi_is_refused_with_429_and_retry_after(
    sync_store: SessionStore, clock: ManualClock
) -> None:
    budget = CreationBudget(per_minute=BUDGET, action=BudgetAction.REFUSE)
    app = make_app(sync_store, clock, plain_policy(creation_budget=budget))
    for _ in range(BUDGET):
        assert set_cookie(client(app, ip="198.51.100.7").post("/set?cart=1"))
    clock.advance(15)
    refused = client(app, ip="198.51.100.7").post("/set?cart=1")
    assert refused.status_code == 429
    assert refused.json == {"error": "session_budget_exceeded", "retry_after_s": 45}
    assert refused.headers["Retry-After"] == "45"
    assert set_cookie(refused) is None
    # Another client, and a login from this one, are not held back.
    assert set_cookie(client(app, ip="198.51.100.8").post("/set?cart=1"))
    signed_in = client(app, ip="198.51.100.7").post("/login?user=alice")
    assert signed_in.status_code == 200
    assert set_cookie(signed_in)
    assert sync_store.stats(clock()).live_sessions == BUDGET + 2


def test_session_flooding_over_wsgi_is_skipped_by_default(sync_store: SessionStore, clock: ManualClock) -> None:
    app = make_app(sync_store, clock, plain_policy(creation_budget=CreationBudget(per_minute=BUDGET)))
    made = [bool(set_cookie(client(app, ip="2001:db8::1:2").post("/set?cart=1"))) for _ in range(BUDGET + 3)]
    assert made == [True] * BUDGET + [False] * 3
    assert sync_store.stats(clock()).live_sessions == BUDGET

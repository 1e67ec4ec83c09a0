"""Multiple-login control holds under racing logins spread over several OS processes (F11).

Seed 001 §9.4.2.6 warns that Spring's default registry lives in one server's memory and
so cannot hold across servers; these tests race one user's logins from separate
processes (each its own connections, as separate app servers would have) on every store
that many servers can share, and from tasks of one process on the memory store.

* Last wins: every login is accepted; once they settle, at most N sessions are live,
  and every other one was displaced exactly once (no session lost twice, none forgotten).
* First wins, no logouts: exactly N logins are accepted, every other one refused.
* First wins with logouts (slots free up and are retaken): at no instant are more than N
  sessions live — checked from intervals each worker knew its sessions to be live, and
  by a watcher listing the user's sessions throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from multilogin_support import (
    SHARED_STORES,
    Namespace,
    WorkerPool,
    live_sessions,
    most_at_once,
    namespace_for,
    on,
    watch_live_count,
)
from multilogin_worker import Outcome, Plan, race

from sessionward import LoginPolicy, SessionEngine, SessionPolicy
from sessionward.core.records import EndReason, Tombstone
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore

PROCESSES = 4
TASKS = 3
LOGINS = 4
TOTAL = PROCESSES * TASKS * LOGINS  # 48 racing logins per scenario
MAX_SESSIONS = 3


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(PROCESSES)
    yield workers
    workers.close()


@pytest.fixture(params=SHARED_STORES)
def space(request: pytest.FixtureRequest, tmp_path: Path) -> Namespace:
    return namespace_for(request.param, request, tmp_path)


def plan(*, prevent_login: bool, hold_s: float = 0.0) -> Plan:
    return Plan(
        url="",
        tasks=TASKS,
        logins=LOGINS,
        max_sessions=MAX_SESSIONS,
        prevent_login=prevent_login,
        hold_s=hold_s,
    )


def merged(outcomes: list[Outcome]) -> Outcome:
    total = Outcome()
    for outcome in outcomes:
        total.accepted += outcome.accepted
        total.refused += outcome.refused
        total.displaced += outcome.displaced
        total.held += outcome.held
    return total


def assert_last_wins(outcome: Outcome, live: list[str]) -> None:
    assert outcome.refused == 0
    assert len(outcome.accepted) == TOTAL
    assert len(live) == MAX_SESSIONS
    assert set(live) <= set(outcome.accepted)
    # Each surplus session was displaced once, by exactly one login.
    assert len(outcome.displaced) == TOTAL - MAX_SESSIONS
    assert len(set(outcome.displaced)) == len(outcome.displaced)
    assert set(outcome.displaced) == set(outcome.accepted) - set(live)


def assert_first_wins(outcome: Outcome, live: list[str]) -> None:
    assert len(outcome.accepted) == MAX_SESSIONS
    assert outcome.refused == TOTAL - MAX_SESSIONS
    assert outcome.displaced == []
    assert sorted(live) == sorted(outcome.accepted)


async def still_live(store: SessionStore, handles: list[str]) -> list[str]:
    return [h for h in handles if await store.find_handle(h, time.time()) is not None]


# -- across OS processes ---------------------------------------------------------------------------


def test_last_wins_leaves_at_most_n_sessions_after_a_multiprocess_race(space: Namespace, pool: WorkerPool) -> None:
    outcome = merged(pool.race(space, plan(prevent_login=False)))
    assert_last_wins(outcome, [r.handle for r in live_sessions(space, "racer")])
    assert on(space, lambda store: still_live(store, outcome.displaced)) == []


def test_first_wins_accepts_exactly_n_logins_in_a_multiprocess_race(space: Namespace, pool: WorkerPool) -> None:
    outcome = merged(pool.race(space, plan(prevent_login=True)))
    assert_first_wins(outcome, [r.handle for r in live_sessions(space, "racer")])


def test_first_wins_never_has_more_than_n_live_sessions_at_any_instant(space: Namespace, pool: WorkerPool) -> None:
    with watch_live_count(space, "racer") as counts:
        outcome = merged(pool.race(space, plan(prevent_login=True, hold_s=0.01)))
    assert len(outcome.accepted) >= MAX_SESSIONS
    assert len(outcome.accepted) + outcome.refused == TOTAL
    assert most_at_once(outcome.held) <= MAX_SESSIONS
    assert counts, "the watcher never listed the sessions"
    assert max(counts) <= MAX_SESSIONS
    assert live_sessions(space, "racer") == []  # every holder logged out


# -- tasks of one process (memory store) -------------------------------------------------------------


async def race_in_tasks(store: MemoryStore, prevent_login: bool, hold_s: float = 0.0) -> Outcome:
    start = asyncio.Event()
    workers = [
        asyncio.create_task(race(store, plan(prevent_login=prevent_login, hold_s=hold_s), start))
        for _ in range(PROCESSES)
    ]
    await asyncio.sleep(0)
    start.set()
    return merged(list(await asyncio.gather(*workers)))


async def test_last_wins_on_the_memory_store_with_racing_tasks() -> None:
    store = MemoryStore()
    outcome = await race_in_tasks(store, prevent_login=False)
    assert_last_wins(outcome, [r.handle for r in await store.list_user("racer", time.time())])
    assert await still_live(store, outcome.displaced) == []


async def test_first_wins_on_the_memory_store_with_racing_tasks() -> None:
    store = MemoryStore()
    outcome = await race_in_tasks(store, prevent_login=True)
    assert_first_wins(outcome, [r.handle for r in await store.list_user("racer", time.time())])


async def test_first_wins_on_the_memory_store_at_any_instant() -> None:
    store = MemoryStore()
    outcome = await race_in_tasks(store, prevent_login=True, hold_s=0.002)
    assert len(outcome.accepted) >= MAX_SESSIONS
    assert most_at_once(outcome.held) <= MAX_SESSIONS
    assert await store.list_user("racer", time.time()) == []


def test_displaced_sessions_leave_a_displaced_tombstone(space: Namespace) -> None:
    """The victim's next request can be told why (F10): its key holds reason ``displaced``."""
    engine = SessionEngine(SessionPolicy(login=LoginPolicy(max_sessions=1)))

    async def work(store: SessionStore) -> object:
        first = engine.plan_login(None, {}, "racer", time.time())
        await store.establish(first.record, limit=engine.limit(time.time()))
        second = engine.plan_login(None, {}, "racer", time.time())
        established = await store.establish(second.record, limit=engine.limit(time.time()))
        assert [v.key for v in established.displaced] == [first.record.key]
        return await store.load(first.record.key, time.time())

    entry = on(space, work)
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.DISPLACED

"""Racing logins of one user, as one app process would make them.

Run as a script, this is one OS process of a multi-process race: for each JSON
:class:`Plan` line on stdin it opens its own store connection, prints ``ready``, waits
for ``go`` and then logs in through ``store.establish(record, limit=engine.limit(now))``,
exactly what :meth:`sessionward.io.exchange.Exchange.login` does, from several tasks at
once. It answers with one JSON line: what was accepted, refused and displaced, and for
sessions it ended itself, the instants between which it *knew* them to be live
(``time.monotonic()`` is system-wide on Linux, so instants compare across processes).

Imported, :func:`race` runs the same logins as tasks of the caller's event loop (the
memory store, which lives in one process).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import orjson

from sessionward import EndReason, LoginPolicy, LoginRefusedError, SessionEngine, SessionPolicy
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What one process does.

    Attributes:
        url: Store URL.
        table_prefix: Table prefix on SQL stores (a clean namespace per test).
        user: Who logs in.
        tasks: Concurrent login loops in this process.
        logins: Login attempts per task.
        max_sessions: The per-user limit.
        prevent_login: First wins (refuse) if true, else last wins (displace the oldest).
        hold_s: When positive, each accepted session is held this long and then ended
            (logout), so slots free up and the limit is tested "at any instant".
    """

    url: str
    table_prefix: str = "sessionward_"
    user: str = "racer"
    tasks: int = 3
    logins: int = 4
    max_sessions: int = 3
    prevent_login: bool = False
    hold_s: float = 0.0


@dataclass(slots=True)
class Outcome:
    """What one process saw."""

    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    displaced: list[str] = field(default_factory=list)
    held: list[tuple[float, float]] = field(default_factory=list)


def open_worker_store(url: str, table_prefix: str) -> SessionStore:
    """Open the store a worker uses (its own connections)."""
    if url.startswith(("sqlite", "postgres", "mysql", "mariadb")):
        from sessionward.stores.sql import SqlStore

        return SqlStore.from_url(url, table_prefix=table_prefix)
    return open_store(url)


async def race(store: SessionStore, plan: Plan, start: asyncio.Event | None = None) -> Outcome:
    """Run ``plan.tasks`` login loops on ``store``; each waits for ``start`` first."""
    engine = SessionEngine(
        SessionPolicy(login=LoginPolicy(max_sessions=plan.max_sessions, prevent_login=plan.prevent_login))
    )
    outcome = Outcome()

    async def loop() -> None:
        if start is not None:
            await start.wait()
        for _ in range(plan.logins):
            now = time.time()
            transition = engine.plan_login(None, {}, plan.user, now)
            try:
                established = await store.establish(transition.record, limit=engine.limit(now))
            except LoginRefusedError:
                outcome.refused += 1
                await asyncio.sleep(random.uniform(0, plan.hold_s / 2))
                continue
            known_live_from = time.monotonic()
            outcome.accepted.append(transition.record.handle)
            outcome.displaced.extend(victim.handle for victim in established.displaced)
            if plan.hold_s > 0:
                await asyncio.sleep(plan.hold_s)
                known_live_until = time.monotonic()
                await store.end(engine.plan_end(transition.record.key, plan.user, EndReason.LOGGED_OUT, time.time()))
                outcome.held.append((known_live_from, known_live_until))

    await asyncio.gather(*(loop() for _ in range(plan.tasks)))
    return outcome


async def _serve(plan: Plan) -> dict[str, object]:
    store = open_worker_store(plan.url, plan.table_prefix)
    try:
        await store.stats(time.time())  # connect before the start line, not during the race
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise RuntimeError("expected the start line 'go'")
        return asdict(await race(store, plan))
    finally:
        await store.close()


def main() -> None:
    """Serve plans from stdin, one per line, until stdin closes."""
    while line := sys.stdin.readline():
        try:
            result = asyncio.run(_serve(Plan(**orjson.loads(line))))
        except Exception as error:  # reported to the test, which fails with it
            result = {"error": f"{type(error).__name__}: {error}"}
        print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()

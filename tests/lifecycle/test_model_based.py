"""Model-based check of the lifecycle invariants: random schedules of racing requests.

Hypothesis' stateful testing drives several clients of two users against a real store.
Every request is split where a race can fall: it *opens* (loads the session and decides,
e.g. that its renewal is due), and later *finishes* (runs its verb and commits). Any
number of requests may be open at once, so a schedule such as "A opens, B logs out, A
finishes" comes up among the random ones. Time moves by an injected clock.

A reference model, in plain Python, remembers what must hold: each login starts a
*lineage* (written into the session's data, which every renewal and rotation carries);
a finished logout ends the lineage its request loaded, a finished "end my other
sessions" ends the user's other lineages, a login over a session supersedes the old
lineage. After every step the store itself is read and checked:

1. ended means ended: no live record carries an ended lineage;
2. one successor: no lineage has two live records;
3. the limit counts every live ID: no user has more than ``max_sessions`` live records.

Hypothesis shrinks any failing schedule to a short one, printed as the steps to replay.
How many schedules run: ``MAX_EXAMPLES`` per store, of up to ``STEPS`` steps each.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from sessionward import ManualClock, SessionPolicy
from sessionward.core.config import CookiePolicy, LoginPolicy, TimeoutPolicy
from sessionward.core.engine import ClientInfo
from sessionward.core.errors import LoginRefusedError, SessionEndedError, SessionNotAvailableError
from sessionward.core.records import EndReason, SessionRecord
from sessionward.io.exchange import Exchange
from sessionward.io.manager import SessionManager
from sessionward.stores import open_store
from sessionward.stores.base import SessionStore
from sessionward.stores.sql import SqlStore

MAX_EXAMPLES = 40
STEPS = 40
USERS = ("alice", "bob")
CLIENTS = 4  # clients 0, 1 are alice's devices; 2, 3 bob's
RENEWAL_S = 60.0
GRACE_S = 5.0
POLICY = SessionPolicy(
    cookie=CookiePolicy(secure=False),
    timeouts=TimeoutPolicy(renewal_interval_s=RENEWAL_S, rotation_grace_s=GRACE_S),
    login=LoginPolicy(max_sessions=2, prevent_login=False),
)
VERBS = ("read", "write", "login", "logout", "rotate", "revoke_others")


@dataclass
class Pending:
    """A request that has opened (loaded and decided) and not yet finished."""

    client: int
    verb: str
    exchange: Exchange
    lineage: int | None
    """The lineage of the session it loaded, if any."""


@dataclass
class Model:
    """What must hold, independent of the library."""

    next_lineage: int = 0
    ended: set[int] = field(default_factory=set)
    owner: dict[int, str] = field(default_factory=dict)


def _cookie_from(headers: list[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """Whether a response sets the session cookie, and to what (``None``: cleared)."""
    for name, value in headers:
        if name == b"set-cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            morsel = jar.get("sid")
            if morsel is not None:
                return True, morsel.value or None
    return False, None


def lifecycle_machine(open_fresh_store: Callable[[], SessionStore]) -> type[RuleBasedStateMachine]:
    """The state machine class, over stores made by ``open_fresh_store`` (one per schedule)."""

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.clock = ManualClock()
            self.store = open_fresh_store()
            self.loop.run_until_complete(self.store.setup())
            self.manager = SessionManager(self.store, POLICY, clock=self.clock)
            self.cookies: list[str | None] = [None] * CLIENTS
            self.pending: list[Pending] = []
            self.model = Model()

        def teardown(self) -> None:
            self.loop.run_until_complete(self.store.close())
            self.loop.close()

        def run(self, coroutine: object) -> object:
            return self.loop.run_until_complete(coroutine)  # type: ignore[arg-type]

        # -- rules ---------------------------------------------------------------------------

        @rule(client=st.integers(0, CLIENTS - 1), verb=st.sampled_from(VERBS))
        def open_request(self, client: int, verb: str) -> None:
            exchange = Exchange(self.manager, path="/x", client=ClientInfo(ip="203.0.113.9", user_agent=f"c{client}"))
            cookie = self.cookies[client]
            self.run(exchange.open([f"sid={cookie}".encode()] if cookie else []))
            record = exchange.record
            lineage = record.data.get("lineage") if record is not None else None
            self.pending.append(Pending(client, verb, exchange, lineage if isinstance(lineage, int) else None))

        @precondition(lambda self: bool(self.pending))
        @rule(data=st.data())
        def finish_request(self, data: st.DataObject) -> None:
            index = data.draw(st.integers(0, len(self.pending) - 1), label="finish which")
            request = self.pending.pop(index)
            self.run(self._finish(request))

        @rule(seconds=st.sampled_from([1.0, GRACE_S + 1, RENEWAL_S + 1]))
        def time_passes(self, seconds: float) -> None:
            self.clock.advance(seconds)

        @rule(user=st.sampled_from(USERS))
        def administrator_ends_every_session_of(self, user: str) -> None:
            now = self.clock()
            self.run(self.store.end_user(user, EndReason.REVOKED, now, now + 3600))
            self.model.ended |= {n for n, owner in self.model.owner.items() if owner == user}

        async def _finish(self, request: Pending) -> None:
            exchange, model, session = request.exchange, self.model, request.exchange.session
            user = USERS[request.client // 2]
            try:
                if request.verb == "login":
                    lineage = model.next_lineage
                    model.next_lineage += 1
                    await session.login(user)
                    session["lineage"] = lineage
                    model.owner[lineage] = user
                    if request.lineage is not None:
                        model.ended.add(request.lineage)  # superseded: its ID is dead, its data moved
                elif exchange.record is None:
                    pass
                elif request.verb == "write":
                    session[f"c{request.client}"] = self.clock()
                elif request.verb == "logout":
                    await session.logout()
                    if request.lineage is not None:
                        model.ended.add(request.lineage)
                elif request.verb == "rotate":
                    await session.rotate_id()
                elif request.verb == "revoke_others" and request.lineage is not None:
                    await session.revoke_others()
                    owner = model.owner.get(request.lineage)
                    model.ended |= {n for n, o in model.owner.items() if o == owner and n != request.lineage}
            except (LoginRefusedError, SessionEndedError, SessionNotAvailableError):
                pass
            sets, cookie = _cookie_from(await exchange.commit(200))
            if sets:
                self.cookies[request.client] = cookie

        # -- invariants, read off the store ------------------------------------------------------

        def _live(self) -> Iterator[SessionRecord]:
            for user in USERS:
                yield from self.run(self.store.list_user(user, self.clock()))  # type: ignore[misc]

        @invariant()
        def ended_means_ended_one_successor_and_the_limit(self) -> None:
            per_lineage: dict[int, int] = {}
            per_user: dict[str, int] = {}
            for record in self._live():
                lineage = record.data.get("lineage")
                assert lineage not in self.model.ended, f"lineage {lineage} was ended yet is live again"
                if isinstance(lineage, int):
                    per_lineage[lineage] = per_lineage.get(lineage, 0) + 1
                user = record.meta.user or ""
                per_user[user] = per_user.get(user, 0) + 1
            forked = {n: c for n, c in per_lineage.items() if c > 1}
            assert not forked, f"one session forked into several live IDs: {forked}"
            over = {u: c for u, c in per_user.items() if c > POLICY.login.max_sessions}
            assert not over, f"more live sessions than max_sessions: {over}"

    return Lifecycle


STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("file", id="file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@pytest.mark.parametrize("kind", STORES)
def test_random_schedules_of_racing_requests_keep_the_lifecycle_invariants(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    def fresh() -> SessionStore:
        name = secrets.token_hex(4)
        if kind == "memory":
            return open_store("memory://")
        if kind == "sqlite":
            return open_store(f"sqlite:///{tmp_path / name}.db")
        if kind == "file":
            return open_store(f"file://{tmp_path / name}")
        if kind == "postgres":
            return SqlStore.from_url(str(request.getfixturevalue("postgres_url")), table_prefix=f"sw_mb_{name}_")
        return open_store(f"{request.getfixturevalue('redis_url')}?key_prefix=mb{name}:")

    machine = lifecycle_machine(fresh)
    machine.TestCase.settings = settings(
        max_examples=MAX_EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run_state_machine_as_test(machine, settings=machine.TestCase.settings)

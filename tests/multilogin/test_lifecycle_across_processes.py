"""The lifecycle invariants under real concurrency: two app server processes, one store.

Two uvicorn processes serve the same app on SQLite, PostgreSQL or Redis; their clock is a
file the test moves (``FileClock``), so a renewal is due the moment the test says so,
without sleeping. Each schedule releases many client threads at once (a barrier) against
both servers, on one session whose renewal is due — renewals alone, renewals with a
logout, renewals with a revocation from another device, renewals with logins under a
limit of two — then reads the store: one successor, nothing live after an ending, never
more than ``max_sessions``. Real concurrency does not promise any particular order; the
forced orders live in ``tests/lifecycle``. ``ROUNDS`` schedules of each kind run per store.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from multilogin_app import COOKIE
from multilogin_support import Namespace, live_sessions, namespace_for
from test_multilogin_two_app_processes import APP_DIR, Server, free_port, wait_until_up

ROUNDS = 4
RACERS = 12
RENEWAL_S = 60


@dataclass
class Cluster:
    """Two servers on one store, and the clock they share."""

    servers: tuple[Server, Server]
    space: Namespace
    clock_file: Path

    def advance(self, seconds: float) -> None:
        now = float(self.clock_file.read_text())
        self.clock_file.write_text(repr(now + seconds))

    def now(self) -> float:
        return float(self.clock_file.read_text())

    def live(self, user: str) -> int:
        return len([s for s in live_sessions(self.space, user) if s.expires_at > self.now()])

    def any_server(self, rng: random.Random) -> Server:
        return self.servers[rng.randrange(2)]


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    space = namespace_for(request.param, request, tmp_path)
    clock_file = tmp_path / "clock"
    clock_file.write_text(repr(time.time()))
    settings = {
        "SESSIONWARD_RENEWAL_INTERVAL": str(RENEWAL_S),
        "SESSIONWARD_MAX_SESSIONS": "2",
        "SESSIONWARD_PREVENT_LOGIN": "false",
    }
    started: list[tuple[subprocess.Popen[bytes], Server]] = []
    for name in ("a", "b"):
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}", tmp_path / f"audit-{name}.jsonl")
        env = {**os.environ, **settings, "ML_STORE": space.url, "ML_TABLE_PREFIX": space.table_prefix}
        env |= {"ML_AUDIT_LOG": str(server.audit_log), "ML_CLOCK_FILE": str(clock_file)}
        command = [sys.executable, "-m", "uvicorn", "--factory", "multilogin_app:app_from_env"]
        command += ["--app-dir", str(APP_DIR), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        started.append((subprocess.Popen(command, env=env, stderr=subprocess.PIPE), server))
    try:
        for process, server in started:
            wait_until_up(process, server)
        yield Cluster((started[0][1], started[1][1]), space, clock_file)
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(10)
            if process.stderr is not None:
                process.stderr.close()


def at_once(jobs: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run ``jobs`` in threads released together by a barrier; return their answers in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def renewal_of(server: Server, sid: str) -> Callable[[], httpx.Response]:
    return lambda: server.call("GET", "/api/me", sid)


def login_of(server: Server, user: str) -> Callable[[], httpx.Response]:
    return lambda: server.call("POST", "/api/login", json={"user": user})


def request_of(server: Server, method: str, path: str, sid: str) -> Callable[[], httpx.Response]:
    return lambda: server.call(method, path, sid)


def new_ids(answers: list[httpx.Response], old: str) -> set[str]:
    """The session IDs the answers handed out, other than ``old`` (cleared cookies left out)."""
    return {value for r in answers if (value := r.cookies.get(COOKIE)) and value != old}


def assert_dead(cluster: Cluster, *sids: str) -> None:
    for sid in sids:
        for server in cluster.servers:
            answer = server.call("GET", "/api/me", sid)
            assert answer.status_code == 401 or answer.json()["user"] is None, f"an ended session's ID works: {sid}"


def test_a_burst_of_renewals_across_servers_makes_one_successor(cluster: Cluster) -> None:
    rng = random.Random(1)
    for round_ in range(ROUNDS):
        user = f"alice{round_}"
        sid, _ = cluster.servers[0].login(user)
        cluster.advance(RENEWAL_S + 1)
        answers = at_once([renewal_of(cluster.any_server(rng), sid) for _ in range(RACERS)])
        assert all(a.status_code == 200 and a.json()["user"] == user for a in answers)
        assert len(new_ids(answers, sid)) == 1, "one renewal handed out several IDs"
        assert cluster.live(user) == 1


def test_a_logout_racing_renewals_across_servers_leaves_nothing_live(cluster: Cluster) -> None:
    rng = random.Random(2)
    for _ in range(ROUNDS):
        sid, _ = cluster.servers[0].login("alice")
        cluster.advance(RENEWAL_S + 1)
        jobs = [renewal_of(cluster.any_server(rng), sid) for _ in range(RACERS - 1)]
        jobs.insert(rng.randrange(len(jobs) + 1), request_of(cluster.any_server(rng), "POST", "/api/logout", sid))
        answers = at_once(jobs)
        assert all(a.status_code in (200, 401) for a in answers)
        assert cluster.live("alice") == 0
        assert_dead(cluster, sid, *new_ids(answers, sid))


def test_a_revocation_racing_renewals_of_the_revoked_device_leaves_it_out(cluster: Cluster) -> None:
    rng = random.Random(3)
    for round_ in range(ROUNDS):
        user = f"bob{round_}"
        laptop, _ = cluster.servers[1].login(user)
        phone, phone_handle = cluster.servers[0].login(user)
        cluster.advance(RENEWAL_S + 1)
        # The laptop revokes the phone from a device list read before the phone renews.
        jobs = [renewal_of(cluster.any_server(rng), phone) for _ in range(RACERS - 1)]
        at = rng.randrange(len(jobs) + 1)
        jobs.insert(at, request_of(cluster.any_server(rng), "DELETE", f"/api/sessions/{phone_handle}", laptop))
        answers = at_once(jobs)
        assert answers[at].status_code == 204, "the revocation missed a session that renewed meanwhile"
        assert all(a.status_code in (200, 401) for i, a in enumerate(answers) if i != at)
        assert cluster.live(user) == 1  # the laptop's (renewed by its own request, maybe)
        assert_dead(cluster, phone, *new_ids([a for i, a in enumerate(answers) if i != at], phone))


def test_logins_under_a_limit_racing_renewals_never_exceed_it(cluster: Cluster) -> None:
    rng = random.Random(4)
    for round_ in range(ROUNDS):
        user = f"carol{round_}"
        sid, _ = cluster.servers[0].login(user)
        cluster.advance(RENEWAL_S + 1)
        jobs = [renewal_of(cluster.any_server(rng), sid) for _ in range(RACERS - 3)]
        for _ in range(3):
            jobs.insert(rng.randrange(len(jobs) + 1), login_of(cluster.any_server(rng), user))
        at_once(jobs)
        assert cluster.live(user) == 2

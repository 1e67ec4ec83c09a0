"""The short fault campaign (F19): the demo, served for real, while its store fails.

For each store and fault, simulated browsers sign in, read, write, sign out and change
passwords before, during and after the outage (see :mod:`faults.campaign`), and every
run must show: only the answers each endpoint defines (503 during the outage, never a
500 nor a dropped connection), no answer slower than the store's timeouts allow, no
session lost or created, no traceback in the app's log, and service back without
restarting the app. ``scripts/fault_campaign.py`` runs the same faults for longer.

The shared PostgreSQL server is never touched: the network faults go through a proxy,
and the crash (``kill -9`` of the postmaster) and the fast restart hit a private server
(``initdb`` in a temporary directory) that the demo has to itself.
"""

from __future__ import annotations

import dataclasses

import pytest

from faults.campaign import Plan, Target, call_bound_s, format_table, run_fault
from faults.faults import Fault, Kill, Pause, PostgresKill, PostgresRestart
from faults.targets import NETWORK_FAULTS, network_fault
from faults.tcp_proxy import TcpProxy

PROCESS_FAULT_ROUNDS = 4
"""Runs of a PostgreSQL crash or restart per test.

What a crash adds to a refused connection is the requests caught in flight: a sign-in
whose session loaded and whose password check still runs meets the outage inside its
verb. Each run catches the few requests in flight as the server goes; four catch such a
request almost always (the first or second did, in every trial against a demo whose
verbs answered 500).
"""


def plan_for(target: Target) -> Plan:
    # Two answers per browser during the fault: against a hanging store each takes the
    # store's timeout, and the second one meets the reconnection path, not the pooled one.
    return Plan(answers_before=2, answers_during=2, answers_after=2, call_bound_s=call_bound_s(target.app.store_url))


async def assert_survives(target: Target, fault: Fault, rounds: int = 1) -> None:
    for round_ in range(rounds):
        result = await run_fault(target, fault, dataclasses.replace(plan_for(target), seed=round_))
        problems = result.problems()
        assert problems == [], f"round {round_ + 1}:\n" + format_table([result]) + "\n" + "\n".join(problems[:20])


async def test_sqlite_write_lock_held_elsewhere_gives_503_never_500_and_loses_no_session(
    sqlite_demo: tuple[Target, Fault],
) -> None:
    target, lock = sqlite_demo
    await assert_survives(target, lock)


@pytest.mark.postgres
@pytest.mark.parametrize("fault", NETWORK_FAULTS)
async def test_postgres_cut_off_by_the_network_gives_503_never_500_and_loses_no_session(
    postgres_demo: tuple[Target, TcpProxy], fault: str
) -> None:
    target, proxy = postgres_demo
    await assert_survives(target, network_fault(fault, proxy))


@pytest.mark.postgres
async def test_postgres_killed_and_restarted_gives_503_never_500_and_loses_no_session(
    postgres_direct_demo: tuple[Target, PostgresKill, PostgresRestart],
) -> None:
    target, kill, _ = postgres_direct_demo
    await assert_survives(target, kill, PROCESS_FAULT_ROUNDS)


@pytest.mark.postgres
async def test_postgres_restarted_under_load_gives_503_never_500_and_loses_no_session(
    postgres_direct_demo: tuple[Target, PostgresKill, PostgresRestart],
) -> None:
    target, _, restart = postgres_direct_demo
    await assert_survives(target, restart, PROCESS_FAULT_ROUNDS)


@pytest.mark.redis
@pytest.mark.parametrize("fault", NETWORK_FAULTS)
async def test_redis_cut_off_by_the_network_gives_503_never_500_and_loses_no_session(
    redis_proxied_demo: tuple[Target, TcpProxy], fault: str
) -> None:
    target, proxy = redis_proxied_demo
    await assert_survives(target, network_fault(fault, proxy))


@pytest.mark.redis
async def test_redis_paused_by_sigstop_gives_503_never_500_and_loses_no_session(
    redis_direct_demo: tuple[Target, Pause, Kill],
) -> None:
    target, pause, _ = redis_direct_demo
    await assert_survives(target, pause)


@pytest.mark.redis
async def test_redis_killed_and_restarted_gives_503_never_500_and_loses_no_session(
    redis_direct_demo: tuple[Target, Pause, Kill],
) -> None:
    target, _, kill = redis_direct_demo
    await assert_survives(target, kill)

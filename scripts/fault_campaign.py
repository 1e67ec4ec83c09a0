"""The fault campaign, long runs: the demo served for real while its store fails, with counts.

For each store (SQLite, PostgreSQL, Redis) and each of its faults, simulated browsers
sign in, read, write, sign out and change passwords before, during and after the outage;
the script prints one row of counts per run (requests, answers by status, answers that
no endpoint defines such as a 500, requests left without answer, answers slower than the
store timeouts allow, sessions lost, sessions created, 503s with no fault on, recovery
time) and exits 1 when any run broke a rule of F19, listing what. The short runs of the
same faults are ``tests/faults/test_fault_campaign.py``; what the phases are and what is
checked is explained in ``tests/faults/campaign.py`` and ``tests/faults/load.py``.

    .venv/bin/python scripts/fault_campaign.py                    # every store and fault
    .venv/bin/python scripts/fault_campaign.py --stores redis --faults pause,kill --rounds 3
    .venv/bin/python scripts/fault_campaign.py --setting SESSIONWARD_RENEWAL_INTERVAL=2

It starts private redis-servers, a private PostgreSQL database (dropped at the end) on
the server ``tests/support/services.py`` names for the network faults, and a private
PostgreSQL server (``initdb`` in a temporary directory, ``tests/support/postgres_servers.py``)
that the ``kill`` and ``restart`` faults crash and restart; the shared server is never
restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from faults.campaign import FaultResult, Plan, Target, call_bound_s, format_table, run_fault  # noqa: E402
from faults.faults import Fault  # noqa: E402
from faults.targets import (  # noqa: E402
    NETWORK_FAULTS,
    POSTGRES_PROCESS_FAULTS,
    network_fault,
    postgres_direct_target,
    private_database,
    proxied_target,
    redis_direct_target,
    sqlite_target,
)
from support.postgres_servers import private_server  # noqa: E402
from support.redis_servers import RedisServer  # noqa: E402
from support.services import PG_HOST, PG_PASSWORD, PG_PORT, PG_USER, _credentials  # noqa: E402

STORES = ("sqlite", "postgres", "redis")
FAULTS = {
    "sqlite": ("locked",),
    "postgres": (*NETWORK_FAULTS, *POSTGRES_PROCESS_FAULTS),
    "redis": (*NETWORK_FAULTS, "pause", "kill"),
}
PROBLEMS_SHOWN = 15
MAX_BROWSERS = 200


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fail the demo's store under load and count what clients see.")
    parser.add_argument("--stores", default=",".join(STORES), help=f"comma-separated, of {', '.join(STORES)}")
    every = sorted({fault for faults in FAULTS.values() for fault in faults})
    parser.add_argument("--faults", default="", help=f"comma-separated, of {', '.join(every)} (default: all)")
    parser.add_argument("--browsers", type=int, default=12, help="simulated browsers per store (default 12)")
    parser.add_argument("--answers", type=int, default=20, help="answers per browser in each phase (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each fault (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the browsers' choices")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE", help="a SESSIONWARD_* variable for the demo"
    )
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.faults = {f.strip() for f in args.faults.split(",") if f.strip()} or set(every)
    for store in args.stores:
        if store not in STORES:
            parser.error(f"--stores: {store!r} is not one of {', '.join(STORES)}")
    for fault in args.faults:
        if fault not in every:
            parser.error(f"--faults: {fault!r} is not one of {', '.join(every)}")
    if args.browsers < 1 or args.answers < 1 or args.rounds < 1:
        parser.error("--browsers, --answers and --rounds must be at least 1")
    if args.browsers > MAX_BROWSERS:
        parser.error(f"--browsers: at most {MAX_BROWSERS} (each browser has a loopback address of its own)")
    args.settings = {}
    for setting in args.setting:
        name, sep, value = setting.partition("=")
        if not sep or not name.startswith("SESSIONWARD_"):
            parser.error(f"--setting: {setting!r} is not SESSIONWARD_NAME=VALUE")
        args.settings[name] = value
    return args


@contextlib.contextmanager
def redis_server(directory: Path, *, persistent: bool) -> Iterator[RedisServer]:
    """A private redis-server on a free port, stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, directory, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def run_all(target: Target, faults: list[Fault], args: argparse.Namespace) -> list[FaultResult]:
    """Run each fault on ``target`` ``--rounds`` times, one after the other, on the same app."""
    answers, bound = args.answers, call_bound_s(target.app.store_url)
    results = []
    for round_ in range(args.rounds):
        plan = Plan(answers, answers, answers, bound, seed=args.seed + round_)
        for fault in faults:
            result = await run_fault(target, fault, plan)
            unavailable = result.tally.statuses.get(503, 0)
            print(
                f"{result.store} {result.fault}: {result.tally.requests} requests, {unavailable} answered 503, "
                f"{len(result.problems())} problem(s)",
                flush=True,
            )
            results.append(result)
    return results


POSTGRES_SERVER = f"postgresql://{_credentials(PG_USER, PG_PASSWORD)}@{PG_HOST}:{PG_PORT}/postgres"

Runs = list[tuple[Target, list[Fault]]]


def sqlite_runs(stack: contextlib.ExitStack, directory: Path, args: argparse.Namespace) -> Runs:
    target, lock = stack.enter_context(sqlite_target(directory, args.browsers, args.settings))
    return [(target, [lock])]


def postgres_runs(stack: contextlib.ExitStack, directory: Path, args: argparse.Namespace) -> Runs:
    import asyncpg

    runs: Runs = []
    network = [fault for fault in NETWORK_FAULTS if fault in args.faults]
    if network:
        try:
            url = stack.enter_context(private_database(POSTGRES_SERVER))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise RuntimeError(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {error}") from None
        target, proxy = stack.enter_context(
            proxied_target("postgres", url, directory / "network", args.browsers, args.settings)
        )
        runs.append((target, [network_fault(fault, proxy) for fault in network]))
    if set(POSTGRES_PROCESS_FAULTS) & args.faults:
        # A server of our own: the shared one must not be crashed.
        server = stack.enter_context(private_server())
        target, kill, restart = stack.enter_context(
            postgres_direct_target(server, directory / "process", args.browsers, args.settings)
        )
        runs.append((target, [fault for fault in (kill, restart) if fault.name in args.faults]))
    return runs


def redis_runs(stack: contextlib.ExitStack, directory: Path, args: argparse.Namespace) -> Runs:
    runs: Runs = []
    network = [fault for fault in NETWORK_FAULTS if fault in args.faults]
    if network:
        server = stack.enter_context(redis_server(directory / "network", persistent=False))
        target, proxy = stack.enter_context(
            proxied_target("redis", server.url, directory / "network", args.browsers, args.settings)
        )
        runs.append((target, [network_fault(fault, proxy) for fault in network]))
    if {"pause", "kill"} & args.faults:
        # Persistent (AOF, fsync always), as a Redis holding sessions is: a kill -9 loses no write.
        server = stack.enter_context(redis_server(directory / "process", persistent=True))
        target, pause, kill = stack.enter_context(
            redis_direct_target(server, directory / "process", args.browsers, args.settings)
        )
        runs.append((target, [fault for fault in (pause, kill) if fault.name in args.faults]))
    return runs


def campaign(store: str, args: argparse.Namespace, directory: Path) -> list[FaultResult]:
    """Serve the demo on ``store`` and run each of its faults ``--rounds`` times."""
    if not set(FAULTS[store]) & args.faults:
        return []
    openers = {"sqlite": sqlite_runs, "postgres": postgres_runs, "redis": redis_runs}
    with contextlib.ExitStack() as stack:
        results = []
        for target, faults in openers[store](stack, directory, args):
            results += asyncio.run(run_all(target, faults, args))
        return results


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; exit 1 when a run broke a rule, 2 when a store could not be run at all."""
    args = parse_arguments(argv)
    results: list[FaultResult] = []
    not_run: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as temporary:
        for store in args.stores:
            try:
                results += campaign(store, args, Path(temporary) / store)
            except (OSError, RuntimeError) as error:
                not_run.append(f"{store}: not run: {error}")
    print()
    print(format_table(results))
    failed = [result for result in results if result.problems()]
    for result in failed:
        problems = result.problems()
        print(f"\n{result.store} / {result.fault}: {len(problems)} problem(s)")
        for line in problems[:PROBLEMS_SHOWN]:
            print(f"  {line}")
    for line in not_run:
        print(line)
    if failed:
        return 1
    if not_run:
        return 2
    print(f"\n{len(results)} runs: no 500, no hang, no session lost or created; service resumed every time.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

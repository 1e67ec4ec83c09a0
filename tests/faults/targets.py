"""The demo on each store, set up for faults: the app, the proxy or server it goes through.

Shared by the tests (as fixtures) and ``scripts/fault_campaign.py``:

* SQLite: the demo on a database file; the fault is another process holding the write lock;
* PostgreSQL: the demo through a :class:`TcpProxy` to the database (network faults,
  and a restart as the app sees it: reset and refuse);
* PostgreSQL direct: the demo on a private server, itself killed (``-9``) and restarted;
* Redis through a proxy: network faults;
* Redis direct: the private redis-server itself paused (``SIGSTOP``) and killed (``-9``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

from faults.campaign import Target, demo_settings, make_browsers
from faults.demo_process import DemoProcess
from faults.faults import Blackhole, Fault, Kill, Pause, PostgresKill, PostgresRestart, Refuse, Reset, WriteLock
from faults.tcp_proxy import TcpProxy
from support.postgres_servers import PostgresServer
from support.redis_servers import RedisServer

NETWORK_FAULTS = ("blackhole", "reset", "refuse")
POSTGRES_PROCESS_FAULTS = ("kill", "restart")


def network_fault(name: str, proxy: TcpProxy) -> Fault:
    """The network fault called ``name`` on ``proxy``."""
    kinds: dict[str, type[Blackhole] | type[Reset] | type[Refuse]] = {
        "blackhole": Blackhole,
        "reset": Reset,
        "refuse": Refuse,
    }
    return kinds[name](proxy)


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{userinfo}@{proxy.address}" if userinfo else proxy.address).geturl()


def upstream_of(url: str) -> tuple[str, int]:
    """The host and port a store URL names."""
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    return parts.hostname, parts.port


@contextlib.contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server ``server_url`` names; dropped afterwards.

    The demo uses the default table names, so it gets a database of its own rather than
    sharing the test run's with other suites.
    """
    import asyncpg

    parts = urlsplit(server_url)
    name = f"sw_fc_{secrets.token_hex(6)}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(
            host=parts.hostname,
            port=parts.port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or "") or None,
            database="postgres",
            timeout=5,
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def run(sql: str) -> None:
        # On a thread of its own: the caller may be inside a running event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, execute(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def demo_on(
    store: str, store_url: str, directory: Path, browsers: int, settings: Mapping[str, str] | None = None
) -> Iterator[Target]:
    """Serve the demo on ``store_url`` with fresh accounts for ``browsers`` browsers.

    ``settings`` (``SESSIONWARD_*``) are added to the campaign's own (:func:`demo_settings`).
    """
    states = make_browsers(browsers)
    environment = demo_settings(states) | dict(settings or {})
    directory.mkdir(parents=True, exist_ok=True)
    with DemoProcess(store_url, environment, directory / f"demo-{store}.log") as app:
        yield Target(store, app, states)


@contextlib.contextmanager
def sqlite_target(
    directory: Path, browsers: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Target, Fault]]:
    """The demo on a SQLite file, and the write-lock fault on that file."""
    database = directory / "sessions.db"
    with demo_on("sqlite", f"sqlite:///{database}", directory, browsers, settings) as target:
        yield target, WriteLock(database)


@contextlib.contextmanager
def proxied_target(
    store: str, store_url: str, directory: Path, browsers: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Target, TcpProxy]]:
    """The demo reaching ``store_url`` through a proxy the caller controls."""
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(TcpProxy(*upstream_of(store_url)))
        target = stack.enter_context(demo_on(store, through(store_url, proxy), directory, browsers, settings))
        if proxy.connections_accepted == 0:
            raise RuntimeError(f"the demo on {store} did not connect through the proxy")
        yield target, proxy


@contextlib.contextmanager
def redis_direct_target(
    server: RedisServer, directory: Path, browsers: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Target, Pause, Kill]]:
    """The demo straight on a private redis-server, and the faults on that process."""
    with demo_on("redis", server.url, directory, browsers, settings) as target:
        yield target, Pause(server), Kill(server)


@contextlib.contextmanager
def postgres_direct_target(
    server: PostgresServer, directory: Path, browsers: int, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Target, PostgresKill, PostgresRestart]]:
    """The demo straight on a private PostgreSQL server, and the faults on that server.

    The server is the demo's alone, so the demo uses its ``postgres`` database.
    """
    with demo_on("postgres", server.url, directory, browsers, settings) as target:
        yield target, PostgresKill(server), PostgresRestart(server)

"""Fixtures of the fault campaign: the demo on each store, served once per module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from faults.campaign import Target
from faults.faults import Fault, Kill, Pause, PostgresKill, PostgresRestart
from faults.targets import (
    postgres_direct_target,
    private_database,
    proxied_target,
    redis_direct_target,
    sqlite_target,
)
from faults.tcp_proxy import TcpProxy
from support.postgres_servers import PostgresServer
from support.redis_servers import RedisServer

BROWSERS = 6
"""Simulated browsers per store: enough to race, few enough for two shared cores."""


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Fault]]:
    """The demo on a SQLite file, and the write-lock fault."""
    with sqlite_target(tmp_path_factory.mktemp("faults-sqlite"), BROWSERS) as demo:
        yield demo


@pytest.fixture(scope="module")
def postgres_demo(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, TcpProxy]]:
    """The demo on a database of its own (on the run's PostgreSQL server), through a proxy."""
    with (
        private_database(postgres_url) as url,
        proxied_target("postgres", url, tmp_path_factory.mktemp("faults-pg"), BROWSERS) as demo,
    ):
        yield demo


@pytest.fixture(scope="module")
def postgres_direct_demo(
    postgres_server_factory: Callable[[], PostgresServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Target, PostgresKill, PostgresRestart]]:
    """The demo straight on a private PostgreSQL server that the faults kill and restart."""
    server = postgres_server_factory()
    with postgres_direct_target(server, tmp_path_factory.mktemp("faults-pg-process"), BROWSERS) as demo:
        yield demo


@pytest.fixture(scope="module")
def redis_proxied_demo(
    redis_server_factory: Callable[..., RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Target, TcpProxy]]:
    """The demo on a private redis-server, through a proxy."""
    server = redis_server_factory()
    with proxied_target("redis", server.url, tmp_path_factory.mktemp("faults-redis-net"), BROWSERS) as demo:
        yield demo


@pytest.fixture(scope="module")
def redis_direct_demo(
    redis_server_factory: Callable[..., RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Target, Pause, Kill]]:
    """The demo straight on a private, persistent redis-server (a kill -9 loses no write)."""
    server = redis_server_factory(persistent=True)
    with redis_direct_target(server, tmp_path_factory.mktemp("faults-redis"), BROWSERS) as demo:
        yield demo

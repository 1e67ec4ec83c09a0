"""The faults of the campaign: each begins and ends on command, and says what it models.

``begin`` and ``end`` are blocking (a signal, a proxy command, a restart that waits for
PING); the campaign runs them in a worker thread so the load goes on meanwhile.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from faults.tcp_proxy import TcpProxy
from support.postgres_servers import PostgresServer
from support.redis_servers import RedisServer


class Fault(Protocol):
    """An outage the campaign puts the store through."""

    name: str
    """Short name for the table (``blackhole``, ``pause``…)."""

    def begin(self) -> None:
        """Start the outage."""

    def end(self) -> None:
        """End the outage: the store answers again."""


@dataclass
class Blackhole:
    """The network hangs: connections are accepted, nothing moves (a partition, a dead switch)."""

    proxy: TcpProxy
    name: str = "blackhole"

    def begin(self) -> None:
        self.proxy.blackhole()

    def end(self) -> None:
        self.proxy.pass_traffic()


@dataclass
class Reset:
    """Every connection is reset, at the start and again at the end (a failover, a flaky link).

    In between traffic passes: the app reconnects, and the second reset meets the
    connections it opened meanwhile, often in the middle of a request.
    """

    proxy: TcpProxy
    name: str = "reset"

    def begin(self) -> None:
        self.proxy.reset()

    def end(self) -> None:
        self.proxy.reset()


@dataclass
class Refuse:
    """The store goes down: open connections reset, new ones refused, until it is back.

    To the app this is a server that went down and came back, on the shared server
    that must not be restarted itself; :class:`PostgresKill` and :class:`PostgresRestart`
    do it for real, on a private server.
    """

    proxy: TcpProxy
    name: str = "refuse"

    def begin(self) -> None:
        self.proxy.refuse()
        self.proxy.reset()

    def end(self) -> None:
        self.proxy.pass_traffic()


@dataclass
class Pause:
    """``kill -STOP`` the redis-server, then ``kill -CONT`` (a stalled server: swap, a long fork)."""

    server: RedisServer
    name: str = "pause"

    def _signal(self, number: signal.Signals) -> None:
        process = self.server.process
        assert process is not None, "the redis-server is not running"
        os.kill(process.pid, number)

    def begin(self) -> None:
        self._signal(signal.SIGSTOP)

    def end(self) -> None:
        self._signal(signal.SIGCONT)


@dataclass
class Kill:
    """``kill -9`` the redis-server and start it again on the same port (a crash).

    The server persists every write (AOF, fsync always), as a production Redis holding
    sessions does, so sessions must survive the crash.
    """

    server: RedisServer
    name: str = "kill"

    def begin(self) -> None:
        self.server.stop(kill=True)

    def end(self) -> None:
        self.server.start()


@dataclass
class PostgresKill:
    """``kill -9`` the postmaster, then start it again on the same data directory and port (a crash).

    The backends exit when they see their postmaster gone, dropping every connection;
    the new server replays its WAL before it accepts connections: a committed session
    survives, as it would on a production server.
    """

    server: PostgresServer
    name: str = "kill"

    def begin(self) -> None:
        self.server.kill()

    def end(self) -> None:
        self.server.start()


@dataclass
class PostgresRestart:
    """A fast shutdown (``SIGINT``, as ``pg_ctl restart -m fast``), then start again (a maintenance restart).

    Every client connection is ended by the server (``terminating connection due to
    administrator command``), in the middle of a transaction or not; new ones are refused
    until the server is back on the same port.
    """

    server: PostgresServer
    name: str = "restart"

    def begin(self) -> None:
        self.server.stop()

    def end(self) -> None:
        self.server.start()


@dataclass
class WriteLock:
    """Another process holds SQLite's write lock (a backup, a long ``sessions purge``…).

    Readers go on (WAL); writers wait for the lock, up to the store's timeout.
    """

    database: Path
    name: str = "locked"
    _holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        holder = sqlite3.connect(self.database, timeout=30, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        self._holder = holder

    def end(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()

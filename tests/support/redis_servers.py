"""Private redis-server processes (standalone and cluster) for the test session.

Fixtures:

* ``redis_server`` (session): a private standalone ``redis-server`` on a free port, no
  persistence, in a temporary directory; :meth:`RedisServer.stop` / :meth:`RedisServer.start`
  restart it on the same port (outage tests).
* ``redis_url`` (function): ``redis://127.0.0.1:<port>/0`` of that server, FLUSHALL-ed and
  running before each test, so tests are isolated.
* ``redis_cluster`` (session): a local 3-master Redis Cluster (slots split in three, no
  replicas).
* ``redis_cluster_url`` (function): ``redis+cluster://127.0.0.1:<port>`` of its first node,
  every master FLUSHALL-ed before each test.
* ``redis_sentinel_url`` (function): ``redis+sentinel://127.0.0.1:<port>/sw-test/0``: a
  private Sentinel whose service ``sw-test`` is the standalone server above.
* ``redis_server_factory`` (session): starts more private servers, e.g. a persistent one
  (AOF, fsync always) whose data survives ``kill -9`` for outage tests.

Without a ``redis-server`` binary the tests using these skip (or fail when
``SESSIONWARD_REQUIRE_SERVICES=1``). The helpers speak raw RESP over a socket so that the
fixtures need no client library.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from support.helpers import service_missing

START_TIMEOUT_S = 10.0
CLUSTER_SLOTS = 16384
CLUSTER_MASTERS = 3
PR_SET_PDEATHSIG = 1

RespValue = bytes | int | list["RespValue"] | None


try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: servers then outlive a killed test run, as usual
    _LIBC = None


def _die_with_parent() -> None:
    """In the child: ask Linux to kill it when the test process dies, so no server outlives a killed run."""
    # libc is loaded before the fork: the child only makes one system call.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) from a server."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_reply(reader: BinaryIO) -> RespValue:
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisReplyError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        length = int(body)
        if length < 0:
            return None
        return reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None
        return [_read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected RESP line {line!r}")


def redis_command(port: int, *args: str | int, timeout_s: float = 5.0) -> RespValue:
    """Send one command to 127.0.0.1:``port`` and return its decoded RESP reply."""
    parts = [str(arg).encode() for arg in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(payload)
        with sock.makefile("rb") as stream:
            return _read_reply(stream)


class RedisServer:
    """One private ``redis-server`` process on a fixed port; restartable on that port."""

    def __init__(self, binary: str, directory: Path, *, persistent: bool = False, cluster: bool = False) -> None:
        self.binary = binary
        self.directory = directory
        self.persistent = persistent
        self.cluster = cluster
        self.port = free_port()
        self.cluster_port = free_port() if cluster else 0
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def _arguments(self) -> list[str]:
        arguments = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        arguments += ["--save", "", "--daemonize", "no", "--logfile", str(self.directory / "redis.log")]
        if self.persistent:
            # fsync on every write: a SIGKILL then loses nothing, as a production AOF would.
            arguments += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            arguments += ["--appendonly", "no"]
        if self.cluster:
            arguments += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf"]
            arguments += ["--cluster-port", str(self.cluster_port), "--cluster-node-timeout", "5000"]
        return arguments

    def start(self) -> None:
        """Start the server (again) on its port and wait until it answers PING."""
        if self.running:
            return
        self.process = subprocess.Popen(
            self._arguments(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, libc already loaded
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {self.port} exited: {log}")
            with contextlib.suppress(OSError, RedisReplyError):
                if redis_command(self.port, "PING", timeout_s=0.5) == b"PONG":
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {START_TIMEOUT_S}s")

    def stop(self, *, kill: bool = True) -> None:
        """Stop the server: SIGKILL by default (an abrupt outage), else SIGTERM."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def command(self, *args: str | int) -> RespValue:
        """Send one command to this server."""
        return redis_command(self.port, *args)

    def flushall(self) -> None:
        """Drop every key (test isolation)."""
        self.command("FLUSHALL")


class RedisSentinel(RedisServer):
    """A private Sentinel (``redis-server --sentinel``) watching one primary."""

    SERVICE = "sw-test"

    def __init__(self, binary: str, directory: Path, primary: RedisServer) -> None:
        super().__init__(binary, directory)
        self.primary = primary

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the watched service, database 0."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.SERVICE}/0"

    def _arguments(self) -> list[str]:
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"logfile {self.directory / 'redis.log'}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 1\n"
        )
        return [self.binary, str(config), "--sentinel"]


class RedisCluster:
    """A local Redis Cluster of :data:`CLUSTER_MASTERS` masters and no replicas."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.nodes = [RedisServer(binary, directory / f"node{i}", cluster=True) for i in range(CLUSTER_MASTERS)]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming the first node (the client discovers the rest)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        """Start the nodes, split the slots between them, join them, wait for ``cluster_state:ok``."""
        for node in self.nodes:
            node.start()
        per_node = CLUSTER_SLOTS // len(self.nodes)
        for index, node in enumerate(self.nodes):
            first = index * per_node
            last = CLUSTER_SLOTS - 1 if index == len(self.nodes) - 1 else first + per_node - 1
            node.command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            self.nodes[0].command("CLUSTER", "MEET", "127.0.0.1", node.port, node.cluster_port)
        deadline = time.monotonic() + 3 * START_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(self._ready(node) for node in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the local Redis Cluster did not reach cluster_state:ok")

    def _ready(self, node: RedisServer) -> bool:
        info = node.command("CLUSTER", "INFO")
        assert isinstance(info, bytes)
        known = node.command("CLUSTER", "NODES")
        assert isinstance(known, bytes)
        return b"cluster_state:ok" in info and len(known.strip().splitlines()) == len(self.nodes)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def flushall(self) -> None:
        """Drop every key on every master."""
        for node in self.nodes:
            node.flushall()


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed (apt-get install redis-server)")
    return binary


@pytest.fixture(scope="session")
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """Start extra private servers: ``factory(persistent=True)``; all stopped at the end."""
    started: list[RedisServer] = []

    def factory(*, persistent: bool = False) -> RedisServer:
        server = RedisServer(_binary(), tmp_path_factory.mktemp("redis"), persistent=persistent)
        started.append(server)
        try:
            server.start()
        except RuntimeError as error:
            service_missing(f"could not start a private redis-server: {error}")
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """The session's private standalone ``redis-server`` (no persistence)."""
    return redis_server_factory()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of the private server, running and empty."""
    # An outage test may have left it stopped; every test starts from a running, empty server.
    redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_sentinel(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    """A private Sentinel whose service is the session's standalone server."""
    sentinel = RedisSentinel(_binary(), tmp_path_factory.mktemp("redis-sentinel"), redis_server)
    try:
        sentinel.start()
    except RuntimeError as error:
        service_missing(f"could not start a private Redis Sentinel: {error}")
    yield sentinel
    sentinel.stop()


@pytest.fixture
def redis_sentinel_url(redis_url: str, redis_sentinel: RedisSentinel) -> str:
    """``redis+sentinel://`` URL whose service is the (running, empty) standalone server."""
    return redis_sentinel.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A private local 3-master Redis Cluster."""
    cluster = RedisCluster(_binary(), tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except RuntimeError as error:
        cluster.stop()
        service_missing(f"could not start a local Redis Cluster: {error}")
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    """``redis+cluster://127.0.0.1:<port>`` of the private cluster, every master empty."""
    redis_cluster.flushall()
    return redis_cluster.url

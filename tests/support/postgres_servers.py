"""Private PostgreSQL servers for outage tests: a cluster of our own that may be killed.

The shared server on 127.0.0.1:5432 (``support.services``) must never be stopped: other
work runs on it. A test that crashes or restarts PostgreSQL gets a server of its own:
:class:`PostgresServer` runs ``initdb`` into a temporary directory and starts ``postgres``
on a free loopback port with ``trust`` authentication, and can then kill it (``SIGKILL``
to the postmaster, as a crash), stop it (``SIGINT``, PostgreSQL's fast shutdown, as
``pg_ctl stop -m fast``) and start it again on the same data directory and port.

Fixtures:

* ``postgres_server_factory`` (session): ``factory()`` starts one more private server;
  every server it started is stopped and its directory removed at the end.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` OS user, and its directory is made under the system's temporary directory
(pytest's own temporary directories are private to root). Without ``initdb`` (looked up
on ``PATH``, then under ``/usr/lib/postgresql/*/bin``) the tests using these skip, or fail
when ``SESSIONWARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from support.helpers import service_missing
from support.redis_servers import free_port

START_TIMEOUT_S = 30.0
"""Crash recovery replays the WAL before the server accepts connections; a busy machine is slow."""
STOP_TIMEOUT_S = 30.0
POLL_S = 0.05
SUPERUSER = "postgres"
_STILL_HELD = ("pre-existing shared memory block", "lock file", "could not bind")
"""What a new postmaster says when the old server's processes have not all gone yet."""
PR_SET_PDEATHSIG = 1

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: a server then outlives a killed test run
    _LIBC = None

_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-launcher")
"""Every server is started from this one thread.

Linux sends the parent-death signal when the *thread* that forked the child ends, not the
process. A fault restarts the server from a worker thread (``asyncio.to_thread``), which
ends when its event loop closes: started there, the server would be killed with it. This
thread lives as long as the test process.
"""


def _die_with_parent() -> None:
    """In the child, after it took the server's user: killed when the test process dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``postgres`` and ``pg_isready``, or ``None``."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    # Debian and Ubuntu keep them off PATH, one directory per major version: newest first.
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates += versions
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "postgres", "pg_isready")):
            return directory
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class PostgresServer:
    """One private PostgreSQL cluster on a fixed loopback port; killable and restartable there.

    Args:
        binaries: The directory holding ``initdb``, ``postgres`` and ``pg_isready``.

    :meth:`create` runs ``initdb``; :meth:`start` starts the server and waits until it
    accepts connections; :meth:`kill`, :meth:`stop` and :meth:`restart` end it (and start
    it again) on the same data directory and port; :meth:`remove` deletes the directory.
    """

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="sw-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._user = _server_user()
        if self._user is not None:
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres`` (trust: no password)."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.process is not None and self.process.poll() is None

    def _as_server_user(self) -> dict[str, Any]:
        """The ``subprocess`` arguments that run a command as the server's OS user."""
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def create(self) -> None:
        """Run ``initdb``: a new cluster whose local connections need no password.

        Raises:
            RuntimeError: ``initdb`` failed (its output is in the message).
        """
        command = [str(self.binaries / "initdb"), "--pgdata", str(self.data), "--username", SUPERUSER]
        command += ["--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync"]
        finished = subprocess.run(
            command,
            cwd=self.directory,
            capture_output=True,
            check=False,
            timeout=START_TIMEOUT_S * 4,
            **self._as_server_user(),
        )
        if finished.returncode != 0:
            output = (finished.stdout + finished.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"initdb failed ({finished.returncode}): {output}")

    def _arguments(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.directory),
            # Only the OS' page cache is skipped: a killed *process* loses nothing by it,
            # since every committed write has already reached the kernel.
            "fsync": "off",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "logging_collector": "off",
        }
        arguments = [str(self.binaries / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            arguments += ["-c", f"{name}={value}"]
        return arguments

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                self._arguments(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # A process group of its own: after a kill, the test waits for every
                # backend the postmaster left behind before it starts the server again.
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, libc already loaded
                **self._as_server_user(),
            )

    def start(self) -> None:
        """Start the server (again) on its port and wait until it accepts connections.

        After :meth:`kill` the server replays its WAL before it answers; should a process
        of the killed server still hold its shared memory or port, it tries again.

        Raises:
            RuntimeError: it did not accept connections within :data:`START_TIMEOUT_S`.
        """
        if self.running:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.process = _LAUNCHER.submit(self._spawn).result()
            while self.process.poll() is None and time.monotonic() < deadline:
                if self._accepting():
                    return
                time.sleep(POLL_S)
            if self.process.poll() is None:
                self._end(signal.SIGKILL)
                raise RuntimeError(
                    f"postgres on port {self.port} did not start within {START_TIMEOUT_S} s: {self.log_tail()}"
                )
            self.process = None
            said = self.log_text()[log_mark:]
            if not any(reason in said for reason in _STILL_HELD) or time.monotonic() >= deadline:
                raise RuntimeError(f"postgres on port {self.port} exited: {said[-2000:]}")
            # A backend of the old server may still hold its shared memory or port: try again.
            time.sleep(POLL_S)

    def _accepting(self) -> bool:
        command = [str(self.binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        return subprocess.run(command, check=False, timeout=10).returncode == 0

    def kill(self) -> None:
        """``kill -9`` the postmaster (a crash), and wait until its backends have gone too.

        The backends notice that their postmaster died and exit on their own, dropping
        their clients' connections; only then is the server down as a whole.
        """
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Fast shutdown (``SIGINT``, as ``pg_ctl stop -m fast``): clients are disconnected, nothing is lost."""
        self._end(signal.SIGINT)

    def restart(self) -> None:
        """Fast shutdown, then start again (``pg_ctl restart -m fast``)."""
        self.stop()
        self.start()

    def _end(self, number: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(number)
        process.wait(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(process.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                raise RuntimeError(f"postgres on port {self.port}: backends outlived their postmaster")
            time.sleep(POLL_S)

    def remove(self) -> None:
        """Kill the server if it runs, and delete its directory."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._end(signal.SIGQUIT)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self) -> str:
        """The server's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log, for error messages."""
        return self.log_text()[-chars:]


def _group_alive(group: int) -> bool:
    """Whether any process of the group is still running."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs as another user, and we are not root: it exists
        return True
    return True


def _server_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as: ``postgres`` when we are root (PostgreSQL refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(f"running as root, and there is no {SUPERUSER!r} OS user to run PostgreSQL as") from None


def new_server() -> PostgresServer:
    """Create and start a private server.

    Raises:
        RuntimeError: PostgreSQL is not installed, or the server could not be set up.
    """
    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("initdb is not installed (apt-get install postgresql)")
    server = PostgresServer(binaries)
    try:
        server.create()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        server.remove()
        raise RuntimeError(str(error)) from error
    return server


@contextlib.contextmanager
def private_server() -> Iterator[PostgresServer]:
    """A private server for the block; killed and removed afterwards."""
    server = new_server()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_server_factory() -> Iterator[Callable[[], PostgresServer]]:
    """Start private PostgreSQL servers: ``factory()``; all removed at the end of the session."""
    started: list[PostgresServer] = []

    def factory() -> PostgresServer:
        try:
            server = new_server()
        except RuntimeError as error:
            service_missing(f"could not start a private PostgreSQL server: {error}")
        started.append(server)
        return server

    yield factory
    for server in started:
        server.remove()

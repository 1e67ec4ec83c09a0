"""The demo served for real: ``python -m sessionward.demo`` in a child process.

A child process rather than a thread, so that what a client sees is what a deployment
sees: a crash, a reset connection or a hang of the app cannot hide in the test process.
Its log (uvicorn's, sessionward's warnings and the JSON audit lines) goes to a file that
:meth:`DemoProcess.tracebacks` searches afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

START_TIMEOUT_S = 60.0
"""Start-up hashes every demo password with Argon2; on a busy 2-core machine that takes a while."""
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: a killed run may leave the demo running, as usual
    _LIBC = None


def _die_with_parent() -> None:
    # In the child: no demo outlives a killed campaign.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def free_port() -> int:
    """Return a loopback TCP port that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoProcess:
    """``python -m sessionward.demo --store URL`` on a free port, with ``settings`` as its environment.

    Args:
        store_url: The store the demo uses (through a proxy, for network faults).
        settings: ``SESSIONWARD_*`` variables; any others of the caller's environment are
            left out, so the demo runs exactly the settings given.
        log_path: Where the demo's standard error goes.
    """

    def __init__(self, store_url: str, settings: Mapping[str, str], log_path: Path) -> None:
        self.store_url = store_url
        self.settings = dict(settings)
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DemoProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the demo and wait until it serves its home page.

        Raises:
            RuntimeError: the demo exited or did not answer within :data:`START_TIMEOUT_S`.
        """
        env = {name: value for name, value in os.environ.items() if not name.startswith("SESSIONWARD_")}
        env |= self.settings
        command = [sys.executable, "-m", "sessionward.demo", "--port", str(self.port), "--store", self.store_url]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, libc already loaded
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo exited with status {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base_url + "/", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the demo did not answer within {START_TIMEOUT_S} s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the demo (SIGTERM, then SIGKILL if it does not exit)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def alive(self) -> bool:
        """Whether the demo process is still running (it must survive every fault)."""
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """The demo's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the demo's log, for error messages."""
        return self.log_text()[-chars:]

    def tracebacks(self, since: int = 0) -> list[LoggedTraceback]:
        """The tracebacks in the log after character ``since`` (a chain of exceptions is one)."""
        text = self.log_text()[since:]
        found: list[LoggedTraceback] = []
        for before, part in itertools.pairwise(text.split("Traceback (most recent call last):")):
            lines = part.splitlines()
            # The exception line is the first one after the indented frames.
            exception = next((line for line in lines[1:] if line and not line.startswith(" ")), "")
            message = before.rstrip("\n").rpartition("\n")[2]
            if found and message.endswith(_CHAINED):
                found[-1] = LoggedTraceback(found[-1].message, exception)  # the chain's last exception
            else:
                found.append(LoggedTraceback(message, exception))
        return found


_CHAINED = ("the direct cause of the following exception:", "another exception occurred:")
"""How Python introduces the next traceback of a chain."""


@dataclass(frozen=True)
class LoggedTraceback:
    """A traceback in the demo's log: the line logged before it, and its exception line."""

    message: str
    exception: str

    def __str__(self) -> str:
        return f"{self.message} -> {self.exception}" if self.message else self.exception

"""The demo application as a user runs it (``sessionward demo``), for the audit's tests and benchmark."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cli_sites import free_port

DEMO_USERS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}


def demo_available() -> bool:
    """Whether the demo application is in this tree."""
    return importlib.util.find_spec("sessionward.demo") is not None


@contextmanager
def demo_server(data_dir: Path) -> Iterator[str]:
    """Run ``sessionward demo`` in a child process on a free port and a fresh SQLite file; yield its URL."""
    port = free_port()
    env = {**os.environ, "SESSIONWARD_STORE": f"sqlite:///{data_dir / 'demo.db'}"}
    log_path = data_dir / "demo.log"
    # A file, not a pipe: the demo logs every request, and a full pipe would stop it mid-audit.
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from sessionward.cli import main; main()", "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/session/status", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = log_path.read_text(errors="replace")
                    raise RuntimeError(f"the demo did not start: {stderr[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)

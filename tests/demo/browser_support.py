"""Real processes for the browser tests: the demo server, an attacker's site, Chromium.

The demo runs as ``python -m sessionward.demo`` on a free port with its own SQLite file,
exactly as a user starts it; Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class DemoServer:
    """A demo server process and where it listens."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        """The absolute URL of ``path``."""
        return self.base_url + path


@contextlib.contextmanager
def demo_server(tmp: Path, env: Mapping[str, str]) -> Iterator[DemoServer]:
    """Run the demo as a real server with ``env`` on a fresh SQLite store."""
    port = free_port()
    # Only the variables this test sets: the developer's own SESSIONWARD_* must not leak in.
    environ = {name: value for name, value in os.environ.items() if not name.startswith("SESSIONWARD_")}
    environ.update(env)
    log = tmp / f"demo-{port}.log"
    store = f"sqlite:///{tmp / f'sessions-{port}.db'}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sessionward.demo", "--port", str(port), "--store", store],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = DemoServer(base_url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_up(server: DemoServer, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the demo server exited early:\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(server.url("/api/session/status"), timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"the demo server did not answer within {timeout_s} s:\n{server.log.read_text()}")


@contextlib.contextmanager
def attacker_site(target: str) -> Iterator[int]:
    """Serve a page that, once opened, posts a forged form to ``target`` (a CSRF attack)."""
    page = (
        "<!doctype html><title>You won a prize</title>"
        f'<form id="f" method="post" action="{target}">'
        '<input name="current_password" value="alice-demo-pass">'
        '<input name="new_password" value="owned-by-mallory">'
        '<input name="confirm_password" value="owned-by-mallory">'
        '<input name="csrf_token" value="guessed"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

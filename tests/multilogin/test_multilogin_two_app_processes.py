"""Two app server processes share one store: a revocation on one is in force on both at once.

This is what seed 001 §9.4.2.6 says Spring's in-memory registry cannot do. Two uvicorn
processes serve the same app on the same store; sessions made on either work on both;
a revocation made on one makes the victim's very next request fail on either, with the
reason; a user cannot revoke another user's session by handle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from multilogin_app import COOKIE
from multilogin_support import Namespace, namespace_for

APP_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Server:
    url: str
    audit_log: Path

    def call(self, method: str, path: str, sid: str | None = None, json: object = None) -> httpx.Response:
        headers = {"cookie": f"{COOKIE}={sid}"} if sid else {}
        return httpx.request(method, self.url + path, headers=headers, json=json, timeout=10)

    def login(self, user: str) -> tuple[str, str]:
        answer = self.call("POST", "/api/login", json={"user": user})
        assert answer.status_code == 200, answer.text
        sid = answer.cookies[COOKIE]
        return sid, answer.json()["handle"]

    def events(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.audit_log.read_text().splitlines()]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["redis", "sqlite"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    space: Namespace = namespace_for(request.param, request, tmp_path)
    started: list[tuple[subprocess.Popen[bytes], Server]] = []
    for name in ("a", "b"):
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}", tmp_path / f"audit-{name}.jsonl")
        env = {**os.environ, "ML_STORE": space.url, "ML_TABLE_PREFIX": space.table_prefix}
        env["ML_AUDIT_LOG"] = str(server.audit_log)
        command = [sys.executable, "-m", "uvicorn", "--factory", "multilogin_app:app_from_env"]
        command += ["--app-dir", str(APP_DIR), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        started.append((subprocess.Popen(command, env=env, stderr=subprocess.PIPE), server))
    try:
        for process, server in started:
            wait_until_up(process, server)
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(10)
            if process.stderr is not None:
                process.stderr.close()


def wait_until_up(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            server.call("GET", "/api/me")
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()
                errors = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"app server did not start: {errors[-2000:]}")
            time.sleep(0.05)


def test_a_revocation_on_one_server_is_in_force_on_both_at_the_next_request(servers: tuple[Server, Server]) -> None:
    a, b = servers
    laptop, laptop_handle = a.login("alice")
    phone, phone_handle = b.login("alice")
    for server in (a, b):
        for sid in (laptop, phone):
            assert server.call("GET", "/api/me", sid).json()["user"] == "alice"

    listed = b.call("GET", "/api/sessions", phone).json()["sessions"]
    assert {s["handle"]: s["current"] for s in listed} == {laptop_handle: False, phone_handle: True}
    assert b.call("DELETE", f"/api/sessions/{laptop_handle}", phone).status_code == 204

    # The laptop's very next request fails, on the server that did not revoke it too.
    on_a = a.call("GET", "/api/me", laptop)
    assert on_a.status_code == 401
    assert on_a.json() == {"error": "session_invalid", "reason": "revoked"}
    on_b = b.call("GET", "/api/me", laptop)
    assert on_b.status_code == 401
    assert on_b.json() == {"error": "session_invalid", "reason": "revoked"}
    assert a.call("GET", "/api/me", phone).json()["user"] == "alice"

    revoked = [e for e in b.events() if e["event"] == "session_expired:revoked"]
    assert [(e["user"], e["session"], e["reason"]) for e in revoked] == [("alice", laptop_handle, "revoked")]
    invalid = [e for e in a.events() if e["event"] == "session_use_after_expire"]
    assert [e["reason"] for e in invalid] == ["revoked"]
    for server in (a, b):
        log = server.audit_log.read_text()
        assert laptop not in log
        assert phone not in log


def test_revoking_another_users_session_by_handle_is_refused_across_servers(servers: tuple[Server, Server]) -> None:
    a, b = servers
    mallory, _ = a.login("mallory")
    bob, bob_handle = b.login("bob")

    refused = a.call("DELETE", f"/api/sessions/{bob_handle}", mallory)

    assert refused.status_code == 404
    for server in (a, b):
        assert server.call("GET", "/api/me", bob).json()["user"] == "bob"
    assert all(e["event"] != "session_expired:revoked" for server in (a, b) for e in server.events())

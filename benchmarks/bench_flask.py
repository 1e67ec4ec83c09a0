"""Flask on sessionward against the same Flask app on Flask-Session, both on one Redis.

::

    .venv/bin/python benchmarks/bench_flask.py [--duration 5] [--rounds 2]

Both apps (``benchmarks/peers/peer_flask_session.py`` and ``peer_flask_sessionward.py``:
the same endpoints, ``GET /read`` and ``POST /incr`` on a logged-in session) run under
gunicorn with one sync worker pinned to core 0; a private ``redis-server`` and ``wrk``
share core 1. Runs alternate A B B A per endpoint so drift cancels; the medians and the
ratio sessionward / Flask-Session are printed. Needs ``wrk`` (``apt-get install -y wrk``),
``redis-server`` and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PEERS = Path(__file__).resolve().parent / "peers"
APPS = {"flask-session": "peer_flask_session", "flask+sessionward": "peer_flask_sessionward"}
ENDPOINTS = (("GET", "/read"), ("POST", "/incr"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


@contextmanager
def running(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def log_in(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/login")
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie") or ""
    connection.close()
    if response.status != 200 or not cookie:
        raise SystemExit(f"login on port {port} failed: {response.status}")
    return cookie.split(";", 1)[0]


def wrk(port: int, method: str, path: str, cookie: str, duration_s: int) -> float:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115 - wrk reads it by name
    script.write(f'wrk.method = "{method}"\nwrk.headers["Cookie"] = "{cookie}"\n')
    script.close()
    try:
        output = subprocess.run(
            [
                "taskset",
                "-c",
                "1",
                "wrk",
                "-t1",
                "-c8",
                f"-d{duration_s}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output:
        raise SystemExit(f"port {port} {method} {path} answered errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{output}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds per endpoint")
    arguments = parser.parse_args()
    for program in ("wrk", "redis-server", "taskset"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing (apt-get install -y {program.replace('-server', '')})")
    redis_port = free_port()
    redis_cmd = ["taskset", "-c", "1", "redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"]
    with running(redis_cmd, redis_port):
        env = os.environ | {"BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        ports = {name: free_port() for name in APPS}
        with (
            running(gunicorn(APPS["flask-session"], ports["flask-session"]), ports["flask-session"], env),
            running(gunicorn(APPS["flask+sessionward"], ports["flask+sessionward"]), ports["flask+sessionward"], env),
        ):
            cookies = {name: log_in(port) for name, port in ports.items()}
            order = list(APPS)
            for method, path in ENDPOINTS:
                samples: dict[str, list[float]] = {name: [] for name in APPS}
                for _ in range(arguments.rounds):
                    for name in (*order, *reversed(order)):
                        samples[name].append(wrk(ports[name], method, path, cookies[name], arguments.duration))
                medians = {name: statistics.median(values) for name, values in samples.items()}
                ratio = medians["flask+sessionward"] / medians["flask-session"]
                print(
                    f"{method} {path}: Flask-Session {medians['flask-session']:.0f} req/s, "
                    f"sessionward {medians['flask+sessionward']:.0f} req/s, ratio {ratio:.2f}"
                )
    return 0


def gunicorn(module: str, port: int) -> list[str]:
    return [
        "taskset",
        "-c",
        "0",
        sys.executable,
        "-m",
        "gunicorn",
        f"{module}:app",
        "--chdir",
        str(PEERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]


if __name__ == "__main__":
    sys.exit(main())

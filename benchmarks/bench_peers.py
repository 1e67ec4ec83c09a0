"""sessionward against its peers over real HTTP: requests/s, p50/p99 and ratios to a bare app.

One command (issue 8's setup)::

    .venv/bin/python benchmarks/bench_peers.py [--duration 5] [--rounds 2] [--only NAME ...]

What it does:

1. Starts a private ``redis-server`` on a free port, pinned to core 1 with the load
   generator; every server under test is pinned to core 0 (``taskset``).
2. Starts each peer on its own port: a bare Starlette app (the baseline), starsessions
   with its Redis store, sessionward's ASGI middleware with its Redis store (all under
   plain uvicorn with uvloop and httptools), express-session + connect-redis on Node, and
   Flask-Session (and Flask + sessionward, when ``sessionward.flask`` exists) under
   gunicorn. They share the endpoints ``POST /login``, ``GET /read`` (the counter, 401
   without a session) and ``POST /incr``.
3. Checks each peer's answers (401 without a session, the counter after login and two
   increments) before timing it; a peer that answers wrongly is reported, not timed.
4. Logs 200 sessions in per peer and drives ``wrk`` (32 connections) with a Lua script
   that rotates those cookies across requests; runs alternate (A B … B A) so drift
   cancels, and the medians are printed with ratios to the bare app measured in the
   same run, plus Redis commands per request (from Redis' own counters).

It installs nothing: a missing program or package is named with the command that
installs it, and the peers that need it are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / "peers"
NODE_DIR = PEERS_DIR / "node"
LUA_SCRIPT = PEERS_DIR / "rotate_cookies.lua"
SERVER_CORE = "0"
CLIENT_CORE = "1"
ENDPOINTS = (("read", "GET", "/read"), ("incr", "POST", "/incr"))
PYTHON = sys.executable


@dataclass
class Peer:
    """A server under test.

    Attributes:
        name: Short name in the table.
        command: The server's command line (``{port}`` is replaced).
        needs: Python modules or programs it needs, with how to get them.
        cwd: Working directory.
        sessions: Whether it has sessions (the bare app has none).
        port: Its port, once chosen.
        cookies: One ``name=value`` per logged-in session.
        problem: Why it is not timed, if it is not.
        trips: Redis commands sent over the network per request, by endpoint.
    """

    name: str
    command: list[str]
    needs: dict[str, str]
    cwd: Path = PEERS_DIR
    sessions: bool = True
    port: int = 0
    cookies: list[str] = field(default_factory=list)
    problem: str | None = None
    trips: dict[str, float] = field(default_factory=dict)
    pid: int = 0


@dataclass
class Sample:
    """One ``wrk`` run."""

    rps: float
    p50_ms: float
    p99_ms: float
    redis_per_request: float
    errors: int
    cpu_us: float
    """Server CPU time (all its processes) per request, µs: the noise-robust view of cost."""


def uvicorn(module: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        f"{module}:app",
        "--app-dir",
        str(PEERS_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def gunicorn(module: str) -> list[str]:
    # One core: two processes hide each other's Redis waits; threads keep connections alive.
    return [
        PYTHON,
        "-m",
        "gunicorn",
        f"{module}:app",
        "--chdir",
        str(PEERS_DIR),
        "--bind",
        "127.0.0.1:{port}",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "16",
        "--log-level",
        "warning",
    ]


BENCH_EXTRA = ".venv/bin/pip install -e '.[bench]'"
ASGI_NEEDS = {
    "uvicorn": BENCH_EXTRA,
    "uvloop": BENCH_EXTRA,
    "httptools": BENCH_EXTRA,
    "starlette": BENCH_EXTRA,
}
WSGI_NEEDS = {"flask": BENCH_EXTRA, "gunicorn": BENCH_EXTRA}


def all_peers() -> list[Peer]:
    """Return every peer, the bare baseline first."""
    return [
        Peer("bare", uvicorn("peer_bare"), ASGI_NEEDS, sessions=False),
        Peer("starsessions", uvicorn("peer_starsessions"), {**ASGI_NEEDS, "starsessions": BENCH_EXTRA}),
        Peer("sessionward", uvicorn("peer_sessionward"), {**ASGI_NEEDS, "redis": BENCH_EXTRA}),
        Peer(
            "express",
            ["node", "server.js"],
            {"node": "apt-get install -y nodejs npm", "node_modules": "cd benchmarks/peers/node && npm ci"},
            cwd=NODE_DIR,
        ),
        Peer("flask-session", gunicorn("peer_flask_session"), {**WSGI_NEEDS, "flask_session": BENCH_EXTRA}),
        Peer(
            "flask+sessionward",
            gunicorn("peer_flask_sessionward"),
            {**WSGI_NEEDS, "sessionward.flask": "not written yet (the Flask integration is in progress)"},
        ),
    ]


def missing(needs: dict[str, str]) -> list[str]:
    """Return "what (how to get it)" for each unmet need."""
    gaps = []
    for what, how in needs.items():
        if what == "node":
            present = shutil.which("node") is not None
        elif what == "node_modules":
            present = (NODE_DIR / "node_modules" / "express-session").is_dir()
        else:
            try:
                present = importlib.util.find_spec(what) is not None
            except ModuleNotFoundError:
                present = False
        if not present:
            gaps.append(f"{what} ({how})")
    return gaps


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def started(
    command: list[str], *, cwd: Path, env: dict[str, str], core: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` pinned to ``core`` for the span of the block; stop it afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(["taskset", "-c", core, *command], cwd=cwd, env=env, stdout=output, stderr=output)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- talking to the servers -------------------------------------------------------------------


def request(port: int, method: str, path: str, cookie: str | None = None) -> tuple[int, dict[str, object], str | None]:
    """Send one request; return the status, the JSON body and the session cookie set, if any."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        connection.request(method, path, body=b"" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        body = response.read()
        set_cookies = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
        decoded = json.loads(body) if body else {}
        return response.status, decoded if isinstance(decoded, dict) else {}, (set_cookies[-1] if set_cookies else None)
    finally:
        connection.close()


def check(peer: Peer) -> str | None:
    """Check the peer's answers; return what is wrong, or ``None``."""
    port = peer.port
    if not peer.sessions:
        status, body, _ = request(port, "GET", "/read")
        return None if status == 200 and body == {"n": 0} else f"bare /read answered {status} {body}"
    status, _, _ = request(port, "GET", "/read")
    if status != 401:
        return f"/read without a session answered {status}, not 401"
    status, _, cookie = request(port, "POST", "/login")
    if status != 200 or cookie is None:
        return f"/login answered {status} with cookie {cookie!r}"
    expected = [("GET", "/read", 0), ("POST", "/incr", 1), ("POST", "/incr", 2), ("GET", "/read", 2)]
    for method, path, n in expected:
        status, body, renewed = request(port, method, path, cookie)
        if status != 200 or body.get("n") != n:
            return f"{method} {path} answered {status} {body}, expected n={n}"
        cookie = renewed or cookie
    return None


def log_in(peer: Peer, count: int) -> list[str]:
    if not peer.sessions:
        return ["none=0"]
    cookies = []
    for _ in range(count):
        status, _, cookie = request(peer.port, "POST", "/login")
        if status != 200 or cookie is None:
            raise RuntimeError(f"{peer.name}: /login answered {status}")
        cookies.append(cookie)
    return cookies


class RedisCounter:
    """Reads Redis' count of processed commands (each read costs one command itself)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def commands(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as link:
            link.sendall(b"INFO stats\r\n")
            data = b""
            while b"total_commands_processed" not in data or not data.endswith(b"\r\n"):
                chunk = link.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.decode().splitlines():
            if line.startswith("total_commands_processed:"):
                return int(line.split(":", 1)[1])
        raise RuntimeError("Redis INFO has no total_commands_processed")


class RedisMonitor:
    """Counts the commands clients send to Redis, leaving out those a Lua script runs.

    Redis' own counters include the commands inside scripts; ``MONITOR`` marks those
    with ``lua``, so what remains is what travelled over the network: the round trips a
    request waits for (a pipelined command still counts as one).
    """

    def __init__(self, port: int) -> None:
        self.link = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.link.sendall(b"MONITOR\r\n")
        if not self.link.recv(5).startswith(b"+OK"):
            raise RuntimeError("Redis refused MONITOR")
        self.data = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.link.recv(65536):
                self.data += chunk

    def stop(self) -> int:
        """Stop listening; return how many network commands were seen."""
        time.sleep(0.3)  # let the last replies' echoes arrive
        with contextlib.suppress(OSError):
            self.link.shutdown(socket.SHUT_RDWR)
        self.link.close()
        self.reader.join(timeout=5)
        lines = bytes(self.data).split(b"\r\n")
        return sum(1 for line in lines if line.startswith(b"+") and b" lua] " not in line and b"] " in line)


def round_trips(peer: Peer, redis_port: int, requests: int = 50) -> dict[str, float]:
    """Return the Redis commands sent over the network per request, for each endpoint."""
    trips = {}
    for label, method, path in ENDPOINTS:
        monitor = RedisMonitor(redis_port)
        for i in range(requests):
            status, _, _ = request(peer.port, method, path, peer.cookies[i % len(peer.cookies)])
            if status != 200:
                raise RuntimeError(f"{peer.name}: {method} {path} answered {status} while counting round trips")
        trips[label] = monitor.stop() / requests
    return trips


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) of process ``pid`` and all its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(member, 0.0) for member in tree)


def run_wrk(
    peer: Peer, method: str, path: str, cookie_file: Path, duration_s: int, connections: int, redis: RedisCounter
) -> Sample:
    before = redis.commands()
    cpu_before = cpu_seconds(peer.pid)
    result = subprocess.run(
        [
            "taskset",
            "-c",
            CLIENT_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA_SCRIPT),
            f"http://127.0.0.1:{peer.port}{path}",
            "--",
            str(cookie_file),
            method,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed on {peer.name} {path}: {result.stderr.strip() or result.stdout.strip()}")
    cpu = cpu_seconds(peer.pid) - cpu_before
    redis_commands = redis.commands() - before - 1
    line = next(text for text in reversed(result.stdout.splitlines()) if text.startswith("{"))
    figures = json.loads(line)
    requests = max(1, int(figures["requests"]))
    return Sample(
        rps=figures["requests"] / figures["seconds"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        redis_per_request=redis_commands / requests,
        errors=int(figures["status_errors"]) + int(figures["socket_errors"]),
        cpu_us=cpu / requests * 1e6,
    )


# -- the run ----------------------------------------------------------------------------------


def prerequisites() -> list[str]:
    """Return what the harness itself cannot run without."""
    gaps = []
    for program, how in (
        ("wrk", "apt-get install -y wrk"),
        ("redis-server", "apt-get install -y redis-server"),
        ("taskset", "apt-get install -y util-linux"),
    ):
        if shutil.which(program) is None:
            gaps.append(f"{program} ({how})")
    if (os.cpu_count() or 1) < 2:
        gaps.append("a second CPU core (server on core 0, load generator and Redis on core 1)")
    return gaps


def measure(
    peers: list[Peer], arguments: argparse.Namespace, redis: RedisCounter, folder: Path
) -> dict[tuple[str, str], list[Sample]]:
    files = {}
    for peer in peers:
        files[peer.name] = folder / f"{peer.name}.cookies"
        files[peer.name].write_text("\n".join(peer.cookies) + "\n")
    for peer in peers:  # warm up: first connections, JIT (Node), Redis connection pools
        run_wrk(peer, "GET", "/read", files[peer.name], 1, arguments.connections, redis)
    samples: dict[tuple[str, str], list[Sample]] = {}
    for round_number in range(arguments.rounds):
        order = peers if round_number % 2 == 0 else list(reversed(peers))
        for peer in order:
            for label, method, path in ENDPOINTS:
                sample = run_wrk(peer, method, path, files[peer.name], arguments.duration, arguments.connections, redis)
                samples.setdefault((peer.name, label), []).append(sample)
                print(
                    f"  round {round_number + 1} {peer.name:<18} {label:<5} {sample.rps:>9,.0f} req/s  "
                    f"p99 {sample.p99_ms:6.2f} ms  cpu {sample.cpu_us:6.1f} µs/req  "
                    f"redis {sample.redis_per_request:.2f}/req",
                    file=sys.stderr,
                )
    return samples


def report(peers: list[Peer], samples: dict[tuple[str, str], list[Sample]]) -> None:
    """Print the table of medians and ratios to the bare app, and the targets of issue 8."""

    def median(name: str, label: str, attribute: str) -> float:
        return float(statistics.median(getattr(s, attribute) for s in samples[(name, label)]))

    print()
    print(
        f"{'peer':<18} {'endpoint':<8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>7} {'p99/bare':>8} "
        f"{'trips/req':>9} {'ops/req':>7} {'cpu µs':>7} {'cpu ratio':>9} {'errors':>6}"
    )
    for label, _, _ in ENDPOINTS:
        for peer in peers:
            if (peer.name, label) not in samples:
                continue
            rps = median(peer.name, label, "rps")
            p99 = median(peer.name, label, "p99_ms")
            ratio = rps / median("bare", label, "rps")
            p99_ratio = p99 / median("bare", label, "p99_ms")
            errors = sum(s.errors for s in samples[(peer.name, label)])
            cpu = median(peer.name, label, "cpu_us")
            cpu_ratio = median("bare", label, "cpu_us") / cpu if cpu else 0.0
            print(
                f"{peer.name:<18} {label:<8} {rps:>9,.0f} {median(peer.name, label, 'p50_ms'):>7.2f} {p99:>7.2f} "
                f"{ratio:>7.1%} {p99_ratio:>7.2f}x {peer.trips.get(label, 0.0):>9.2f} "
                f"{median(peer.name, label, 'redis_per_request'):>7.2f} {cpu:>7.1f} {cpu_ratio:>9.1%} {errors:>6}"
            )
    for peer in peers:
        if peer.problem:
            print(f"{peer.name}: not timed: {peer.problem}")
    if ("sessionward", "read") in samples:
        read = median("sessionward", "read", "rps") / median("bare", "read", "rps")
        incr = median("sessionward", "incr", "rps") / median("bare", "incr", "rps")
        p99 = max(
            median("sessionward", label, "p99_ms") / median("bare", label, "p99_ms") for label in ("read", "incr")
        )
        peer = next(p for p in peers if p.name == "sessionward")
        trips = (peer.trips["read"], peer.trips["incr"])
        print()
        print("issue 8 targets for sessionward:")
        print(f"  /read >= 50% of bare: {read:.1%} {'met' if read >= 0.5 else 'MISSED'}")
        print(f"  /incr >= 40% of bare: {incr:.1%} {'met' if incr >= 0.4 else 'MISSED'}")
        print(f"  p99 within 2x of bare: {p99:.2f}x {'met' if p99 <= 2 else 'MISSED'}")
        met = trips[0] <= 1.05 and trips[1] <= 2.05
        print(f"  Redis round trips per read / write: {trips[0]:.2f} / {trips[1]:.2f} {'met' if met else 'MISSED'}")
    print()
    print("trips/req: Redis commands sent over the network per request (counted with MONITOR, untimed);")
    print("ops/req: every command Redis ran per request, those inside Lua scripts included (timed runs);")
    print("cpu µs: the server's CPU time per request; cpu ratio: the bare app's over the peer's (what the")
    print("req/s ratio would be if the server core were never idle: the noise-robust view on a shared machine).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds, A B … then … B A (default 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--only", action="append", help="time only these peers (bare is always timed)")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="every Python peer calls gc.freeze() once built (peers/tuning.py), bare included",
    )
    arguments = parser.parse_args()

    gaps = prerequisites()
    if gaps:
        print("cannot run the benchmark; missing: " + "; ".join(gaps), file=sys.stderr)
        return 2
    peers = [p for p in all_peers() if p.name == "bare" or not arguments.only or p.name in arguments.only]
    for peer in peers:
        gaps = missing(peer.needs)
        if gaps:
            peer.problem = "missing " + ", ".join(gaps)
            print(f"skipping {peer.name}: {peer.problem}", file=sys.stderr)
    if any(p.name == "bare" and p.problem for p in peers):
        return 2
    with tempfile.TemporaryDirectory(prefix="sessionward-bench-") as temp, contextlib.ExitStack() as stack:
        folder = Path(temp)
        redis_port = free_port()
        redis_command = [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        redis_process = stack.enter_context(
            started(redis_command, cwd=folder, env=dict(os.environ), core=CLIENT_CORE, log=folder / "redis.log")
        )
        if not wait_for_port(redis_port, redis_process):
            print("redis-server did not start", file=sys.stderr)
            return 2
        env = {**os.environ, "BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        env["BENCH_GC_FREEZE"] = "1" if arguments.gc_freeze else "0"
        runnable = [p for p in peers if p.problem is None]
        for peer in runnable:
            peer.port = free_port()
            command = [part.replace("{port}", str(peer.port)) for part in peer.command]
            process = stack.enter_context(
                started(
                    command,
                    cwd=peer.cwd,
                    env={**env, "PORT": str(peer.port)},
                    core=SERVER_CORE,
                    log=folder / f"{peer.name}.log",
                )
            )
            peer.pid = process.pid  # taskset execs the server: same process
            if not wait_for_port(peer.port, process):
                peer.problem = "did not start: " + (folder / f"{peer.name}.log").read_text()[-500:]
        for peer in runnable:
            if peer.problem is None:
                peer.problem = check(peer)
            if peer.problem is None:
                peer.cookies = log_in(peer, arguments.sessions)
                if peer.sessions:
                    peer.trips = round_trips(peer, redis_port)
            else:
                print(f"not timing {peer.name}: {peer.problem}", file=sys.stderr)
        timed = [p for p in runnable if p.problem is None]
        if not any(p.name == "bare" for p in timed):
            print("the bare app failed; no ratios to report", file=sys.stderr)
            return 1
        samples = measure(timed, arguments, RedisCounter(redis_port), folder)
    mode = "gc.freeze() in every Python peer" if arguments.gc_freeze else "default GC (no peer tuned)"
    print(f"\n{arguments.rounds} x {arguments.duration} s per peer and endpoint; {mode}")
    report(peers, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())

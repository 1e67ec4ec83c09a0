"""``sessionward audit`` against the demo, many times in a row: how many runs fail, and how long one takes.

One command::

    .venv/bin/python benchmarks/bench_audit_demo.py [--runs 50] [--login-via auto|json|form]

Starts ``sessionward demo`` as a user would (a child process, a fresh SQLite file, a free
port), then audits it ``--runs`` times with the default options, alternating the demo
users (alice, bob). A correct site must never fail: every statistical check is held to a
false-alarm rate of 1e-6 per run, so a failing run here is a bug (in the demo or the
auditor), not bad luck. Prints each failing run's failed items, the count of runs with a
failure, and the median and slowest run times. Exit status 1 when a run failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sessionward.audit.login import LoginVia
from sessionward.audit.site import AuditOptions, SiteAuditor, run_audit

USERS = {"alice": "alice-demo-pass", "bob": "bob-demo-pass"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_demo(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SESSIONWARD_STORE": f"sqlite:///{folder / 'demo.db'}"}
    with (folder / "demo.log").open("wb") as log:  # a file: the demo logs every request
        process = subprocess.Popen(
            [sys.executable, "-c", "from sessionward.cli import main; main()", "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/api/session/status", timeout=1):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"the demo did not start; see {folder / 'demo.log'}") from None
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--login-via", choices=[v.value for v in LoginVia], default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_demo(Path(folder))
        try:
            failed_runs = 0
            seconds = []
            for run in range(args.runs):
                user = list(USERS)[run % len(USERS)]
                options = AuditOptions(url=url, username=user, password=USERS[user], login_via=LoginVia(args.login_via))
                started = time.monotonic()
                report = run_audit(SiteAuditor(options))
                seconds.append(time.monotonic() - started)
                failed = [f"{c.item}: {c.detail}" for c in report.checks if c.status.value == "fail"]
                if failed:
                    failed_runs += 1
                    print(f"run {run + 1} ({user}) failed: " + "; ".join(failed))
            print(
                f"{args.runs} audits of the demo ({args.login_via} login): {failed_runs} with a failure; "
                f"median {statistics.median(seconds):.2f} s, slowest {max(seconds):.2f} s per audit"
            )
            return 1 if failed_runs else 0
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    sys.exit(main())

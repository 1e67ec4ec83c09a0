"""Flask on sessionward against Flask-Session and against bare Flask, over real HTTP.

::

    .venv/bin/python benchmarks/bench_flask.py [--duration 5] [--rounds 2] [--gc-freeze]

The harness of ``bench_peers.py`` (same options) with the Flask peers only: a bare Flask
app as the baseline (``peers/peer_flask_bare.py``), Flask-Session
(``peers/peer_flask_session.py``) and Flask + sessionward
(``peers/peer_flask_sessionward.py``), each under gunicorn (2 gthread workers x 16
threads) pinned to core 0; a private ``redis-server`` and ``wrk`` (32 connections rotating
200 logged-in sessions) share core 1. Runs alternate; the table shows medians, the share
of bare Flask, Redis round trips per request (``MONITOR``) and server CPU per request,
followed by the ratio sessionward / Flask-Session and the targets. Needs ``wrk``
(``apt-get install -y wrk``), ``redis-server`` and the ``bench`` extra.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_peers
from bench_peers import WSGI_NEEDS, Peer, Sample, gunicorn


def flask_peers() -> list[Peer]:
    """Return the Flask peers, the bare Flask baseline first (named ``bare`` for the ratios)."""
    return [
        Peer("bare", gunicorn("peer_flask_bare"), WSGI_NEEDS, sessions=False),
        Peer(
            "flask-session",
            gunicorn("peer_flask_session"),
            {**WSGI_NEEDS, "flask_session": "pip install -e '.[bench]'"},
        ),
        Peer("flask+sessionward", gunicorn("peer_flask_sessionward"), WSGI_NEEDS),
    ]


def targets(peers: list[Peer], samples: dict[tuple[str, str], list[Sample]]) -> None:
    """Print sessionward against Flask-Session and bare Flask, with the targets."""

    def median(name: str, label: str, attribute: str = "rps") -> float:
        return float(statistics.median(getattr(s, attribute) for s in samples[(name, label)]))

    if not all((name, "read") in samples for name in ("bare", "flask-session", "flask+sessionward")):
        return
    ward = next(p for p in peers if p.name == "flask+sessionward")
    print("Flask + sessionward:")
    for label, minimum in (("read", 0.75), ("incr", None)):
        against_peer = median("flask+sessionward", label) / median("flask-session", label)
        cpu_peer = median("flask-session", label, "cpu_us") / median("flask+sessionward", label, "cpu_us")
        share = median("flask+sessionward", label) / median("bare", label)
        line = (
            f"  /{label}: {against_peer:.2f}x Flask-Session (target 1.5x; by CPU {cpu_peer:.2f}x), "
            f"{share:.1%} of bare Flask"
        )
        if minimum is not None:
            line += f" (target {minimum:.0%})"
        print(line)
    print(f"  Redis round trips per read / write: {ward.trips.get('read', 0):.2f} / {ward.trips.get('incr', 0):.2f}")


def main() -> int:
    bench_peers.all_peers = flask_peers
    original_report = bench_peers.report

    def report(peers: list[Peer], samples: dict[tuple[str, str], list[Sample]]) -> None:
        original_report(peers, samples)
        print()
        targets(peers, samples)

    bench_peers.report = report
    return bench_peers.main()


if __name__ == "__main__":
    sys.exit(main())

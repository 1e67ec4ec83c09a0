"""The scale and memory benchmarks, each run in its smallest mode, so that none of them rots.

Each harness runs as its command would (a subprocess, from ``benchmarks/``) with tiny
sizes and short samples, against the private servers it starts itself (``redis-server``)
or the local PostgreSQL; the test checks that it exits cleanly and prints every table of
its report. The figures themselves are not judged here: on a shared machine they say
nothing in a few hundred milliseconds.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.helpers import service_missing

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TIMEOUT_S = 120


def need_redis() -> None:
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not on the PATH")


def need_postgres() -> None:
    import asyncpg

    async def ping() -> None:
        connection = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=3)
        await connection.close()

    try:
        asyncio.run(ping())
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        service_missing(f"PostgreSQL not reachable at {PG_SERVER}: {error}")


def run(script: str, *arguments: str) -> str:
    """Run ``benchmarks/<script>``; return what it printed, failing on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, script, *arguments],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.redis
def test_redis_memory_harness_prints_bytes_per_session_and_its_breakdown() -> None:
    need_redis()
    out = run("bench_redis_memory.py", "--quick", "--sessions", "2000", "--concurrency", "8", "--sample", "10")
    assert "Redis memory per session: 20 sessions" in out
    assert "logged in (target <= 700 bytes)" in out
    for key in ("session hash", "handle", "user index (by creation)", "user index (by deadline)", "keyspace"):
        assert f"  {key}" in out, key
    assert "2 sessions logged out (10 %)" in out
    assert "tombstone hash" in out
    assert "2 sessions renewed once (10 %)" in out
    assert "2 seals present" in out


@pytest.mark.redis
@pytest.mark.postgres
def test_scale_harness_prints_requests_users_trips_and_purge_tables() -> None:
    need_redis()
    need_postgres()
    out = run(
        "bench_scale.py",
        "--quick",
        "--sizes",
        "200,1000",
        "--purge",
        "1000",
        "--seconds",
        "0.1",
        "--rounds",
        "1",
        "--reps",
        "1",
        "--working-set",
        "5",
        "--postgres",
        PG_SERVER,
    )
    for store in ("redis", "postgresql"):
        assert f"{store}: /read and /incr with the store holding N sessions" in out
        assert f"{store}: one user's sessions" in out
        for size in (2, 10):
            for label in ("bare read", "read", "incr"):
                assert any(line.split()[:2] == [str(size), label.split()[0]] for line in out.splitlines()), (
                    store,
                    size,
                    label,
                )
    assert "store round trips per request" in out
    for store in ("redis", "postgresql", "sqlite"):
        assert f"  {store:<11} read" in out
        assert f"  {store:<11} incr" in out
    assert "sessions purge (the CLI" in out
    assert out.count("(removed 10 expired entries)") == 2


@pytest.mark.redis
@pytest.mark.postgres
def test_sql_store_harness_compares_each_store_with_redis_and_its_floor() -> None:
    need_redis()
    need_postgres()
    out = run("bench_sql_store.py", "--quick", "--sessions", "5", "--seconds", "0.1", "--postgres", PG_SERVER)
    assert "SQL stores against Redis and a bare primary-key lookup" in out
    rows = {tuple(line.split()[:2]) for line in out.splitlines() if line.startswith("  ")}
    expected = {("bare", "read"), ("redis", "read"), ("redis", "incr")}
    for store in ("postgresql", "sqlite"):
        expected |= {(store, "read"), (store, "incr"), ("floor", store)}
    assert expected <= rows

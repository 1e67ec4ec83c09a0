"""A short run of ``benchmarks/bench_anonymous.py``: the growth figures it reports, asserted.

The benchmark's core (:func:`measure`) drives the demo with new visitors over its pages
and a route that writes to the session; here with a few hundred requests on SQLite, from
one client and from forwarded clients: the pages that need no session leave the store
exactly as it was, and the writing route grows it by no more than the budget per client.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_anonymous.py"
REQUESTS = 300
BUDGET = 4


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_anonymous", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ips", [1, 20])
async def test_anonymous_pages_leave_the_store_unchanged_and_writes_stay_within_the_budget(
    bench: ModuleType, tmp_path: Path, ips: int
) -> None:
    database = tmp_path / "sessions.db"
    grown = await bench.measure(
        f"sqlite:///{database}", bench.sqlite_size(database), requests=REQUESTS, ips=ips, budget=BUDGET
    )
    by_page = {growth.page.path: growth for growth in grown}
    assert set(by_page) == {"/", "/login", "/api/session/status", "/api/login", bench.WRITING_PATH}
    for path, growth in by_page.items():
        assert growth.requests == REQUESTS // len(grown)
        if path == "/api/login":
            # Failed sign-ins make no session; login throttling counts them: one counter
            # for the account and its gate (past the threshold), one per client network
            # (a single client is the loopback address itself, counted per account only).
            networks = 0 if ips == 1 else ips
            assert (growth.sessions, growth.counters, growth.entries) == (0, networks + 2, networks + 2), path
        elif path != bench.WRITING_PATH:
            assert (growth.entries, growth.bytes, growth.sessions, growth.counters) == (0, 0, 0, 0), path
    writes = by_page[bench.WRITING_PATH]
    clients = min(ips, writes.requests)
    assert writes.sessions == min(writes.requests, BUDGET * clients)
    assert writes.counters == clients
    assert writes.entries == writes.sessions + writes.counters

"""A flood past the budget is visible: one warning per client and window, an event per request, a metric.

The warning names the client and points at the trusted-proxy setting (a site whose
clients all show the proxy's address shares one budget); it is written once per client
and window so that a flood does not flood the log too.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from sessionward import ManualClock
from sessionward.asgi.metrics import SessionMetrics
from sessionward.core.config import CreationBudget
from sessionward.stores.memory import MemoryStore
from support.helpers import make_app, plain_http_policy

BUDGET = 2


async def test_a_flood_is_logged_once_per_client_and_window_and_counted_in_metrics(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, manager = make_app(
        MemoryStore(), clock=clock, policy=plain_http_policy(creation_budget=CreationBudget(per_minute=BUDGET))
    )
    metrics = SessionMetrics()
    metrics.attach(manager)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))

    async def flood(count: int) -> None:
        for _ in range(count):
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as visitor:
                assert (await visitor.post("/set", params={"cart": "1"})).status_code == 200

    with caplog.at_level(logging.WARNING, logger="sessionward"):
        await flood(BUDGET + 5)
        clock.advance(60)
        await flood(BUDGET + 3)
    warnings = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert len(warnings) == 2
    assert "198.51.100.7" in warnings[0]
    assert "SESSIONWARD_TRUSTED_PROXIES" in warnings[0]
    exceeded = metrics.registry.get_sample_value("sessionward_session_budget_exceeded_total", {"reason": "skip"})
    assert exceeded == 8
    assert metrics.registry.get_sample_value("sessionward_sessions_created_total") == 2 * BUDGET

"""Prometheus metrics: lifecycle counters by reason, lazy store counts, store latency."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sessionward import ManualClock, TimeoutPolicy
from sessionward.asgi.metrics import MAX_REASONS, SessionMetrics
from sessionward.core.errors import ConfigError, StoreUnavailableError
from sessionward.core.events import EventName, SessionEvent
from sessionward.io.manager import SessionManager
from sessionward.stores.base import StoreStats
from sessionward.stores.memory import MemoryStore
from support.helpers import client_for, make_app, plain_http_policy


def sample(metrics: SessionMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class CountingStore(MemoryStore):
    """A memory store that counts ``stats`` calls and can be made to fail them."""

    def __init__(self) -> None:
        super().__init__()
        self.stats_calls = 0
        self.down = False

    async def stats(self, now: float) -> StoreStats:
        self.stats_calls += 1
        if self.down:
            raise StoreUnavailableError("down for the test")
        return await super().stats(now)


def build(clock: ManualClock, store: MemoryStore | None = None, **metrics_options: Any) -> tuple[Any, SessionMetrics]:
    policy = plain_http_policy(timeouts=TimeoutPolicy(idle_timeout_s=600, renewal_interval_s=0))
    app, manager = make_app(store or MemoryStore(), clock=clock, policy=policy)
    metrics = SessionMetrics(**metrics_options)
    metrics.attach(manager)
    return app, metrics


async def test_lifecycle_events_are_counted_by_reason(clock: ManualClock) -> None:
    app, metrics = build(clock)
    async with client_for(app) as client:
        await client.post("/set", params={"a": "1"})
        await client.post("/login")
        await client.post("/rotate")
        await client.post("/elevate")
        clock.advance(601)
        await client.get("/api/whoami")  # idle timeout: expired, then invalid
        client.cookies.set("sid", "B" * 43)
        await client.get("/api/whoami")  # unknown ID presented
        await client.request("TRACE", "/plain")
    assert sample(metrics, "sessionward_sessions_created_total") == 1
    assert sample(metrics, "sessionward_logins_total") == 1
    assert sample(metrics, "sessionward_sessions_rotated_total", reason="privilege_change") == 1
    assert sample(metrics, "sessionward_sessions_rotated_total", reason="elevation") == 1
    assert sample(metrics, "sessionward_sessions_elevated_total") == 1
    assert sample(metrics, "sessionward_sessions_expired_total", reason="idle_timeout") == 1
    assert sample(metrics, "sessionward_invalid_sessions_presented_total", reason="idle_timeout") == 1
    assert sample(metrics, "sessionward_invalid_sessions_presented_total", reason="unknown") == 1
    assert sample(metrics, "sessionward_firewall_refused_total", reason="method_not_allowed") == 1


def test_revocations_and_displacements_share_the_revoked_counter() -> None:
    metrics = SessionMetrics()
    for name, reason in [
        (EventName.REVOKED, "revoked"),
        (EventName.REVOKED, "password_changed"),
        (EventName.DISPLACED, "displaced"),
        (EventName.LOGOUT, "logged_out"),
        (EventName.STORE_UNAVAILABLE, "store_unavailable"),
        (EventName.CSRF_REFUSED, "cross_site"),
        (EventName.BINDING_MISMATCH, "user_agent"),
        (EventName.LOGIN_REFUSED, "max_sessions"),
    ]:
        metrics.observe_event(SessionEvent(name=name, at=0.0, reason=reason))
    for reason in ("revoked", "password_changed", "displaced"):
        assert sample(metrics, "sessionward_sessions_revoked_total", reason=reason) == 1
    assert sample(metrics, "sessionward_logouts_total") == 1
    assert sample(metrics, "sessionward_store_unavailable_total") == 1
    assert sample(metrics, "sessionward_csrf_refused_total", reason="cross_site") == 1
    assert sample(metrics, "sessionward_binding_mismatches_total", reason="user_agent") == 1
    assert sample(metrics, "sessionward_logins_refused_total", reason="max_sessions") == 1


async def test_store_latency_is_observed_for_every_store_call(clock: ManualClock) -> None:
    app, metrics = build(clock)
    async with client_for(app) as client:
        await client.post("/login")
        await client.get("/whoami")
    count = sample(metrics, "sessionward_store_latency_seconds_count", outcome="ok")
    assert count >= 2  # the login's establish and the load of the next request
    assert sample(metrics, "sessionward_store_latency_seconds_sum", outcome="ok") >= 0


async def test_store_timeouts_are_observed_as_such(clock: ManualClock) -> None:
    metrics = SessionMetrics()
    manager = SessionManager(MemoryStore(), clock=clock, store_timeout_s=0.001)
    metrics.attach(manager)

    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(StoreUnavailableError):
        await manager.call_store(hang)
    assert sample(metrics, "sessionward_store_latency_seconds_count", outcome="timeout") == 1


async def test_active_sessions_are_read_from_the_store_lazily(clock: ManualClock) -> None:
    store = CountingStore()
    app, metrics = build(clock, store, stats_max_age_s=3600)
    async with client_for(app) as alice, client_for(app) as bob:
        await alice.post("/login", params={"user": "alice"})
        await bob.post("/login", params={"user": "bob"})
        await bob.post("/set", params={"x": "1"})
    assert store.stats_calls == 0  # nothing is counted until someone scrapes
    await metrics.refresh()
    await metrics.refresh()  # fresh enough: the store is not asked again
    assert store.stats_calls == 1
    assert sample(metrics, "sessionward_sessions_active") == 2
    assert sample(metrics, "sessionward_sessions_authenticated") == 2
    assert sample(metrics, "sessionward_users_active") == 2
    await metrics.refresh(force=True)
    assert store.stats_calls == 2


async def test_failing_store_keeps_the_last_counts(clock: ManualClock) -> None:
    store = CountingStore()
    app, metrics = build(clock, store, stats_max_age_s=0)
    async with client_for(app) as client:
        await client.post("/login")
    await metrics.refresh()
    store.down = True
    await metrics.refresh()
    assert sample(metrics, "sessionward_sessions_active") == 1
    assert sample(metrics, "sessionward_store_latency_seconds_count", outcome="error") == 1


async def test_asgi_endpoint_serves_the_exposition_format(clock: ManualClock) -> None:
    app, metrics = build(clock, stats_max_age_s=0)
    async with client_for(app) as client:
        await client.post("/login")
    endpoint = metrics.asgi_app()
    transport = httpx.ASGITransport(app=endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as scraper:
        response = await scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["sessionward_sessions_active"].samples[0].value == 1
    assert "sessionward_logins" in families


def test_registry_and_namespace_are_configurable() -> None:
    registry = CollectorRegistry()
    metrics = SessionMetrics(registry, namespace="shop")
    metrics.observe_event(SessionEvent(name=EventName.CREATED, at=0.0))
    assert registry.get_sample_value("shop_sessions_created_total") == 1
    SessionMetrics()  # a second private registry: no duplicate-registration error


async def test_broken_metrics_hook_never_breaks_a_store_call(clock: ManualClock) -> None:
    manager = SessionManager(MemoryStore(), clock=clock)

    def broken(seconds: float, outcome: str) -> None:
        raise RuntimeError("hook down")

    manager.store_observers.append(broken)

    async def ok() -> int:
        return 7

    assert await manager.call_store(ok) == 7


def test_one_argument_registers_on_the_default_registry() -> None:
    metrics = SessionMetrics(default_registry=True, namespace="default_reg_test")
    try:
        metrics.observe_event(SessionEvent(name=EventName.CREATED, at=0.0))
        assert REGISTRY.get_sample_value("default_reg_test_sessions_created_total") == 1
        assert "default_reg_test_sessions_created_total" in generate_latest(REGISTRY).decode()
    finally:
        metrics.unregister()
    assert REGISTRY.get_sample_value("default_reg_test_sessions_created_total") is None


def test_a_second_set_of_metrics_on_one_registry_and_namespace_is_refused_naming_the_setting() -> None:
    registry = CollectorRegistry()
    SessionMetrics(registry)
    with pytest.raises(ConfigError, match="namespace: 'sessionward' is already registered"):
        SessionMetrics(registry)
    with pytest.raises(ConfigError, match="default_registry"):
        SessionMetrics(registry, default_registry=True)


async def test_metric_names_follow_prometheus_conventions(clock: ManualClock) -> None:
    app, metrics = build(clock, stats_max_age_s=0)
    async with client_for(app) as client:
        await client.post("/login")
    for name in EventName:
        metrics.observe_event(SessionEvent(name=name, at=0.0, reason="x"))
    await metrics.refresh()
    for family in text_string_to_metric_families(metrics.render().decode()):
        assert family.name.startswith("sessionward_"), family.name
        for sample_ in family.samples:
            if family.type == "counter":
                assert sample_.name.endswith(("_total", "_created")), sample_.name
            if family.type == "histogram":
                assert family.name.endswith("_seconds"), family.name


def _series(metrics: SessionMetrics) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [
        (sample_.name, tuple(sorted(sample_.labels.items())))
        for family in metrics.registry.collect()
        for sample_ in family.samples
    ]


async def test_fuzzed_paths_users_and_reasons_keep_the_number_of_series_bounded(clock: ManualClock) -> None:
    app, metrics = build(clock)
    fuzz = random.Random(17)

    def token() -> str:
        return "".join(fuzz.choice("abcXYZ09/_-.%\u2028\n\"'") for _ in range(fuzz.randint(1, 90)))

    users, paths = [], []
    async with client_for(app) as client:
        for _ in range(60):
            users.append(f"user{fuzz.randrange(10**9)}")
            paths.append(f"/p{fuzz.randrange(10**9)}")
            await client.post("/login", params={"user": users[-1]})
            await client.get(paths[-1])
            await client.request("TRACE", paths[-1])  # refused by the firewall
            forged = "".join(fuzz.choice(string.ascii_letters) for _ in range(fuzz.randint(1, 60)))
            await client.get("/api/whoami", headers={"cookie": f"sid={forged}"})
    for _ in range(40):
        for name in EventName:
            metrics.observe_event(
                SessionEvent(name=name, at=0.0, reason=token(), user=token(), path=token(), handle=token())
            )
    first = len(_series(metrics))
    for _ in range(40):  # as much again: nothing new to count
        for name in EventName:
            metrics.observe_event(SessionEvent(name=name, at=0.0, reason=token(), user=token(), path=token()))
    series = _series(metrics)
    assert len(series) == first
    labelled = {series_name for series_name, labels in series if labels and labels[0][0] == "reason"}
    for metric in labelled:
        reasons = {labels for series_name, labels in series if series_name == metric}
        assert len(reasons) <= MAX_REASONS + 1, metric
    exposition = metrics.render().decode()
    assert not any(user in exposition for user in users)
    assert not any(path in exposition for path in paths)

"""Litestar's own session API on sessionward: request.session, set_session, clear_session, the dependency."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.exceptions import ImproperlyConfiguredException
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.testing import AsyncTestClient
from litestar_support import client, cookie, make_app, sid_of

from sessionward import ManualClock
from sessionward.core.errors import ConfigError
from sessionward.core.ids import storage_key
from sessionward.core.records import SessionRecord, Tombstone, Update
from sessionward.litestar import RequestSession, SessionwardConfig, SessionwardPlugin
from sessionward.stores.memory import MemoryStore
from support.helpers import plain_http_policy


async def test_request_session_writes_reach_the_store_and_read_back(clock: ManualClock) -> None:
    store = MemoryStore()
    app, _ = make_app(store, clock=clock)
    async with client(app) as browser:
        first = await browser.post("/set", params={"theme": "dark"})
        sid = sid_of(first)
        assert sid
        assert "HttpOnly" in first.headers["set-cookie"]
        browser.cookies.clear()
        again = await browser.get("/whoami", headers=cookie(sid))
    assert again.json() == {"user": None, "data": {"theme": "dark"}}
    record = await store.load(storage_key(sid), clock())
    assert isinstance(record, SessionRecord)
    assert record.data == {"theme": "dark"}


async def test_a_request_that_does_not_touch_the_session_sets_no_cookie(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        response = await browser.get("/whoami")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_set_session_replaces_the_data_and_keeps_the_login(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        await browser.post("/set", params={"old": "1", "kept": "x"}, headers=cookie(sid))
        replaced = await browser.post("/replace", json={"kept": "x", "new": [1, 2]}, headers=cookie(sid))
        assert replaced.json() == {"data": {"kept": "x", "new": [1, 2]}}
        assert sid_of(replaced) is None  # the same session: no new ID
        browser.cookies.clear()
        after = await browser.get("/whoami", headers=cookie(sid))
    assert after.json() == {"user": "alice", "data": {"kept": "x", "new": [1, 2]}}


async def test_set_session_with_unchanged_data_writes_nothing(clock: ManualClock) -> None:
    class CountingStore(MemoryStore):
        saves = 0

        async def save(self, key: str, update: Update) -> bool:
            CountingStore.saves += 1
            return await super().save(key, update)

    app, _ = make_app(CountingStore(), clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/replace", json={"a": 1, "b": {"c": [True]}}))
        for _ in range(3):
            await browser.post("/replace", json={"a": 1, "b": {"c": [True]}}, headers=cookie(sid))
        assert CountingStore.saves == 0
        await browser.post("/replace", json={"a": 1, "b": {"c": [1]}}, headers=cookie(sid))  # 1 is not True
        assert CountingStore.saves == 1


async def test_set_session_with_a_data_class_stores_its_json_object(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        response = await browser.post("/replace-with-model")
        sid = sid_of(response)
        browser.cookies.clear()
        after = await browser.get("/whoami", headers=cookie(sid))
    assert response.json() == {"data": {"theme": "dark", "size": 3}}
    assert after.json()["data"] == {"theme": "dark", "size": 3}


async def test_set_session_with_a_value_that_is_not_json_fails_in_the_handler_and_changes_nothing(
    clock: ManualClock,
) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/set", params={"before": "1"}))
        caught = await browser.post("/replace-with-bad-value", headers=cookie(sid))
        uncaught = await browser.post("/replace-with-bad-value", params={"caught": "false"}, headers=cookie(sid))
        browser.cookies.clear()
        after = await browser.get("/whoami", headers=cookie(sid))
    assert "'when'" in caught.json()["error"]
    assert caught.json()["data"] == {"before": "1"}  # all or nothing: "fresh" did not go in, "before" stayed
    assert uncaught.status_code == 500
    assert after.json()["data"] == {"before": "1"}


async def test_clear_session_ends_the_session_and_request_session_is_empty(clock: ManualClock) -> None:
    store = MemoryStore()
    app, _ = make_app(store, clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        assert sid
        cleared = await browser.post("/clear", headers=cookie(sid))
    assert cleared.json() == {"session_is_empty": True}
    assert sid_of(cleared) == ""  # the cookie is cleared
    assert isinstance(await store.load(storage_key(sid), clock()), Tombstone)  # ended, server-side


async def test_clear_then_set_session_starts_a_new_anonymous_session(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        old = sid_of(await browser.post("/login"))
        await browser.post("/set", params={"secret": "s"}, headers=cookie(old))
        response = await browser.post("/clear-then-set", headers=cookie(old))
        new = sid_of(response)
        assert new
        assert new != old
        browser.cookies.clear()
        fresh = await browser.get("/whoami", headers=cookie(new))
        stale = await browser.get("/whoami", headers=cookie(old))
    assert fresh.json() == {"user": None, "data": {"cart": ["pen"], "note": "after"}}
    assert stale.json() == {"user": None, "data": {}}


async def test_a_login_after_clear_session_takes_over_without_the_cleared_data(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        old = sid_of(await browser.post("/login"))
        await browser.post("/set", params={"secret": "s"}, headers=cookie(old))
        response = await browser.post("/clear-then-login", headers=cookie(old))
        new = sid_of(response)
        assert new
        assert new != old
        browser.cookies.clear()
        after = await browser.get("/whoami", headers=cookie(new))
    assert after.json() == {"user": "bob", "data": {}}


async def test_over_a_websocket_set_session_fails_loudly(clock: ManualClock) -> None:
    app, _ = make_app(clock=clock)
    async with client(app) as browser:
        sid = sid_of(await browser.post("/login"))
        browser.cookies.clear()
        with await browser.websocket_connect("/ws", headers=cookie(sid)) as connection:
            message = connection.receive_json()
    assert message == {"user": "alice", "set_session": "SessionNotAvailableError"}


async def test_without_the_lifespan_every_route_fails_loudly(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(clock=clock, debug=True)
    browser = AsyncTestClient(app)  # not entered: the app's lifespan never runs
    response = await browser.get("/whoami")
    assert response.status_code == 500
    assert "SessionwardPlugin did not wrap this application" in response.text
    assert any("lifespan" in record.getMessage() for record in caplog.records)


async def test_the_store_is_closed_at_shutdown(clock: ManualClock) -> None:
    class ClosingStore(MemoryStore):
        closed = 0

        async def close(self) -> None:
            ClosingStore.closed += 1

    app, _ = make_app(ClosingStore(), clock=clock)
    async with client(app) as browser:
        await browser.get("/whoami")
        assert ClosingStore.closed == 0
    assert ClosingStore.closed == 1


def test_litestar_session_middleware_beside_the_plugin_is_refused() -> None:
    with pytest.raises(ImproperlyConfiguredException, match="session middleware"):
        Litestar(
            [], plugins=[SessionwardPlugin()], middleware=[ServerSideSessionConfig().middleware], logging_config=None
        )


def test_one_plugin_for_two_apps_is_refused() -> None:
    plugin = SessionwardPlugin()
    Litestar([], plugins=[plugin], logging_config=None)
    with pytest.raises(ImproperlyConfiguredException, match="one application"):
        Litestar([], plugins=[plugin], logging_config=None)


def test_a_dependency_of_the_same_name_is_refused() -> None:
    def other() -> int:
        return 1

    with pytest.raises(ImproperlyConfiguredException, match="dependency_key"):
        Litestar([], plugins=[SessionwardPlugin()], dependencies={"session": other}, logging_config=None)


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"store_timeout_s": 0}, "store_timeout_s"),
        ({"store_timeout_s": float("nan")}, "store_timeout_s"),
        ({"dependency_key": "my session"}, "dependency_key"),
        ({"trusted_origins": "https://a.example"}, "trusted_origins"),
    ],
)
def test_a_malformed_config_field_is_named(changes: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionwardConfig(**changes)
    assert raised.value.setting == setting


def test_a_bad_trusted_origin_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="trusted"):
        SessionwardPlugin(SessionwardConfig(trusted_origins=("not an origin",)))


def test_the_store_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONWARD_STORE", "nowhere://x")
    with pytest.raises(ConfigError) as raised:
        SessionwardPlugin()
    assert raised.value.setting == "SESSIONWARD_STORE"


async def test_the_dependency_can_take_another_name(clock: ManualClock) -> None:
    @get("/who")
    async def who(sw: NamedDependency[RequestSession]) -> dict[str, Any]:
        return {"user": sw.user}

    config = SessionwardConfig(store=MemoryStore(), policy=plain_http_policy(), clock=clock, dependency_key="sw")
    app = Litestar([who], plugins=[SessionwardPlugin(config)], logging_config=None)
    async with AsyncTestClient(app) as browser:
        response = await browser.get("/who")
    assert response.json() == {"user": None}

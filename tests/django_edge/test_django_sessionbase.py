"""Django's documented SessionBase behaviour, on sessionward's SessionStore inside real requests.

Each test runs views through :class:`SessionwardMiddleware` with Django's ``RequestFactory``
and a cookie jar of its own (a tiny browser), so that a view can look at
``request.session`` while the request is on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import orjson
import pytest
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.test import RequestFactory  # type: ignore[import-untyped]
from django_support import COOKIE, Client, Configure, configure, make_user, sign_in, store

from sessionward import ManualClock, SessionPolicy, TimeoutPolicy
from sessionward.core import ids
from sessionward.core.config import CookiePolicy
from sessionward.core.errors import SessionDataError, SessionNotAvailableError
from sessionward.core.records import SessionRecord, Tombstone
from sessionward.django import SessionStore, session_of
from sessionward.django.middleware import SessionwardMiddleware
from sessionward.django.testing import force_login, logout_client
from sessionward.sync import MemoryStore

__all__ = ["configure", "store"]  # fixtures

View = Callable[[SessionStore], object]


class Browser:
    """Runs a function on ``request.session`` inside a request, keeping the cookies between requests."""

    def __init__(self) -> None:
        self.cookies: SimpleCookie = SimpleCookie()
        self.seen: Any = None

    def __call__(self, action: View, path: str = "/page") -> HttpResponse:
        request = RequestFactory().get(path)
        if self.cookies:
            request.META["HTTP_COOKIE"] = "; ".join(f"{m.key}={m.coded_value}" for m in self.cookies.values())

        def view(request: HttpRequest) -> HttpResponse:
            self.seen = action(session_of(request))
            return HttpResponse("ok")

        response: HttpResponse = SessionwardMiddleware(view)(request)
        for key, morsel in response.cookies.items():
            if morsel.value:
                self.cookies[key] = morsel
            else:
                self.cookies.pop(key, None)
        return response

    @property
    def sid(self) -> str | None:
        morsel = self.cookies.get(COOKIE)
        return None if morsel is None else str(morsel.value)


def json_of(response: HttpResponse) -> Any:
    return orjson.loads(response.content)


def expire_then(value: Any, then: View) -> View:
    """Call ``set_expiry(value)``, then return what ``then`` returns."""

    def action(session: SessionStore) -> object:
        session.set_expiry(value)
        return then(session)

    return action


def write(**values: Any) -> View:
    def action(session: SessionStore) -> None:
        for key, value in values.items():
            session[key] = value

    return action


def test_a_fresh_session_is_neither_accessed_nor_modified(configure: Configure) -> None:
    browser = Browser()

    response = browser(lambda s: (s.accessed, s.modified, s.is_empty(), s.session_key))

    assert browser.seen == (False, False, True, None)
    assert "Vary" not in response


def test_reading_sets_accessed_not_modified_and_varies_on_the_cookie(configure: Configure) -> None:
    browser = Browser()
    browser(write(a=1))

    response = browser(lambda s: (s.get("a"), s.accessed, s.modified))

    assert browser.seen == (1, True, False)
    assert "Cookie" in response["Vary"]


def test_writing_sets_modified(configure: Configure) -> None:
    browser = Browser()

    def action(session: SessionStore) -> object:
        session["a"] = 1
        return session.modified

    browser(action)

    assert browser.seen is True


def test_a_dict_changed_in_place_is_saved_without_setting_modified(configure: Configure) -> None:
    browser = Browser()
    browser(write(cart={"items": []}))

    browser(lambda s: s["cart"]["items"].append("book"))
    browser(lambda s: s["cart"])

    assert browser.seen == {"items": ["book"]}


def test_cycle_key_keeps_the_data_and_kills_the_old_key(configure: Configure) -> None:
    browser = Browser()
    browser(write(a=1))
    old = browser.sid

    def action(session: SessionStore) -> object:
        session.cycle_key()
        return session.session_key

    response = browser(action)

    assert browser.seen not in (None, old)
    assert response.cookies[COOKIE].value == browser.seen
    browser(lambda s: dict(s.items()))
    assert browser.seen == {"a": 1}
    assert SessionStore().exists(old) is False
    assert SessionStore().exists(browser.sid) is True


def test_cycle_key_on_a_session_not_stored_yet_stores_it_under_a_fresh_key(configure: Configure) -> None:
    browser = Browser()

    def action(session: SessionStore) -> object:
        session["a"] = 1
        session.cycle_key()
        return session.session_key

    browser(action)

    assert browser.seen is None  # no ID yet: one is made when the response starts
    assert browser.sid is not None


def test_flush_empties_the_session_and_gives_a_new_key(configure: Configure, store: MemoryStore) -> None:
    browser = Browser()
    browser(write(a=1, b=2))
    old = browser.sid
    assert old

    def action(session: SessionStore) -> object:
        session.flush()
        before = (session.session_key, dict(session.items()), session.is_empty())
        session["c"] = 3
        return before

    response = browser(action)

    assert browser.seen == (None, {}, True)
    assert browser.sid not in (None, old)
    assert "Cookie" in response["Vary"]
    assert isinstance(store.load(ids.storage_key(old), 0), Tombstone)
    browser(lambda s: dict(s.items()))
    assert browser.seen == {"c": 3}


def test_create_moves_a_stored_session_to_a_new_key_with_its_data(configure: Configure) -> None:
    browser = Browser()
    browser(write(a=1))
    old = browser.sid

    browser(lambda s: s.create())
    browser(lambda s: dict(s.items()))

    assert browser.sid not in (None, old)
    assert browser.seen == {"a": 1}
    assert not SessionStore().exists(old)


def test_clear_removes_the_data_but_keeps_the_session(configure: Configure) -> None:
    browser = Browser()
    browser(write(a=1))
    sid = browser.sid

    browser(lambda s: s.clear())
    browser(lambda s: (dict(s.items()), s.session_key))

    assert browser.seen == ({}, sid)


def test_the_mapping_methods_behave_as_djangos(configure: Configure) -> None:
    browser = Browser()

    def action(session: SessionStore) -> object:
        session.update({"a": 1, "b": [1, 2]})
        results = [
            session.setdefault("a", 9),
            session.setdefault("c", "new"),
            session.pop("b"),
            session.pop("missing", "default"),
            session.has_key("a"),
            "b" in session,
            sorted(session.keys()),
            sorted(str(value) for value in session.values()),
        ]
        with pytest.raises(KeyError):
            session.pop("missing")
        del session["c"]
        session.set_test_cookie()
        results.append(session.test_cookie_worked())
        session.delete_test_cookie()
        results.append(dict(session.items()))
        return results

    browser(action)

    assert browser.seen == [1, "new", [1, 2], "default", True, False, ["a", "c"], ["1", "new"], True, {"a": 1}]


def test_values_must_be_json(configure: Configure) -> None:
    browser = Browser()

    def action(session: SessionStore) -> object:
        with pytest.raises(SessionDataError):
            session["when"] = datetime.now(UTC)
        return dict(session.items())

    browser(action)

    assert browser.seen == {}


def test_load_returns_a_copy(configure: Configure) -> None:
    browser = Browser()
    browser(write(cart=["a"]))

    def action(session: SessionStore) -> object:
        loaded = session.load()
        loaded["cart"].append("b")
        return session["cart"]

    browser(action)

    assert browser.seen == ["a"]


def test_save_writes_now_and_a_session_with_no_value_is_not_stored(
    configure: Configure, store: MemoryStore, clock: ManualClock
) -> None:
    browser = Browser()

    def action(session: SessionStore) -> object:
        session.save()
        empty_key = session.session_key
        session["a"] = 1
        session.save()
        key = session.session_key
        assert key is not None
        stored = store.load(ids.storage_key(key), clock())
        return empty_key, isinstance(stored, SessionRecord) and stored.data

    response = browser(action)

    assert browser.seen == (None, {"a": 1})
    assert response.cookies[COOKIE].value == browser.sid


def test_set_expiry_seconds_ends_the_session_after_that_much_idleness(configure: Configure, clock: ManualClock) -> None:
    browser = Browser()
    browser(write(a=1))

    browser(expire_then(30, lambda s: (s.get_expiry_age(), s.get_expire_at_browser_close())))
    assert browser.seen == (30, True)
    for _ in range(5):
        clock.advance(20)  # active: under a policy touch interval of 60 s, the idle clock still follows
        browser(lambda s: s.get("a"))
        assert browser.seen == 1

    clock.advance(31)
    response = browser(lambda s: dict(s.items()), path="/api/x")

    assert response.status_code == 401
    assert json_of(response) == {"error": "session_invalid", "reason": "idle_timeout"}


def test_set_expiry_to_a_moment_ends_the_session_then_however_active(configure: Configure, clock: ManualClock) -> None:
    browser = Browser()
    browser(write(a=1))
    browser(expire_then(timedelta(seconds=100), lambda s: None))

    clock.advance(50)
    browser(lambda s: s.get_expiry_age())
    assert browser.seen == 50
    clock.advance(50)
    response = browser(lambda s: dict(s.items()), path="/api/x")

    assert json_of(response) == {"error": "session_invalid", "reason": "absolute_timeout"}


def test_set_expiry_never_lengthens_the_session(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=3600)))
    browser = Browser()
    browser(write(a=1))
    far = datetime.fromtimestamp(clock() + 10 * 3600, UTC)

    browser(expire_then(10**9, lambda s: s.get_expiry_age()))
    assert browser.seen == 600  # the anonymous idle timeout: min(600, idle_timeout)
    browser(expire_then(far, lambda s: (s.get_expiry_age(), s.get_expiry_date().timestamp())))
    assert browser.seen == (600, clock() + 600)
    browser(expire_then(None, lambda s: s.get("_session_expiry")))
    assert browser.seen is None


def test_get_expiry_age_counts_down_to_the_absolute_timeout(configure: Configure, clock: ManualClock) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=1000)))
    make_user()
    client = Client()
    sign_in(client)
    for _ in range(3):
        clock.advance(250)
        client.get("/whoami")

    figures = client.get("/expiry").json()

    assert figures["age"] == 250
    assert figures["date"] == clock() + 250
    assert figures["browser_close"] is True


def test_set_expiry_zero_sends_the_cookie_without_max_age(configure: Configure) -> None:
    configure(SessionPolicy(cookie=CookiePolicy(secure=False, max_age_s=900)))
    browser = Browser()
    first = browser(write(a=1))
    assert first.cookies[COOKIE]["max-age"] == "900"

    asked = browser(expire_then(0, lambda s: s.get_expire_at_browser_close()))

    assert browser.seen is True
    assert asked.cookies[COOKIE].value == browser.sid
    assert asked.cookies[COOKIE]["max-age"] == ""


def test_after_set_expiry_zero_every_new_id_goes_without_max_age(configure: Configure) -> None:
    configure(SessionPolicy(cookie=CookiePolicy(secure=False, max_age_s=900)))
    browser = Browser()

    def create(session: SessionStore) -> None:
        session["a"] = 1
        session.set_expiry(0)

    created = browser(create)
    cycled = browser(lambda s: s.cycle_key())

    assert created.cookies[COOKIE]["max-age"] == ""
    assert cycled.cookies[COOKIE].value == browser.sid
    assert cycled.cookies[COOKIE]["max-age"] == ""


def test_the_session_cookie_age_is_the_policys(configure: Configure) -> None:
    configure(SessionPolicy(timeouts=TimeoutPolicy(idle_timeout_s=600, absolute_timeout_s=3600)))

    assert SessionStore().get_session_cookie_age() == 3600


def test_clear_expired_purges_the_store(configure: Configure, store: MemoryStore, clock: ManualClock) -> None:
    for _ in range(3):
        Browser()(write(a=1))
    assert store.stats(clock()).live_sessions == 3
    clock.advance(3600)

    SessionStore.clear_expired()

    assert store.purge_expired(clock()) == 0
    assert store.stats(clock()).live_sessions == 0


def test_delete_by_key_ends_that_session_even_outside_a_request(configure: Configure) -> None:
    browser = Browser()
    browser(write(a=1))
    sid = browser.sid
    assert SessionStore().exists(sid)

    SessionStore().delete(sid)

    assert not SessionStore().exists(sid)
    assert json_of(browser(lambda s: dict(s.items()), path="/api/x"))["reason"] == "revoked"


@pytest.mark.parametrize("key", [None, "", "short", "x" * 43 + "!", 42])
def test_exists_refuses_malformed_keys(configure: Configure, key: Any) -> None:
    assert SessionStore().exists(key) is False


def test_a_session_made_outside_a_request_fails_loudly(configure: Configure) -> None:
    session = SessionStore("whatever-the-client-said")

    assert session.session_key is None
    assert session.is_empty()
    with pytest.raises(SessionNotAvailableError, match="SessionwardMiddleware"):
        session["a"] = 1
    with pytest.raises(SessionNotAvailableError, match="force_login"):
        session.save()


def test_djangos_test_client_login_fails_loudly(configure: Configure) -> None:
    user = make_user()

    with pytest.raises(SessionNotAvailableError):
        Client().force_login(user)


def test_the_testing_helpers_sign_in_and_out(configure: Configure) -> None:
    user = make_user()
    client = Client()

    force_login(client, user)
    assert client.get("/whoami").json()["user"] == "alice"
    sid = client.cookies[COOKIE].value
    logout_client(client)

    assert client.get("/whoami").json()["user"] is None
    replay = Client()
    replay.cookies[COOKIE] = sid
    assert replay.get("/api/me").json()["reason"] == "logged_out"


def test_the_registry_verbs_are_on_the_session(configure: Configure, clock: ManualClock) -> None:
    user = make_user()
    client = Client()
    force_login(client, user)

    client.get("/whoami")
    status = client.get("/expiry")

    assert status.status_code == 200
    browser = Browser()
    browser.cookies[COOKIE] = client.cookies[COOKIE].value
    browser(lambda s: (s.status().authenticated, s.recently_authenticated, s.is_elevated, len(s.list_sessions())))
    assert browser.seen == (True, True, False, 1)
    old = browser.sid
    browser(lambda s: s.elevate())
    assert browser.sid != old
    browser(lambda s: s.is_elevated)
    assert browser.seen is True

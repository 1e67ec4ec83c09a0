"""django.contrib.auth on sessionward: login, logout, password change, multiple-login control, the registry."""

from __future__ import annotations

from typing import Any

from django_support import COOKIE, Client, Configure, configure, cookie_of, make_user, sign_in, store

from sessionward import (
    BindingPolicy,
    BudgetAction,
    CreationBudget,
    EventBus,
    EventName,
    LoginPolicy,
    ManualClock,
    SessionEvent,
    SessionPolicy,
)
from sessionward.core import ids
from sessionward.core.config import LoginThrottlePolicy
from sessionward.core.records import EndReason, Tombstone
from sessionward.sync import MemoryStore

__all__ = ["configure", "store"]  # fixtures


def client_with(sid: str | None) -> Client:
    """A client that sends the session cookie ``sid`` (as an attacker holding it would)."""
    client = Client()
    if sid is not None:
        client.cookies[COOKIE] = sid
    return client


def test_session_fixation_a_planted_id_is_dead_after_login(configure: Configure) -> None:
    make_user()
    attacker = Client()
    planted = cookie_of(attacker.post("/set?lure=1"))
    assert planted
    victim = client_with(planted)  # the attacker made the victim's browser use this ID

    login = sign_in(victim)
    new = cookie_of(login)

    assert login.status_code == 200
    assert new
    assert new != planted
    assert client_with(planted).get("/whoami").json()["user"] is None
    assert client_with(new).get("/whoami").json() == {
        "user": "alice",
        "data": {"lure": "1", **_auth_keys(client_with(new))},
        "handle": ids.handle_of(ids.storage_key(new)),
    }
    # The login is sessionward's: the session is registered under the user.
    assert [entry["current"] for entry in client_with(new).get("/sessions").json()["sessions"]] == [True]


def _auth_keys(client: Client) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/whoami").json()["data"]
    return {key: value for key, value in data.items() if key.startswith("_auth_user")}


def test_login_without_a_prior_session_rotates_nothing_and_sets_one_cookie(configure: Configure) -> None:
    make_user()

    response = sign_in(Client())

    assert response.json() == {"ok": True, "key": True}
    assert cookie_of(response)


def test_session_replay_after_logout_gets_no_user(configure: Configure, store: MemoryStore, clock: ManualClock) -> None:
    make_user()
    client = Client()
    sid = cookie_of(sign_in(client))
    assert sid

    logout = client.post("/logout")

    assert cookie_of(logout) == ""
    entry = store.load(ids.storage_key(sid), clock())
    assert isinstance(entry, Tombstone)
    assert entry.reason is EndReason.LOGGED_OUT
    replay = client_with(sid).get("/api/me")
    assert replay.status_code == 401
    assert replay.json()["reason"] == "logged_out"


def test_password_change_ends_the_other_sessions_and_keeps_this_one(configure: Configure) -> None:
    make_user()
    laptop, phone = Client(), Client()
    sign_in(laptop)
    phone_sid = cookie_of(sign_in(phone))
    laptop_sid = laptop.cookies[COOKIE].value

    changed = laptop.post("/password", {"new": "battery staple"})

    assert changed.status_code == 200
    assert cookie_of(changed) not in (None, laptop_sid)  # update_session_auth_hash cycles the key
    assert laptop.get("/whoami").json()["user"] == "alice"
    stolen = client_with(phone_sid).get("/api/me")
    assert stolen.status_code == 401
    assert stolen.json()["reason"] == "password_changed"


def test_a_secret_key_rotation_renews_the_hash_and_ends_no_session(configure: Configure) -> None:
    make_user()
    laptop, phone = Client(), Client()
    sign_in(laptop)
    sign_in(phone)
    configure(SECRET_KEY="a-new-secret-" + "n" * 40, SECRET_KEY_FALLBACKS=["sessionward-django-tests-" + "k" * 40])

    assert laptop.get("/whoami").json()["user"] == "alice"  # Django renews the hash (and cycles the key)

    assert phone.get("/whoami").json()["user"] == "alice"


def test_a_password_changed_elsewhere_logs_out_through_django_and_ends_the_session(configure: Configure) -> None:
    user = make_user()
    client = Client()
    sid = cookie_of(sign_in(client))
    user.set_password("changed by an administrator")
    user.save()

    assert client.get("/whoami").json()["user"] is None  # Django flushes: the hash no longer matches

    assert client_with(sid).get("/api/me").json()["reason"] == "logged_out"


def test_max_sessions_first_wins_refuses_the_next_login(configure: Configure) -> None:
    configure(SessionPolicy(login=LoginPolicy(max_sessions=1, prevent_login=True)))
    make_user()
    first = Client()
    sign_in(first)

    refused = sign_in(Client())

    assert refused.status_code == 409
    assert refused.json() == {"error": "max_sessions", "limit": 1}
    assert cookie_of(refused) is None
    assert first.get("/whoami").json()["user"] == "alice"


def test_max_sessions_last_wins_displaces_the_oldest(configure: Configure) -> None:
    configure(SessionPolicy(login=LoginPolicy(max_sessions=1, prevent_login=False)))
    make_user()
    first, second = Client(), Client()
    sign_in(first)

    sign_in(second)

    assert first.get("/api/me").json()["reason"] == "displaced"
    assert second.get("/whoami").json()["user"] == "alice"


def test_a_refused_login_leaves_the_visitor_anonymous(configure: Configure) -> None:
    configure(SessionPolicy(login=LoginPolicy(max_sessions=1, prevent_login=True)))
    make_user()
    sign_in(Client())
    visitor = Client()
    visitor.post("/set?cart=3")

    sign_in(visitor)

    assert visitor.get("/whoami").json() == {
        "user": None,
        "data": {"cart": "3"},
        "handle": visitor.get("/whoami").json()["handle"],
    }


def test_the_registry_lists_and_revokes_the_users_sessions(configure: Configure) -> None:
    make_user()
    make_user("bob")
    laptop, phone, tablet = Client(), Client(), Client()
    sign_in(laptop)
    sign_in(phone)
    sign_in(tablet)
    sign_in(Client(), "bob")

    listed = laptop.get("/sessions").json()["sessions"]
    phone_handle = phone.get("/whoami").json()["handle"]
    revoked = laptop.post(f"/revoke/{phone_handle}").json()

    assert len(listed) == 3
    assert [entry["current"] for entry in listed].count(True) == 1
    assert revoked == {"revoked": True}
    assert phone.get("/api/me").json()["reason"] == "revoked"
    assert laptop.post("/revoke-others").json() == {"ended": 1}
    assert tablet.get("/api/me").json()["reason"] == "revoked"
    assert len(laptop.get("/sessions").json()["sessions"]) == 1


def test_a_user_cannot_revoke_another_users_session(configure: Configure) -> None:
    make_user()
    make_user("bob")
    alice, bob = Client(), Client()
    sign_in(alice)
    sign_in(bob, "bob")
    bobs = bob.get("/whoami").json()["handle"]

    assert alice.post(f"/revoke/{bobs}").json() == {"revoked": False}
    assert bob.get("/whoami").json()["user"] == "bob"


def test_auth_events_reach_the_event_bus(configure: Configure) -> None:
    seen: list[SessionEvent] = []
    events = EventBus(log=False)
    events.subscribe(seen.append)
    configure(SESSIONWARD_EVENTS=events)
    make_user()
    client = Client()
    sign_in(client)
    client.post("/password", {"new": "another"})
    client.post("/logout")

    names = [event.name for event in seen]

    assert EventName.LOGIN in names
    assert EventName.PASSWORD_CHANGED in names
    assert names[-1] is EventName.LOGOUT
    assert all(event.user in (None, str(_pk("alice"))) for event in seen)


def _pk(name: str) -> Any:
    from django.contrib.auth import get_user_model  # type: ignore[import-untyped]

    return get_user_model().objects.get(username=name).pk


def test_password_guessing_is_throttled_with_429(configure: Configure) -> None:
    configure(SessionPolicy(login_throttle=LoginThrottlePolicy(max_failures=3)))
    make_user()
    attacker = Client()
    for _ in range(3):
        assert sign_in(attacker, password="guess").status_code == 401

    held = sign_in(attacker, password="guess")

    assert held.status_code == 429
    assert held.json()["error"] == "throttled"
    assert int(held["Retry-After"]) >= 1


def test_session_hijack_from_another_network_is_refused_when_bound(configure: Configure) -> None:
    configure(SessionPolicy(binding=BindingPolicy(ip_prefix=True)))
    make_user()
    victim = Client(REMOTE_ADDR="192.0.2.10")
    sid = cookie_of(sign_in(victim))

    thief = client_with(sid).get("/api/me", REMOTE_ADDR="198.51.100.7")

    assert thief.status_code == 401
    assert thief.json()["reason"] == "binding_mismatch"
    assert victim.get("/whoami").json()["user"] is None  # the stolen session is ended for both


def test_a_session_ended_by_a_concurrent_request_is_answered_401(configure: Configure) -> None:
    make_user()
    client = Client()
    sign_in(client)

    response = client.get("/api/race")

    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid", "reason": "session_ended"}
    assert cookie_of(response) == ""


def test_too_many_new_sessions_from_one_client_are_refused_with_429(configure: Configure) -> None:
    configure(SessionPolicy(creation_budget=CreationBudget(per_minute=2, action=BudgetAction.REFUSE)))
    for _ in range(2):
        assert Client().post("/set?a=1").status_code == 200

    refused = Client().post("/set?a=1")

    assert refused.status_code == 429
    assert refused.json()["error"] == "session_budget_exceeded"
    assert cookie_of(refused) is None

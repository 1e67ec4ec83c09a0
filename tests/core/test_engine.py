"""The sans-I/O engine's decisions, driven by explicit times (F6, F7, F8, F10, F20)."""

from __future__ import annotations

import pytest

from sessionward import ClientInfo, Fixation, LoginPolicy, LoginRefusedError, SessionPolicy, TimeoutPolicy
from sessionward.core.engine import KEEP_ID, SessionEngine, Verdict
from sessionward.core.ids import storage_key
from sessionward.core.records import EndReason

T0 = 1_000_000.0
TIMEOUTS = TimeoutPolicy(idle_timeout_s=100, absolute_timeout_s=1000, renewal_interval_s=300, rotation_grace_s=5)


def engine(**changes: object) -> SessionEngine:
    return SessionEngine(SessionPolicy(timeouts=TIMEOUTS).with_(**changes))


def test_new_record_has_deadlines_and_no_user() -> None:
    raw_id, record = engine().new_record(T0, {"a": 1}, ClientInfo(ip="192.0.2.1", user_agent="x" * 500))
    assert record.key == storage_key(raw_id)
    assert record.meta.user is None
    assert record.expires_at == T0 + 100
    assert record.meta.absolute_deadline == T0 + 1000
    assert record.kept_until == record.expires_at  # nobody signed in: nothing to tell later
    assert record.meta.user_agent is not None
    assert len(record.meta.user_agent) == 256


@pytest.mark.parametrize(
    ("elapsed", "verdict", "reason", "rotate"),
    [
        (0, Verdict.VALID, None, False),
        (99.9, Verdict.VALID, None, False),
        (100, Verdict.ENDED, "idle_timeout", False),
    ],
)
def test_idle_verdicts(elapsed: float, verdict: Verdict, reason: str | None, rotate: bool) -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    assessment = e.assess(raw_id, record, T0 + elapsed)
    assert (assessment.verdict, assessment.reason, assessment.rotate) == (verdict, reason, rotate)
    if verdict is Verdict.ENDED:
        assert assessment.end is not None
        assert assessment.end.reason is EndReason.IDLE_TIMEOUT


def test_absolute_timeout_wins_over_activity() -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    record.meta.last_access_at = T0 + 999
    assessment = e.assess(raw_id, record, T0 + 1000)
    assert assessment.reason == "absolute_timeout"


def test_renewal_and_touch_are_due_on_schedule() -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    record.meta.last_access_at = T0 + 299
    assert not e.assess(raw_id, record, T0 + 299).touch
    assert e.assess(raw_id, record, T0 + 309).touch
    due = e.assess(raw_id, record, T0 + 300)
    assert due.rotate
    assert not e.assess(raw_id, record, T0 + 300, passive=True).rotate
    assert not e.assess(raw_id, record, T0 + 320, passive=True).touch
    assert not engine(timeouts=TimeoutPolicy(renewal_interval_s=0)).assess(raw_id, record, T0 + 300).rotate


def test_unknown_and_tombstoned_ids() -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    assert e.assess(raw_id, None, T0).verdict is Verdict.UNKNOWN
    tomb = e.plan_end(record.key, "alice", EndReason.DISPLACED, T0)
    assessment = e.assess(raw_id, tomb, T0 + 1)
    assert (assessment.verdict, assessment.reason) == (Verdict.ENDED, "displaced")


def test_renewal_grace_leads_to_the_successor_only_with_the_old_id() -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    transition = e.plan_rotation(record, {}, T0 + 300, old_raw_id=raw_id)
    tomb = transition.retired
    assert tomb is not None
    grace = e.assess(raw_id, tomb, T0 + 305)
    assert grace.verdict is Verdict.GRACE
    assert grace.successor_id == transition.raw_id
    assert e.assess(raw_id, tomb, T0 + 305.1).verdict is Verdict.ENDED
    other_raw, _ = e.new_record(T0)
    assert e.assess(other_raw, tomb, T0 + 301).verdict is Verdict.ENDED


def test_privilege_rotation_has_no_grace() -> None:
    e = engine()
    raw_id, record = e.new_record(T0)
    transition = e.plan_rotation(record, {}, T0 + 1)
    assert transition.retired is not None
    assert transition.retired.reason is EndReason.SUPERSEDED
    assert e.assess(raw_id, transition.retired, T0 + 1).verdict is Verdict.ENDED


@pytest.mark.parametrize(
    ("fixation", "same_id", "keeps_data", "keeps_created"),
    [
        (Fixation.CHANGE_ID, False, True, True),
        (Fixation.MIGRATE, False, True, False),
        (Fixation.NEW_SESSION, False, False, False),
        (Fixation.NONE, True, True, True),
    ],
)
def test_login_per_fixation_strategy(fixation: Fixation, same_id: bool, keeps_data: bool, keeps_created: bool) -> None:
    e = engine(login=LoginPolicy(fixation=fixation))
    _, before = e.new_record(T0, {"cart": "book"})
    transition = e.plan_login(before, {"cart": "book"}, "alice", T0 + 10)
    after = transition.record
    assert (after.key == before.key) is same_id
    assert (transition.raw_id == KEEP_ID) is same_id
    assert (after.data == {"cart": "book"}) is keeps_data
    assert (after.meta.created_at == T0) is keeps_created
    assert after.meta.user == "alice"
    assert after.meta.auth_at == T0 + 10
    assert after.meta.csrf_token
    if not same_id:
        assert transition.retired is not None
        assert transition.retired.key == before.key
        assert transition.retired.reason is EndReason.SUPERSEDED


def test_plan_update_writes_nothing_when_nothing_changed() -> None:
    e = engine()
    _, record = e.new_record(T0)
    assert e.plan_update(record, {}, frozenset(), T0 + 1, touch=False) is None
    touched = e.plan_update(record, {}, frozenset(), T0 + 50, touch=True)
    assert touched is not None
    assert touched.meta.last_access_at == T0 + 50
    assert touched.expires_at == T0 + 150
    assert not touched.touches_data


def test_status_figures() -> None:
    e = engine()
    assert e.status(None, T0).as_dict() == {
        "authenticated": False,
        "user": None,
        "elevated": False,
        "session_age_s": None,
        "idle_s": None,
        "remaining_idle_s": None,
        "remaining_absolute_s": None,
        "next_rotation_s": None,
    }
    _, record = e.new_record(T0)
    record.meta.user = "alice"
    record.meta.last_access_at = T0 + 20
    record.meta = e.plan_elevation(record.meta, T0 + 20)
    status = e.status(record, T0 + 50)
    assert status.as_dict() == {
        "authenticated": True,
        "user": "alice",
        "elevated": True,
        "session_age_s": 50.0,
        "idle_s": 30.0,
        "remaining_idle_s": 70.0,
        "remaining_absolute_s": 950.0,
        "next_rotation_s": 250.0,
    }
    assert not e.status(record, T0 + 20 + 600).elevated  # the elevation lapses by itself


def test_reauth_window() -> None:
    e = engine(login=LoginPolicy(reauth_window_s=60))
    _, record = e.new_record(T0)
    assert not e.recently_authenticated(record.meta, T0)
    record.meta.auth_at = T0
    assert e.recently_authenticated(record.meta, T0 + 60)
    assert not e.recently_authenticated(record.meta, T0 + 61)


def test_limit_only_when_max_sessions_set() -> None:
    assert engine().limit(T0) is None
    limit = engine(login=LoginPolicy(max_sessions=2, prevent_login=True)).limit(T0)
    assert limit is not None
    assert (limit.max_sessions, limit.prevent_login) == (2, True)


def test_limit_displaces_the_oldest_or_refuses() -> None:
    last_wins = engine(login=LoginPolicy(max_sessions=2)).limit(T0)
    first_wins = engine(login=LoginPolicy(max_sessions=2, prevent_login=True)).limit(T0)
    assert last_wins is not None
    assert first_wins is not None
    assert list(last_wins.displace("alice", ["a"])) == []  # room for one more
    assert list(last_wins.displace("alice", ["a", "b", "c"])) == ["a", "b"]  # the oldest go
    assert list(first_wins.displace("alice", ["a"])) == []
    with pytest.raises(LoginRefusedError):
        first_wins.displace("alice", ["a", "b"])
    tomb = last_wins.tombstone("k" * 64, "alice")
    assert (tomb.reason, tomb.user, tomb.expires_at) == (EndReason.DISPLACED, "alice", last_wins.tombstone_expires_at)


# -- sessions nobody signed in to: a shorter life, no retention ---------------------------------------


def test_session_flooding_is_bounded_by_the_anonymous_idle_timeout_and_no_retention() -> None:
    e = engine(timeouts=TimeoutPolicy(idle_timeout_s=1800, absolute_timeout_s=3600, anonymous_idle_timeout_s=120))
    _, visitor = e.new_record(T0)
    assert visitor.expires_at == T0 + 120
    assert visitor.kept_until == visitor.expires_at
    assert e.assess("x", visitor, T0 + 120).reason == "idle_timeout"
    tomb = e.plan_end(visitor.key, None, EndReason.LOGGED_OUT, T0)
    assert tomb.expires_at - T0 <= 60  # remembered for requests in flight, not for a day


def test_a_login_gives_the_session_the_signed_in_timeouts_and_retention() -> None:
    e = engine(timeouts=TimeoutPolicy(idle_timeout_s=1800, absolute_timeout_s=3600, anonymous_idle_timeout_s=120))
    _, visitor = e.new_record(T0)
    signed_in = e.plan_login(visitor, {}, "alice", T0 + 10).record
    assert signed_in.expires_at == T0 + 10 + 1800
    assert signed_in.kept_until == signed_in.expires_at + SessionPolicy().invalid_session.tombstone_ttl_s
    assert e.plan_end(signed_in.key, "alice", EndReason.LOGGED_OUT, T0).expires_at == T0 + 24 * 3600
    assert e.status(signed_in, T0 + 10).remaining_idle_s == 1800


def test_the_anonymous_idle_timeout_defaults_to_ten_minutes_at_most() -> None:
    assert TimeoutPolicy().effective_anonymous_idle_timeout_s == 600
    assert TimeoutPolicy(idle_timeout_s=300, absolute_timeout_s=600).effective_anonymous_idle_timeout_s == 300

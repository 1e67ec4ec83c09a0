"""Login throttling's pure decisions: who is counted, how long the delay is, when to wait."""

from __future__ import annotations

import pytest

from sessionward.core.config import LoginThrottlePolicy, SessionPolicy
from sessionward.core.engine import ClientInfo, Hits
from sessionward.core.errors import ConfigError
from sessionward.core.throttling import delay_s, subjects, wait_s


def test_the_delay_doubles_past_the_threshold_and_stops_at_the_maximum() -> None:
    policy = LoginThrottlePolicy(base_delay_s=1.0, max_delay_s=900.0)
    assert [delay_s(policy, 5, count) for count in range(3, 16)] == [
        1.0,
        1.0,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        128.0,
        256.0,
        512.0,
        900.0,
    ]
    assert delay_s(policy, 5, 10**9) == 900.0  # a huge count never overflows past the cap


def test_a_gate_lets_the_first_hit_of_its_window_through_and_tells_the_others_how_long_to_wait() -> None:
    assert wait_s(Hits(count=1, resets_at=1060.0), 1000.0) == 0
    assert wait_s(Hits(count=2, resets_at=1060.0), 1000.0) == 60
    assert wait_s(Hits(count=9, resets_at=1000.2), 1000.0) == 1  # rounded up, at least 1


def test_user_names_differing_in_case_share_a_counter_and_no_name_or_ip_is_in_clear() -> None:
    policy = LoginThrottlePolicy()
    alice = subjects(policy, "Alice", ClientInfo(ip="198.51.100.7"))
    # The network first: an attempt it must wait for is refused before the account is counted.
    assert [s.kind for s in alice] == ["network", "account"]
    assert alice[1].counter == subjects(policy, "ALICE", ClientInfo())[0].counter
    assert alice[1].counter != subjects(policy, "bob", ClientInfo())[0].counter
    for subject in alice:
        assert len(subject.counter) == len(subject.gate) == 64
        assert set(subject.counter + subject.gate) <= set("0123456789abcdef")  # digests only


def test_an_ipv6_client_is_counted_by_its_64_and_an_unknown_ip_not_per_network() -> None:
    policy = LoginThrottlePolicy()
    one = subjects(policy, "alice", ClientInfo(ip="2001:db8:1:2::1"))[0]
    same = subjects(policy, "alice", ClientInfo(ip="2001:db8:1:2:ffff::9"))[0]
    other = subjects(policy, "alice", ClientInfo(ip="2001:db8:1:3::1"))[0]
    assert one.kind == "network"
    assert one.counter == same.counter != other.counter
    assert [s.kind for s in subjects(policy, "alice", ClientInfo(ip=None))] == ["account"]
    assert subjects(LoginThrottlePolicy(max_failures=0, max_attempts_per_ip=0), "alice", ClientInfo(ip="::1")) == []


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"max_failures": -1}, "login_throttle.max_failures"),
        ({"max_failures": 2.5}, "login_throttle.max_failures"),
        ({"max_attempts_per_ip": True}, "login_throttle.max_attempts_per_ip"),
        ({"window_s": 0}, "login_throttle.window_s"),
        ({"base_delay_s": float("nan")}, "login_throttle.base_delay_s"),
        ({"max_delay_s": 0.5}, "login_throttle.max_delay_s"),
    ],
)
def test_a_bad_throttle_setting_is_refused_naming_it(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        LoginThrottlePolicy(**changes)  # type: ignore[arg-type]
    assert raised.value.setting == setting


def test_throttle_settings_come_from_sessionward_login_variables() -> None:
    policy = SessionPolicy.from_env(
        {
            "SESSIONWARD_LOGIN_MAX_FAILURES": "3",
            "SESSIONWARD_LOGIN_MAX_ATTEMPTS_PER_IP": "0",
            "SESSIONWARD_LOGIN_FAILURE_WINDOW": "3600",
            "SESSIONWARD_LOGIN_BASE_DELAY": "2",
            "SESSIONWARD_LOGIN_MAX_DELAY": "300",
        }
    )
    assert policy.login_throttle == LoginThrottlePolicy(
        max_failures=3, max_attempts_per_ip=0, window_s=3600.0, base_delay_s=2.0, max_delay_s=300.0
    )
    assert SessionPolicy.from_env({}).login_throttle == LoginThrottlePolicy()


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"SESSIONWARD_LOGIN_MAX_FAILURES": "five"}, "SESSIONWARD_LOGIN_MAX_FAILURES"),
        ({"SESSIONWARD_LOGIN_MAX_ATTEMPTS_PER_IP": "-1"}, "SESSIONWARD_LOGIN_MAX_ATTEMPTS_PER_IP"),
        ({"SESSIONWARD_LOGIN_FAILURE_WINDOW": "0"}, "SESSIONWARD_LOGIN_FAILURE_WINDOW"),
        ({"SESSIONWARD_LOGIN_BASE_DELAY": "inf"}, "SESSIONWARD_LOGIN_BASE_DELAY"),
        ({"SESSIONWARD_LOGIN_BASE_DELAY": "10", "SESSIONWARD_LOGIN_MAX_DELAY": "5"}, "SESSIONWARD_LOGIN_MAX_DELAY"),
    ],
)
def test_a_bad_throttle_variable_stops_start_up_naming_it(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionPolicy.from_env(environ)
    assert raised.value.setting == variable


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.0.0.9", "::1"])
def test_a_loopback_client_is_counted_per_account_only(ip: str) -> None:
    # Loopback is this host or an untrusted proxy in front: every user would share its count.
    counted = subjects(LoginThrottlePolicy(), "alice", ClientInfo(ip=ip))

    assert [subject.kind for subject in counted] == ["account"]
    assert [subject.kind for subject in subjects(LoginThrottlePolicy(), "alice", ClientInfo(ip="203.0.113.7"))] == [
        "network",
        "account",
    ]

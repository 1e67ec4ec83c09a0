"""The binding fingerprint itself (F13): hashed per attribute, canonical, compared in full."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sessionward import BindingPolicy
from sessionward.core.binding import BindingCheck, check_binding, compute_binding, network_of

UA = "Mozilla/5.0 (X11; Linux x86_64)"
UA_AND_NET = BindingPolicy(user_agent=True, ip_prefix=True)


def test_binding_off_stores_and_checks_nothing() -> None:
    assert compute_binding(BindingPolicy(), ip="192.0.2.1", user_agent=UA) is None
    assert check_binding(BindingPolicy(), "ua:" + "0" * 64, ip="192.0.2.1", user_agent="x").check is BindingCheck.OFF


def test_same_client_matches_and_each_changed_attribute_is_named() -> None:
    stored = compute_binding(UA_AND_NET, ip="192.0.2.10", user_agent=UA)
    assert check_binding(UA_AND_NET, stored, ip="192.0.2.200", user_agent=UA).check is BindingCheck.MATCH
    browser = check_binding(UA_AND_NET, stored, ip="192.0.2.10", user_agent="Other/1")
    assert (browser.check, browser.reason) == (BindingCheck.MISMATCH, "user_agent")
    both = check_binding(UA_AND_NET, stored, ip="192.0.3.10", user_agent="Other/1")
    assert both.mismatched == ("user_agent", "ip_prefix")


def test_spoofed_digest_of_another_attribute_does_not_match() -> None:
    # Domain separation: the digest of a UA never stands in for the digest of an IP.
    ua_only = compute_binding(BindingPolicy(user_agent=True), ip=None, user_agent="192.0.2.10")
    assert ua_only is not None
    forged = "ip:" + ua_only.split(":", 1)[1]
    result = check_binding(BindingPolicy(ip=True), forged, ip="192.0.2.10", user_agent=None)
    assert result.check is BindingCheck.MISMATCH


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
        ("testclient", "testclient"),
        (None, ""),
    ],
)
def test_network_of_groups_addresses_and_keeps_non_ips_whole(ip: str | None, network: str) -> None:
    assert network_of(ip, 24, 64) == network


def test_ipv4_mapped_address_is_the_same_client_as_its_ipv4() -> None:
    policy = BindingPolicy(ip=True)
    stored = compute_binding(policy, ip="203.0.113.77", user_agent=None)
    assert check_binding(policy, stored, ip="::ffff:203.0.113.77", user_agent=None).check is BindingCheck.MATCH


def test_changed_settings_rebind_when_the_shared_attributes_still_match() -> None:
    stored = compute_binding(BindingPolicy(user_agent=True), ip="192.0.2.1", user_agent=UA)
    widened = check_binding(UA_AND_NET, stored, ip="192.0.2.1", user_agent=UA)
    assert widened.check is BindingCheck.UNBOUND
    assert widened.binding == compute_binding(UA_AND_NET, ip="192.0.2.1", user_agent=UA)
    # ...but a replay from another browser is still a mismatch while the settings change.
    assert check_binding(UA_AND_NET, stored, ip="192.0.2.1", user_agent="Evil/1").check is BindingCheck.MISMATCH


def test_prefix_length_is_part_of_the_binding() -> None:
    narrow = BindingPolicy(ip_prefix=True, ipv4_prefix=28)
    stored = compute_binding(BindingPolicy(ip_prefix=True), ip="192.0.2.1", user_agent=None)
    assert check_binding(narrow, stored, ip="192.0.2.1", user_agent=None).check is BindingCheck.UNBOUND


@pytest.mark.parametrize("garbage", ["", "nonsense", "ua:short", "ua:" + "z" * 63 + "é"])
def test_unreadable_stored_binding_is_rebound_not_trusted_as_a_match(garbage: str) -> None:
    result = check_binding(BindingPolicy(user_agent=True), garbage, ip=None, user_agent=UA)
    assert result.check is BindingCheck.UNBOUND
    assert result.binding == compute_binding(BindingPolicy(user_agent=True), ip=None, user_agent=UA)


def test_binding_module_is_pure() -> None:
    code = (
        "import sys, sessionward.core.binding\n"
        "print([m for m in ('asyncio', 'socket', 'starlette') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""Fuzzing of what parses a request before any store is touched (a few hundred inputs each).

The same properties run a million times over in ``scripts/fuzz_campaign.py``.
"""

from __future__ import annotations

from fuzz.parsers import PATH_PIECES, FirewallCase, check_firewall_case
from fuzz.properties import TARGETS, run_target
from sessionward.core.config import FirewallPolicy


def test_cookie_parser_returns_exactly_the_values_sent_never_a_planted_or_cut_one() -> None:
    run_target(TARGETS["cookies"], derandomize=True)


def test_joined_cookie_header_split_loses_nothing_and_only_adds_readings() -> None:
    run_target(TARGETS["joined_cookies"], derandomize=True)


def test_firewall_answers_alike_twice_and_lets_through_nothing_its_policy_refuses() -> None:
    run_target(TARGETS["firewall"], derandomize=True)


def test_forwarding_headers_from_an_untrusted_peer_never_spoof_the_client() -> None:
    run_target(TARGETS["client_headers"], derandomize=True)


def test_id_checks_accept_exactly_the_shape_issued_and_seals_open_only_to_ids() -> None:
    run_target(TARGETS["ids"], derandomize=True)


def test_each_hostile_piece_alone_in_a_plain_path_meets_its_rule() -> None:
    policies = (FirewallPolicy(), FirewallPolicy(allow_semicolon=True, allow_encoded_percent=True))
    for piece in PATH_PIECES:
        for shape in (b"/a%sb", b"/a/%s", b"/%s/b", b"%s"):
            for policy in policies:
                check_firewall_case(FirewallCase(policy, "GET", shape.replace(b"%s", piece)))

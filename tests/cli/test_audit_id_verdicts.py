"""The ID checks' report lines: the user-name check states its rate, short IDs get no independence verdict.

Every statistical line of the report states its false-alarm rate, also when nothing was
found. IDs too short for the independence test (a few decimal digits) are failed by the
length check and skipped by the independence test, so that an independence failure
always means measured dependence.
"""

from __future__ import annotations

import secrets

from sessionward.audit.checks import Status
from sessionward.audit.ids import check_ids, name_in_ids
from sessionward.audit.randomness import id_bits


def lines(values: list[str], user: str | None = None) -> dict[str, tuple[Status, str]]:
    return {r.item: (r.status, r.detail) for r in check_ids(values, user).results}


def test_a_user_name_found_in_no_id_states_the_checks_false_alarm_rate() -> None:
    ids = [secrets.token_urlsafe(32).replace("z", "y").replace("Z", "Y") for _ in range(80)]  # never "zed"
    status, detail = lines(ids, "zed")["ID carries no user data"]
    assert status is Status.PASS
    assert detail == "the user name 'zed' is in none of the 80 IDs issued at login (false-alarm rate ≤ 1e-6 per run)"


def test_the_rate_stated_is_the_one_the_check_was_held_to() -> None:
    # No 'a' in the text nor in the bytes the hex decodes to (0xbb, 0xb0…): zero hits, always.
    ids = ["b" * 31 + str(n) for n in range(3)]
    result = name_in_ids(ids, "a", id_bits(ids), rate=1e-3)
    assert result.detail.endswith("(false-alarm rate ≤ 1e-3 per run)")


def test_ids_of_a_few_digits_fail_their_length_but_get_no_independence_verdict() -> None:
    report = lines([str(n) for n in range(1, 201)])
    assert report["ID length and entropy"][0] is Status.FAIL
    status, detail = report["ID independence"]
    assert status is Status.SKIP
    assert detail == "the IDs are too short to test: no bits of them can be compared (see their length)"


def test_32_bit_ids_fail_their_length_and_are_still_measured_for_independence() -> None:
    counter = lines([format(0x5EED0000 + n, "08x") for n in range(80)])
    assert counter["ID length and entropy"][0] is Status.FAIL
    assert counter["ID independence"][0] is Status.FAIL  # measured: consecutive IDs barely differ
    random = lines([secrets.token_hex(4) for _ in range(80)])
    assert random["ID length and entropy"][0] is Status.FAIL
    assert random["ID independence"][0] is Status.PASS

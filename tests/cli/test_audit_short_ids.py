"""The independence test on IDs too short to test: no verdict, rather than a misleading failure.

IDs of a few decimal digits carry no bits the test can use (read as numbers, their top
bits are biased and dropped), and a handful of IDs of a few bits cannot show anything
at a false-alarm rate of 1e-6. The test then says so and gives no verdict; the length
check is what fails such IDs. IDs long enough to measure are still measured: a 32-bit
counter fails, 32 random bits pass.
"""

from __future__ import annotations

import secrets

from sessionward.audit.randomness import id_bits, independence, independence_of


def test_ids_of_a_few_digits_have_no_bits_to_compare_and_are_not_judged() -> None:
    bits = id_bits([str(n) for n in range(1, 201)])  # a counter: "1", "2", ... "200"
    assert min(bits.widths) == 0
    finding = independence(bits)
    assert finding.skipped
    assert not finding.passed  # no verdict is no pass either
    assert finding.detail == "the IDs are too short to test: no bits of them can be compared (see their length)"


def test_a_few_ids_of_a_few_bits_cannot_stand_out_from_chance_and_are_not_judged() -> None:
    finding = independence_of([0b1010_0101, 0b1010_0101, 0b1010_0100], 8)  # even identical ones
    assert finding.skipped
    assert finding.detail.startswith("3 IDs of 8 bits are too few to tell related IDs from chance")


def test_fewer_than_two_ids_are_not_judged() -> None:
    assert independence_of([7], 32).skipped


def test_a_32_bit_counter_is_measured_and_fails() -> None:
    finding = independence(id_bits([format(0x5EED0000 + n, "08x") for n in range(80)]))
    assert not finding.skipped
    assert not finding.passed
    assert finding.detail.startswith("consecutive IDs differ in")


def test_random_32_bit_ids_are_measured_and_pass() -> None:
    finding = independence(id_bits([secrets.token_hex(4) for _ in range(80)]))
    assert not finding.skipped
    assert finding.passed

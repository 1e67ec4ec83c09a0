"""The audit's statistical checks, simulated on CSPRNG IDs: their false-alarm rates hold.

Every statistical verdict derives its thresholds from a false-alarm rate (1e-6 per run).
These tests check the derivation two ways: at that rate, many simulated runs on IDs from
``secrets`` give no alarm at all; at a rate high enough to measure (1 %), the measured
rate is at most what was asked (the union bound makes it a little lower). The runs call
each check's own decision function on simulated IDs, never HTTP. The suite runs 20,000 of
each (a few seconds); ``RUNS=1000000`` in the environment runs as many as asked.
"""

from __future__ import annotations

import base64
import os
import random

import pytest

from sessionward.audit.checks import Status
from sessionward.audit.ids import check_ids, holds_name, name_chance, name_in_ids
from sessionward.audit.randomness import FIPS_BITS, FipsBounds, fips_140_2_value, id_bits, independence_of
from sessionward.audit.stats import FALSE_ALARM_RATE, binomial_sf, chi2_bounds, fair_coin_bounds

RUNS = int(os.environ.get("RUNS", "20000"))

# Uniform bits from a seeded generator: the simulations test the checks' thresholds, and a
# fixed seed keeps a run that is unlucky at a rate of 1e-6 from making the suite flaky
# (SEED=random to draw a fresh one).
_SEED = os.environ.get("SEED", "20261204")
_RNG = random.Random(None if _SEED == "random" else int(_SEED))


class secrets:  # stands in for the module: the simulations call secrets.randbits() and the like
    """What the simulations draw from ``secrets``, drawn from the seeded generator instead."""

    @staticmethod
    def randbits(bits: int) -> int:
        return _RNG.getrandbits(bits)

    @staticmethod
    def token_urlsafe(size: int) -> str:
        return base64.urlsafe_b64encode(_RNG.randbytes(size)).rstrip(b"=").decode()

    @staticmethod
    def token_hex(size: int) -> str:
        return _RNG.randbytes(size).hex()


CALIBRATION_RUNS = 5_000


# -- the tail functions against published numbers -------------------------------------------------


def test_the_derived_bounds_reproduce_fips_140_2_at_its_own_rate_and_fips_140_1_at_one_in_a_million() -> None:
    # FIPS 140-2's monobit (9725..10275) and poker (2.16..46.17) bounds are 1e-4 tests;
    # FIPS 140-1's monobit bounds (9654..10346) a 1e-6 one: the same functions give them.
    assert fair_coin_bounds(FIPS_BITS, 1e-4) == (9725, 10275)
    low, high = chi2_bounds(15, 1e-4)
    assert (round(low, 2), round(high, 2)) == (2.16, 46.17)
    assert fair_coin_bounds(FIPS_BITS, 1e-6) == (9654, 10346)
    assert binomial_sf(40, 80, 0.5) == pytest.approx(0.5445, abs=1e-4)


def test_the_bounds_in_use_are_wider_than_fips_140_2s() -> None:
    bounds = FipsBounds.for_rate(FALSE_ALARM_RATE)
    assert bounds.monobit[0] < 9725
    assert bounds.monobit[1] > 10275
    assert bounds.poker[0] < 2.16
    assert bounds.poker[1] > 46.17
    assert bounds.long_run > 26


# -- FIPS 140-2's tests ---------------------------------------------------------------------------


def test_fips_tests_never_fail_csprng_bits() -> None:
    failures = [f for f in (fips_140_2_value(secrets.randbits(FIPS_BITS)) for _ in range(RUNS)) if not f.passed]
    assert failures == []


def test_fips_tests_fail_csprng_bits_no_more_often_than_the_rate_they_are_built_for() -> None:
    runs = CALIBRATION_RUNS
    failed = sum(not fips_140_2_value(secrets.randbits(FIPS_BITS), 0.01).passed for _ in range(runs))
    # Expected a little under 1 % (200): the union bound over the four tests is conservative.
    assert 0.002 * runs <= failed <= 0.013 * runs


# -- independence (counters, timestamps, fixed bits) ------------------------------------------------


@pytest.mark.parametrize(("count", "width", "share"), [(80, 256, 1), (3, 192, 4)])
def test_independence_never_fails_csprng_ids(count: int, width: int, share: int) -> None:
    # 80 IDs of 256 bits: the demo's sample (every part of the check runs); 3 IDs: a few logins.
    runs = RUNS // share
    failures = [
        finding
        for finding in (independence_of([secrets.randbits(width) for _ in range(count)], width) for _ in range(runs))
        if not finding.passed
    ]
    assert failures == []


def test_independence_fails_csprng_ids_no_more_often_than_asked() -> None:
    runs = 20_000
    failed = sum(not independence_of([secrets.randbits(64) for _ in range(40)], 64, 0.01).passed for _ in range(runs))
    assert failed <= 0.013 * runs


# -- the user name in the IDs ------------------------------------------------------------------------


def test_a_three_letter_name_turns_up_in_random_ids_but_never_fails_the_check() -> None:
    # The case: "bob" against the demo's 80 login IDs (43 base64url characters).
    runs = RUNS // 8
    bits = id_bits([secrets.token_urlsafe(32) for _ in range(80)])
    old_rule = new_rule = 0
    for _ in range(runs):
        ids = [secrets.token_urlsafe(32) for _ in range(80)]
        if any(holds_name(i, "bob", "base64url") for i in ids):
            old_rule += 1  # before: one ID holding the name failed the audit
        if name_in_ids(ids, "bob", bits).status is Status.FAIL:
            new_rule += 1
    assert old_rule > 0.03 * runs  # about 8 %
    assert new_rule == 0


@pytest.mark.parametrize("name", ["b", "al", "bob", "dave"])
def test_the_user_name_check_never_fails_a_few_csprng_login_ids(name: str) -> None:
    bits = id_bits([secrets.token_urlsafe(32) for _ in range(80)])
    failed = sum(
        name_in_ids([secrets.token_urlsafe(32) for _ in range(3)], name, bits).status is Status.FAIL
        for _ in range(RUNS // 4)
    )
    assert failed == 0


@pytest.mark.parametrize(
    ("name", "encoding"), [("b", "base64url"), ("al", "base64url"), ("bob", "base64url"), ("ab", "hex")]
)
def test_the_chance_a_random_id_holds_a_name_is_bounded_from_above(name: str, encoding: str) -> None:
    # The threshold is only as good as this bound: measured hit rates must not exceed it.
    make = secrets.token_urlsafe if encoding == "base64url" else secrets.token_hex
    ids = [make(32) for _ in range(100_000)]
    bits = id_bits(ids[:100])
    assert bits.encoding == encoding
    measured = sum(holds_name(i, name, encoding) for i in ids) / len(ids)
    bound = name_chance(name, len(ids[0]), bits)
    assert measured <= bound * 1.1 + 3e-4  # room for the sampling error of a small rate


def test_a_name_in_every_login_id_still_fails() -> None:
    ids = [f"bob-{secrets.token_hex(16)}" for _ in range(3)]
    result = check_ids(ids, "bob").results
    assert {r.item: r.status for r in result}["ID carries no user data"] is Status.FAIL


def test_a_name_too_short_to_tell_from_chance_is_skipped_not_failed() -> None:
    bits = id_bits([secrets.token_urlsafe(32) for _ in range(80)])
    ids = ["al" + secrets.token_urlsafe(32)[2:] for _ in range(2)]  # "al" in both, as chance could put it
    result = name_in_ids(ids, "al", bits)
    assert result.status is Status.SKIP
    assert "too short to tell from chance" in result.detail

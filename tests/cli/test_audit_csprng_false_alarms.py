"""Simulated audits of a correct site on the operating system's CSPRNG: false alarms stay rare.

One simulated run is what one audit decides about a sample of 80 session IDs of 256 bits
drawn with :mod:`secrets` (as sessionward's demo issues them, sampled by logging in): the
FIPS 140-2 tests on the sample's first 20,000 bits, the independence test on the 80 IDs,
and the user-name check for ``bob`` on the same IDs, base64url-encoded. Each decision is
made by the audit's own function, at its stated false-alarm rate of at most 1e-6, so at
most 3e-6 per run for the three.

The rate this proves. Real CSPRNG output cannot be replayed, and at 3e-6 per run some
alarm turns up now and then (2 in 1.5 million runs when measured, one a monobit count
5.6 standard deviations out): asking for none at all would fail the 10⁵-run test about
one time in eight. So the number of alarms must stay below the count that a rate of
3e-6 reaches with probability ≤ 1e-6 (the audit's own binomial threshold: 4 in 2x10⁴
runs, 6 in 10⁵). Checks whose true rate were 1e-4 or more (30 times the stated one)
fail the 10⁵-run test at least 19 times in 20; 4e-4 or more, the 2x10⁴-run one. No
alarm in *n* runs (the usual outcome) bounds the rate below 3/n at 95 % confidence:
3e-5 for the 10⁵ runs of the full campaign (marked ``campaign``: out of the suite, run it
with ``./run tests -m campaign``), 1.5e-4 for the 2x10⁴ runs of the suite. Proving 1e-6
itself takes the calibration at a countable rate (1 %), in ``test_audit_false_alarms``.
"""

from __future__ import annotations

import base64
import secrets

import pytest

from sessionward.audit.checks import Status
from sessionward.audit.ids import name_in_ids
from sessionward.audit.randomness import FIPS_BITS, fips_140_2_value, id_bits, independence_of
from sessionward.audit.stats import FALSE_ALARM_RATE, binomial_upper_threshold

SAMPLE = 80
ID_BYTES = 32
SAMPLE_BITS = SAMPLE * ID_BYTES * 8
BASE64URL = id_bits([secrets.token_urlsafe(ID_BYTES) for _ in range(SAMPLE)])
"""How the audit reads such IDs (the alphabet the user-name check reckons with)."""


def one_audit(user: str) -> list[str]:
    """The statistical decisions of one audit of a sample of fresh CSPRNG IDs; the alarms raised."""
    raw = [secrets.token_bytes(ID_BYTES) for _ in range(SAMPLE)]
    numbers = [int.from_bytes(r, "big") for r in raw]
    joined = int.from_bytes(b"".join(raw), "big")
    texts = [base64.urlsafe_b64encode(r).rstrip(b"=").decode() for r in raw]
    alarms = []
    fips = fips_140_2_value(joined >> (SAMPLE_BITS - FIPS_BITS))
    if not fips.passed:
        alarms.append(f"FIPS 140-2: {fips.detail}")
    independent = independence_of(numbers, ID_BYTES * 8)
    if not independent.passed:
        alarms.append(f"independence: {independent.detail}")
    named = name_in_ids(texts, user, BASE64URL)
    if named.status is Status.FAIL:
        alarms.append(f"user name: {named.detail}")
    return alarms


@pytest.mark.parametrize(
    "runs", [20_000, pytest.param(100_000, marks=pytest.mark.campaign)], ids=["2e4 runs", "1e5 runs (campaign)"]
)
def test_csprng_ids_raise_false_alarms_no_more_often_than_stated(runs: int) -> None:
    limit = binomial_upper_threshold(runs, 3 * FALSE_ALARM_RATE, FALSE_ALARM_RATE)
    assert limit is not None
    alarms = [alarm for _ in range(runs) for alarm in one_audit("bob")]
    assert len(alarms) < limit, alarms


def test_the_alarm_limits_are_the_ones_the_docstring_states() -> None:
    limits = [binomial_upper_threshold(runs, 3 * FALSE_ALARM_RATE, FALSE_ALARM_RATE) for runs in (20_000, 100_000)]
    assert limits == [4, 6]
    assert BASE64URL.encoding == "base64url"  # what check_ids reads such IDs as
    assert SAMPLE_BITS >= FIPS_BITS

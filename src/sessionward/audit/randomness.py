"""Statistical checks on a sample of session IDs, for ``sessionward audit``.

Pure functions: ID strings in, findings out. IDs are first turned back into the bits a
generator produced (:func:`id_bits`): hex and base64 are decoded exactly; any other
alphabet is read as a number in base *k* (the alphabet seen across the sample) and only
its low bits are kept, so an ID drawn uniformly from a 36-letter alphabet (Django's) is
not mistaken for a biased one. IDs of different lengths (a random number printed without
leading zeros) keep their common low bits.

On those bits run:

* the four tests of FIPS 140-2 (monobit, poker, runs, long run) on 20,000 bits;
* checks that need fewer bits and catch counters and timestamps: consecutive IDs must
  differ in about half their bits, and no bit position may be the same in every ID.

Every threshold is derived from a false-alarm rate (:data:`FALSE_ALARM_RATE`, one in a
million runs unless a caller asks otherwise), not copied from a standard. FIPS 140-2's
own bounds fail about one correct generator in a thousand (its monobit and poker bounds
are 1-in-10,000 tails each, its long-run limit of 26 a 3-in-10,000 one): an auditor
that cries wolf that often is ignored. The tests are FIPS's, the bounds are wider, and
the report states the rate.

Passing these proves nothing about a generator (a counter fed through SHA-256 passes);
failing them proves the IDs are predictable. That asymmetry is why the audit also looks
at length, uniqueness and the code's own claims elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from sessionward.audit.stats import (
    FALSE_ALARM_RATE,
    binomial_lower_threshold,
    binomial_upper_threshold,
    chi2_bounds,
    fair_coin_bounds,
    rate_text,
)

FIPS_BITS = 20_000
RUN_LENGTHS = (1, 2, 3, 4, 5, 6)
"""Run lengths the runs test counts; the last one counts that length and longer."""
PRACTICAL_BIAS = 0.05
"""Consecutive IDs must differ in 50 % ± this of their bits on average, and beyond chance, to fail."""
# Low bits dropped when reading an ID as a number in an arbitrary base: the top bits of
# a uniform number below k**n are biased unless k**n is a power of two.
_BASE_MARGIN_BITS = 16
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_MIN_B64_SYMBOLS = 50
_NIBBLE_STARTS = int("0001" * (FIPS_BITS // 4), 2)
_ALL_ONES = (1 << FIPS_BITS) - 1


@dataclass(frozen=True, slots=True)
class IdBits:
    """The bits recovered from a sample of IDs.

    Attributes:
        encoding: ``hex``, ``base64url``, ``base64`` or ``alphabet-<k>``.
        bits_per_char: Entropy each character can carry in that encoding.
        values: Each ID's bits as an integer (the first bit is the most significant).
        widths: How many bits each value holds.
        alphabet: The symbols an ID of this encoding is made of.
    """

    encoding: str
    bits_per_char: float
    values: list[int]
    widths: list[int]
    alphabet: str

    @property
    def total(self) -> int:
        """The number of bits recovered from the whole sample."""
        return sum(self.widths)

    def joined(self) -> tuple[int, int]:
        """All the bits, ID after ID, as one integer and its width."""
        value = 0
        for part, width in zip(self.values, self.widths, strict=True):
            value = (value << width) | part
        return value, self.total


@dataclass(frozen=True, slots=True)
class Finding:
    """The verdict of one statistical test.

    Attributes:
        passed: Whether the sample passed.
        detail: What was measured, for the report.
        skipped: The sample cannot support the test (too few IDs or bits for any outcome
            to stand out from chance): there is no verdict, and ``passed`` is false.
    """

    passed: bool
    detail: str
    skipped: bool = False


_HEX_ALPHABET = "0123456789abcdefABCDEF"
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def id_bits(values: Sequence[str]) -> IdBits:
    """Recover the generator's bits from ``values`` (see the module docstring)."""
    if values and all(_HEX.fullmatch(v) and len(v) % 2 == 0 for v in values):
        decoded = [bytes.fromhex(v) for v in values]
        return IdBits("hex", 4.0, *_from_bytes(decoded), _HEX_ALPHABET)
    symbols = set("".join(values))
    if len(symbols) >= _MIN_B64_SYMBOLS:
        for name, pattern, decode, alphabet in (
            ("base64url", _B64URL, base64.urlsafe_b64decode, _B64URL_ALPHABET),
            ("base64", _B64, base64.standard_b64decode, _B64_ALPHABET),
        ):
            if all(pattern.fullmatch(v) for v in values):
                try:
                    decoded = [decode(v.rstrip("=") + "=" * (-len(v.rstrip("=")) % 4)) for v in values]
                except (binascii.Error, ValueError):
                    continue
                return IdBits(name, 6.0, *_from_bytes(decoded), alphabet)
    ordered = "".join(sorted(symbols))
    base = len(ordered)
    if base < 2:
        return IdBits(f"alphabet-{base}", 0.0, [0 for _ in values], [0 for _ in values], ordered)
    index = {c: i for i, c in enumerate(ordered)}
    numbers = []
    for value in values:
        number = 0
        for char in value:
            number = number * base + index[char]
        numbers.append(number)
    shortest = min(len(v) for v in values)
    width = max(0, math.floor(shortest * math.log2(base)) - _BASE_MARGIN_BITS)
    kept = [n & ((1 << width) - 1) for n in numbers]
    return IdBits(f"alphabet-{base}", math.log2(base), kept, [width] * len(values), ordered)


def _from_bytes(decoded: list[bytes]) -> tuple[list[int], list[int]]:
    """Each ID as an integer; IDs of different lengths keep their common low bits."""
    shortest = min(len(d) for d in decoded)
    if all(len(d) == shortest for d in decoded):
        return [int.from_bytes(d, "big") for d in decoded], [8 * len(d) for d in decoded]
    width = 8 * shortest
    return [int.from_bytes(d, "big") & ((1 << width) - 1) for d in decoded], [width] * len(decoded)


# -- FIPS 140-2's four tests, at a stated false-alarm rate -------------------------------------


@dataclass(frozen=True, slots=True)
class FipsBounds:
    """The acceptance bounds of the four tests on :data:`FIPS_BITS` bits for one false-alarm rate.

    The rate is shared out by the union bound: an eighth each to monobit, poker and long
    run, half to the twelve run counts. Monobit is exact (a binomial); poker is its
    chi-square(15) approximation; each run count is matched to a binomial of the same
    mean and variance (runs of exactly *i* ones in *n* fair bits: mean ``n p``, variance
    ``n (p + p**2 (1 - 2 i))`` with ``p = 2**-(i + 2)``); the long run is bounded by the
    chance that a run of that length starts anywhere.
    """

    rate: float
    monobit: tuple[int, int]
    poker: tuple[float, float]
    runs: dict[int, tuple[int, int]]
    long_run: int

    @classmethod
    @functools.cache
    def for_rate(cls, rate: float = FALSE_ALARM_RATE) -> FipsBounds:
        """The bounds whose false alarms, all four tests together, stay within ``rate``."""
        share = rate / 8
        runs = {}
        for length in RUN_LENGTHS:
            p = 2.0 ** -(length + 2) if length < RUN_LENGTHS[-1] else 2.0 ** -(length + 1)
            mean = FIPS_BITS * p
            variance = FIPS_BITS * (p + p * p * (1 - 2 * length) if length < RUN_LENGTHS[-1] else p - 13 * p * p)
            matched_p = 1 - variance / mean
            trials = round(mean / matched_p)
            each = rate / 2 / (2 * len(RUN_LENGTHS)) / 2
            low = binomial_lower_threshold(trials, matched_p, each)
            high = binomial_upper_threshold(trials, matched_p, each)
            runs[length] = (low, (high or trials + 1) - 1)
        long_run = 2
        while FIPS_BITS * 2.0**-long_run + 2.0 ** -(long_run - 1) > share:
            long_run += 1
        return cls(rate, fair_coin_bounds(FIPS_BITS, share), chi2_bounds(15, share), runs, long_run)


def fips_140_2(bits: str, rate: float = FALSE_ALARM_RATE) -> Finding:
    """Run the four FIPS 140-2 tests on the first 20,000 bits of the ``0``/``1`` string ``bits``."""
    if len(bits) < FIPS_BITS:
        raise ValueError(f"FIPS 140-2 tests need {FIPS_BITS} bits, got {len(bits)}")
    return fips_140_2_value(int(bits[:FIPS_BITS], 2), rate)


def fips_140_2_value(value: int, rate: float = FALSE_ALARM_RATE) -> Finding:
    """Run the four tests on a :data:`FIPS_BITS`-bit integer (the first bit most significant)."""
    bounds = FipsBounds.for_rate(rate)
    failures = []
    ones = value.bit_count()
    if not bounds.monobit[0] <= ones <= bounds.monobit[1]:
        failures.append(f"monobit: {ones} ones, outside {bounds.monobit[0]}..{bounds.monobit[1]}")
    counts = _nibble_counts(value)
    poker = 16 / 5000 * sum(c * c for c in counts) - 5000
    if not bounds.poker[0] <= poker <= bounds.poker[1]:
        failures.append(f"poker: X={poker:.2f}, outside {bounds.poker[0]:.2f}..{bounds.poker[1]:.2f}")
    longest = 0
    for bit, ones_are in (("1", value), ("0", value ^ _ALL_ONES)):
        counted, run_longest = _runs(ones_are, bounds.long_run)
        longest = max(longest, run_longest)
        for length, (least, most) in bounds.runs.items():
            seen = counted[length]
            if not least <= seen <= most:
                plus = "+" if length == RUN_LENGTHS[-1] else ""
                failures.append(f"runs: {seen} runs of {length}{plus} {bit}s, outside {least}..{most}")
    if longest >= bounds.long_run:
        failures.append(f"long run: a run of {longest}+ equal bits (limit {bounds.long_run - 1})")
    chance = f"false-alarm rate ≤ {rate_text(rate)} per run"
    if failures:
        shown = "; ".join(failures[:3]) + (f" (+{len(failures) - 3} more)" if len(failures) > 3 else "")
        return Finding(False, f"{shown} ({chance})")
    return Finding(True, f"monobit, poker (X={poker:.1f}), runs and long run pass on {FIPS_BITS} bits ({chance})")


def _nibble_counts(value: int) -> list[int]:
    """How often each 4-bit value occurs among the :data:`FIPS_BITS` bits' 4-bit blocks.

    Bit *i* of every block is gathered at the blocks' lowest positions; the blocks equal
    to a value are where the four gathered bits (or their complements) are all set.
    """
    bit = [(value >> i) & _NIBBLE_STARTS for i in range(4)]
    clear = [b ^ _NIBBLE_STARTS for b in bit]
    high = [(bit[3] if v & 2 else clear[3]) & (bit[2] if v & 1 else clear[2]) for v in range(4)]
    low = [(bit[1] if v & 2 else clear[1]) & (bit[0] if v & 1 else clear[0]) for v in range(4)]
    return [(high[v >> 2] & low[v & 3]).bit_count() for v in range(16)]


def _runs(value: int, limit: int) -> tuple[dict[int, int], int]:
    """Count the runs of ones of each length in ``value``, and tell whether one reaches ``limit``.

    ``covered`` has bit *p* set when bits *p* .. *p+k-1* are all ones; a maximal run of
    length at least *k* has exactly one such *p* whose bit *p-1* is a zero (or absent).
    """
    at_least: dict[int, int] = {}
    covered = value
    starts = (value << 1) ^ (_ALL_ONES << 1 | 1)  # bit p-1 (or nothing) below bit p is a zero
    for length in range(1, RUN_LENGTHS[-1] + 2):
        at_least[length] = (covered & starts).bit_count()
        covered &= value >> length
    counted = {length: at_least[length] - at_least[length + 1] for length in RUN_LENGTHS[:-1]}
    counted[RUN_LENGTHS[-1]] = at_least[RUN_LENGTHS[-1]]
    longest = RUN_LENGTHS[-1] + 2  # what `covered` now stands for: runs of at least this length
    while covered and longest < limit:
        covered &= value >> longest
        longest += 1
    reached = longest if covered else 0
    return counted, reached


# -- independence: counters, timestamps, fixed bits --------------------------------------------


def independence(sample: IdBits, rate: float = FALSE_ALARM_RATE) -> Finding:
    """Check that consecutive IDs look unrelated: no counter, no timestamp, no fixed bits."""
    width = min(sample.widths, default=0)
    values = [v & ((1 << width) - 1) for v in sample.values]
    return independence_of(values, width, rate)


def independence_of(values: Sequence[int], width: int, rate: float = FALSE_ALARM_RATE) -> Finding:
    """The independence verdict on IDs of ``width`` random bits each, at a false-alarm rate of ``rate``.

    For independent uniform IDs the XORs of consecutive ones are independent and uniform:
    each pair differs in Binomial(width, 1/2) bits, and all pairs together in
    Binomial((n-1) width, 1/2); a bit position is the same in all *n* IDs with
    probability ``2**(1-n)``. The rate is shared by the union bound: 40 % to the closest
    pair, 40 % to the average, 20 % to the fixed positions (which are only looked for
    when there are enough IDs to tell one from chance).

    When no outcome could fail at that rate (no bits to compare: IDs of a few digits,
    whose top bits are dropped as biased; or too few IDs of too few bits), the finding
    is *skipped*: such IDs are judged by their length, not called dependent.
    """
    if len(values) < 2:
        return Finding(False, "fewer than two IDs to compare", skipped=True)
    if width < 1:
        return Finding(
            False, "the IDs are too short to test: no bits of them can be compared (see their length)", skipped=True
        )
    pairs = len(values) - 1
    differences = [(a ^ b).bit_count() for a, b in pairwise(values)]
    closest = min(differences)
    mean = sum(differences) / (pairs * width)
    least = binomial_lower_threshold(width, 0.5, 0.4 * rate / pairs)
    low_total, high_total = fair_coin_bounds(pairs * width, 0.4 * rate)
    chance = f"false-alarm rate ≤ {rate_text(rate)} per run"
    total = sum(differences)
    fixed_rate = width * 2.0 ** (1 - len(values))
    if least <= 0 and low_total <= 0 and high_total >= pairs * width and fixed_rate > 0.2 * rate:
        return Finding(
            False,
            f"{len(values)} IDs of {width} bits are too few to tell related IDs from chance "
            f"({chance}; see their length)",
            skipped=True,
        )
    beyond_chance = not low_total <= total <= high_total
    if closest < least or (beyond_chance and abs(mean - 0.5) > PRACTICAL_BIAS):
        return Finding(
            False,
            f"consecutive IDs differ in {mean:.0%} of their bits on average (closest pair: {closest} of {width}); "
            f"random IDs differ in about 50% ({chance})",
        )
    if fixed_rate <= 0.2 * rate:
        all_ones = all_zeros = (1 << width) - 1
        for value in values:
            all_ones &= value
            all_zeros &= ~value
        constant = (all_ones | all_zeros).bit_count()
        if constant:
            return Finding(
                False, f"{constant} of {width} bit positions are the same in all {len(values)} IDs ({chance})"
            )
        positions = "no bit position is fixed"
    else:
        positions = f"too few IDs ({len(values)}) to look for fixed bit positions"
    return Finding(True, f"consecutive IDs differ in {mean:.0%} of their bits; {positions} ({chance})")

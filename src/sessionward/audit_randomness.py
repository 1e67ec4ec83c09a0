"""Statistical checks on a sample of session IDs, for ``sessionward audit``.

Pure functions: text IDs in, findings out. IDs are first turned back into the bits a
generator produced (:func:`id_bits`): hex and base64 are decoded exactly; any other
alphabet is read as a number in base *k* (the alphabet seen across the sample) and only
its low bits are kept, so an ID drawn uniformly from a 36-letter alphabet (Django's) is
not mistaken for a biased one.

On those bits run:

* the FIPS 140-2 power-up tests on 20,000 bits (monobit, poker, runs, long run; the
  bounds of FIPS 140-2 §4.9.1 before its 2002 change notice);
* checks that need fewer bits and catch counters and timestamps: consecutive IDs must
  differ in about half their bits, and no bit position may be the same in every ID.

Passing these proves nothing about a generator (a counter fed through SHA-256 passes);
failing them proves the IDs are predictable. That asymmetry is why the audit also looks
at length, uniqueness and the code's own claims elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

FIPS_BITS = 20_000
MONOBIT_RANGE = (9725, 10275)
POKER_RANGE = (2.16, 46.17)
RUN_RANGES = {1: (2315, 2685), 2: (1114, 1386), 3: (527, 723), 4: (240, 384), 5: (103, 209), 6: (103, 209)}
LONG_RUN = 26
# Low bits dropped when reading an ID as a number in an arbitrary base: the top bits of
# a uniform number below k**n are biased unless k**n is a power of two.
_BASE_MARGIN_BITS = 16
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_MIN_B64_SYMBOLS = 50


@dataclass(frozen=True, slots=True)
class IdBits:
    """The bits recovered from a sample of IDs.

    Attributes:
        encoding: ``hex``, ``base64url``, ``base64`` or ``alphabet-<k>``.
        bits_per_char: Entropy each character can carry in that encoding.
        ids: Each ID's bits as a ``0``/``1`` string (possibly empty).
    """

    encoding: str
    bits_per_char: float
    ids: list[str]

    @property
    def total(self) -> int:
        """The number of bits recovered from the whole sample."""
        return sum(len(bits) for bits in self.ids)


@dataclass(frozen=True, slots=True)
class Finding:
    """The verdict of one statistical test."""

    passed: bool
    detail: str


def id_bits(values: Sequence[str]) -> IdBits:
    """Recover the generator's bits from ``values`` (see the module docstring)."""
    if values and all(_HEX.fullmatch(v) and len(v) % 2 == 0 for v in values):
        return IdBits("hex", 4.0, [_bits(bytes.fromhex(v)) for v in values])
    symbols = set("".join(values))
    if len(symbols) >= _MIN_B64_SYMBOLS:
        for name, pattern, decode in (
            ("base64url", _B64URL, base64.urlsafe_b64decode),
            ("base64", _B64, base64.standard_b64decode),
        ):
            if all(pattern.fullmatch(v) for v in values):
                try:
                    decoded = [decode(v.rstrip("=") + "=" * (-len(v.rstrip("=")) % 4)) for v in values]
                except (binascii.Error, ValueError):
                    continue
                return IdBits(name, 6.0, [_bits(d) for d in decoded])
    alphabet = sorted(symbols)
    base = len(alphabet)
    if base < 2:
        return IdBits(f"alphabet-{base}", 0.0, ["" for _ in values])
    index = {c: i for i, c in enumerate(alphabet)}
    ids = []
    for value in values:
        number = 0
        for char in value:
            number = number * base + index[char]
        width = math.floor(len(value) * math.log2(base)) - _BASE_MARGIN_BITS
        ids.append(format(number % (1 << width), f"0{width}b") if width > 0 else "")
    return IdBits(f"alphabet-{base}", math.log2(base), ids)


def _bits(data: bytes) -> str:
    return "".join(format(byte, "08b") for byte in data)


def fips_140_2(bits: str) -> Finding:
    """Run the four FIPS 140-2 tests on the first 20,000 bits of ``bits``."""
    if len(bits) < FIPS_BITS:
        raise ValueError(f"FIPS 140-2 tests need {FIPS_BITS} bits, got {len(bits)}")
    sample = bits[:FIPS_BITS]
    failures = []
    ones = sample.count("1")
    if not MONOBIT_RANGE[0] < ones < MONOBIT_RANGE[1]:
        failures.append(f"monobit: {ones} ones, outside {MONOBIT_RANGE[0]}..{MONOBIT_RANGE[1]}")
    counts = [0] * 16
    for start in range(0, FIPS_BITS, 4):
        counts[int(sample[start : start + 4], 2)] += 1
    poker = 16 / 5000 * sum(c * c for c in counts) - 5000
    if not POKER_RANGE[0] < poker < POKER_RANGE[1]:
        failures.append(f"poker: X={poker:.2f}, outside {POKER_RANGE[0]}..{POKER_RANGE[1]}")
    runs, longest = _runs(sample)
    for bit in "01":
        for length, (low, high) in RUN_RANGES.items():
            seen = runs[bit][length]
            if not low <= seen <= high:
                failures.append(
                    f"runs: {seen} runs of {length}{'+' if length == 6 else ''} {bit}s, outside {low}..{high}"
                )
    if longest >= LONG_RUN:
        failures.append(f"long run: a run of {longest} equal bits (limit {LONG_RUN - 1})")
    if failures:
        return Finding(False, "; ".join(failures[:3]) + (f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""))
    return Finding(True, f"monobit, poker (X={poker:.1f}), runs and long run pass on {FIPS_BITS} bits")


def _runs(bits: str) -> tuple[dict[str, dict[int, int]], int]:
    runs = {"0": dict.fromkeys(range(1, 7), 0), "1": dict.fromkeys(range(1, 7), 0)}
    longest = 0
    length = 0
    for position, bit in enumerate(bits):
        length += 1
        if position + 1 == len(bits) or bits[position + 1] != bit:
            runs[bit][min(length, 6)] += 1
            longest = max(longest, length)
            length = 0
    return runs, longest


def independence(sample: IdBits) -> Finding:
    """Check that consecutive IDs look unrelated: no counter, no timestamp, no fixed bits."""
    ids = [bits for bits in sample.ids if bits]
    lengths = {len(bits) for bits in ids}
    if len(ids) < 2:
        return Finding(False, "too few bits in the IDs to compare them (they are too short)")
    if len(lengths) > 1:
        return Finding(False, f"the IDs vary in length ({min(lengths)}..{max(lengths)} bits): a counter or timestamp?")
    width = lengths.pop()
    fractions = [sum(a != b for a, b in zip(x, y, strict=True)) / width for x, y in pairwise(ids)]
    mean = sum(fractions) / len(fractions)
    # A fair coin per bit: each fraction has standard deviation 0.5/sqrt(width).
    spread = 0.5 / math.sqrt(width)
    if min(fractions) < 0.5 - 6 * spread or abs(mean - 0.5) > max(0.05, 6 * spread / math.sqrt(len(fractions))):
        return Finding(
            False,
            f"consecutive IDs differ in {mean:.0%} of their bits on average (min {min(fractions):.0%}); "
            "random IDs differ in about 50%",
        )
    if len(ids) >= 20:
        constant = sum(1 for column in zip(*ids, strict=True) if len(set(column)) == 1)
        if constant:
            return Finding(False, f"{constant} of {width} bit positions are the same in all {len(ids)} IDs")
    return Finding(True, f"consecutive IDs differ in {mean:.0%} of their bits; no bit position is fixed")

"""The audit's checks on session IDs themselves: format, length, uniqueness, user data, randomness.

Pure functions over cookie values the auditor collected. Each value is first read
(:mod:`sessionward.audit.values`: percent-encoding undone, signed formats told apart), so
that the statistics see the ID and nothing else. A cookie that carries the session data
instead of an ID gets a verdict on that, and no statistics.

Every statistical verdict here has a false-alarm rate of at most
:data:`~sessionward.audit.stats.FALSE_ALARM_RATE` per run on IDs from a CSPRNG, and its
report line says so.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from sessionward.audit.checks import CheckResult, Status
from sessionward.audit.randomness import FIPS_BITS, IdBits, fips_140_2_value, id_bits, independence
from sessionward.audit.stats import FALSE_ALARM_RATE, binomial_upper_threshold, rate_text
from sessionward.audit.values import OPAQUE, SampleFormat, ValueKind, data_keys, data_strings, read_sample

MIN_ID_BITS = 64
"""Below this, an ID is guessable (at least 64 bits of entropy)."""
RECOMMENDED_ID_BITS = 128
FORMAT_ITEM = "session data stays on the server"
ID_ITEMS = ("ID length and entropy", "ID uniqueness", "ID randomness (FIPS 140-2)", "ID independence")
USER_DATA_ITEM = "ID carries no user data"
_DECODED_ENCODINGS = ("hex", "base64url", "base64")


@dataclass(frozen=True, slots=True)
class IdFindings:
    """What the ID checks found: the sample's format, its bits (when it holds IDs), the report lines."""

    sample: SampleFormat | None
    bits: IdBits | None
    results: list[CheckResult]


def check_ids(
    values: Sequence[str],
    username: str | None = None,
    *,
    login_values: Sequence[str] | None = None,
    rate: float = FALSE_ALARM_RATE,
) -> IdFindings:
    """Check a sample of fresh session cookie values.

    Args:
        values: Fresh cookie values, as the site set them, in the order they came.
        username: The signed-in account's name, looked for in the IDs (or the data).
        login_values: Values the site set in answer to a login, where user data would be;
            ``values`` when not given.
        rate: The false-alarm rate each statistical check is held to.
    """
    if not values:
        reason = "no session cookie value was collected"
        return IdFindings(None, None, [CheckResult(name, Status.SKIP, reason) for name in (FORMAT_ITEM, *ID_ITEMS)])
    sample = read_sample(values)
    results = [check_cookie_format(sample)]
    logins = read_sample(login_values) if login_values else sample
    if sample.kind is not ValueKind.ID:
        why = (
            "the cookie holds the session data, not an ID"
            if sample.kind is ValueKind.DATA
            else "the value is encrypted: no ID can be read from it"
        )
        results.extend(CheckResult(name, Status.SKIP, why) for name in ID_ITEMS[:2])
        if username:
            results.append(check_user_data(logins, username, None, rate))
        results.extend(CheckResult(name, Status.SKIP, why) for name in ID_ITEMS[2:])
        return IdFindings(sample, None, results)
    ids = sample.ids
    if len(ids) < 2:
        reason = "fewer than two fresh IDs could be collected"
        results.extend(CheckResult(name, Status.SKIP, reason) for name in ID_ITEMS)
        return IdFindings(sample, None, results)
    bits = id_bits(ids)
    results.append(check_entropy(ids, bits, sample))
    results.append(check_uniqueness(ids, bits))
    if username:
        login_bits = id_bits(logins.ids) if logins.kind is ValueKind.ID and logins.ids else bits
        results.append(check_user_data(logins, username, login_bits, rate))
    if bits.total >= FIPS_BITS:
        joined, width = bits.joined()
        finding = fips_140_2_value(joined >> (width - FIPS_BITS), rate)
        results.append(CheckResult(ID_ITEMS[2], Status.PASS if finding.passed else Status.FAIL, finding.detail))
    else:
        results.append(
            CheckResult(
                ID_ITEMS[2], Status.SKIP, f"only {bits.total} bits from {len(ids)} IDs; the tests need {FIPS_BITS}"
            )
        )
    finding = independence(bits, rate)
    verdict = Status.SKIP if finding.skipped else Status.PASS if finding.passed else Status.FAIL
    results.append(CheckResult(ID_ITEMS[3], verdict, finding.detail))
    return IdFindings(sample, bits, results)


def check_cookie_format(sample: SampleFormat) -> CheckResult:
    """The cookie should carry an ID of a server-side session, not the session data itself."""
    shown = sample.format.described
    if sample.kind is ValueKind.ID:
        return CheckResult(FORMAT_ITEM, Status.PASS, f"{shown}: the cookie holds only an ID")
    if sample.kind is ValueKind.DATA:
        keys = ", ".join(data_keys(sample.format.data)[:6])
        held = f" (keys: {keys})" if keys else ""
        return CheckResult(
            FORMAT_ITEM,
            Status.FAIL,
            f"{shown}: the session data travels in the cookie{held}, readable by whoever holds it, "
            "and a copy stays valid whatever the server does",
        )
    return CheckResult(
        FORMAT_ITEM,
        Status.WARN,
        f"{shown}: encrypted; whether it holds the data (which the server cannot revoke) or an ID "
        "cannot be told from outside",
    )


def check_entropy(ids: Sequence[str], bits: IdBits, sample: SampleFormat) -> CheckResult:
    """Enough entropy in the ID: at least 64 bits, 128 recommended."""
    item = ID_ITEMS[0]
    exact = bits.encoding in _DECODED_ENCODINGS
    length = min(len(i) for i in ids)
    entropy = min(bits.widths) if exact else length * bits.bits_per_char
    where = (
        "" if sample.format.format == OPAQUE and not sample.format.percent_encoded else f"{sample.format.described}; "
    )
    described = f"{where}{length} chars, {bits.encoding}: about {entropy:.0f} bits"
    if entropy >= RECOMMENDED_ID_BITS:
        return CheckResult(item, Status.PASS, described)
    if entropy >= MIN_ID_BITS:
        return CheckResult(item, Status.WARN, f"{described}; 128 are recommended")
    return CheckResult(item, Status.FAIL, f"{described}; at least 64 are required")


def check_uniqueness(ids: Sequence[str], bits: IdBits) -> CheckResult:
    """No ID may repeat: a repeat is two visitors sharing a session."""
    item = ID_ITEMS[1]
    width = min(bits.widths) if bits.encoding in _DECODED_ENCODINGS else len(min(ids, key=len)) * bits.bits_per_char
    pairs = len(ids) * (len(ids) - 1) / 2
    chance = rate_text(min(1.0, pairs * 2.0**-width)) if width else "1"
    duplicates = len(ids) - len(set(ids))
    if duplicates:
        return CheckResult(
            item,
            Status.FAIL,
            f"{duplicates} repeated among {len(ids)} fresh IDs (chance for random IDs this long: ≤ {chance})",
        )
    return CheckResult(item, Status.PASS, f"{len(ids)} fresh IDs, all different")


def check_user_data(logins: SampleFormat, username: str, bits: IdBits | None, rate: float) -> CheckResult:
    """The user's name must not be in the cookie: in its readable data, or in its ID beyond chance."""
    if logins.kind is ValueKind.DATA:
        for value in logins.values:
            for key, text in data_strings(value.data):
                if text.casefold() == username.casefold():
                    where = f" (key {key!r})" if key else ""
                    return CheckResult(
                        USER_DATA_ITEM,
                        Status.FAIL,
                        f"the user name {username!r} is in the cookie's readable data{where}",
                    )
        return CheckResult(USER_DATA_ITEM, Status.PASS, "the user name is not among the cookie data's values")
    if logins.kind is ValueKind.SEALED or bits is None:
        return CheckResult(USER_DATA_ITEM, Status.SKIP, "the value is encrypted: it cannot be read")
    return name_in_ids(logins.ids, username, bits, rate)


def name_in_ids(ids: Sequence[str], username: str, bits: IdBits, rate: float = FALSE_ALARM_RATE) -> CheckResult:
    """Whether ``username`` is in more of ``ids`` than chance allows at the false-alarm ``rate``.

    A short name turns up in random IDs by chance ("bob" is in about 8 % of 80 random
    base64 IDs' text): one hit proves nothing. :func:`name_chance` bounds the chance that
    one random ID holds the name; the number of IDs holding it is then at most binomial,
    and the check fails only when that number is one chance reaches with probability
    ``rate`` at most.
    """
    hits = sum(1 for i in ids if holds_name(i, username, bits.encoding))
    where = f"{len(ids)} ID{'s' if len(ids) != 1 else ''} issued at login"
    false_alarm = f"false-alarm rate ≤ {rate_text(rate)} per run"
    if hits == 0:
        return CheckResult(
            USER_DATA_ITEM, Status.PASS, f"the user name {username!r} is in none of the {where} ({false_alarm})"
        )
    chance = name_chance(username, max(len(i) for i in ids), bits)
    threshold = binomial_upper_threshold(len(ids), chance, rate)
    if threshold is None:
        return CheckResult(
            USER_DATA_ITEM,
            Status.SKIP,
            f"the user name {username!r} is in {hits} of the {where}, but it is too short to tell from chance "
            f"with so few IDs at a {false_alarm}",
        )
    if hits >= threshold:
        return CheckResult(
            USER_DATA_ITEM,
            Status.FAIL,
            f"the user name {username!r} is in {hits} of the {where}; chance puts it in {threshold} or more "
            f"with probability ≤ {rate_text(rate)}",
        )
    return CheckResult(
        USER_DATA_ITEM,
        Status.PASS,
        f"the user name {username!r} is in {hits} of the {where}, as random IDs hold it by chance "
        f"(a failure needs {threshold}; {false_alarm})",
    )


def holds_name(value: str, username: str, encoding: str) -> bool:
    """Whether the ID's text, or its decoded bytes, hold ``username`` (ignoring case)."""
    needle = username.casefold()
    if needle in value.casefold():
        return True
    decoded = _decoded(value, encoding)
    return decoded is not None and needle.encode() in decoded.lower()


def name_chance(username: str, length: int, bits: IdBits) -> float:
    """An upper bound on the chance that a random ID of ``length`` chars holds ``username``.

    The text holds it at one of ``length - k + 1`` places, each with the chance that every
    character of the ID's alphabet there matches, ignoring case; the decoded bytes hold it
    at one of their places with chance ``(2/256)`` per letter and ``1/256`` per other byte.
    The union bound adds both.
    """
    needle = username.casefold()
    alphabet = bits.alphabet or "".join(map(chr, range(32, 127)))
    per_place = 1.0
    for char in needle:
        per_place *= sum(1 for s in alphabet if s.casefold() == char) / len(alphabet)
    total = max(0, length - len(needle) + 1) * per_place
    if bits.encoding in _DECODED_ENCODINGS:
        raw = needle.encode()
        decoded_length = int(length * bits.bits_per_char // 8)
        per_byte = 1.0
        for byte in raw:
            per_byte *= (2 if chr(byte).isascii() and chr(byte).isalpha() else 1) / 256
        total += max(0, decoded_length - len(raw) + 1) * per_byte
    return min(1.0, total)


def _decoded(value: str, encoding: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        if encoding in ("base64url", "base64"):
            stripped = value.rstrip("=")
            padded = stripped + "=" * (-len(stripped) % 4)
            decode = base64.urlsafe_b64decode if encoding == "base64url" else base64.standard_b64decode
            return decode(padded)
    except (binascii.Error, ValueError):
        return None
    return None

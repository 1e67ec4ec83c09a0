"""Session IDs: CSPRNG, 256 bits by default, checked before any store access, hashed at rest (F1, F2)."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import pytest

from sessionward.core import ids


def test_default_id_carries_256_bits_in_url_safe_text() -> None:
    raw = ids.generate_id()
    assert len(raw) == 43  # 32 bytes of base64url without padding
    assert ids.is_well_formed(raw)
    assert set(raw) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("bits", [64, 120, 130, 1024])
def test_weak_or_odd_entropy_is_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="entropy"):
        ids.generate_id(bits)


def test_ids_do_not_repeat_and_look_random() -> None:
    sample = [ids.generate_id() for _ in range(2000)]
    assert len(set(sample)) == len(sample)
    # Shannon entropy of the characters is close to log2(64) = 6 bits per character.
    counts = Counter("".join(sample))
    total = sum(counts.values())
    entropy = -sum(n / total * math.log2(n / total) for n in counts.values())
    assert entropy > 5.95


@pytest.mark.parametrize(
    "candidate",
    ["", "short", "a" * 21, "a" * 87, "a" * 42 + "=", "a" * 42 + "+", "a" * 42 + "/", "ä" * 43, "a" * 42 + "\n"],
)
def test_malformed_ids_are_recognized(candidate: str) -> None:
    assert not ids.is_well_formed(candidate)


def test_storage_key_is_sha256_and_handle_is_a_prefix_of_it() -> None:
    raw = ids.generate_id()
    key = ids.storage_key(raw)
    assert key == hashlib.sha256(raw.encode()).hexdigest()
    assert ids.is_key(key)
    handle = ids.handle_of(key)
    assert ids.is_handle(handle)
    assert key.startswith(handle)
    assert handle not in raw
    assert raw not in key


def test_sealed_successor_opens_only_with_the_old_id() -> None:
    old, new = ids.generate_id(), ids.generate_id()
    sealed = ids.seal_successor(old, new)
    assert new not in sealed
    assert ids.open_successor(old, sealed) == new
    assert ids.open_successor(ids.generate_id(), sealed) != new
    assert ids.open_successor(old, "zz") is None

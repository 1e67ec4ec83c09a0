"""Generate, check and hash session IDs.

Invariants:

* An ID is ``secrets.token_urlsafe`` output: URL-safe base64 without padding, drawn from
  the OS CSPRNG. It carries no user data, no counter and no time. If the OS generator
  fails, the exception propagates: there is no fallback generator.
* Stores never see an ID. They see its *key*, the hex SHA-256 of the ID, so a dump of the
  store yields no usable cookie.
* The *handle* is a short prefix of the key: safe to show in lists and logs, useless as a
  cookie, and it reveals nothing about the ID (SHA-256 is one-way).
* :func:`is_well_formed` runs before any store access: a value that could never have been
  issued never reaches a store.
"""

from __future__ import annotations

import hashlib
import re
import secrets

MIN_ID_BITS = 128
DEFAULT_ID_BITS = 256
MAX_ID_BITS = 512
HANDLE_LENGTH = 16

# Base64url lengths of 128..512-bit IDs; anything outside cannot be one of ours.
_MIN_LENGTH = -(-MIN_ID_BITS // 6)
_MAX_LENGTH = -(-MAX_ID_BITS // 6)
_ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{{_MIN_LENGTH},{_MAX_LENGTH}}}")
_KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
_HANDLE_PATTERN = re.compile(rf"[0-9a-f]{{{HANDLE_LENGTH}}}")


def generate_id(bits: int = DEFAULT_ID_BITS) -> str:
    """Return a new session ID with ``bits`` of entropy from the OS CSPRNG."""
    if bits < MIN_ID_BITS or bits > MAX_ID_BITS or bits % 8:
        raise ValueError(f"ID entropy must be a multiple of 8 from {MIN_ID_BITS} to {MAX_ID_BITS} bits")
    return secrets.token_urlsafe(bits // 8)


def is_well_formed(raw: str) -> bool:
    """Tell whether ``raw`` has the shape of an ID this library could have issued."""
    return _ID_PATTERN.fullmatch(raw) is not None


def storage_key(raw: str) -> str:
    """Return the key a store files the session under: the hex SHA-256 of the ID."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def handle_of(key: str) -> str:
    """Return the public handle of the session stored under ``key``."""
    return key[:HANDLE_LENGTH]


def is_key(value: str) -> bool:
    """Tell whether ``value`` is shaped like a storage key."""
    return _KEY_PATTERN.fullmatch(value) is not None


def is_handle(value: str) -> bool:
    """Tell whether ``value`` is shaped like a handle."""
    return _HANDLE_PATTERN.fullmatch(value) is not None


def seal_successor(old_raw: str, new_raw: str) -> str:
    """Encrypt the rotated-to ID under the rotated-from ID, for the grace period.

    During renewal's grace period a request may still carry the old ID; the store keeps the
    new ID sealed with a one-time pad derived from the old one, so the middleware can hand
    that client its new cookie while a dump of the store (which holds only hashes) still
    yields nothing: opening the seal needs the old raw ID.
    """
    plain = new_raw.encode("ascii")
    pad = hashlib.shake_256(b"sessionward-successor\x00" + old_raw.encode("ascii")).digest(len(plain))
    return bytes(a ^ b for a, b in zip(plain, pad, strict=True)).hex()


def open_successor(old_raw: str, sealed: str) -> str | None:
    """Reverse :func:`seal_successor`; return ``None`` if the result is not an ID."""
    try:
        data = bytes.fromhex(sealed)
    except ValueError:
        return None
    pad = hashlib.shake_256(b"sessionward-successor\x00" + old_raw.encode("ascii")).digest(len(data))
    try:
        candidate = bytes(a ^ b for a, b in zip(data, pad, strict=True)).decode("ascii")
    except UnicodeDecodeError:
        return None
    return candidate if is_well_formed(candidate) else None

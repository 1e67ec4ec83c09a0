"""Strategies shared by the fuzz targets: well-formed values, and hostile ones near them.

Random bytes alone rarely get past a JSON parser, so the decoders are fed what a store
really holds (entries the library itself encodes) with a few fields swapped for hostile
values: the wrong JSON type, text where a number belongs, numbers no float can hold,
duplicate or unknown keys, truncations. Hypothesis shrinks a failure to the fewest such
edits, which makes the failing inputs readable.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import orjson
from hypothesis import strategies as st
from msgspec.structs import asdict

from sessionward.core import ids
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone

ID_ALPHABET = string.ascii_letters + string.digits + "-_"

raw_ids = st.text(ID_ALPHABET, min_size=22, max_size=86)
"""IDs of the shape this library issues (128 to 512 bits of base64url)."""

unicode_text = st.text(st.characters(codec="utf-8"), max_size=12)
"""Text every codec here can write (no lone surrogates)."""

any_text = st.text(st.characters(exclude_categories=()) | st.sampled_from("\ud800\udc00\udfff"), max_size=12)
"""Any ``str``, lone surrogates included."""

times = st.floats(min_value=0.0, max_value=4e9, allow_nan=False, allow_infinity=False)
"""Finite timestamps, as the engine makes them (seconds since the epoch)."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | unicode_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(unicode_text, children, max_size=3),
    max_leaves=8,
)
"""JSON values that :func:`sessionward.core.records.dumps` writes and reads back."""

json_data = st.dictionaries(unicode_text, json_values, max_size=3)

HOSTILE_JSON = (
    b'"soon"',
    b'"abc"',
    b'""',
    b'"nan"',
    b'"inf"',
    b'"1e999"',
    b'"5"',
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"1e308",
    b"-0.0",
    b"0",
    b"-1",
    b"5",
    b"1.5",
    b"true",
    b"false",
    b"null",
    b"[]",
    b"{}",
    b"[1]",
    b'{"a":1}',
    b"99999999999999999999999999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b'"\\ud800"',
    b'"\\u0000"',
    b'"logged_out"',
    b'"LOGGED_OUT"',
    b'"\xff"',
    b"",
    b"01",
)
"""JSON texts (some not JSON at all) that decoders meet in a corrupt or forged entry."""

hostile_json = st.sampled_from(HOSTILE_JSON) | json_values.map(orjson.dumps)

HOSTILE_NUMBERS = (
    b"abc",
    b"",
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b"Infinity",
    b"1e999",
    b"-1e999",
    b"1_000",
    b" 5 ",
    b"\xff",
    b"5",
    b"1.5",
    b"0x10",
    b"9" * 400,
    b"9" * 5000,
    b"-0",
    b"1e-400",
    b"\x00",
)
"""Texts where a store keeps a number as text (Redis hash fields)."""

hostile_number_text = (
    st.sampled_from(HOSTILE_NUMBERS)
    | st.floats().map(lambda value: repr(value).encode())
    | st.integers().map(lambda value: str(value).encode())
    | st.binary(max_size=8)
)

META_FIELDS = tuple(SessionMeta.__struct_fields__)
TOMB_FIELDS = tuple(Tombstone.__struct_fields__)


@dataclass(frozen=True)
class Subject:
    """The session a decoder is asked about: the ID the client holds and its key."""

    raw_id: str
    key: str


subjects = raw_ids.map(lambda raw: Subject(raw, ids.storage_key(raw)))
optional_text = st.none() | unicode_text
optional_time = st.none() | times


@st.composite
def metas(draw: st.DrawFn) -> SessionMeta:
    """Return metadata of any well-typed shape (times in any order: the engine copes)."""
    return SessionMeta(
        created_at=draw(times),
        last_access_at=draw(times),
        rotated_at=draw(times),
        absolute_deadline=draw(times),
        user=draw(optional_text),
        auth_at=draw(optional_time),
        elevated_until=draw(optional_time),
        ip=draw(optional_text),
        user_agent=draw(optional_text),
        binding=draw(optional_text),
        csrf_token=draw(optional_text),
    )


@st.composite
def records(draw: st.DrawFn, subject: Subject) -> SessionRecord:
    """Return a live record stored under ``subject``'s key."""
    return SessionRecord(
        key=subject.key,
        meta=draw(metas()),
        data=draw(json_data),
        expires_at=draw(times),
        version=draw(st.integers(min_value=0, max_value=2**31)),
        retain_until=draw(times),
    )


@st.composite
def tombstones(draw: st.DrawFn, subject: Subject) -> Tombstone:
    """Return a tombstone under ``subject``'s key; after a renewal, with a seal it can open."""
    reason = draw(st.sampled_from(EndReason))
    successor = draw(st.none() | raw_ids)
    return Tombstone(
        key=subject.key,
        reason=reason,
        user=draw(optional_text),
        ended_at=draw(times),
        expires_at=draw(times),
        successor_key=None if successor is None else ids.storage_key(successor),
        sealed_successor=None if successor is None else ids.seal_successor(subject.raw_id, successor),
        grace_until=None if successor is None else draw(times),
    )


def entries(subject: Subject) -> st.SearchStrategy[SessionRecord | Tombstone]:
    """Return records or tombstones stored under ``subject``'s key."""
    return records(subject) | tombstones(subject)


Pairs = tuple[tuple[str, bytes], ...]
"""A JSON object as its members in order, each value as JSON text (duplicates possible)."""


def pairs_of(struct: SessionMeta | Tombstone) -> Pairs:
    """Return a struct's JSON members, each value encoded on its own."""
    return tuple((name, orjson.dumps(value)) for name, value in asdict(struct).items())


def encode_pairs(pairs: Pairs) -> bytes:
    """Return the JSON object text of ``pairs``, written as they are (hostile texts too)."""
    return b"{" + b",".join(orjson.dumps(name) + b":" + value for name, value in pairs) + b"}"


@st.composite
def mutated_pairs(draw: st.DrawFn, pairs: Pairs, names: tuple[str, ...], least: int = 0) -> Pairs:
    """Return ``pairs`` with ``least`` to three members set to hostile JSON, dropped or added."""
    edited = list(pairs)
    for _ in range(draw(st.integers(min_value=least, max_value=3))):
        action = draw(st.sampled_from(("set", "drop", "add")))
        name = draw(st.sampled_from(names)) if action != "add" else draw(st.sampled_from(names) | unicode_text)
        if action == "drop":
            edited = [(member, value) for member, value in edited if member != name]
            continue
        value = draw(hostile_json)
        at = next((index for index, (member, _value) in enumerate(edited) if member == name), None)
        if action == "set" and at is not None:
            edited[at] = (name, value)
        else:
            edited.append((name, value))  # "add" of a known name: a duplicate member
    return tuple(edited)


@st.composite
def corrupted(draw: st.DrawFn, document: bytes) -> bytes:
    """Return ``document`` unchanged, cut short, or replaced by other bytes or JSON."""
    how = draw(st.sampled_from(("keep", "keep", "keep", "truncate", "replace", "bytes")))
    if how == "truncate":
        return document[: draw(st.integers(min_value=0, max_value=max(0, len(document) - 1)))]
    if how == "replace":
        return draw(hostile_json)
    if how == "bytes":
        return draw(st.binary(max_size=40))
    return document

"""Fuzz targets of the record decoders: what a store hands back, however corrupt or forged.

Each target starts from an entry the library itself encodes for that store, edits a few
fields into hostile values (or leaves it alone: then it must read back equal), decodes,
checks every field's type (:mod:`fuzz.checks`) and drives the engine over the result.
Allowed outcomes: a well-typed entry, ``None`` (nothing there, or gone), or
:class:`~sessionward.core.errors.StoreError`. Anything else is a failure.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import reject
from hypothesis import strategies as st
from msgspec.structs import replace

from fuzz.checks import check_engine, check_entry, check_meta, check_record, check_tombstone, expect
from fuzz.hostile import (
    META_FIELDS,
    TOMB_FIELDS,
    Pairs,
    Subject,
    any_text,
    corrupted,
    encode_pairs,
    entries,
    hostile_json,
    hostile_number_text,
    metas,
    mutated_pairs,
    pairs_of,
    subjects,
    times,
    tombstones,
    unicode_text,
)
from sessionward.core.errors import StoreError
from sessionward.core.ids import handle_of
from sessionward.core.records import (
    Entry,
    SessionMeta,
    SessionRecord,
    Tombstone,
    dumps,
    meta_from_json,
    meta_to_json,
    meta_to_packed,
    tombstone_from_json,
    tombstone_to_json,
    tombstone_to_packed,
)
from sessionward.stores import _file_io as file_io
from sessionward.stores import _redis_layout as redis_layout
from sessionward.stores.sql import SqlStore


def _times_of(entry: Entry) -> list[float]:
    if isinstance(entry, Tombstone):
        return [entry.ended_at, entry.expires_at, *([entry.grace_until] if entry.grace_until is not None else [])]
    meta = entry.meta
    return [entry.expires_at, entry.retain_until, meta.last_access_at, meta.absolute_deadline, meta.rotated_at]


def nows(entry: Entry) -> st.SearchStrategy[float]:
    """Return clock readings near the entry's own times (on both sides of each) or anywhere."""
    near = st.sampled_from(_times_of(entry))
    return times | near | st.tuples(near, st.sampled_from((-1.0, -1e-6, 1e-6, 1.0))).map(sum)


# -- core/records.py::meta_from_json / tombstone_from_json ------------------------------------


@dataclass(frozen=True)
class JsonCase:
    """A stored metadata or tombstone JSON document, and the request that reads it."""

    kind: str
    document: bytes | str
    raw_id: str
    now: float
    original: SessionMeta | Tombstone | None = field(default=None, repr=False)


@st.composite
def json_cases(draw: st.DrawFn) -> JsonCase:
    """Return metadata or tombstone JSON, edited or not, as bytes or as text."""
    subject = draw(subjects)
    struct: SessionMeta | Tombstone
    if draw(st.booleans()):
        kind, struct, names = "meta", draw(metas()), META_FIELDS
    else:
        kind, struct, names = "tomb", draw(tombstones(subject)), TOMB_FIELDS
    pristine = encode_pairs(pairs_of(struct))
    encoded = draw(corrupted(encode_pairs(draw(mutated_pairs(pairs_of(struct), names)))))
    original = struct if encoded == pristine else None
    document: bytes | str = encoded
    how = draw(st.sampled_from(("bytes", "bytes", "text", "any text")))
    if how == "text":
        document = encoded.decode("utf-8", "replace")
    elif how == "any text":
        document = draw(any_text)
        original = None
    return JsonCase(
        kind, document, subject.raw_id, draw(nows(struct) if isinstance(struct, Tombstone) else times), original
    )


def check_json_case(case: JsonCase) -> None:
    """Decode; a result must be well typed, equal the original when unedited, and engine-safe."""
    if case.kind == "meta":
        try:
            meta = meta_from_json(case.document)
        except StoreError:
            return
        check_meta(meta)
        expect(case.original is None or meta == case.original, "meta_from_json: unedited metadata reads back changed")
        record = SessionRecord(key="0" * 64, meta=meta, expires_at=case.now + 1, retain_until=case.now + 2)
        check_engine(case.raw_id, record, case.now)
        return
    try:
        tomb = tombstone_from_json(case.document)
    except StoreError:
        return
    check_tombstone(tomb, None)
    expect(case.original is None or tomb == case.original, "tombstone_from_json: unedited tombstone reads back changed")
    check_engine(case.raw_id, tomb, case.now)


# -- Redis: stores/_redis_layout.py::decode_entry --------------------------------------------------

_REDIS_NAMES = (b"m", b"m1", b"m2", b"e", b"v", b"r", b"t", b"t1", b"t2", b"g", b"a", b"u", b"d:x")
_NUMERIC_FIELDS = (b"e", b"v", b"r", b"a")


@dataclass(frozen=True)
class RedisCase:
    """A session hash as Redis returns it (``shape``: a flat list, or a dict)."""

    subject: Subject
    fields: tuple[tuple[bytes, bytes], ...]
    shape: str
    now: float
    original: Entry | None = field(default=None, repr=False)


def _raw(value: bytes | str | int) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def redis_fields(entry: Entry, *, with_seal: bool, compact: bool = True) -> list[tuple[bytes, bytes]]:
    """Return the hash fields the Redis store writes for ``entry`` (a script's reply adds ``g``)."""
    if isinstance(entry, Tombstone):
        value = redis_layout.tombstone_value(entry.unsealed(), compact=compact)
        flat: list[bytes | str] = redis_layout.chunks(b"t", value) if compact else [b"t", value]
        flat += [b"e", redis_layout.number(entry.expires_at)]
        if with_seal and entry.sealed_successor is not None:
            flat += [b"g", entry.sealed_successor]
    else:
        flat = list(redis_layout.record_fields(entry, compact=compact))
    items = [_raw(item) for item in flat]
    return list(zip(items[::2], items[1::2], strict=True))


def _flipped(draw: st.DrawFn, packed: bytes) -> bytes:
    """A compact value, whole or cut, with up to three bytes changed."""
    edited = bytearray(packed)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        edited[draw(st.integers(min_value=0, max_value=len(edited) - 1))] = draw(st.integers(0, 255))
    return bytes(edited[: draw(st.integers(min_value=1, max_value=len(edited)))])


@st.composite
def _redis_value(draw: st.DrawFn, name: bytes) -> bytes:
    if name in _NUMERIC_FIELDS:
        return draw(hostile_number_text)
    if name == b"m" and draw(st.booleans()):
        # Compact metadata, whole or cut, with bytes flipped: a MessagePack array behind its mark.
        return _flipped(draw, meta_to_packed(draw(metas())))
    if name == b"t" and draw(st.booleans()):
        return _flipped(draw, tombstone_to_packed(draw(tombstones(draw(subjects)))))
    if name == b"m":
        return draw(corrupted(encode_pairs(draw(mutated_pairs(pairs_of(draw(metas())), META_FIELDS, least=1)))))
    if name in (b"m1", b"m2", b"t1", b"t2"):
        return draw(st.binary(max_size=70))
    if name == b"t":
        members = tuple((n, v) for n, v in pairs_of(draw(tombstones(draw(subjects)))) if n != "key")
        return draw(corrupted(encode_pairs(draw(mutated_pairs(members, TOMB_FIELDS, least=1)))))
    if name == b"g":
        return draw(st.binary(max_size=24) | unicode_text.map(str.encode) | st.sampled_from((b"", b"zz", b"0" * 86)))
    return draw(hostile_json)


@st.composite
def redis_cases(draw: st.DrawFn) -> RedisCase:
    """Return a session hash, with up to four fields set to hostile values, dropped or added."""
    subject = draw(subjects)
    entry = draw(entries(subject))
    with_seal = draw(st.booleans())
    pristine = redis_fields(entry, with_seal=with_seal, compact=draw(st.booleans()))
    # First the JSON the entry itself keeps (its tombstone ``t`` or metadata ``m``), edited
    # member by member: most corrupt or forged hashes look like this.
    inner: SessionMeta | Tombstone = entry if isinstance(entry, Tombstone) else entry.meta
    slot, names = (b"t", TOMB_FIELDS) if isinstance(entry, Tombstone) else (b"m", META_FIELDS)
    members = tuple((name, value) for name, value in pairs_of(inner) if name != "key")
    json = draw(corrupted(encode_pairs(draw(mutated_pairs(members, names)))))
    edited = json != encode_pairs(members)  # unedited: the store's own encoding stays
    if edited:  # the JSON takes the place of the value's first field, and of the others
        pristine_rest = [(name, value) for name, value in pristine if name[:1] != slot or name == slot]
        fields = [(name, json if name == slot else value) for name, value in pristine_rest]
    else:
        fields = list(pristine)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        action = draw(st.sampled_from(("set", "drop", "add")))
        if action == "add":
            name = draw(
                st.sampled_from(_REDIS_NAMES) | st.binary(max_size=4).map(lambda b: b"d:" + b) | st.binary(max_size=3)
            )
            fields.append((name, draw(_redis_value(name))))
            continue
        name = draw(st.sampled_from([n for n, _ in fields] or [b"e"]))
        fields = [(n, v) for n, v in fields if n != name]
        if action == "set":
            fields.append((name, draw(_redis_value(name))))
    shape = draw(st.sampled_from(("flat", "dict")))
    original: Entry | None = None
    if fields == pristine:
        original = entry if with_seal or not isinstance(entry, Tombstone) else entry.unsealed()
    return RedisCase(subject, tuple(fields), shape, draw(nows(entry)), original)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def check_redis_case(case: RedisCase) -> None:
    """Decode the hash as the store does; the result must be well typed and engine-safe."""
    given: Any = [item for pair in case.fields for item in pair] if case.shape == "flat" else dict(case.fields)
    try:
        entry = redis_layout.decode_entry(case.subject.key, given)
    except StoreError:
        return
    check_entry(entry, case.subject.key)
    expect(case.original is None or entry == case.original, "redis decode_entry: an unedited hash reads back changed")
    check_engine(case.subject.raw_id, entry, case.now)


# -- files: stores/_file_io.py::decode_entry -------------------------------------------------------

_FILE_FIELDS = ("format", "kind", "expires_at", "retain_until", "version", "meta", "data", "tomb")


@dataclass(frozen=True)
class FileCase:
    """The bytes of a session file."""

    subject: Subject
    document: bytes
    now: float
    original: Entry | None = field(default=None, repr=False)


@st.composite
def file_cases(draw: st.DrawFn) -> FileCase:
    """Return an entry file, its metadata, tombstone and top-level members edited or not."""
    subject = draw(subjects)
    entry = draw(entries(subject))
    pristine = file_io.encode_entry(entry)
    top: Pairs = tuple((name, orjson.dumps(value)) for name, value in orjson.loads(pristine).items())
    inner: SessionMeta | Tombstone = entry if isinstance(entry, Tombstone) else entry.meta
    nested = encode_pairs(
        draw(mutated_pairs(pairs_of(inner), TOMB_FIELDS if isinstance(entry, Tombstone) else META_FIELDS))
    )
    slot = "tomb" if isinstance(entry, Tombstone) else "meta"
    top = tuple((name, nested if name == slot else value) for name, value in top)
    document = draw(corrupted(encode_pairs(draw(mutated_pairs(top, _FILE_FIELDS)))))
    return FileCase(subject, document, draw(nows(entry)), entry if document == pristine else None)


def check_file_case(case: FileCase) -> None:
    """Decode the file as the store does; the result must be well typed and engine-safe."""
    try:
        entry = file_io.decode_entry(case.subject.key, case.document)
    except StoreError:
        return
    check_entry(entry, case.subject.key)
    expect(case.original is None or entry == case.original, "file decode_entry: an unedited file reads back changed")
    check_engine(case.subject.raw_id, entry, case.now)


# -- SQL: stores/sql.py and stores/_sql_rows.py over a real SQLite database ----------------------


class InvalidText(bytes):
    """Bytes stored in a TEXT column *as text* (``CAST(? AS TEXT)``): not valid UTF-8."""

    def __repr__(self) -> str:
        return f"InvalidText({bytes(self)!r})"


_NUMBER_COLUMNS = ("created_at", "last_access_at", "expires_at", "kept_until", "version")
_TEXT_COLUMNS = ("meta", "data", "tomb")
_COLUMNS = ("key", "handle", "user_id", *_NUMBER_COLUMNS, *_TEXT_COLUMNS)

# What SQLite keeps in a REAL or INTEGER column when asked (it converts only what reads
# back exactly as a number: "5" becomes 5.0, "abc" stays text, a blob stays a blob).
hostile_sql_numbers = (
    st.sampled_from(("abc", "", "soon", "nan", "inf", "-inf", "1e999", "5", " 5", "0x10", "1.5", "1e308"))
    | st.sampled_from((float("inf"), float("-inf"), -1.0, 0, 1.5, 2**62, -(2**63), 1e308, -1e308, True, b"5", b"\xff"))
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | unicode_text
    | st.binary(max_size=8)
)


@st.composite
def _sql_text(draw: st.DrawFn, column: str) -> object:
    """Return what a TEXT column may hold: JSON (edited), text, a blob, invalid UTF-8, a number."""
    how = draw(st.sampled_from(("json", "json", "fragment", "null", "blob", "invalid", "number")))
    if how == "json":
        if column == "meta":
            document = encode_pairs(draw(mutated_pairs(pairs_of(draw(metas())), META_FIELDS, least=1)))
        elif column == "tomb":
            tomb = draw(tombstones(draw(subjects)))
            document = encode_pairs(draw(mutated_pairs(pairs_of(tomb), TOMB_FIELDS, least=1)))
        else:
            document = draw(hostile_json)
        document = draw(corrupted(document))
        return document.decode() if _utf8(document) else document
    if how == "fragment":
        fragment = draw(hostile_json)
        return fragment.decode() if _utf8(fragment) else fragment
    if how == "null":
        return None
    if how == "blob":
        return draw(st.binary(max_size=16))
    if how == "invalid":
        return InvalidText(draw(st.sampled_from((b"\xff", b'{"a":"\xff"}', b"\xc3"))))
    return draw(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats(allow_nan=False))


@dataclass(frozen=True)
class SqlCase:
    """A sessions-table row written straight into SQLite, and the request that reads it."""

    subject: Subject
    row: tuple[tuple[str, object], ...]
    now: float
    original: Entry | None = field(default=None, repr=False)


def sql_row(entry: Entry) -> dict[str, object]:
    """Return the columns the SQL store writes for ``entry`` (its own layout, restated)."""
    if isinstance(entry, Tombstone):
        until = entry.sealed_until
        return {
            "key": entry.key,
            "handle": handle_of(entry.key),
            "user_id": None,
            "created_at": entry.ended_at,
            "last_access_at": entry.ended_at,
            "expires_at": entry.expires_at,
            "kept_until": until if until is not None else entry.expires_at,
            "version": 0,
            "meta": None,
            "data": None,
            "tomb": tombstone_to_json(entry).decode(),
        }
    return {
        "key": entry.key,
        "handle": handle_of(entry.key),
        "user_id": entry.meta.user,
        "created_at": entry.meta.created_at,
        "last_access_at": entry.meta.last_access_at,
        "expires_at": entry.expires_at,
        "kept_until": entry.kept_until,
        "version": entry.version,
        "meta": meta_to_json(entry.meta).decode(),
        "data": dumps(entry.data).decode(),
        "tomb": None,
    }


@st.composite
def sql_cases(draw: st.DrawFn) -> SqlCase:
    """Return a row, up to three of its columns set to what SQLite will keep there."""
    subject = draw(subjects)
    entry = draw(entries(subject))
    row = sql_row(entry)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        column = draw(st.sampled_from(_COLUMNS[1:]))  # the key stays: it is what is loaded
        if column in _NUMBER_COLUMNS:
            row[column] = draw(hostile_sql_numbers)
        elif column in _TEXT_COLUMNS:
            row[column] = draw(_sql_text(column))
        else:
            row[column] = draw(st.none() | unicode_text | hostile_sql_numbers)
    original = entry if row == sql_row(entry) else None
    return SqlCase(subject, tuple(row.items()), draw(nows(entry)), original)


def _expected(entry: Entry, now: float) -> Entry | None:
    """What ``load`` returns for an unedited row at ``now``: the entry, or ``None`` once gone."""
    if isinstance(entry, Tombstone):
        return entry.seen_at(now) if entry.expires_at > now else None
    # The row's kept_until column stands for retain_until: the later of the two deadlines.
    return replace(entry, retain_until=entry.kept_until) if entry.kept_until > now else None


class SqliteRig:
    """A SQLite store on a private file, an event loop to drive it, and a raw writer."""

    def __init__(self, directory: Path) -> None:
        path = directory / "sessions.db"
        self.runner = asyncio.Runner()
        self.store = SqlStore.from_url(f"sqlite:///{path}")
        self.runner.run(self.store.setup())
        self.table = self.store.sessions.name
        self.writer = sqlite3.connect(path, isolation_level=None)
        self.writer.execute("PRAGMA busy_timeout=2000")

    def close(self) -> None:
        self.writer.close()
        self.runner.run(self.store.close())
        self.runner.close()

    def put(self, row: dict[str, object]) -> None:
        """Replace the table's content with ``row``, each value as it is (no type checks)."""
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(value, InvalidText) else "?" for value in row.values())
        values = [bytes(value) if isinstance(value, InvalidText) else value for value in row.values()]
        names = ", ".join(f'"{name}"' for name in row)
        self.writer.execute("BEGIN IMMEDIATE")
        try:
            self.writer.execute(f'DELETE FROM "{self.table}"')
            self.writer.execute(f'INSERT INTO "{self.table}" ({names}) VALUES ({marks})', values)
        except sqlite3.IntegrityError:
            self.writer.execute("ROLLBACK")
            reject()  # a NOT NULL column: SQLite itself refuses the row
        self.writer.execute("COMMIT")

    def check(self, case: SqlCase) -> None:
        """Write the row, then read it through every store call that decodes rows."""
        row = dict(case.row)
        self.put(row)
        key, now, run = case.subject.key, case.now, self.runner.run
        try:
            entry = run(self.store.load(key, now))
        except StoreError:
            pass
        else:
            check_entry(entry, key)
            if case.original is not None:
                expect(entry == _expected(case.original, now), "sql load: an unedited row reads back changed")
            check_engine(case.subject.raw_id, entry, now)
        handle = handle_of(key)
        _each_or_store_error(lambda: run(self.store.find_handle(handle, now)), lambda found: check_entry(found, key))
        _each_or_store_error(lambda: run(self.store.find_moved(handle, now)), lambda moved: check_entry(moved, key))
        user = row["user_id"] if isinstance(row["user_id"], str) else "someone"
        _each_or_store_error(
            lambda: run(self.store.list_user(user, now)),
            lambda listed: _check_records(listed, key),
        )
        _each_or_store_error(
            lambda: run(self.store.purge_expired(now)), lambda count: expect(type(count) is int, "purge")
        )


def _check_records(records: list[SessionRecord], key: str) -> None:
    for record in records:
        check_record(record, key)


def _each_or_store_error(call: Callable[[], Any], check: Callable[[Any], Any]) -> None:
    try:
        result = call()
    except StoreError:
        return
    check(result)


@contextmanager
def sqlite_rig() -> Iterator[Callable[[SqlCase], None]]:
    """Yield the SQL check, bound to a fresh SQLite store that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="sessionward-fuzz-") as directory:
        rig = SqliteRig(Path(directory))
        try:
            yield rig.check
        finally:
            rig.close()

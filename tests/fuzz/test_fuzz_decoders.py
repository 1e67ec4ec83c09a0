"""Fuzzing of every store's record decoder: a well-typed entry or StoreError, never a 500.

Beside the generated inputs, the corrupt entries that were seen to slip through (a
Redis tombstone with ``grace_until: "soon"``, SQLite text in a REAL or INTEGER column)
are replayed by name.
"""

from __future__ import annotations

import orjson
import pytest

from fuzz.decoders import (
    FileCase,
    JsonCase,
    RedisCase,
    SqlCase,
    check_file_case,
    check_json_case,
    check_redis_case,
    sql_row,
    sqlite_rig,
)
from fuzz.hostile import Subject
from fuzz.properties import TARGETS, run_target
from sessionward.core import ids
from sessionward.core.records import EndReason, SessionMeta, SessionRecord, Tombstone, meta_to_json
from sessionward.stores import _file_io as file_io
from sessionward.stores import _redis_layout as redis_layout

NOW = 1_700_000_000.0
OLD_ID = "A" * 43
NEW_ID = "B" * 43
SUBJECT = Subject(OLD_ID, ids.storage_key(OLD_ID))


def _renewed() -> Tombstone:
    return Tombstone(
        key=SUBJECT.key,
        reason=EndReason.RENEWED,
        user="alice",
        ended_at=NOW,
        expires_at=NOW + 3600,
        successor_key=ids.storage_key(NEW_ID),
        sealed_successor=ids.seal_successor(OLD_ID, NEW_ID),
        grace_until=NOW + 5,
    )


def _record() -> SessionRecord:
    meta = SessionMeta(
        created_at=NOW, last_access_at=NOW, rotated_at=NOW, absolute_deadline=NOW + 8 * 3600, user="alice"
    )
    return SessionRecord(key=SUBJECT.key, meta=meta, data={"n": 1}, expires_at=NOW + 1800, retain_until=NOW + 5400)


def test_metadata_and_tombstone_json_decode_typed_or_raise_store_error() -> None:
    run_target(TARGETS["records_json"], derandomize=True)


def test_redis_session_hash_decodes_typed_or_raises_store_error() -> None:
    run_target(TARGETS["redis_decode"], derandomize=True)


def test_session_file_decodes_typed_or_raises_store_error() -> None:
    run_target(TARGETS["file_decode"], derandomize=True)


def test_sqlite_rows_with_hostile_columns_load_typed_or_raise_store_error() -> None:
    run_target(TARGETS["sql_rows"], derandomize=True)


@pytest.mark.parametrize(
    ("member", "value"),
    [("grace_until", "soon"), ("sealed_successor", 5), ("successor_key", [None]), ("ended_at", "nan")],
    ids=["grace_until-soon", "sealed_successor-5", "successor_key-list", "ended_at-nan"],
)
def test_redis_tombstone_with_a_mistyped_member_is_corrupt_not_a_500(member: str, value: object) -> None:
    tomb = orjson.loads(redis_layout.tombstone_value(_renewed(), compact=False))
    tomb[member] = value
    fields = ((b"t", orjson.dumps(tomb)), (b"e", redis_layout.number(NOW + 3600).encode()))
    check_redis_case(RedisCase(SUBJECT, fields, "flat", NOW + 1))


def test_redis_record_with_an_infinite_expiry_is_corrupt() -> None:
    fields = [(b"m", meta_to_json(_record().meta)), (b"e", b"inf"), (b"v", b"0"), (b"r", b"0")]
    check_redis_case(RedisCase(SUBJECT, tuple(fields), "dict", NOW + 1))


@pytest.mark.parametrize(
    ("member", "value"),
    [("created_at", "soon"), ("auth_at", "nan"), ("user", {"<": []})],
    ids=["created_at-soon", "auth_at-nan", "user-object"],
)
def test_session_file_with_mistyped_metadata_is_corrupt_not_a_500(member: str, value: object) -> None:
    document = orjson.loads(file_io.encode_entry(_record()))
    document["meta"][member] = value
    check_file_case(FileCase(SUBJECT, orjson.dumps(document), NOW + 1))


def test_session_file_tombstone_with_a_nan_expiry_is_corrupt() -> None:
    document = orjson.loads(file_io.encode_entry(_renewed()))
    document["expires_at"] = "nan"
    check_file_case(FileCase(SUBJECT, orjson.dumps(document), NOW + 1))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("last_access_at", "abc"),
        ("kept_until", "abc"),
        ("expires_at", "abc"),
        ("version", "abc"),
        ("expires_at", float("inf")),
        ("kept_until", float("inf")),
    ],
)
def test_sqlite_text_or_infinity_in_a_number_column_is_corrupt_not_a_500(column: str, value: object) -> None:
    row = sql_row(_record())
    row[column] = value
    with sqlite_rig() as check:
        check(SqlCase(SUBJECT, tuple(row.items()), NOW + 1))


def test_sqlite_tombstone_filed_under_another_key_is_not_returned_as_this_one() -> None:
    other = Subject("C" * 43, ids.storage_key("C" * 43))
    row = sql_row(_renewed())
    row["key"] = other.key
    with sqlite_rig() as check:
        check(SqlCase(other, tuple(row.items()), NOW + 1))


def test_metadata_text_with_a_lone_surrogate_is_corrupt_not_a_500() -> None:
    document = meta_to_json(_record().meta).decode().replace("alice", "\ud800")
    check_json_case(JsonCase("meta", document, OLD_ID, NOW))

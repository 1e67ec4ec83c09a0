"""The session mapping: JSON-only values, a size limit, per-key change tracking (F17, F18)."""

from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass

import pytest

from sessionward import SessionDataError, SessionMeta, SessionRecord, SessionTooLargeError
from sessionward.core.session import Session


def _record(data: dict[str, object]) -> SessionRecord:
    meta = SessionMeta(created_at=0, last_access_at=0, rotated_at=0, absolute_deadline=100, user="alice")
    return SessionRecord(key="k" * 64, meta=meta, data=dict(data))


@dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, b"bytes", datetime.datetime(2024, 1, 1), Point(1), 2**70, {"nested": object()}, {1: "int key"}],
)
def test_non_json_value_fails_at_assignment_naming_the_key(value: object) -> None:
    session = Session(None, max_bytes=1024)
    with pytest.raises(SessionDataError, match="'cart'"):
        session["cart"] = value
    assert "cart" not in session


def test_non_string_key_is_refused() -> None:
    session = Session(None, max_bytes=1024)
    with pytest.raises(SessionDataError):
        session[1] = "x"  # type: ignore[index]


def test_size_limit_is_enforced_with_a_clear_error() -> None:
    session = Session(None, max_bytes=300)
    session["a"] = "x" * 100
    with pytest.raises(SessionTooLargeError, match="max_data_bytes"):
        session["b"] = "y" * 250
    assert "b" not in session
    session["a"] = "x" * 250  # replacing a value frees its old size
    assert session.changes()[0] == {"a": "x" * 250}


def test_only_changed_keys_are_reported() -> None:
    session = Session(_record({"a": 1, "b": [1], "c": {"x": 1}}), max_bytes=4096)
    assert session.changes() == ({}, frozenset())
    session["a"] = 2
    del session["c"]
    _ = session["b"]
    assert session.changes() == ({"a": 2}, frozenset({"c"}))


def test_in_place_mutation_of_a_read_value_is_detected() -> None:
    session = Session(_record({"cart": ["book"], "prefs": {"theme": "dark"}}), max_bytes=4096)
    session["cart"].append("pen")
    _ = session["prefs"]
    assert session.changes() == ({"cart": ["book", "pen"]}, frozenset())


def test_reading_marks_access_and_metadata_is_apart() -> None:
    session = Session(_record({"user": "mallory"}), max_bytes=4096)
    assert not session.accessed
    assert session.user == "alice"  # metadata is not shadowed by a data key named "user"
    assert session["user"] == "mallory"
    assert session.accessed


def test_clear_deletes_every_key() -> None:
    session = Session(_record({"a": 1, "b": 2}), max_bytes=4096)
    session.clear()
    assert len(session) == 0
    assert session.changes() == ({}, frozenset({"a", "b"}))


# -- values that would read back as something else are refused at assignment (F17) -------------------


class _Colour(enum.Enum):
    RED = "red"


class _Size(enum.StrEnum):
    LARGE = "large"


class _Count(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        (1, 2),
        uuid.UUID(int=7),
        _Colour.RED,
        [1.0, float("nan")],
        {"nested": (1,)},
        {"nested": [uuid.UUID(int=7)]},
        _Size.LARGE,
        _Count.ONE,
        [_Size.LARGE],
        {"n": _Count.ONE},
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "tuple",
        "uuid",
        "enum",
        "nan-in-list",
        "tuple-in-dict",
        "uuid-in-list",
        # Equal to their values, so only a type check tells: they would read back as str and int.
        "strenum",
        "intenum",
        "strenum-in-list",
        "intenum-in-dict",
    ],
)
def test_value_that_would_read_back_as_something_else_is_refused_naming_the_key(value: object) -> None:
    session = Session(None, max_bytes=10_000)
    with pytest.raises(SessionDataError, match="'cart'"):
        session["cart"] = value
    assert "cart" not in session


def test_key_with_a_lone_surrogate_is_refused_at_assignment_not_at_every_later_write() -> None:
    session = Session(None, max_bytes=10_000)
    with pytest.raises(SessionDataError, match="surrogate"):
        session["\ud800"] = 1
    assert len(session) == 0


def test_plain_json_values_are_still_accepted() -> None:
    session = Session(None, max_bytes=10_000)
    session["cart"] = {"items": [1, 2.5, "x", None, True], "count": 2}
    session["n"] = 0.1
    assert session["cart"]["items"][1] == 2.5

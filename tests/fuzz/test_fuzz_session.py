"""Fuzzing of the session data encoder: refused naming the key, or read back unchanged.

Beside the generated requests, the failures the fuzzer found are replayed by name.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest

from fuzz.properties import TARGETS, run_target
from sessionward.core.errors import SessionDataError, SessionTooLargeError
from sessionward.core.records import dumps
from sessionward.core.session import Session


class Keys(enum.StrEnum):
    CART = "cart"


class Name(str):
    """A str subclass that hashes and compares as its text (unlike a StrEnum member)."""


def test_session_values_are_refused_naming_the_key_or_read_back_unchanged_within_the_limit() -> None:
    run_target(TARGETS["session_data"], derandomize=True)


def test_a_strenum_key_is_refused_at_assignment_not_at_the_commit() -> None:
    session = Session(None, max_bytes=1024)
    with pytest.raises(SessionDataError, match=re.escape("<Keys.CART: 'cart'>")) as caught:
        session[Keys.CART] = [1]
    assert caught.value.key is Keys.CART
    assert session.changes() == ({}, frozenset())
    session[Keys.CART.value] = [1]
    assert dumps(session.data_snapshot()) == b'{"cart":[1]}'


@pytest.mark.parametrize("key", ["\x00" * 40, '"' * 40, "€" * 40], ids=["nul", "quote", "euro"])
def test_a_key_json_writes_longer_than_it_is_counts_at_its_encoded_size(key: str) -> None:
    session = Session(None, max_bytes=256)
    with pytest.raises(SessionTooLargeError):
        session[key] = "x" * 180
    assert session.data_snapshot() == {}
    session[key[:10]] = "x" * 100
    assert len(dumps(session.data_snapshot())) <= 256


@pytest.mark.parametrize("planted", [{1, 2}, 2**64, float("nan"), (1, 2)], ids=["set", "int>64bit", "nan", "tuple"])
def test_a_value_put_into_a_container_in_place_obeys_the_assignment_rules(planted: Any) -> None:
    session = Session(None, max_bytes=1024)
    session["cart"] = []
    session["cart"].append(planted)
    with pytest.raises(SessionDataError, match="'cart'") as caught:
        session.changes()
    assert caught.value.key == "cart"


def test_an_assignment_after_a_non_json_value_went_in_place_names_the_container() -> None:
    session = Session(None, max_bytes=1024)
    session["cart"] = []
    session["cart"].append({1})
    with pytest.raises(SessionDataError, match="'cart'"):
        session["other"] = 1


def test_deleting_a_key_named_by_an_equal_str_subclass_removes_it() -> None:
    session = Session(None, max_bytes=1024)
    session["cart"] = [1]
    del session[Name("cart")]
    assert session.data_snapshot() == {}
    session["cart"] = [2]
    assert dumps(session.data_snapshot()) == b'{"cart":[2]}'

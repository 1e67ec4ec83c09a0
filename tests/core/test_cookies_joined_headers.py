"""A WSGI ``HTTP_COOKIE`` joined from several headers is split back at its commas (F4)."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from sessionward.core.cookies import MAX_COOKIE_HEADER_BYTES, session_cookie_values, split_joined_cookie_header


def read(http_cookie: bytes) -> list[bytes]:
    return session_cookie_values(split_joined_cookie_header(http_cookie), "sid")


def test_two_cookie_headers_joined_by_gunicorn_are_two_again() -> None:
    assert split_joined_cookie_header(b"a=1,sid=X") == [b"a=1", b"sid=X"]
    assert read(b"a=1,sid=X") == [b"X"]
    assert read(b"a=1, sid=X") == [b"X"]
    assert read(b"a=1; b=2,sid=X; c=3") == [b"X"]
    assert read(b"sid=X, sid=X") == [b"X", b"X"]


def test_a_header_without_comma_is_left_whole() -> None:
    header = b"a=1; sid=X"
    assert split_joined_cookie_header(header) == [header]


def test_names_after_a_comma_are_still_matched_exactly() -> None:
    assert read(b"a=1,Sid=X, SID=Y,%73id=Z,xsid=W,sid2=V") == []
    assert session_cookie_values(split_joined_cookie_header(b"a=1,__host-sid=x"), "__Host-sid") == []


def test_a_value_planted_in_another_cookie_is_read_beside_the_real_one() -> None:
    # Both are read, so the engine sees two different values and fails closed.
    assert read(b"lang=en,sid=PLANTED; sid=REAL") == [b"PLANTED", b"REAL"]
    assert read(b"sid=REAL; lang=en, sid=PLANTED") == [b"REAL", b"PLANTED"]


def test_a_comma_in_another_cookies_value_does_not_hide_the_session_cookie() -> None:
    assert read(b"prefs=dark,compact; sid=X") == [b"X"]


def test_an_oversized_joined_header_is_still_refused_whole() -> None:
    # Dropping its commas must not bring an oversized header back under the limit.
    header = b"sid=X," + b"," * MAX_COOKIE_HEADER_BYTES
    assert split_joined_cookie_header(header) == [header]
    assert read(header) == []


def test_splitting_many_commas_is_linear() -> None:
    header = b"," * (MAX_COOKIE_HEADER_BYTES - 10) + b"sid=x"
    started = time.perf_counter()
    assert read(header) == [b"x"]
    assert time.perf_counter() - started < 0.5


@given(st.binary(max_size=200).map(lambda raw: bytes(b"sid=;, \tax,"[byte % 11] for byte in raw)))
def test_splitting_only_adds_readings(header: bytes) -> None:
    """Every value a single-header reading finds is still found, cut at its first comma, in order."""
    single = [value.split(b",", 1)[0].strip(b" \t") for value in session_cookie_values([header], "sid")]
    split = read(header)
    position = 0
    for value in single:
        position = split.index(value, position) + 1

"""Fuzz target of the session data encoder: ``Session.__setitem__`` and the dumps/loads round trip.

A sequence of writes, deletions and in-place changes (``session["cart"].append(x)``) is
played on a session. Every assignment either takes the value, which must then read back
as itself after :func:`~sessionward.core.records.dumps` and :func:`~sessionward.core.records.loads`
(same types: a tuple coming back as a list, NaN as ``None`` or a UUID as text is a
failure), or refuses it with :class:`~sessionward.core.errors.SessionDataError` or
:class:`~sessionward.core.errors.SessionTooLargeError` naming the key, and changes nothing.
Whatever the session holds when the request ends must fit ``max_data_bytes`` once encoded.
"""

from __future__ import annotations

import datetime
import enum
import fractions
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from fuzz.checks import Violation, expect
from fuzz.hostile import any_text, json_data
from sessionward.core.errors import SessionDataError, SessionTooLargeError
from sessionward.core.records import SessionMeta, SessionRecord, dumps, loads
from sessionward.core.session import Session


class _Shown:
    """Subclasses of JSON types, shown as such in a failing input (``'a'`` would hide it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({super().__repr__()})"


class _Str(_Shown, str):
    pass


class _Int(_Shown, int):
    pass


class _Float(_Shown, float):
    pass


class _Dict(_Shown, dict[str, Any]):
    pass


class _List(_Shown, list[Any]):
    pass


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Mode(enum.StrEnum):
    FAST = "fast"


@dataclass(frozen=True)
class _Point:
    x: int


ODD_VALUES: tuple[Callable[[], Any], ...] = (
    lambda: b"x",
    lambda: bytearray(b"x"),
    lambda: (1, 2),
    lambda: (),
    lambda: frozenset({1}),
    lambda: uuid.UUID(int=1),
    lambda: _Color.RED,
    lambda: _Level.HIGH,
    lambda: _Mode.FAST,
    lambda: datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
    lambda: datetime.date(2020, 1, 1),
    lambda: Decimal("1.5"),
    lambda: fractions.Fraction(1, 3),
    lambda: complex(1, 2),
    lambda: _Str("s"),
    lambda: _Int(3),
    lambda: _Float(1.5),
    lambda: _Float("nan"),
    lambda: _Dict(a=1),
    lambda: _List([1]),
    lambda: OrderedDict(a=1),
    lambda: _Point(1),
    lambda: float("nan"),
    lambda: float("inf"),
    lambda: float("-inf"),
    lambda: -0.0,
    lambda: 5e-324,
    lambda: 1.7976931348623157e308,
    lambda: 2**64,
    lambda: 2**64 - 1,
    lambda: 2**63,
    lambda: -(2**63) - 1,
    lambda: "",
    lambda: "a\x00b",
    lambda: "\u2028",
    lambda: '"\\',
    lambda: "\ud800",
)
"""Values a handler may well try to store, most of which do not read back as themselves.

Made afresh for each input: an in-place change must not leak into the next one.
"""

_ODD_KEYS: tuple[Callable[[], Any], ...] = (
    lambda: b"a",
    lambda: ("a",),
    lambda: _Str("a"),
    lambda: _Mode.FAST,
    lambda: 1,
    lambda: 1.5,
    lambda: True,
    lambda: None,
)


def _made(factories: tuple[Callable[[], Any], ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(range(len(factories))).map(lambda index: factories[index]())


_KEYS = ("a", "b", "cart", "\x00\x01", '"q"', "\\", "é", "\u2028", "k" * 40, "\x00" * 40, '"' * 30, "€" * 30)
"""Keys that JSON writes longer than they are (escapes, UTF-8), beside plain ones."""
session_keys = st.sampled_from(_KEYS) | any_text | _made(_ODD_KEYS)
_dict_keys = any_text | _made(_ODD_KEYS)
_fillers = st.sampled_from((50, 100, 180, 200, 230, 250, 400)).map(lambda size: "x" * size)
"""Texts that take the data near its size limit."""
session_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text | _fillers | _made(ODD_VALUES),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(_dict_keys, children, max_size=3)
    ),
    max_leaves=6,
)


@dataclass(frozen=True)
class Op:
    """``set`` a key, ``del`` it, or ``grow`` the container it holds in place by ``value``."""

    action: str
    key: Any
    value: Any = None


ops = st.builds(Op, st.sampled_from(("set", "set", "set", "del", "grow")), session_keys, session_values)


@dataclass(frozen=True)
class SessionCase:
    """A session (its loaded data, or ``None`` for a new one), its size limit, and what a request does."""

    loaded: dict[str, Any] | None
    max_bytes: int
    ops: tuple[Op, ...]


session_cases = st.builds(
    SessionCase,
    st.none() | json_data,
    st.sampled_from((256, 300, 512, 1024, 64 * 1024)),
    st.lists(ops, max_size=8).map(tuple),
)


def same(back: Any, original: Any, where: str) -> None:
    """Check that ``back`` (``original`` through dumps and loads) equals it.

    Equal as Python compares: a tuple read back as a list, NaN as ``None`` or a UUID as
    text fail; a ``StrEnum`` member reads back as its text, which compares equal.
    """
    expect(back == original, f"{where}: a {type(original).__name__} reads back as another value", repr(original)[:80])


def _identities(session: Session) -> list[tuple[str, int]]:
    return [(key, id(value)) for key, value in session.data_snapshot().items()]


def _set(session: Session, op: Op, limit: int, grown: set[Any]) -> None:
    before = _identities(session)
    try:
        session[op.key] = op.value
    except (SessionDataError, SessionTooLargeError) as error:
        # The key written, or one whose container was changed in place into what cannot be encoded.
        expect(error.key is op.key or error.key in grown, "a refusal names another key", repr((error.key, op.key)))
        expect(repr(error.key) in str(error), "a refusal's message does not name the key", str(error)[:80])
        expect(_identities(session) == before, "a refused assignment changed the data", repr(op.key))
        return
    expect(type(op.key) is str, "a key that is not a str was accepted", repr(op.key))
    expect(session[op.key] is op.value, "an accepted value is not what the session holds", repr(op.key))
    same(loads(dumps(op.value)), op.value, "accepted at assignment")
    size = len(dumps(session.data_snapshot()))
    expect(size <= limit, "an accepted assignment took the data past max_data_bytes", f"{size} > {limit}")


def _grow(session: Session, op: Op) -> None:
    if type(op.key) is not str or op.key not in session:
        return
    container = session[op.key]
    if type(container) is list:
        container.append(op.value)
    elif type(container) is dict:
        container[f"n{len(container)}"] = op.value


def check_session_case(case: SessionCase) -> None:
    """Play the operations; check each assignment, then what the request would commit."""
    record = None
    if case.loaded is not None:
        meta = SessionMeta(created_at=1.0, last_access_at=1.0, rotated_at=1.0, absolute_deadline=2.0)
        record = SessionRecord(key="0" * 64, meta=meta, data=case.loaded)
    session = Session(record, max_bytes=case.max_bytes)
    grown: set[Any] = set()
    for op in case.ops:
        if op.action == "set":
            _set(session, op, case.max_bytes, grown)
        elif op.action == "del":
            try:
                del session[op.key]
            except KeyError:
                expect(op.key not in session, "del refused a key the session holds", repr(op.key))
            except SessionDataError as error:
                # Measuring the data found what a container was given in place; it is named.
                expect(error.key in grown, "del refused naming a key never changed in place", repr(error.key))
        else:
            _grow(session, op)
            grown.add(op.key)
    try:
        written, deleted = session.changes()
    except (SessionDataError, SessionTooLargeError) as error:
        expect(repr(error.key) in str(error), "a refusal at commit does not name its key", str(error)[:80])
        return
    data = session.data_snapshot()
    expect(set(written) <= set(data) and not deleted & set(data), "changes() disagree with the data")
    for key, value in written.items():
        same(loads(dumps(value)), value, "changed in place" if key in grown else "written")
    try:
        encoded = dumps(data)
    except TypeError as error:
        raise Violation("the data to commit cannot be encoded", str(error)) from None
    same(loads(encoded), data, "committed")
    if written:
        expect(len(encoded) <= case.max_bytes, "the data to commit is over max_data_bytes", f"{len(encoded)}")

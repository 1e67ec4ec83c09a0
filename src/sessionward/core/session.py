"""The session object handlers touch: a mapping of JSON values with change tracking.

Rules:

* Values must be JSON-typed; anything else fails at assignment with an error naming the
  key. The data's serialized size is kept under the policy's limit, also checked at
  assignment, so the error reaches the handler that caused it.
* Changes are tracked per key: at the end of a request only the keys written or
  deleted are sent to the store, so concurrent requests changing different keys both
  keep their change. A ``dict`` or ``list`` read from (or assigned to) the session and
  mutated in place is caught by comparing its encoding at the end of the request with
  the one it had when first read (or assigned).
* Growth in place is invisible until it is measured: :meth:`Session.check_size` measures
  it on demand, and :meth:`Session.changes` (the commit) always does. An assignment made
  while a container is out re-measures the whole data rather than trust a running total
  that the container's changes may have made stale.
* Library metadata (user, times, elevation) lives apart in :class:`SessionMeta` and is
  read-only here; adapters add the I/O verbs (``login``, ``logout``, ``rotate_id``…)
  in subclasses.

Cost. A session is made for every request, and most requests only read it, so reading
allocates nothing: the mapping is the loaded record's own data until the first write
copies it (the record's data stays what was loaded, the base of the store's merge), and
the change log and the snapshots of read containers exist only once there is something
to put in them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping

import orjson

from sessionward.core.errors import SessionDataError, SessionTooLargeError
from sessionward.core.records import JSONValue, SessionMeta, SessionRecord, dumps, loads

TOO_LARGE_MESSAGE = "The session's data grew past its size limit; nothing this request changed was saved."
"""What a client is told (500 ``session_too_large``) when the data was over the limit at the end."""

_NO_DELETES: frozenset[str] = frozenset()
_CONTAINERS = (dict, list)
"""Values that can be changed in place after being read (a tuple: ``dict | list`` is rebuilt per call)."""
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Values that read back as themselves once dumps() took them (a float once found finite)."""


class Session(MutableMapping[str, JSONValue]):
    """A session's data for the span of one request, with its metadata apart.

    A session without a record (``record is None``) is a *pending* one: it becomes real
    when data is first written (creation policy ``if_required``) or at login.

    The size limit (``max_data_bytes``). Assigning a key checks it at once:
    :class:`~sessionward.core.errors.SessionTooLargeError` reaches the handler that wrote.
    A ``dict`` or ``list`` changed in place (``session["cart"].append(item)``) cannot be
    seen changing; it is measured when :meth:`check_size` is called and when the request
    ends. A handler that grows a container in place should call :meth:`check_size` before
    it returns, to answer an oversized session itself (say, "your cart is full"). If it
    does not, and the data is over the limit when the request ends, nothing the request
    changed is saved and the client gets a 500 ``{"error": "session_too_large"}`` instead
    of the handler's response, with an error logged naming the keys that grew (verbs
    already done, such as a login, stand).
    """

    __slots__ = ("_changes", "_data", "_encoded_size", "_max_bytes", "_owned", "_read_snapshots", "accessed", "record")

    def __init__(self, record: SessionRecord | None, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self.accessed = False
        self.record: SessionRecord | None = None
        self._data: dict[str, JSONValue] = {}
        self._owned = True
        self._changes: dict[str, bool] | None = None
        """Keys this request wrote (``True``) or deleted (``False``); the last of each counts."""
        self._read_snapshots: dict[str, bytes] | None = None
        self._encoded_size: int | None = None
        if record is not None:
            self.reset(record)

    # -- the mapping -------------------------------------------------------------------

    def __getitem__(self, key: str) -> JSONValue:
        self.accessed = True
        value = self._data[key]
        if isinstance(value, _CONTAINERS):
            snapshots = self._snapshots()
            if key not in snapshots:
                snapshots[key] = dumps(value)
        return value

    def __setitem__(self, key: str, value: JSONValue) -> None:
        self.accessed = True
        if type(key) is not str:
            # A str subclass (a StrEnum member) would pass here and then fail to encode
            # with the whole data at the end of the request.
            raise SessionDataError(key, "session keys must be str (for a StrEnum member, use its .value)")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise SessionDataError(key, "session keys must be valid Unicode (no lone surrogates)") from None
        encoded = _encode(key, value)
        size = self._size_without(key) + _entry_size(key, encoded)
        if size > self._max_bytes:
            raise SessionTooLargeError(key, size, self._max_bytes)
        self._encoded_size = size
        self._owned_data()[key] = value
        self._log(key, written=True)
        if isinstance(value, _CONTAINERS):
            # The handler still holds the container and may grow it in place: keep the
            # encoding it was stored with, so that the growth is measured as for one read.
            self._snapshots()[key] = encoded

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        size = self._size_without(key)
        del self._owned_data()[key]
        self._encoded_size = size
        self._log(key, written=False)

    def get(self, key: str, default: JSONValue = None) -> JSONValue:
        """Return the value of ``key``, or ``default`` (read as by ``session[key]``)."""
        if key in self._data:
            return self[key]
        self.accessed = True
        return default

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._data

    def __repr__(self) -> str:
        handle = self.record.handle if self.record else None
        return f"<Session handle={handle!r} user={self.user!r} keys={sorted(self._data)!r}>"

    def clear(self) -> None:
        """Remove every key (the session and its ID stay; use logout to end it)."""
        for key in list(self._data):
            del self[key]

    # -- metadata, read-only -----------------------------------------------------------

    @property
    def meta(self) -> SessionMeta | None:
        """The library's metadata, or ``None`` for a pending session."""
        return self.record.meta if self.record is not None else None

    @property
    def user(self) -> str | None:
        """The authenticated user, or ``None``."""
        return self.record.meta.user if self.record is not None else None

    @property
    def is_authenticated(self) -> bool:
        """Tell whether a user is logged in on this session."""
        return self.user is not None

    @property
    def handle(self) -> str | None:
        """The session's public handle, or ``None`` for a pending session."""
        return self.record.handle if self.record is not None else None

    # -- what the request changed ---------------------------------------------------------

    @property
    def may_have_changed(self) -> bool:
        """Tell cheaply whether :meth:`changes` can report anything (``False``: it cannot)."""
        return bool(self._changes or self._read_snapshots)

    def data_snapshot(self) -> dict[str, JSONValue]:
        """Return a shallow copy of all data, for a login that moves it to a new record."""
        return dict(self._data)

    def changes(self) -> tuple[dict[str, JSONValue], frozenset[str]]:
        """Return the keys written (with values) and deleted by this request."""
        data, changes = self._data, self._changes
        written: dict[str, JSONValue] = {}
        deleted = _NO_DELETES
        if changes:
            written = {key: data[key] for key, is_write in changes.items() if is_write}
            if len(written) < len(changes):
                deleted = frozenset(key for key, is_write in changes.items() if not is_write)
        changed = self._changed_in_place()
        if changed:
            for key, _ in changed:
                written[key] = data[key]
            self._check_growth(changed)
        return written, deleted

    def check_size(self) -> None:
        """Check that changes made in place kept the data within the size limit.

        Assignments are checked as they happen; a ``dict`` or ``list`` changed in place
        is measured only here and when the request ends (see the class docstring). Call
        it after growing one, before the handler returns, to handle the error itself::

            session["cart"].append(item)
            try:
                session.check_size()
            except SessionTooLargeError:
                session["cart"].pop()
                return cart_full_response()

        Raises:
            SessionTooLargeError: the data is over ``max_data_bytes``; its ``keys`` name
                the containers that grew in place.
        """
        changed = self._changed_in_place()
        if changed:
            self._check_growth(changed)

    def mark_saved(self, record: SessionRecord) -> None:
        """Start tracking afresh against ``record`` (after a login or rotation saved all)."""
        self.record = record
        self._changes = self._read_snapshots = None

    def reset(self, record: SessionRecord | None) -> None:
        """Replace everything with ``record``'s data (or nothing), as after logout."""
        self.record = record
        # Aliased until the first write copies it (see the module docstring).
        self._data = record.data if record is not None else {}
        self._owned = record is None
        self._changes = self._read_snapshots = None
        self._encoded_size = None

    def _snapshots(self) -> dict[str, bytes]:
        snapshots = self._read_snapshots
        if snapshots is None:
            snapshots = self._read_snapshots = {}
        return snapshots

    def _changed_in_place(self) -> list[tuple[str, int]]:
        """Return the containers changed in place since read or assigned, with how much each grew."""
        data = self._data
        changed: list[tuple[str, int]] = []
        for key, snapshot in (self._read_snapshots or {}).items():
            if key in data:
                try:
                    encoded = dumps(data[key])
                except TypeError:
                    encoded = _encode(key, data[key])  # raises, naming the key
                if encoded != snapshot:
                    _encode(key, data[key])  # what was changed in place obeys the same rules
                    changed.append((key, len(encoded) - len(snapshot)))
        return changed

    def _check_growth(self, changed: list[tuple[str, int]]) -> None:
        # Assignments kept the size in check as they happened; only an in-place change
        # to a container can have grown the data unseen.
        size = self._encoded_size = self._measure()
        if size > self._max_bytes:
            grown = tuple(key for key, growth in changed if growth > 0) or tuple(key for key, _ in changed)
            raise SessionTooLargeError(grown[0], size, self._max_bytes, keys=grown)

    def _owned_data(self) -> dict[str, JSONValue]:
        if not self._owned:
            self._data = dict(self._data)
            self._owned = True
        return self._data

    def _log(self, key: str, *, written: bool) -> None:
        if self._changes is None:
            self._changes = {}
        self._changes[key] = written
        if self._read_snapshots:
            self._read_snapshots.pop(key, None)

    def _measure(self) -> int:
        try:
            return len(dumps(self._data))
        except TypeError:
            for key, value in self._data.items():
                _encode(key, value)  # name the key whose container took a non-JSON value in place
            raise

    def _size_without(self, key: str) -> int:
        if self._encoded_size is None or self._read_snapshots:
            # A container handed out may have changed in place since the total was taken.
            self._encoded_size = self._measure()
        if key in self._data:
            return self._encoded_size - _entry_size(key, dumps(self._data[key]))
        return self._encoded_size


def _encode(key: str, value: JSONValue) -> bytes:
    """Return ``value`` encoded, or raise :class:`SessionDataError` naming ``key``."""
    try:
        encoded = dumps(value)
    except TypeError as error:
        raise SessionDataError(
            key, f"value is not JSON-serializable ({error}); store only dict, list, str, int, float, bool or None"
        ) from None
    kind = type(value)
    if kind is float and not math.isfinite(value):
        raise SessionDataError(key, f"{value!r} is not a JSON number; store only finite floats")
    if kind not in _PLAIN_SCALARS and not _reads_back_as(loads(encoded), value):
        # What would read back as something else is refused now, not found out later:
        # NaN and infinities (JSON null), tuples (lists), UUIDs and enums (their text;
        # a StrEnum or IntEnum member even compares equal to it, hence the type check).
        raise SessionDataError(
            key,
            f"{type(value).__name__} value would read back as another value; store only dict, list, str, "
            "int, finite float, bool or None",
        )
    return encoded


def _reads_back_as(decoded: object, value: object) -> bool:
    """Tell whether ``decoded`` is ``value`` again, type for type (``1 == True`` and ``"a" == StrEnum.A`` are not)."""
    kind = type(value)
    if kind is dict:
        assert isinstance(value, dict)
        return (
            type(decoded) is dict
            and len(decoded) == len(value)
            and all(
                type(name) is str and name in decoded and _reads_back_as(decoded[name], item)
                for name, item in value.items()
            )
        )
    if kind is list:
        assert isinstance(value, list)
        return type(decoded) is list and len(decoded) == len(value) and all(map(_reads_back_as, decoded, value))
    return type(decoded) is kind and decoded == value


def _entry_size(key: str, encoded: bytes) -> int:
    """Return the bytes ``"key":value,`` takes in the data's JSON: the key as JSON writes it."""
    # Plain orjson: ``del session[k]`` may name a stored key by an equal str subclass.
    return len(orjson.dumps(key)) + len(encoded) + 2

"""The session object handlers touch: a mapping of JSON values with change tracking.

Rules:

* Values must be JSON-typed; anything else fails at assignment with an error naming the
  key (F17). The data's serialized size is kept under the policy's limit, also checked at
  assignment, so the error reaches the handler that caused it.
* Changes are tracked per key (F18): at the end of a request only the keys written or
  deleted are sent to the store, so concurrent requests changing different keys both
  keep their change. A ``dict`` or ``list`` read from the session and mutated in place
  is caught by comparing its encoding at the end of the request with the one it had
  when first read.
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

from sessionward.errors import SessionDataError, SessionTooLargeError
from sessionward.records import JSONValue, SessionMeta, SessionRecord, dumps, loads

_NO_DELETES: frozenset[str] = frozenset()
_CONTAINERS = (dict, list)
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Values that read back as themselves once dumps() took them (a float once found finite)."""
"""Values that can be changed in place after being read (a tuple: ``dict | list`` is rebuilt per call)."""


class Session(MutableMapping[str, JSONValue]):
    """A session's data for the span of one request, with its metadata apart.

    A session without a record (``record is None``) is a *pending* one: it becomes real
    when data is first written (creation policy ``if_required``) or at login.
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
            snapshots = self._read_snapshots
            if snapshots is None:
                snapshots = self._read_snapshots = {}
            if key not in snapshots and not (self._changes and self._changes.get(key)):
                snapshots[key] = dumps(value)
        return value

    def __setitem__(self, key: str, value: JSONValue) -> None:
        self.accessed = True
        if not isinstance(key, str):
            raise SessionDataError(key, "session keys must be strings")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise SessionDataError(key, "session keys must be valid Unicode (no lone surrogates)") from None
        try:
            encoded = dumps(value)
        except TypeError as error:
            raise SessionDataError(
                key, f"value is not JSON-serializable ({error}); store only dict, list, str, int, float, bool or None"
            ) from None
        kind = type(value)
        if kind is float and not math.isfinite(value):
            raise SessionDataError(key, f"{value!r} is not a JSON number; store only finite floats")
        if kind not in _PLAIN_SCALARS and loads(encoded) != value:
            # What would read back as something else is refused now, not found out later:
            # NaN and infinities (JSON null), tuples (lists), UUIDs and enums (their text).
            raise SessionDataError(
                key,
                f"{type(value).__name__} value would read back as another value; store only dict, list, str, "
                "int, finite float, bool or None",
            )
        size = self._size_without(key) + len(key) + len(encoded) + 4
        if size > self._max_bytes:
            raise SessionTooLargeError(key, size, self._max_bytes)
        self._encoded_size = size
        self._owned_data()[key] = value
        self._log(key, written=True)

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

    @property
    def csrf_token(self) -> str | None:
        """The session's synchronizer token for HTML forms, if it has one."""
        return self.record.meta.csrf_token if self.record is not None else None

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
        mutated = False
        for key, snapshot in (self._read_snapshots or {}).items():
            if key in data and dumps(data[key]) != snapshot:
                written[key] = data[key]
                mutated = True
        if mutated:
            # Assignments kept the size in check as they happened; only an in-place
            # change to a container read earlier can have grown the data unseen.
            size = self._measure()
            if size > self._max_bytes:
                raise SessionTooLargeError(next(iter(written)), size, self._max_bytes)
        return written, deleted

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
        return len(dumps(self._data))

    def _size_without(self, key: str) -> int:
        if self._encoded_size is None:
            self._encoded_size = self._measure()
        if key in self._data:
            return self._encoded_size - len(key) - len(dumps(self._data[key])) - 4
        return self._encoded_size

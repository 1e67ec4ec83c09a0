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
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from sessionward.errors import SessionDataError, SessionTooLargeError
from sessionward.records import JSONValue, SessionMeta, SessionRecord, dumps


class Session(MutableMapping[str, JSONValue]):
    """A session's data for the span of one request, with its metadata apart.

    A session without a record (``record is None``) is a *pending* one: it becomes real
    when data is first written (creation policy ``if_required``) or at login.
    """

    __slots__ = (
        "_data",
        "_deleted",
        "_encoded_size",
        "_max_bytes",
        "_read_snapshots",
        "_written",
        "accessed",
        "cleared_by_logout",
        "record",
    )

    def __init__(self, record: SessionRecord | None, *, max_bytes: int) -> None:
        self.record = record
        self._data: dict[str, JSONValue] = dict(record.data) if record is not None else {}
        self._max_bytes = max_bytes
        self._encoded_size: int | None = None
        self._read_snapshots: dict[str, bytes] = {}
        self._written: set[str] = set()
        self._deleted: set[str] = set()
        self.accessed = False
        self.cleared_by_logout = False

    # -- the mapping -------------------------------------------------------------------

    def __getitem__(self, key: str) -> JSONValue:
        self.accessed = True
        value = self._data[key]
        if isinstance(value, dict | list) and key not in self._read_snapshots and key not in self._written:
            self._read_snapshots[key] = dumps(value)
        return value

    def __setitem__(self, key: str, value: JSONValue) -> None:
        self.accessed = True
        if not isinstance(key, str):
            raise SessionDataError(key, "session keys must be strings")
        try:
            encoded = dumps(value)
        except TypeError as error:
            raise SessionDataError(
                key, f"value is not JSON-serializable ({error}); store only dict, list, str, int, float, bool or None"
            ) from None
        size = self._size_without(key) + len(key) + len(encoded) + 4
        if size > self._max_bytes:
            raise SessionTooLargeError(key, size, self._max_bytes)
        self._encoded_size = size
        self._data[key] = value
        self._written.add(key)
        self._deleted.discard(key)
        self._read_snapshots.pop(key, None)

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        size = self._size_without(key)
        del self._data[key]
        self._encoded_size = size
        self._written.discard(key)
        self._read_snapshots.pop(key, None)
        self._deleted.add(key)

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

    def data_snapshot(self) -> dict[str, JSONValue]:
        """Return a shallow copy of all data, for a login that moves it to a new record."""
        return dict(self._data)

    def changes(self) -> tuple[dict[str, JSONValue], frozenset[str]]:
        """Return the keys written (with values) and deleted by this request."""
        written = {key: self._data[key] for key in self._written}
        for key, snapshot in self._read_snapshots.items():
            if key in self._data and dumps(self._data[key]) != snapshot:
                written[key] = self._data[key]
        if written:
            size = self._measure()
            if size > self._max_bytes:
                key = next(iter(written))
                raise SessionTooLargeError(key, size, self._max_bytes)
        return written, frozenset(self._deleted)

    @property
    def has_data_changes(self) -> bool:
        """Tell whether this request changed data (cheap check, ignores in-place edits)."""
        return bool(self._written or self._deleted or self._read_snapshots)

    def mark_saved(self, record: SessionRecord) -> None:
        """Start tracking afresh against ``record`` (after a login or rotation saved all)."""
        self.record = record
        self._written.clear()
        self._deleted.clear()
        self._read_snapshots.clear()

    def reset(self, record: SessionRecord | None) -> None:
        """Replace everything with ``record``'s data (or nothing), as after logout."""
        self.record = record
        self._data = dict(record.data) if record is not None else {}
        self._encoded_size = None
        self._written.clear()
        self._deleted.clear()
        self._read_snapshots.clear()

    def _measure(self) -> int:
        return len(dumps(self._data))

    def _size_without(self, key: str) -> int:
        if self._encoded_size is None:
            self._encoded_size = self._measure()
        if key in self._data:
            return self._encoded_size - len(key) - len(dumps(self._data[key])) - 4
        return self._encoded_size

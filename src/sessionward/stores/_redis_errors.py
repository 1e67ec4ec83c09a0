"""How the Redis stores report redis-py's errors: outages as outages, foreign data as corrupt.

Pure: the same mapping serves the async stores and their blocking twins (redis-py raises
the same exception classes from both clients).
"""

from __future__ import annotations

from types import TracebackType

from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from sessionward.core.errors import StoreError, StoreUnavailableError

TRANSLATED = (RedisError, RedisClusterException, OSError)
"""What :func:`translated` maps; anything else passes unchanged."""
# Server-side conditions that mean "not now" rather than "this data is bad".
_UNAVAILABLE_REPLIES = (ReadOnlyError, TryAgainError, OutOfMemoryError, BusyLoadingError)


def translated(error: BaseException) -> StoreError:
    """Return the store contract's error for a redis-py (or socket) error (outages become 503s)."""
    if isinstance(error, _UNAVAILABLE_REPLIES):
        return StoreUnavailableError(f"Redis store unavailable: {error}")
    if isinstance(error, ResponseError):
        # WRONGTYPE and the like: someone else's value sits at our key; treat as corrupt.
        return StoreError(f"Redis store error: {error}")
    return StoreUnavailableError(f"Redis store unavailable: {type(error).__name__}: {error}")


class _Translate:
    """``with translate():`` maps what the block raises through :func:`translated`.

    One shared, stateless instance: nothing is allocated per store call (a
    generator-based context manager costs two objects on the hot path). The hot path
    uses ``except TRANSLATED`` with :func:`translated` instead, which costs nothing at
    all while no error occurs.
    """

    __slots__ = ()

    def __call__(self) -> _Translate:
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(error, TRANSLATED):
            raise translated(error) from error


translate = _Translate()

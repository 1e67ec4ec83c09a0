"""The blocking Redis store's hot path: one command on a pooled connection, without the client around it.

Why. For each command redis-py's blocking client builds closures for its retry loop,
records observability metrics, looks up a response callback and turns an ``HGETALL``
reply into a dict: some 10-20 µs of CPU per command on top of the socket calls, paid on
every request by the blocking store's load and save (the asyncio store has its
auto-pipeline, :mod:`sessionward.stores._redis_pipeline`). :class:`DirectLink` sends
the same command over a connection of the client's own pool and reads the reply with
the connection's own parser, under the connection's own retry policy: what redis-py
does, minus the bookkeeping.

What stays with redis-py. The pool connects, authenticates, selects the database, speaks
TLS and (Sentinel) finds the current primary; a connection found closed is dropped and
the command sent again as the client's ``retry`` allows; error replies become redis-py's
exception types (``NOSCRIPT`` → :class:`~redis.exceptions.NoScriptError`…). Replies are
left as Redis sent them (an ``HGETALL`` comes flat under RESP2).
"""

from __future__ import annotations

import os
from typing import Any

from redis import Redis
from redis.connection import Connection, ConnectionPool
from redis.exceptions import ResponseError

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - hiredis comes with the 'redis' extra
    HAVE_HIREDIS = False


def direct_link(client: object) -> DirectLink | None:
    """Return a direct link over ``client``'s pool, or ``None`` where none applies.

    Only a standalone or Sentinel-managed blocking client qualifies, with hiredis
    installed, replies left as bytes and no dedicated single connection; anything else
    (an asyncio client, a cluster client, a client decoding replies) keeps its own path.
    """
    if not HAVE_HIREDIS or type(client) is not Redis or client.connection is not None:
        return None
    pool = client.connection_pool
    if pool.connection_kwargs.get("decode_responses"):
        return None
    return DirectLink(pool)


class DirectLink:
    """Runs one command at a time on a connection of a redis-py pool (module docstring).

    Connections are taken from the pool once and then kept here between commands (one per
    thread that has a command in flight at the same time, as the pool would hold them):
    the pool's checkout, with its lock, metrics and readiness poll, is paid once per
    connection rather than per command. A connection is kept only after a complete reply;
    after any failure it is disconnected and handed back to the pool. A forked child
    never uses its parent's connections.

    Args:
        pool: The blocking client's pool; connections are taken from it.
    """

    __slots__ = ("_idle", "_pid", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._idle: list[Connection] = []
        self._pid = os.getpid()

    def execute(self, *args: bytes | str | int | float) -> Any:
        """Send one command and return its reply.

        Raises:
            redis.exceptions.RedisError: an error reply (as redis-py's type for it), a
                lost connection or a timeout, once the connection's retries are spent.
        """
        # hiredis' stub types the argument as a 1-tuple; it takes a command of any length.
        packed = [hiredis.pack_command(args)]  # type: ignore[arg-type]
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        idle = self._idle
        try:
            connection = idle.pop()
        except IndexError:  # none kept, or another thread took the last one
            connection = self._pool.get_connection()
        complete = False
        try:

            def send() -> Any:
                connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
                return connection.read_response()

            def fail(_error: Exception) -> None:
                connection.disconnect()  # type: ignore[no-untyped-call]

            reply = connection.retry.call_with_retry(send, fail)
            complete = True
            return reply
        except ResponseError:
            complete = True  # an error reply, read whole: the connection is fine
            raise
        finally:
            if complete:
                idle.append(connection)
            else:
                connection.disconnect()  # type: ignore[no-untyped-call]
                self._pool.release(connection)

    def close(self) -> None:
        """Hand the kept connections back to the pool (the client's ``close`` closes them)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            self._pool.release(connection)
